package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
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

// startBrowser starts headless Chromium for the rest of the test (at most
// timeout) and returns its context and a function listing the page's
// uncaught exceptions and console.error/assert calls so far.
func startBrowser(t *testing.T, chrome string, timeout time.Duration) (context.Context, func() []string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	t.Cleanup(cancel)
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
	t.Cleanup(cancelAlloc)
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
			if e.Type == runtime.ConsoleAPICalledTypeError || e.Type == runtime.ConsoleAPICalledTypeAssert {
				jsErrors = append(jsErrors, fmt.Sprintf("console.%s %v", e.Type, e.Args))
			}
		}
	}))
	t.Cleanup(cancelBrowser)
	// The first Run starts the browser, and lives as long as bctx: it
	// must not carry a step's deadline.
	if err := chromedp.Do(bctx); err != nil {
		t.Fatalf("starting chromium: %v", err)
	}
	return bctx, func() []string {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(jsErrors)
	}
}

// TestDashboardInBrowser opens the dashboard in headless Chromium,
// submits a job through its form and watches the live table show it DONE
// once a real worker (`jobctl consume`) processed it; then it checks that
// a POST answer arriving after the stream showed the job DONE does not
// turn the row back to NEW, and saves a screenshot. Each step has its own
// deadline, and a failure names the step and shows the page's state.
func TestDashboardInBrowser(t *testing.T) {
	chrome := chromiumPath(t)
	forEachBroker(t, func(t *testing.T, tgt Target) {
		topic := createTopic(t, tgt, 2)
		mustJobctl(t, tgt, "produce", "--topic", topic, "--count", "8", "--type", "thumbnail")
		s := startServe(t, tgt, topic)
		s.waitReady(t)
		startConsumer(t, tgt, topic, uniqueName(t, "g"))

		bctx, jsErrors := startBrowser(t, chrome, 3*time.Minute)

		id := strconv.FormatInt(time.Now().UnixNano()%1e9+1e9, 10)
		row := `#jobs tr[data-id="` + id + `"]`
		d := &dashboardDriver{t: t, ctx: bctx, s: s, jobID: id, row: row, jsErrors: jsErrors}
		d.run(
			step("open the dashboard", chromedp.Navigate(s.URL+"/")),
			step("wait for the event stream to open (#live.ok)", chromedp.WaitVisible(chromedp.CSS("#live.ok"))),
			step("wait for /stats to say ready (#ready.ok)", chromedp.WaitVisible(chromedp.CSS("#ready.ok"))),
			step("type the job id", chromedp.SendKeys(chromedp.CSS(`input[name="job_id"]`), id)),
			step("type the job type", chromedp.SendKeys(chromedp.CSS(`input[name="type"]`), "resize")),
			step("type the payload", chromedp.SendKeys(chromedp.CSS(`textarea[name="payload"]`), `{"image": "cat.png", "width": 200}`)),
			step("submit the form", chromedp.Click(chromedp.CSS(`#submit button`))),
			step("wait for the form to say the job was accepted (#submit-msg.ok)", chromedp.WaitVisible(chromedp.CSS(`#submit-msg.ok`))),
			step("wait for the live table to show job "+id+" DONE", chromedp.WaitVisible(chromedp.CSS(row+` .badge.DONE`))),
		)
		msg, err := chromedp.Run(bctx, chromedp.Text(chromedp.CSS(`#submit-msg`)))
		if err != nil || msg != "Accepted job "+id {
			t.Fatalf("form message %q (%v)", msg, err)
		}
		// The counters and the lag table follow /stats: all 9 jobs DONE,
		// the worker's group listed.
		d.run(step("wait for the counters to show 9 DONE jobs and the lag table a group",
			ignoreValue(chromedp.Poll[bool](`document.querySelector('[data-status="DONE"]').textContent === "9" && document.querySelectorAll('#lag tr td.mono').length > 0`,
				chromedp.WithPollingInterval(100*time.Millisecond), chromedp.WithPollingTimeout(0)))))
		// Beside the record lag, the group's pending jobs: none once all
		// are DONE.
		d.run(step("wait for the lag table to show 0 pending jobs on every partition",
			ignoreValue(chromedp.Poll[bool](`[...document.querySelectorAll('#lag td.pending')].length > 0 && [...document.querySelectorAll('#lag td.pending')].every(td => td.textContent === "0")`,
				chromedp.WithPollingInterval(100*time.Millisecond), chromedp.WithPollingTimeout(0)))))
		// A click on the row opens the job's page, with its history and
		// payload; Back returns to the live overview.
		d.run(
			step("click the job's row", chromedp.Click(chromedp.CSS(row))),
			step("wait for the job page to show the job DONE", chromedp.WaitVisible(chromedp.CSS(`#page-job.shown #job-status .badge.DONE`))),
			step("wait for the job page to show the payload", chromedp.WaitVisible(chromedp.CSS(`#job-payload`))),
		)
		if got, _ := chromedp.Run(bctx, chromedp.Text(chromedp.CSS(`#job-payload`))); !strings.Contains(got, `"image": "cat.png"`) {
			t.Errorf("the job page shows the payload as %q, want it pretty-printed", got)
		}
		d.run(
			step("go back to the overview", chromedp.Evaluate[chromedp.Void](`history.back()`)),
			step("wait for the overview's live table", chromedp.WaitVisible(chromedp.CSS(`#page-home.shown `+row))),
		)

		// A worker can finish a job before the browser reads the POST's
		// 202, whose body is the job as submitted (NEW). Hold a second
		// job's 202 in the page until the stream has shown the job DONE:
		// the late answer must not turn the row back to NEW.
		late := strconv.FormatInt(time.Now().UnixNano()%1e9+2e9, 10)
		lateRow := `#jobs tr[data-id="` + late + `"]`
		d.row, d.jobID = lateRow, late
		d.run(
			step("hold the answer to the next POST /jobs until its row shows DONE", chromedp.Evaluate[chromedp.Void](holdPostAnswerJS(lateRow))),
			step("type the second job's id", chromedp.SendKeys(chromedp.CSS(`input[name="job_id"]`), late)),
			step("submit the second job", chromedp.Click(chromedp.CSS(`#submit button`))),
			step("wait for the form to accept job "+late+" (its answer arrives after the stream showed it DONE)",
				ignoreValue(chromedp.Poll[bool](`document.querySelector("#submit-msg").textContent === "Accepted job `+late+`"`,
					chromedp.WithPollingInterval(50*time.Millisecond), chromedp.WithPollingTimeout(0)))),
		)
		status, err := chromedp.Run(bctx, chromedp.Evaluate[string](`(document.querySelector(`+jsString(lateRow+" .badge")+`) || {}).textContent || "no row"`))
		if err != nil || status != "DONE" {
			t.Fatalf("after the late answer to its POST, job %s shows %q (%v), want DONE\n%s", late, status, err, d.state())
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
		if errs := d.jsErrors(); len(errs) > 0 {
			t.Fatalf("the dashboard raised JavaScript errors: %v", errs)
		}
	})
}

// browserStepTimeout bounds one step of a browser test, so that a step
// that never completes fails on its own, named, instead of using up the
// whole test's deadline.
const browserStepTimeout = time.Minute

// browserStep is one action of a browser test with what it does, for the
// failure message.
type browserStep struct {
	what string
	act  chromedp.Action[chromedp.Void]
}

// step names an action: what says what it does, for a failure message.
func step(what string, act chromedp.Action[chromedp.Void]) browserStep {
	return browserStep{what: what, act: act}
}

// ignoreValue drops an action's value, to run it as a step.
func ignoreValue[T any](a chromedp.Action[T]) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		_, err := a(ctx, tg)
		return err
	})
}

// dashboardDriver runs the steps of the dashboard test and, when one
// fails, says which and shows what the page and the server had then.
type dashboardDriver struct {
	t        *testing.T
	ctx      context.Context // the browser's context; it has run once
	s        *serveProc
	jobID    string
	row      string // the CSS selector of the job's row
	jsErrors func() []string
	done     int // steps run so far, across calls of run
}

// run runs the steps one at a time, each with its own deadline, and
// fails the test at the first that fails.
func (d *dashboardDriver) run(steps ...browserStep) {
	d.t.Helper()
	for _, st := range steps {
		d.done++
		sctx, cancel := context.WithTimeout(d.ctx, browserStepTimeout)
		err := chromedp.Do(sctx, st.act)
		cancel()
		if err != nil {
			d.t.Fatalf("dashboard step %d (%s) failed: %v\n%s", d.done, st.what, err, d.state())
		}
	}
}

// pageStateJS describes what the page shows: the status pills, the form
// message, the job's row, and the start of the visible text.
const pageStateJS = `(row) => {
  const desc = (sel) => { const e = document.querySelector(sel); return e ? "class=" + JSON.stringify(e.className) + " text=" + JSON.stringify(e.innerText.trim()) : "absent"; };
  return [
    "url: " + location.href,
    "#live: " + desc("#live"),
    "#ready: " + desc("#ready"),
    "#submit-msg: " + desc("#submit-msg"),
    "dialogs open: " + [...document.querySelectorAll("dialog[open]")].map((d) => d.id + " " + JSON.stringify(d.innerText.trim())).join("; "),
    "messages: " + [...document.querySelectorAll(".msg")].filter((m) => m.textContent).map((m) => m.id + " " + JSON.stringify(m.className + ": " + m.textContent)).join("; "),
    "job row: " + desc(row),
    "page text (first 2000 chars):",
    document.body.innerText.slice(0, 2000),
  ].join("\n");
}`

// holdPostAnswerJS wraps the page's fetch so that the answer to the next
// POST /jobs is handed to the page only once the row shows DONE. If it
// never does, the step waiting for the form's message fails, named.
func holdPostAnswerJS(row string) string {
	return `(() => {
  const fetch0 = window.fetch;
  window.fetch = async (url, opts) => {
    const r = await fetch0(url, opts);
    if (url === "/jobs" && opts && opts.method === "POST") {
      window.fetch = fetch0;
      while (!document.querySelector(` + jsString(row+" .badge.DONE") + `)) {
        await new Promise((ok) => setTimeout(ok, 50));
      }
    }
    return r;
  };
})()`
}

// jsString quotes s as a JavaScript string literal.
func jsString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// state reports the page's visible state, the server's view of the job,
// the JavaScript errors and serve's log. The failed step's deadline may
// have passed, so it reads the page with a deadline of its own.
func (d *dashboardDriver) state() string {
	var b strings.Builder
	ctx, cancel := context.WithTimeout(d.ctx, 15*time.Second)
	defer cancel()
	page, err := chromedp.Run(ctx, chromedp.Evaluate[string]("("+pageStateJS+")("+jsString(d.row)+")"))
	if err != nil {
		page = "(could not read the page: " + err.Error() + ")"
	}
	fmt.Fprintf(&b, "--- the page:\n%s\n", page)
	fmt.Fprintf(&b, "--- the server's GET /jobs/%s: %s\n", d.jobID, d.serverJob(ctx))
	fmt.Fprintf(&b, "--- JavaScript errors: %v\n", d.jsErrors())
	fmt.Fprintf(&b, "--- serve stderr:\n%s", d.s.log())
	return b.String()
}

// serverJob is the server's answer for the job, or why there is none.
func (d *dashboardDriver) serverJob(ctx context.Context) string {
	req, err := http.NewRequestWithContext(ctx, "GET", d.s.URL+"/jobs/"+d.jobID, nil)
	if err != nil {
		return err.Error()
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		return err.Error()
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	return resp.Status + " " + string(body)
}
