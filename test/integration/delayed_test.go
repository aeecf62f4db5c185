package integration

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jobctl/jobctl/pkg/job"
)

// Delayed jobs (run_at, SCHEDULED) and where new groups start (--from).
// TestDelayedJobs prints one line CI keeps:
//
//	delayed: target=<broker> jobs=500 lost=0 early=0 late_p50=... late_max=...

// TestDelayedJobs: 500 jobs due over the next ~20 s, two workers that are
// SIGKILLed in the middle and restarted (same instance ids). No job starts
// before its run_at, none is lost; every job was SCHEDULED by the group
// first. Lateness is printed; only a generous bound is asserted (the
// machine is shared, and the delay releasers' group of the killed
// processes waits out their session before the new ones take the tiers).
func TestDelayedJobs(t *testing.T) {
	forEachBroker(t, func(t *testing.T, tgt Target) {
		start := time.Now()
		topic := createTopic(t, tgt, 4)
		group := uniqueName(t, "g")
		args := func(n int) []string {
			return []string{"-c", "8", "--sleep", "10ms", "--timeout", "0", "--instance-id", fmt.Sprintf("delayed-%d", n), "--session-timeout", "10s"}
		}
		procs := []*wkProc{rtConsume(t, tgt, topic, group, args(1)...), rtConsume(t, tgt, topic, group, args(2)...)}

		const n = 500
		jobs := wkJobs("delayed", n)
		base := time.Now().Add(2 * time.Second)
		runAt := map[string]time.Time{}
		r := rand.New(rand.NewPCG(7, 8))
		for i := range jobs {
			jobs[i].RunAt = base.Add(time.Duration(r.Int64N(int64(18 * time.Second)))).UTC()
			runAt[jobs[i].JobID.String()] = jobs[i].RunAt
		}
		wkProduce(t, tgt, topic, jobs)
		ids := rtIDs(jobs)

		// Kill every worker (and with them every delay releaser) in the
		// middle of the window, then start them again.
		time.Sleep(time.Until(base.Add(7 * time.Second)))
		for _, p := range procs {
			_ = p.cmd.Process.Signal(syscall.SIGKILL)
			p.wait(t, 30*time.Second)
		}
		killedAt := time.Now()
		procs = append(procs, rtConsume(t, tgt, topic, group, args(1)...), rtConsume(t, tgt, topic, group, args(2)...))

		l := rtWaitFor(t, tgt, topic, 3*time.Minute, "every delayed job DONE",
			func(l rtLedger) bool { return l.finished(ids, job.StatusDone, group) },
			func(l rtLedger) string {
				return fmt.Sprintf("%d of %d jobs without DONE", l.countMissing(ids, job.StatusDone, group), n)
			})
		for _, p := range procs[2:] {
			rtStop(t, p)
		}
		logs := rtLogs(t, procs...)

		// The first start of each job, from the processed logs.
		first := map[string]time.Time{}
		for _, rec := range logs {
			id := rec.JobID.String()
			if _, ok := runAt[id]; !ok || rec.Group != group {
				continue
			}
			if s, ok := first[id]; !ok || rec.Started.Before(s) {
				first[id] = rec.Started
			}
		}
		var late, calm []time.Duration // calm: due before the kill
		early, lost, unscheduled := 0, 0, 0
		for _, id := range ids {
			s, ok := first[id]
			if !ok {
				// Killed before its processed-log line was written: the
				// DONE event is in the topic (checked above).
				continue
			}
			if s.Before(runAt[id]) {
				early++
				t.Errorf("job %s started at %s, before its run_at %s", id, s.Format(time.RFC3339Nano), runAt[id].Format(time.RFC3339Nano))
			}
			late = append(late, s.Sub(runAt[id]))
			if runAt[id].Before(killedAt.Add(-time.Second)) {
				calm = append(calm, s.Sub(runAt[id]))
			}
		}
		for _, id := range ids {
			if len(l.with(id, job.StatusDone, group)) == 0 {
				lost++
			}
			if len(l.with(id, job.StatusScheduled, group)) == 0 {
				unscheduled++
			}
		}
		dupJobs, _, _ := rtDuplicateRuns(l, group, logs, ids)
		p50, p99, maxLate := rtQuantile(late, 0.5), rtQuantile(late, 0.99), rtQuantile(late, 1)
		fmt.Printf("delayed: target=%s jobs=%d lost=%d early=%d late_p50=%s late_p99=%s late_max=%s before_kill_jobs=%d before_kill_p50=%s before_kill_max=%s duplicate_runs=%d killed_at=+%.1fs time=%.1fs\n",
			tgt.Name, n, lost, early, p50, p99, maxLate, len(calm), rtQuantile(calm, 0.5), rtQuantile(calm, 1), dupJobs, killedAt.Sub(base).Seconds(), time.Since(start).Seconds())
		if lost > 0 || early > 0 {
			t.Fatalf("lost=%d early=%d", lost, early)
		}
		if unscheduled > 0 {
			t.Errorf("%d jobs have no SCHEDULED event of group %s", unscheduled, group)
		}
		if len(late) < n/2 {
			t.Errorf("only %d of %d jobs have a processed-log line", len(late), n)
		}
		// Jobs due while every worker was down wait for the new releasers
		// to get the tiers (the old members' 10 s session must expire).
		if maxLate > 40*time.Second {
			t.Errorf("a job started %s after its run_at", maxLate)
		}
	})
}

// TestDelayedAPIAndProduce: run_at through POST /jobs (SCHEDULED, then
// DONE), produce --delay and --at, and the errors of bad times.
func TestDelayedAPIAndProduce(t *testing.T) {
	forEachBroker(t, func(t *testing.T, tgt Target) {
		topic := createTopic(t, tgt, 2)
		group := uniqueName(t, "g")
		worker := rtConsume(t, tgt, topic, group, "--sleep", "10ms", "--timeout", "0")
		srv := startServe(t, tgt, topic)

		due := time.Now().Add(5 * time.Second).UTC().Truncate(time.Second).Add(time.Second)
		var resp *http.Response
		var body []byte
		wkWaitUntil(t, 60*time.Second, "POST /jobs to be accepted (the view catches up first)", func() bool {
			resp, body = srv.do(t, "POST", "/jobs", `{"job_id": "api-later", "type": "report", "run_at": "`+due.Format(time.RFC3339)+`"}`, "Content-Type", "application/json")
			return resp.StatusCode != http.StatusServiceUnavailable
		})
		if resp.StatusCode != http.StatusAccepted || !strings.Contains(string(body), `"run_at":"`+due.Format(time.RFC3339)) {
			t.Fatalf("POST /jobs with run_at: %d %s", resp.StatusCode, body)
		}
		status := func() string {
			_, b := srv.do(t, "GET", "/jobs/api-later", "")
			var j struct {
				Status string `json:"status"`
			}
			_ = json.Unmarshal(b, &j)
			return j.Status
		}
		wkWaitUntil(t, 30*time.Second, "GET /jobs/api-later to show SCHEDULED", func() bool {
			s := status()
			if s == "DONE" {
				t.Fatalf("api-later is DONE already at %s (run_at %s)", time.Now().UTC().Format(time.RFC3339Nano), due)
			}
			return s == "SCHEDULED"
		})
		if _, b := srv.do(t, "GET", "/jobs/api-later", ""); !strings.Contains(string(b), `"run_at":"`+due.Format(time.RFC3339)+`"`) {
			t.Errorf("GET /jobs/api-later should show its run_at %s: %s", due.Format(time.RFC3339), b)
		}
		wkWaitUntil(t, 60*time.Second, "GET /jobs/api-later to show DONE", func() bool { return status() == "DONE" })

		for _, c := range []struct{ body, want string }{
			{`{"run_at": "tomorrow"}`, "is not an RFC 3339 time"},
			{`{"run_at": "2999-01-01T00:00:00Z"}`, "more than a year ahead"},
		} {
			resp, b := srv.do(t, "POST", "/jobs", c.body, "Content-Type", "application/json")
			if resp.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(string(b), c.want) {
				t.Errorf("POST %s: %d %s, want 422 saying %q", c.body, resp.StatusCode, b, c.want)
			}
		}

		// produce --delay (mock jobs) and --at (lines without their own run_at).
		sent := time.Now()
		mustJobctl(t, tgt, "-t", topic, "produce", "--count", "3", "--type", "later", "--delay", "3s")
		at := time.Now().Add(4 * time.Second).UTC().Truncate(time.Second)
		if r := jobctlIn(t, tgt, "{\"job_id\": \"at-1\"}\n{\"job_id\": \"at-2\", \"run_at\": \"2000-01-01T00:00:00Z\"}\n", "-t", topic, "produce", "-f", "-", "--at", at.Format(time.RFC3339)); r.Code != 0 {
			t.Fatalf("produce --at: %s", r)
		}
		l := rtWaitFor(t, tgt, topic, time.Minute, "the produced jobs DONE",
			func(l rtLedger) bool {
				n := 0
				for id := range l.byID {
					if len(l.with(id, job.StatusDone, group)) > 0 {
						n++
					}
				}
				return n == 6
			}, func(l rtLedger) string { return fmt.Sprintf("%d jobs in the topic", len(l.byID)) })
		logs := rtLogs(t, worker)
		started := map[string]time.Time{}
		for _, rec := range logs {
			started[rec.JobID.String()] = rec.Started
		}
		mocks := 0
		for id := range l.byID {
			nw, _ := l.firstNew(id)
			switch {
			case nw.Event.Type == "later":
				mocks++
				if d := nw.Event.RunAt.Sub(sent); d < 3*time.Second || d > 30*time.Second {
					t.Errorf("mock job %s: run_at %s is not about 3s after sending (%s)", id, nw.Event.RunAt, sent)
				}
				if s := started[id]; s.Before(nw.Event.RunAt) {
					t.Errorf("mock job %s started %s, before its run_at %s", id, s, nw.Event.RunAt)
				}
			case id == "at-1":
				if !nw.Event.RunAt.Equal(at) {
					t.Errorf("at-1: run_at %s, want --at %s", nw.Event.RunAt, at)
				}
				if s := started[id]; s.Before(at) {
					t.Errorf("at-1 started %s, before --at %s", s, at)
				}
			case id == "at-2":
				if nw.Event.RunAt.Year() != 2000 {
					t.Errorf("at-2: a line's own run_at should win over --at, got %s", nw.Event.RunAt)
				}
				if len(l.with(id, job.StatusScheduled, group)) != 0 {
					t.Errorf("at-2 is due (run_at in the past) and should run at once, not be SCHEDULED")
				}
			}
		}
		if mocks != 3 {
			t.Errorf("%d mock jobs of type later, want 3", mocks)
		}

		// The same delayed job sent twice is scheduled twice and released
		// twice, and runs once: the second release is a duplicate.
		line := `{"job_id": "twice", "run_at": "` + time.Now().Add(2*time.Second).UTC().Format(time.RFC3339Nano) + `"}` + "\n"
		if r := jobctlIn(t, tgt, line+line, "-t", topic, "produce", "-f", "-"); r.Code != 0 {
			t.Fatalf("produce twice: %s", r)
		}
		released := func(l rtLedger) int {
			n := 0
			for _, e := range l.with("twice", job.StatusNew, group) {
				if e.Event.Group == group {
					n++
				}
			}
			return n
		}
		l = rtWaitFor(t, tgt, topic, time.Minute, "both releases of the job sent twice, and its DONE",
			func(l rtLedger) bool { return released(l) == 2 && len(l.with("twice", job.StatusDone, group)) > 0 },
			func(l rtLedger) string {
				return fmt.Sprintf("%d releases, %d DONE", released(l), len(l.with("twice", job.StatusDone, group)))
			})
		time.Sleep(2 * time.Second) // time to run the second release, were it not skipped
		l = rtRead(t, tgt, topic)
		if n := len(l.with("twice", job.StatusDone, group)); n != 1 || len(l.with("twice", job.StatusScheduled, group)) != 2 {
			t.Errorf("the job sent twice: %d DONE (want 1), %d SCHEDULED (want 2)", n, len(l.with("twice", job.StatusScheduled, group)))
		}

		for _, c := range []struct {
			stdin string
			args  []string
			code  int
			want  string
		}{
			{"", []string{"produce", "--delay", "1m", "--at", "2030-01-01T00:00:00Z"}, 2, "exclude each other"},
			{"", []string{"produce", "--at", "tomorrow"}, 2, "not an RFC 3339 time"},
			{"", []string{"produce", "--delay", "-5s"}, 2, "negative"},
			{"", []string{"produce", "--delay", "9000h"}, 2, "more than a year"},
			{`{"run_at": "soon"}` + "\n", []string{"produce", "-f", "-"}, 1, `line 1: run_at: "soon" is not an RFC 3339 time`},
		} {
			r := jobctlIn(t, tgt, c.stdin, append([]string{"-t", topic}, c.args...)...)
			if r.Code != c.code || !strings.Contains(r.Stdout+r.Stderr, c.want) {
				t.Errorf("jobctl %v: exit %d, want %d with %q\n%s", c.args, r.Code, c.code, c.want, r)
			}
		}
		rtStop(t, worker)
	})
}

// TestFromLatest: a new group with --from latest runs only jobs produced
// after it joined, says once where it starts, and after a restart goes on
// from where it was (jobs produced while it was down run); a new group
// with the default (earliest) says it reads every record there is.
func TestFromLatest(t *testing.T) {
	forEachBroker(t, func(t *testing.T, tgt Target) {
		topic := createTopic(t, tgt, 3)
		wkProduce(t, tgt, topic, wkJobs("before", 20))
		group := uniqueName(t, "latest")
		p := rtConsume(t, tgt, topic, group, "--from", "latest", "--sleep", "5ms", "--timeout", "0", "--commit-interval", "200ms")
		wkWaitUntil(t, 60*time.Second, "the start announcement", func() bool {
			return strings.Contains(p.stderr.String(), "has no committed offsets")
		})
		// The start offset is committed before any job arrives.
		wkWaitUntil(t, 30*time.Second, "the start offsets committed", func() bool {
			for _, off := range wkCommitted(t, tgt, group, topic) {
				if off < 0 {
					return false
				}
			}
			return true
		})
		after := wkJobs("after", 10)
		wkProduce(t, tgt, topic, after)
		wkWaitDone(t, tgt, topic, after, time.Minute)
		rtStop(t, p)
		out := p.stderr.String()
		if c := strings.Count(out, "has no committed offsets"); c != 1 {
			t.Errorf("the start announcement appears %d times, want once:\n%s", c, out)
		}
		if !strings.Contains(out, "starting after the latest record of 3 partitions (--from latest: 20 records already there are skipped") {
			t.Errorf("the announcement should say where and how many records:\n%s", rtTail(out, 3000))
		}

		// Produced while the group has no member: they run after the restart.
		later := wkJobs("while-down", 5)
		wkProduce(t, tgt, topic, later)
		p2 := rtConsume(t, tgt, topic, group, "--from", "latest", "--sleep", "5ms", "--timeout", "0")
		wkWaitDone(t, tgt, topic, later, time.Minute)
		rtStop(t, p2)
		if strings.Contains(p2.stderr.String(), "has no committed offsets") {
			t.Errorf("a group with committed offsets should not announce a fresh start:\n%s", rtTail(p2.stderr.String(), 2000))
		}

		ran := map[string]bool{}
		for _, rec := range rtLogs(t, p, p2) {
			ran[rec.JobID.String()] = true
		}
		for _, e := range wkJobs("before", 20) {
			if ran[e.JobID.String()] {
				t.Errorf("--from latest ran %s, produced before the group joined", e.JobID)
			}
		}
		for _, e := range append(after, later...) {
			if !ran[e.JobID.String()] {
				t.Errorf("--from latest did not run %s", e.JobID)
			}
		}

		// Default: a new group reads everything, and says how much.
		g2 := uniqueName(t, "earliest")
		p3 := rtConsume(t, tgt, topic, g2, "--sleep", "1ms", "--timeout", "3s")
		rtWaitExit(t, p3, 2*time.Minute)
		out3 := p3.stderr.String()
		if c := strings.Count(out3, "has no committed offsets"); c != 1 || !strings.Contains(out3, "starting from the earliest record of 3 partitions (") {
			t.Errorf("a new group (earliest) should announce its start once:\n%s", rtTail(out3, 3000))
		}
		if got := len(p3.processed(t)); got != 35 {
			t.Errorf("the earliest group ran %d jobs, want all 35", got)
		}
		fmt.Printf("from: target=%s latest_ran=%d earliest_ran=%d\n", tgt.Name, len(ran), len(p3.processed(t)))
	})
}
