package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
	"github.com/jobctl/jobctl/pkg/job"
	"github.com/segmentio/kafka-go"
)

// consoleBigID is above 2^53: JavaScript's JSON.parse would show it as
// 9007199254740992.
const consoleBigID = "9007199254740993"

// consoleBigID2 is submitted through the console's form.
const consoleBigID2 = "9007199254740995"

// loadingTwiceJS makes the page's next two GET /jobs?... answer what
// serve answers while its view is still reading the topic.
const loadingTwiceJS = `(() => {
  const fetch0 = window.fetch;
  let n = 2;
  window.fetch = async (url, opts) => {
    if (n > 0 && typeof url === "string" && url.startsWith("/jobs?")) {
      if (--n === 0) window.fetch = fetch0;
      return new Response(JSON.stringify({error: "the job view is still loading: read 5 of 10 records", loading: true, progress: {}}),
        {status: 503, headers: {"Content-Type": "application/json", "Retry-After": "1"}});
    }
    return fetch0(url, opts);
  };
})()`

// consoleTimeRE is how the console writes an instant: local date and time
// with the zone's offset.
const consoleTimeRE = `/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC[+-]\d\d:\d\d$/`

// TestConsoleInBrowser walks every page and action of the console in one
// headless Chromium against a real server and worker: the count cards
// (by keyboard) into the filtered job list, filters, paging and the Back
// button, the time range and the id search; a job page with every run and
// attempt, its full error (expanded and copied), retry, cancel of a
// running job (dismissed once, then confirmed) and replay; the dead
// letters (a poison record among them) with replay of one, of the
// selected and of all matching; schedules created, paused, resumed and
// deleted; groups with their members, partitions and pending jobs, paused
// and resumed; both charts; ids above 2^53 shown exactly and submitted
// through the form as numbers; the banner while the server's view is
// loading; the token prompt of a server that needs one for reads (a wrong
// token, then the right one); no resource from elsewhere; screenshots
// light, dark and 390 px wide with no horizontal overflow. Any console
// error or uncaught exception fails it.
func TestConsoleInBrowser(t *testing.T) {
	chrome := chromiumPath(t)
	forEachBroker(t, func(t *testing.T, tgt Target) {
		topic := createTopic(t, tgt, 2)
		createDLQ(t, tgt, topic, 1)

		// Thirty-one thumbnails (two pages of 25), one with an id above
		// 2^53; five resizes whose first run fails every attempt (with a
		// two-line error) and goes DEAD, and whose retried or replayed run
		// succeeds; one record that is not a job.
		var evs []job.Event
		now := time.Now().UTC()
		for i := range 30 {
			evs = append(evs, job.Event{JobID: mustID(t, fmt.Sprintf("th-%02d", i)), Status: job.StatusNew, Type: "thumb", Payload: json.RawMessage(fmt.Sprintf(`{"w":%d}`, i)), CreatedAt: now})
		}
		big, err := job.ParseID(consoleBigID)
		if err != nil || !big.Numeric() {
			t.Fatalf("job id %s: %v (numeric %v)", consoleBigID, err, big.Numeric())
		}
		evs = append(evs, job.Event{JobID: big, Status: job.StatusNew, Type: "thumb", Payload: json.RawMessage(`{"image":"big.png","sizes":[64,128]}`), CreatedAt: now})
		// Four renders run over a second: the worker writes RUNNING only
		// for attempts still running after a second, and durations are
		// measured from it.
		for i := range 4 {
			evs = append(evs, job.Event{JobID: mustID(t, fmt.Sprintf("render-%d", i)), Status: job.StatusNew, Type: "render", CreatedAt: now})
		}
		resizes := []string{"r-a", "r-b", "r-c", "r-d", "r-e"}
		for _, id := range resizes {
			evs = append(evs, job.Event{JobID: mustID(t, id), Status: job.StatusNew, Type: "resize", Payload: json.RawMessage(`{"img":"` + id + `.png"}`), CreatedAt: now})
		}
		wkProduce(t, tgt, topic, evs)
		writeRaw(t, tgt, topic, "poison-1", "this record is not a job")

		dir := t.TempDir()
		resize := filepath.Join(dir, "resize.sh")
		script := "#!/bin/sh\nif [ \"$JOB_RUN\" = 0 ]; then echo \"resize failed: disk full on /dev/sda1 (attempt $JOB_ATTEMPT)\" >&2; echo 'second line of the error' >&2; exit 3; fi\necho resized\n"
		if err := os.WriteFile(resize, []byte(script), 0o755); err != nil {
			t.Fatal(err)
		}
		group := uniqueName(t, "g")
		startRoutedConsumer(t, tgt, "-t", topic, "-g", group, "-c", "4", "--route", "resize=exec:"+resize, "--route", "slow=sleep:10m", "--route", "render=sleep:1500ms",
			"--route", "*=sleep:5ms", "--max-attempts", "2", "--retry-backoff", "50ms", "--timeout", "0", "--processed-log", "", "--commit-interval", "200ms")
		s := startServe(t, tgt, topic)
		s.waitReady(t)
		eventually(t, 90*time.Second, "35 jobs DONE and 5 DEAD", func() bool {
			st := s.stats(t)
			return st.Jobs.ByStatus["DONE"] == 35 && st.Jobs.ByStatus["DEAD"] == 5
		})

		c := newConsoleBrowser(t, chrome, s)
		c.shotPrefix = "console-" + tgt.Name
		esc := jsString
		count := func(sel string) string { return `document.querySelectorAll(` + esc(sel) + `).length` }
		text := func(sel string) string { return `((document.querySelector(` + esc(sel) + `) || {}).textContent || "")` }
		rowIDs := `[...document.querySelectorAll("#jobs-list tr[data-id]")].map((r) => r.dataset.id).join(",")`

		// The overview: counts, both charts.
		c.run(
			step("open the console", chromedp.Navigate(s.URL+"/")),
			step("wait for the event stream (#live.ok)", chromedp.WaitVisible(chromedp.CSS("#live.ok"))),
			step("wait for /stats to say ready (#ready.ok)", chromedp.WaitVisible(chromedp.CSS("#ready.ok"))),
			c.poll("the cards to count 35 DONE and 5 DEAD", text(`[data-status="DONE"]`)+` === "35" && `+text(`[data-status="DEAD"]`)+` === "5"`),
			c.poll("the throughput chart to draw its three lines", count("#chart polyline")+` >= 3`),
		)
		c.shot("light-overview")

		// A count card is a link into the filtered list, by keyboard too.
		c.run(
			step("focus the DEAD card", chromedp.Focus(chromedp.CSS(`a.count.DEAD`))),
			step("press Enter on it", chromedp.KeyEvent(kb.Enter)),
			c.poll("the list of the 5 DEAD jobs", `location.hash === "#/jobs?status=DEAD" && `+count(`#jobs-list tr[data-id]`)+` === 5 && `+count(`#jobs-list tr[data-id] .badge.DEAD`)+` === 5 && document.querySelector('#jobs-filter [name=status]').value === "DEAD"`),
		)

		// Filters through the form, paging by the Link cursor, Back.
		c.run(
			step("choose any status", chromedp.SetValue(chromedp.CSS(`#jobs-filter [name=status]`), "")),
			step("type the type filter", chromedp.SendKeys(chromedp.CSS(`#jobs-filter [name=type]`), "thumb")),
			step("apply the filter", chromedp.Click(chromedp.CSS(`#jobs-filter button[type=submit]`))),
			c.poll("page 1 of the thumb jobs", `location.hash === "#/jobs?type=thumb" && `+count(`#jobs-list tr[data-id]`)+` === 25 && `+text("#jobs-page")+` === "Page 1" && !document.querySelector("#jobs-next").disabled && [...document.querySelectorAll("#jobs-list tr[data-id] td:nth-child(3)")].every((td) => td.textContent === "thumb")`),
		)
		page1 := c.eval(rowIDs)
		c.run(
			c.click("the Next button", "#jobs-next"),
			c.poll("page 2: the last 6 thumb jobs, the big id among them, exactly", text("#jobs-page")+` === "Page 2" && `+count(`#jobs-list tr[data-id]`)+` === 6 && `+text(`#jobs-list tr[data-id="`+consoleBigID+`"] a.jobid`)+` === "`+consoleBigID+`" && document.querySelector("#jobs-next").disabled`),
			step("go back", chromedp.Evaluate[chromedp.Void](`history.back()`)),
			c.poll("page 1 again", text("#jobs-page")+` === "Page 1" && `+rowIDs+` === `+esc(page1)),
			step("go back again", chromedp.Evaluate[chromedp.Void](`history.back()`)),
			c.poll("the DEAD list again, its filter in the form", `location.hash === "#/jobs?status=DEAD" && `+count(`#jobs-list tr[data-id] .badge.DEAD`)+` === 5 && document.querySelector('#jobs-filter [name=status]').value === "DEAD" && document.querySelector('#jobs-filter [name=type]').value === ""`),
			c.hash("#/jobs?type=thumb&limit=10"),
			c.poll("10 thumb jobs a page", count(`#jobs-list tr[data-id]`)+` === 10 && `+text("#jobs-page")+` === "Page 1"`),
		)
		first10 := c.eval(rowIDs)
		c.run(
			c.click("Next", "#jobs-next"),
			c.poll("page 2 of 10", text("#jobs-page")+` === "Page 2" && `+count(`#jobs-list tr[data-id]`)+` === 10 && `+rowIDs+` !== `+esc(first10)),
			c.click("Previous", "#jobs-prev"),
			c.poll("page 1 of 10 again", text("#jobs-page")+` === "Page 1" && `+rowIDs+` === `+esc(first10)),
		)
		future := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
		past := time.Now().Add(-time.Hour).UTC().Format(time.RFC3339)
		c.run(
			c.hash("#/jobs?type=thumb&since="+future),
			c.poll("no job updated after an hour from now", count(`#jobs-list tr[data-id]`)+` === 0 && `+text("#jobs-list")+`.includes("No jobs match") && document.querySelector('#jobs-filter [name=since]').value !== ""`),
			c.hash("#/jobs?type=thumb&since="+past+"&until="+future),
			c.poll("every thumb job updated in the last hour", count(`#jobs-list tr[data-id]`)+` === 25`),
			step("type the big id into the search", chromedp.SendKeys(chromedp.CSS(`#job-search [name=id]`), consoleBigID)),
			step("search", chromedp.Click(chromedp.CSS(`#job-search button`))),
			c.poll("the big job's page, its id exact", `location.hash === "#/job/`+consoleBigID+`" && `+text("#job-id-exact")+` === "`+consoleBigID+`" && `+count("#job-status .badge.DONE")+` === 1`),
			c.poll("the payload pretty-printed", text("#job-payload")+`.includes('"image": "big.png"') && `+text("#job-payload")+`.includes("\n  ")`),
			c.poll("dates with their zone", `[...document.querySelectorAll("#job-meta .time")].length >= 2 && [...document.querySelectorAll("#job-meta .time")].every((e) => `+consoleTimeRE+`.test(e.textContent))`),
		)

		// A DEAD job: its run 0 with both attempts and the full error;
		// retry it (its run 1 succeeds).
		attempt1 := `#job-runs .run[data-run="0"] tr.attempt[data-attempt="1"]`
		c.run(
			c.hash("#/job/r-a"),
			c.poll("r-a DEAD, run 0 with a FAILED and a DEAD attempt", count("#job-status .badge.DEAD")+` === 1 && `+count(`#job-runs .run[data-run="0"] tr.attempt`)+` === 2 && `+count(attempt1+` .badge.FAILED`)+` === 1 && `+count(`#job-runs .run[data-run="0"] tr.attempt[data-attempt="2"] .badge.DEAD`)+` === 1 && `+
				text(attempt1+" td:nth-child(4)")+` !== "" && `+`/^[0-9]/.test(`+text(attempt1+" td:nth-child(7)")+`) && `+consoleTimeRE+`.test(`+text(attempt1+" td:nth-child(5)")+`) && `+consoleTimeRE+`.test(`+text(attempt1+" td:nth-child(6)")+`)`),
			c.click("the first attempt's error", attempt1+" details.err summary"),
			c.poll("the full error, both lines", `document.querySelector(`+esc(attempt1+" details.err")+`).open && `+text(attempt1+" pre.error-full")+`.includes("disk full on /dev/sda1 (attempt 1)") && `+text(attempt1+" pre.error-full")+`.includes("second line of the error")`),
			c.click("Copy", attempt1+" button.copy"),
			c.poll("the error copied", `document.querySelector(`+esc(attempt1+" button.copy")+`).dataset.copied === "yes"`),
		)
		c.shot("light-job-dead")
		c.confirmed("retry r-a", "#act-retry")
		c.run(
			c.poll("the result of the retry", `document.querySelector("#action-msg").className === "msg ok" && `+text("#action-msg")+`.startsWith("Retry accepted: job r-a starts run 1")`),
			c.poll("r-a DONE in run 1 (live)", count("#job-status .badge.DONE")+` === 1 && `+count(`#job-runs .run[data-run="1"] tr.attempt .badge.DONE`)+` === 1`),
			c.hash("#/job/r-b"),
			c.poll("r-b DEAD", count("#job-status .badge.DEAD")+` === 1 && !document.querySelector("#act-replay").disabled`),
		)
		c.confirmed("replay r-b", "#act-replay")
		c.run(
			c.poll("the result of the replay", `document.querySelector("#action-msg").className === "msg ok" && `+text("#action-msg")+` === "Replayed job r-b as run 1."`),
			c.poll("r-b DONE in run 1", count("#job-status .badge.DONE")+` === 1 && `+count(`#job-runs .run[data-run="1"]`)+` === 1`),
		)

		// Submit a slow job through the form and cancel it while it runs:
		// dismissed first, then confirmed.
		// The form sends an id above 2^53 as the JSON number it is.
		c.run(
			c.hash("#/"),
			step("type a big job id", chromedp.SendKeys(chromedp.CSS(`#submit [name=job_id]`), consoleBigID2)),
			step("type its type", chromedp.SetValue(chromedp.CSS(`#submit [name=type]`), "thumb")),
			step("submit it", chromedp.Click(chromedp.CSS(`#submit button`))),
			c.poll("the form to accept it, its id exact", text("#submit-msg")+` === "Accepted job `+consoleBigID2+`"`),
		)
		if _, body := s.do(t, "GET", "/jobs/"+consoleBigID2, ""); !bytes.Contains(body, []byte(`"job_id":`+consoleBigID2+`,`)) {
			t.Errorf("the job submitted through the form is %s, want the numeric id %s", body, consoleBigID2)
		}
		c.run(
			step("type the slow job's id", chromedp.SendKeys(chromedp.CSS(`#submit [name=job_id]`), "slow-1")),
			step("type its type", chromedp.SetValue(chromedp.CSS(`#submit [name=type]`), "slow")),
			step("submit it", chromedp.Click(chromedp.CSS(`#submit button`))),
			c.poll("the form to accept it", text("#submit-msg")+` === "Accepted job slow-1"`),
			c.hash("#/job/slow-1"),
			c.poll("slow-1 RUNNING", count("#job-status .badge.RUNNING")+` === 1 && !document.querySelector("#act-cancel").disabled`),
			c.click("Cancel", "#act-cancel"),
			step("wait for the confirmation", chromedp.WaitVisible(chromedp.CSS("#confirm-cancel"))),
			step("dismiss it", chromedp.Click(chromedp.CSS("#confirm-cancel"))),
			c.poll("nothing done", `document.querySelector("#action-msg").className === "msg err" && `+text("#action-msg")+`.includes("not confirmed") && `+count("#job-status .badge.RUNNING")+` === 1`),
		)
		c.confirmed("cancel slow-1", "#act-cancel")
		c.run(
			c.poll("the result of the cancel", `document.querySelector("#action-msg").className === "msg ok" && `+text("#action-msg")+`.startsWith("Cancel accepted for job slow-1")`),
			c.poll("slow-1 CANCELED, its attempt started, ended and timed", count("#job-status .badge.CANCELED")+` === 1 && `+count(`#job-runs tr.attempt[data-attempt="1"] .badge.CANCELED`)+` === 1 && `+
				consoleTimeRE+`.test(`+text(`#job-runs tr.attempt[data-attempt="1"] td:nth-child(5)`)+`) && /^\d+(\.\d+)? (ms|s)$/.test(`+text(`#job-runs tr.attempt[data-attempt="1"] td:nth-child(7)`)+`)`),
		)

		// While the server's view is still reading the topic it answers
		// 503 with the progress: the console says so and tries again.
		c.run(
			step("make the next two GET /jobs answer 503 loading", chromedp.Evaluate[chromedp.Void](loadingTwiceJS)),
			c.hash("#/jobs?status=CANCELED"),
			c.poll("the loading banner", `document.querySelector("#banner").className === "shown" && `+text("#banner")+`.includes("read 5 of 10 records")`),
			c.poll("the list once loaded, the banner gone", count(`#jobs-list tr[data-id="slow-1"]`)+` === 1 && document.querySelector("#banner").className === ""`),
		)

		// Dead letters: the poison record with its reason, filters, replay
		// of one, of the selected, of all matching.
		dlqRow := func(id string) string { return `#dlq-list tr[data-id="` + id + `"]` }
		c.run(
			c.hash("#/dlq"),
			c.poll("the letters: a poison record with a reason, r-b replayed", count(`#dlq-list tr[data-kind="poison"]`)+` >= 1 && `+text(`#dlq-list tr[data-kind="poison"] td:nth-child(8)`)+` !== "" && `+text(dlqRow("r-b")+" .replayed")+`.startsWith("yes") && `+count(dlqRow("r-c")+" input.sel")+` === 1`),
			step("type the type filter", chromedp.SendKeys(chromedp.CSS(`#dlq-filter [name=type]`), "resize")),
			step("apply it", chromedp.Click(chromedp.CSS(`#dlq-filter button[type=submit]`))),
			c.poll("only resize letters", `location.hash === "#/dlq?type=resize" && `+count(`#dlq-list tr[data-kind="poison"]`)+` === 0 && `+count(`#dlq-list tr[data-kind="job"]`)+` >= 5`),
			c.hash("#/dlq?id=r-c"),
			c.poll("only r-c's letter", count(`#dlq-list tr[data-id]`)+` === 1 && `+count(dlqRow("r-c"))+` === 1`),
		)
		c.confirmed("replay r-c", dlqRow("r-c")+" button.replay-one")
		c.run(
			c.poll("one replayed", `document.querySelector("#dlq-msg").className === "msg ok" && `+text("#dlq-msg")+` === "Replay: 1 replayed." && `+text(dlqRow("r-c")+" .replayed")+`.startsWith("yes")`),
			c.hash("#/dlq?type=resize"),
			c.poll("r-d selectable", count(dlqRow("r-d")+" input.sel")+` === 1 && document.querySelector("#dlq-replay-selected").disabled`),
			c.click("r-d's checkbox", dlqRow("r-d")+" input.sel"),
		)
		c.confirmed("replay the selected", "#dlq-replay-selected")
		c.run(
			c.poll("the selected replayed", `document.querySelector("#dlq-msg").className === "msg ok" && `+text("#dlq-msg")+` === "Replay: 1 replayed." && `+text(dlqRow("r-d")+" .replayed")+`.startsWith("yes")`),
		)
		c.confirmed("replay all matching type resize", "#dlq-replay-all")
		c.run(
			c.poll("all matching replayed: r-e among them", `document.querySelector("#dlq-msg").className === "msg ok" && /^Replay: [1-9]\d* replayed/.test(`+text("#dlq-msg")+`) && `+text(dlqRow("r-e")+" .replayed")+`.startsWith("yes")`),
		)
		c.shot("light-dlq")
		c.run(
			c.hash("#/jobs?type=resize&status=DONE"),
			c.poll("all five resizes DONE", count(`#jobs-list tr[data-id]`)+` === 5`),
		)

		// Schedules: create, pause, resume, delete.
		sched := `#schedules-list tr[data-name="nightly"]`
		c.run(
			c.hash("#/schedules"),
			c.poll("the schedules list", count(`#schedules-list tr`)+` >= 1`),
			step("type the name", chromedp.SendKeys(chromedp.CSS(`#schedule-create [name=name]`), "nightly")),
			step("type the cron", chromedp.SendKeys(chromedp.CSS(`#schedule-create [name=cron]`), "0 3 * * *")),
			step("type the zone", chromedp.SendKeys(chromedp.CSS(`#schedule-create [name=tz]`), "Europe/Berlin")),
			step("type the job type", chromedp.SendKeys(chromedp.CSS(`#schedule-create [name=type]`), "report")),
			step("save", chromedp.Click(chromedp.CSS(`#schedule-create button[type=submit]`))),
			c.poll("the schedule saved, its next run with a zone", text("#schedule-create-msg")+`.startsWith("Saved schedule nightly; next run ") && `+consoleTimeRE+`.test(`+text(sched+" .next-run")+`)`),
		)
		c.confirmed("pause nightly", sched+" button.pause")
		c.run(c.poll("nightly paused", `document.querySelector(`+esc(sched)+`).dataset.paused === "true" && `+text(sched+" .next-run")+` === "paused" && `+text("#schedules-msg")+` === "Paused schedule nightly."`))
		c.confirmed("resume nightly", sched+" button.resume")
		c.run(c.poll("nightly active", `document.querySelector(`+esc(sched)+`).dataset.paused === "false" && `+consoleTimeRE+`.test(`+text(sched+" .next-run")+`) && `+text("#schedules-msg")+`.startsWith("Resumed schedule nightly")`))
		c.confirmed("delete nightly", sched+" button.delete")
		c.run(c.poll("nightly gone", count(sched)+` === 0 && `+text("#schedules-msg")+` === "Deleted schedule nightly."`))

		// Groups: the worker, the partitions it owns, pending jobs; pause
		// and resume.
		gsel := `#groups-list .group[data-group="` + group + `"]`
		c.run(
			c.hash("#/groups"),
			c.poll("the group with its member owning both partitions, pending per partition, a rate", count(gsel+" tbody.members tr[data-member]")+` === 1 && `+text(gsel+" tbody.members .partitions")+` === "0, 1" && `+count(gsel+" tbody.pending tr[data-partition]")+` === 2 && `+text(gsel+" .rate")+`.endsWith(" jobs/s")`),
		)
		c.shot("light-groups")
		c.confirmed("pause the group", gsel+" button.pause")
		c.run(c.poll("the group paused", `document.querySelector(`+esc(gsel)+`).dataset.paused === "true" && `+text("#groups-msg")+` === "Paused group `+group+`."`))
		c.confirmed("resume the group", gsel+" button.resume")
		c.run(c.poll("the group resumed", `document.querySelector(`+esc(gsel)+`).dataset.paused === "false" && `+text("#groups-msg")+` === "Resumed group `+group+`."`))

		// Dark mode, from the system's preference.
		c.run(
			step("prefer a dark color scheme", chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
				_, err := chromedp.Call(ctx, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{Features: []*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: "dark"}}})
				return err
			})),
			c.hash("#/"),
			c.poll("the duration chart to show the renders and the slow job", count(`#durations tr[data-type="render"]`)+` === 1 && `+count(`#durations tr[data-type="slow"]`)+` === 1 && `+count("#dchart rect")+` >= 4 && /^\d+(\.\d+)? (ms|s)$/.test(`+text(`#durations tr[data-type="render"] td:nth-child(3)`)+`)`),
			c.poll("the dark background", `getComputedStyle(document.body).backgroundColor === "rgb(15, 20, 28)" && `+count("#jobs tr[data-id]")+` > 0`),
		)
		c.shot("dark-overview")
		c.run(c.hash("#/job/r-a"), c.poll("r-a's page", count(`#job-runs .run[data-run="1"]`)+` === 1`))
		c.shot("dark-job")
		c.run(step("prefer light again", chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
			_, err := chromedp.Call(ctx, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{Features: []*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: "light"}}})
			return err
		})))

		// 390 px wide: every page fits without scrolling sideways.
		c.run(step("a phone-wide window", chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile)))
		for _, p := range []struct{ name, hash, loaded string }{
			{"overview", "#/", count("#jobs tr[data-id]") + " > 0 && " + count("#chart polyline") + " > 0"},
			{"jobs", "#/jobs?type=thumb", count("#jobs-list tr[data-id]") + " === 25"},
			{"job", "#/job/r-a", count("#job-runs .run") + " >= 2"},
			{"dlq", "#/dlq", count("#dlq-list tr[data-id]") + " > 0"},
			{"schedules", "#/schedules", count("#schedules-list tr") + " > 0"},
			{"groups", "#/groups", count("#groups-list .group") + " > 0"},
		} {
			c.run(c.hash(p.hash), c.poll("the "+p.name+" page at 390 px", p.loaded))
			// Wider than 390 px, or than the window less its scroll bar,
			// is a page that scrolls sideways.
			if w, err := strconv.Atoi(c.eval(`String(Math.max(document.scrollingElement.scrollWidth - document.scrollingElement.clientWidth + 390, document.scrollingElement.scrollWidth))`)); err != nil || w > 390 {
				t.Errorf("at 390 px the %s page is %d px wide (%v): it scrolls sideways; too wide: %s", p.name, w, err, c.eval(overflowingJS))
			}
			if p.name == "overview" || p.name == "jobs" || p.name == "job" {
				c.shot("phone-" + p.name)
			}
		}
		c.run(step("a desktop window again", chromedp.EmulateViewport(1360, 1000)))

		// A server that needs the token for reads: the console asks for
		// it, again after a wrong one, and keeps it for the tab.
		s2 := startServe(t, tgt, topic, "JOBCTL_API_TOKEN=console-secret", "JOBCTL_API_TOKEN_READS=true")
		s2.waitReady(t, "Authorization", "Bearer console-secret")
		c.s = s2
		c.run(
			step("open the console of the server with a token", chromedp.Navigate(s2.URL+"/#/jobs?type=thumb")),
			step("wait for the token prompt", chromedp.WaitVisible(chromedp.CSS("#token-input"))),
			step("type a wrong token", chromedp.SendKeys(chromedp.CSS("#token-input"), "wrong")),
			step("send it", chromedp.Click(chromedp.CSS("#token-ok"))),
			c.poll("the prompt again, saying the token is wrong", `document.querySelector("#token-dialog").open && `+text("#token-text")+`.includes("wrong bearer token")`),
			step("type the token", chromedp.SendKeys(chromedp.CSS("#token-input"), "console-secret")),
			step("send it", chromedp.Click(chromedp.CSS("#token-ok"))),
			c.poll("the jobs listed with the token", count("#jobs-list tr[data-id]")+` === 25 && sessionStorage.getItem("jobctl-token") === "console-secret"`),
			step("wait for the stream and stats with the token", chromedp.WaitVisible(chromedp.CSS("#live.ok"))),
			step("wait for ready", chromedp.WaitVisible(chromedp.CSS("#ready.ok"))),
		)
		c.shot("token")
		c.run(c.poll("every resource from the server itself (no CDN)", `performance.getEntriesByType("resource").every((e) => e.name.startsWith(location.origin + "/"))`))

		if errs := c.jsErrors(); len(errs) > 0 {
			t.Fatalf("the console raised JavaScript errors: %v", errs)
		}
	})
}

// overflowingJS lists the outermost elements that reach past the
// window's right edge.
const overflowingJS = `(() => {
  const W = document.scrollingElement.clientWidth, out = [];
  for (const e of document.querySelectorAll("body *")) {
    const r = e.getBoundingClientRect();
    if (r.width > 0 && r.right > W + 0.5 && !(e.parentElement && e.parentElement.getBoundingClientRect().right > W + 0.5)) {
      out.push(e.tagName.toLowerCase() + (e.id ? "#" + e.id : "") + (e.className && typeof e.className === "string" ? "." + e.className.trim().split(/\s+/).join(".") : "") + " right=" + Math.round(r.right));
    }
  }
  return "window " + W + " px; " + (out.slice(0, 10).join(", ") || "none");
})()`

// consoleBrowser drives one headless Chromium through the console; its
// failures name the step and show the page (see dashboardDriver).
type consoleBrowser struct {
	*dashboardDriver
	shotPrefix string
}

func newConsoleBrowser(t *testing.T, chrome string, s *serveProc) *consoleBrowser {
	t.Helper()
	bctx, jsErrors := startBrowser(t, chrome, 6*time.Minute)
	return &consoleBrowser{dashboardDriver: &dashboardDriver{t: t, ctx: bctx, s: s, jobID: consoleBigID, row: "#job-body", jsErrors: jsErrors}}
}

// poll is a step that waits until the JavaScript expression is true.
func (c *consoleBrowser) poll(what, expr string) browserStep {
	return step("wait for "+what, ignoreValue(chromedp.Poll[bool](expr, chromedp.WithPollingInterval(100*time.Millisecond), chromedp.WithPollingTimeout(0))))
}

// click clicks the first element matching sel once it is there and
// enabled, in one turn of the page's event loop: lists are redrawn by
// live updates, and a node found in one call can be gone in the next.
func (c *consoleBrowser) click(what, sel string) browserStep {
	return step("click "+what+" ("+sel+")", ignoreValue(chromedp.Poll[bool](`(() => { const e = document.querySelector(`+jsString(sel)+`); if (!e || e.disabled) return false; e.click(); return true; })()`,
		chromedp.WithPollingInterval(100*time.Millisecond), chromedp.WithPollingTimeout(0))))
}

// hash routes the page to h, as a link or the address bar would.
func (c *consoleBrowser) hash(h string) browserStep {
	return step("go to "+h, chromedp.Evaluate[chromedp.Void](`location.hash = `+jsString(h)))
}

// confirmed clicks the action's button and confirms in the dialog.
func (c *consoleBrowser) confirmed(what, sel string) {
	c.t.Helper()
	c.run(
		c.click(what, sel),
		step("wait for the confirmation to "+what, chromedp.WaitVisible(chromedp.CSS("#confirm-ok"))),
		step("confirm "+what, chromedp.Click(chromedp.CSS("#confirm-ok"))),
		step("wait for the confirmation to close", chromedp.WaitNotVisible(chromedp.CSS("#confirm-ok"))),
	)
}

// eval returns the value of a JavaScript expression as a string.
func (c *consoleBrowser) eval(expr string) string {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(c.ctx, 30*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[string](expr))
	if err != nil {
		c.t.Fatalf("evaluating %s: %v\n%s", expr, err, c.state())
	}
	return v
}

// shot saves a full-page screenshot as an artifact.
func (c *consoleBrowser) shot(name string) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(c.ctx, 30*time.Second)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		c.t.Fatalf("screenshot %s: %v", name, err)
	}
	path := filepath.Join(artifactDir(c.t), c.shotPrefix+"-"+name+".png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		c.t.Fatal(err)
	}
	c.t.Logf("screenshot: %s", path)
}

// startRoutedConsumer runs `jobctl consume` with args until the test
// ends.
func startRoutedConsumer(t *testing.T, tgt Target, args ...string) {
	t.Helper()
	cmd := jobctlProcess(t, tgt, nil, append([]string{"consume"}, args...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting jobctl consume: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			t.Errorf("jobctl consume did not stop; stderr:\n%s", stderr.String())
		}
	})
}

// writeRaw writes one record that is not a job to topic.
func writeRaw(t *testing.T, tgt Target, topic, key, value string) {
	t.Helper()
	w := &kafka.Writer{Addr: kafka.TCP(tgt.Brokers...), Topic: topic, RequiredAcks: kafka.RequireAll, BatchTimeout: time.Millisecond}
	defer w.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := w.WriteMessages(ctx, kafka.Message{Key: []byte(key), Value: []byte(value)}); err != nil {
		t.Fatalf("writing a raw record to %s: %v", topic, err)
	}
}
