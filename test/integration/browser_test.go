package integration

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

// chromiumPath finds headless Chromium (Debian: apt-get install chromium).
// Without it the browser test is skipped, except in CI, where it must run.
func chromiumPath(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"/usr/bin/chromium", "chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("chromium is not installed, and in CI the browser test is mandatory (apt-get install -y chromium)")
	}
	t.Skip("SKIPPING the dashboard browser test: chromium is not installed (apt-get update && apt-get install -y chromium)")
	return ""
}

// artifactDir is where screenshots go: $JOBCTL_TEST_ARTIFACTS, else a
// temporary directory.
func artifactDir(t *testing.T) string {
	t.Helper()
	if d := os.Getenv("JOBCTL_TEST_ARTIFACTS"); d != "" {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		return d
	}
	return t.TempDir()
}

// TestDashboardInBrowser opens the dashboard in headless Chromium,
// submits a job through its form and watches the live table show it DONE
// once a real worker (`jobctl consume`) processed it; then it saves a
// screenshot.
func TestDashboardInBrowser(t *testing.T) {
	chrome := chromiumPath(t)
	forEachBroker(t, func(t *testing.T, tgt Target) {
		topic := createTopic(t, tgt, 2)
		mustJobctl(t, tgt, "produce", "--topic", topic, "--count", "8", "--type", "thumbnail")
		s := startServe(t, tgt, topic)
		s.waitReady(t)
		startConsumer(t, tgt, topic, uniqueName(t, "g"))

		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		allocCtx, cancelAlloc := chromedp.NewExecAllocator(ctx,
			chromedp.ExecPath(chrome),
			chromedp.Flag("headless", true),
			chromedp.Flag("no-sandbox", true),
			chromedp.Flag("disable-gpu", true),
			chromedp.Flag("disable-quic", true),
			chromedp.Flag("no-first-run", true),
			chromedp.Flag("disable-background-networking", true),
			chromedp.Flag("disable-component-update", true),
			chromedp.Flag("disable-sync", true),
			chromedp.UserDataDir(t.TempDir()),
			chromedp.WindowSize(1360, 1000),
		)
		defer cancelAlloc()
		var (
			mu       sync.Mutex
			jsErrors []string
		)
		bctx, cancelBrowser := chromedp.NewContext(allocCtx, chromedp.WithListener(func(ev any) {
			mu.Lock()
			defer mu.Unlock()
			switch e := ev.(type) {
			case *runtime.EventExceptionThrown:
				d := e.ExceptionDetails
				desc := d.Text
				if d.Exception != nil {
					desc += " " + d.Exception.Description
				}
				jsErrors = append(jsErrors, fmt.Sprintf("%s (line %d)", desc, d.LineNumber))
			case *runtime.EventConsoleAPICalled:
				if e.Type == runtime.ConsoleAPICalledTypeError {
					jsErrors = append(jsErrors, fmt.Sprintf("console.error %v", e.Args))
				}
			}
		}))
		defer cancelBrowser()

		id := strconv.FormatInt(time.Now().UnixNano()%1e9+1e9, 10)
		row := `#jobs tr[data-id="` + id + `"]`
		err := chromedp.Do(bctx,
			chromedp.Navigate(s.URL+"/"),
			chromedp.WaitVisible(chromedp.CSS("#live.ok")),  // the event stream is open
			chromedp.WaitVisible(chromedp.CSS("#ready.ok")), // /stats says ready
			chromedp.SendKeys(chromedp.CSS(`input[name="job_id"]`), id),
			chromedp.SendKeys(chromedp.CSS(`input[name="type"]`), "resize"),
			chromedp.SendKeys(chromedp.CSS(`textarea[name="payload"]`), `{"image": "cat.png", "width": 200}`),
			chromedp.Click(chromedp.CSS(`#submit button`)),
			chromedp.WaitVisible(chromedp.CSS(`#submit-msg.ok`)),
			chromedp.WaitVisible(chromedp.CSS(row+` .badge.DONE`)),
		)
		if err != nil {
			t.Fatalf("driving the dashboard: %v\nserve stderr:\n%s", err, s.log())
		}
		msg, err := chromedp.Run(bctx, chromedp.Text(chromedp.CSS(`#submit-msg`)))
		if err != nil || msg != "Accepted job "+id {
			t.Fatalf("form message %q (%v)", msg, err)
		}
		// The counters and the lag table follow /stats: all 9 jobs DONE,
		// the worker's group listed.
		if _, err := chromedp.Run(bctx, chromedp.Poll[bool](`document.querySelector('[data-status="DONE"]').textContent === "9" && document.querySelectorAll('#lag tr td.mono').length > 0`, chromedp.WithPollingTimeout(90*time.Second))); err != nil {
			t.Fatalf("the dashboard's counts never showed 9 DONE jobs with lag: %v", err)
		}
		// The job detail panel shows its history.
		if err := chromedp.Do(bctx,
			chromedp.Click(chromedp.CSS(row)),
			chromedp.WaitVisible(chromedp.CSS(`#detail.open #detail-body .badge.DONE`)),
		); err != nil {
			t.Fatalf("opening the job's detail: %v", err)
		}
		if got, _ := chromedp.Run(bctx, chromedp.Text(chromedp.CSS(`#detail-body pre`))); got == "" {
			t.Error("the detail panel does not show the payload")
		}

		png, err := chromedp.Run(bctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatalf("screenshot: %v", err)
		}
		path := filepath.Join(artifactDir(t), "dashboard-"+tgt.Name+".png")
		if err := os.WriteFile(path, png, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("dashboard screenshot: %s", path)
		mu.Lock()
		defer mu.Unlock()
		if len(jsErrors) > 0 {
			t.Fatalf("the dashboard raised JavaScript errors: %v", jsErrors)
		}
	})
}
