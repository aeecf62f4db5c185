package integration

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jobctl/jobctl/pkg/job"
	"github.com/segmentio/kafka-go"
)

// ctlScript writes the exec handler of the control tests: slow-* runs
// for 3 s, hang-* starts a grandchild and waits for it (both pids go to
// files), fail-* fails in run 0 and succeeds in later runs, anything
// else succeeds at once. Every start is marked with a file.
func ctlScript(t *testing.T, dir string) string {
	t.Helper()
	script := filepath.Join(dir, "handle.sh")
	body := `#!/bin/sh
OUT='` + dir + `'
touch "$OUT/$JOB_ID.started"
case "$JOB_ID" in
  slow-*) sleep 3 ;;
  hang-*) sleep 100 & echo $! > "$OUT/$JOB_ID.grandchild"; echo $$ > "$OUT/$JOB_ID.child"; wait ;;
  fail-*) [ "$JOB_RUN" -ge 1 ] || exit 7 ;;
esac
`
	if err := os.WriteFile(script, []byte(body), 0o755); err != nil {
		t.Fatal(err)
	}
	return script
}

// ctlEvents returns the statuses (with run) the topic holds for id, in
// order.
func ctlEvents(t *testing.T, tgt Target, topic, id string) []job.Event {
	t.Helper()
	var out []job.Event
	for _, r := range wkIndexAll(t, readTopic(t, tgt, topic)) {
		if r.JobID.String() == id {
			out = append(out, r)
		}
	}
	return out
}

func wkIndexAll(t *testing.T, msgs []kafka.Message) []job.Event {
	t.Helper()
	out := make([]job.Event, 0, len(msgs))
	for _, m := range msgs {
		if e, err := job.Decode(m.Value); err == nil {
			out = append(out, e)
		}
	}
	return out
}

func hasStatus(evs []job.Event, st job.Status, run int) bool {
	return slices.ContainsFunc(evs, func(e job.Event) bool { return e.Status == st && e.Run == run })
}

// TestControlCancelAndRetry: jobs queued behind a slow job and cancelled
// never run; a running exec job is killed (child and grandchild) and ends
// CANCELED; finished and unknown jobs cannot be cancelled; a DEAD job and
// a CANCELED one retried run again as run 1.
func TestControlCancelAndRetry(t *testing.T) {
	forEachBroker(t, func(t *testing.T, tgt Target) {
		topic := createTopic(t, tgt, 1)
		dir := t.TempDir()
		script := ctlScript(t, dir)
		sfx := uniqueName(t, "")
		mk := func(id string) job.Event {
			return job.Event{JobID: mustID(t, id+sfx), Status: job.StatusNew, CreatedAt: time.Now().UTC()}
		}
		slow, q1, q2, q3, hang, fail := mk("slow-"), mk("q1-"), mk("q2-"), mk("q3-"), mk("hang-"), mk("fail-")
		id := func(e job.Event) string { return e.JobID.String() }
		wkProduce(t, tgt, topic, []job.Event{slow, q1, q2, q3})

		group := uniqueName(t, "g")
		c := wkStart(t, tgt, "consume", "-t", topic, "-g", group, "-c", "1", "--handler", "exec", "--exec-command", script,
			"--max-attempts", "1", "--timeout", "0", "--commit-interval", "200ms")
		wkWaitUntil(t, 60*time.Second, "the slow job to start", func() bool {
			_, err := os.Stat(filepath.Join(dir, id(slow)+".started"))
			return err == nil
		})
		mustJobctl(t, tgt, "-t", topic, "jobs", "cancel", id(q1), id(q2), id(q3))
		for _, q := range []job.Event{q1, q2, q3} {
			wkWaitUntil(t, 30*time.Second, id(q)+" to be CANCELED", func() bool { return hasStatus(ctlEvents(t, tgt, topic, id(q)), job.StatusCancelled, 0) })
			if _, err := os.Stat(filepath.Join(dir, id(q)+".started")); err == nil {
				t.Errorf("cancelled job %s was started", id(q))
			}
		}
		wkWaitUntil(t, 30*time.Second, "the slow job to be DONE", func() bool { return hasStatus(ctlEvents(t, tgt, topic, id(slow)), job.StatusDone, 0) })

		// A running exec job: cancelled within about a second, its
		// process group killed, CANCELED, not retried or dead.
		wkProduce(t, tgt, topic, []job.Event{hang})
		wkWaitUntil(t, 30*time.Second, "the hanging job's grandchild", func() bool {
			_, err := os.Stat(filepath.Join(dir, id(hang)+".grandchild"))
			return err == nil
		})
		asked := time.Now()
		mustJobctl(t, tgt, "-t", topic, "jobs", "cancel", id(hang))
		wkWaitUntil(t, 30*time.Second, "the hanging job to be CANCELED", func() bool { return hasStatus(ctlEvents(t, tgt, topic, id(hang)), job.StatusCancelled, 0) })
		if took := time.Since(asked); took > 15*time.Second {
			t.Errorf("cancelling a running job took %s", took)
		}
		wkWaitGone(t, "the cancelled job's child", filepath.Join(dir, id(hang)+".child"))
		wkWaitGone(t, "the cancelled job's grandchild", filepath.Join(dir, id(hang)+".grandchild"))
		for _, e := range ctlEvents(t, tgt, topic, id(hang)) {
			if e.Status == job.StatusFailed || e.Status == job.StatusDead || e.Status == job.StatusDone {
				t.Errorf("cancelled running job also got %s", e.Status)
			}
		}

		// Finished or unknown: exit 1 with a message.
		r := jobctl(t, tgt, "-t", topic, "jobs", "cancel", id(slow))
		if r.Code != 1 || !strings.Contains(r.Stderr, "DONE") {
			t.Errorf("cancel of a DONE job: %s", r)
		}
		r = jobctl(t, tgt, "-t", topic, "jobs", "cancel", "no-such-job-"+sfx)
		if r.Code != 1 || !strings.Contains(r.Stderr, "not found") {
			t.Errorf("cancel of an unknown job: %s", r)
		}
		r = jobctl(t, tgt, "-t", topic, "jobs", "retry", id(slow))
		if r.Code != 1 || !strings.Contains(r.Stderr, "DONE") {
			t.Errorf("retry of a DONE job: %s", r)
		}

		// Retry: a DEAD job and a CANCELED one run again as run 1 (the
		// cancel of run 0 does not cover run 1).
		wkProduce(t, tgt, topic, []job.Event{fail})
		wkWaitUntil(t, 30*time.Second, "the failing job to be DEAD", func() bool { return hasStatus(ctlEvents(t, tgt, topic, id(fail)), job.StatusDead, 0) })
		r = mustJobctl(t, tgt, "-t", topic, "jobs", "retry", id(fail), id(q1))
		if !strings.Contains(r.Stdout, "run 1") {
			t.Errorf("retry output: %s", r)
		}
		for _, e := range []job.Event{fail, q1} {
			wkWaitUntil(t, 30*time.Second, id(e)+" run 1 to be DONE", func() bool { return hasStatus(ctlEvents(t, tgt, topic, id(e)), job.StatusDone, 1) })
		}
		// The retried DEAD job's dead letter counts as replayed: a replay
		// of all dead jobs would not run it a third time.
		r = mustJobctl(t, tgt, "-t", topic, "-o", "json", "dlq", "replay", "--all", "--dry-run")
		var plan struct {
			Replayed []struct {
				JobID json.RawMessage `json:"job_id"`
			} `json:"replayed"`
			AlreadyReplayed []struct {
				JobID json.RawMessage `json:"job_id"`
			} `json:"already_replayed"`
		}
		if err := json.Unmarshal([]byte(r.Stdout), &plan); err != nil {
			t.Fatalf("dlq replay --dry-run output: %v\n%s", err, r.Stdout)
		}
		if len(plan.Replayed) != 0 || len(plan.AlreadyReplayed) != 1 || !strings.Contains(string(plan.AlreadyReplayed[0].JobID), id(fail)) {
			t.Errorf("after retrying the DEAD job, dlq replay --all would do: %s", r.Stdout)
		}
		var got struct {
			Status  string `json:"status"`
			Run     int    `json:"run"`
			History []struct {
				Status string `json:"status"`
				Run    int    `json:"run"`
			} `json:"history"`
		}
		r = mustJobctl(t, tgt, "-t", topic, "-o", "json", "jobs", "get", id(q1))
		if err := json.Unmarshal([]byte(r.Stdout), &got); err != nil {
			t.Fatal(err)
		}
		if got.Status != "DONE" || got.Run != 1 || !slices.ContainsFunc(got.History, func(h struct {
			Status string `json:"status"`
			Run    int    `json:"run"`
		}) bool {
			return h.Status == "CANCELED" && h.Run == 0
		}) {
			t.Errorf("jobs get after cancel and retry: %+v", got)
		}

		if code := c.stop(t, syscall.SIGTERM, 30*time.Second); code != 0 {
			t.Errorf("consume exited %d; stderr:\n%s", code, c.stderr.String())
		}
		for _, p := range c.processed(t) {
			if pid := p.JobID.String(); pid == id(q2) || pid == id(q3) || (pid == id(q1) && p.Run == 0) {
				t.Errorf("a job cancelled before it started has a processed line: %+v", p)
			}
		}
	})
}

// TestControlPauseResume: no job of a paused group starts, also in a
// member started while it is paused (whose idle timeout does not fire
// meanwhile); after resume all run. A job running when the pause comes
// finishes; the one queued behind it waits for the resume.
func TestControlPauseResume(t *testing.T) {
	forEachBroker(t, func(t *testing.T, tgt Target) {
		topic := createTopic(t, tgt, 2)
		group := uniqueName(t, "g")
		mustJobctl(t, tgt, "-t", topic, "group", "pause", group)
		jobs := wkJobs("p-"+uniqueName(t, ""), 8)
		wkProduce(t, tgt, topic, jobs)
		args := []string{"consume", "-t", topic, "-g", group, "-c", "2", "--sleep", "10ms", "--commit-interval", "200ms"}

		a := wkStart(t, tgt, append(args, "--timeout", "0")...)
		wkWaitUntil(t, 60*time.Second, "the first member to say it is paused", func() bool { return strings.Contains(a.stderr.String(), "group paused") })
		time.Sleep(1500 * time.Millisecond)
		if code := a.stop(t, syscall.SIGTERM, 30*time.Second); code != 0 {
			t.Fatalf("consume exited %d; stderr:\n%s", code, a.stderr.String())
		}
		if p := a.processed(t); len(p) != 0 {
			t.Fatalf("%d jobs ran while the group was paused: %+v", len(p), p)
		}

		// A restarted member stays paused; its 1 s idle timeout waits.
		b := wkStart(t, tgt, append(args, "--timeout", "1s")...)
		wkWaitUntil(t, 60*time.Second, "the restarted member to say it is paused", func() bool { return strings.Contains(b.stderr.String(), "group paused") })
		time.Sleep(2500 * time.Millisecond)
		select {
		case <-b.done:
			t.Fatalf("a paused member stopped on its idle timeout; stderr:\n%s", b.stderr.String())
		default:
		}
		if p := b.processed(t); len(p) != 0 {
			t.Fatalf("%d jobs ran while the group was paused: %+v", len(p), p)
		}
		resumed := time.Now()
		r := mustJobctl(t, tgt, "-t", topic, "group", "resume", group)
		if !strings.Contains(r.Stdout, "resumed") {
			t.Errorf("resume output: %s", r)
		}
		wkWaitDone(t, tgt, topic, jobs, 60*time.Second)
		if code := b.wait(t, 60*time.Second); code != 0 {
			t.Errorf("consume exited %d; stderr:\n%s", code, b.stderr.String())
		}
		if !strings.Contains(b.stderr.String(), "group resumed") {
			t.Errorf("no 'group resumed' in the log:\n%s", b.stderr.String())
		}
		p := b.processed(t)
		if len(p) != len(jobs) {
			t.Errorf("%d processed lines, want %d", len(p), len(jobs))
		}
		for _, rec := range p {
			if rec.Started.Before(resumed) {
				t.Errorf("job %s started at %s, before the resume at %s", rec.JobID, rec.Started, resumed)
			}
		}

		// Paused while a job runs: it finishes; the queued one waits.
		slow := wkJobs("s-"+uniqueName(t, ""), 2)
		c := wkStart(t, tgt, "consume", "-t", topic, "-g", group, "-c", "1", "--sleep", "2s", "--timeout", "0", "--commit-interval", "200ms")
		wkProduce(t, tgt, topic, slow)
		var first, second job.Event
		wkWaitUntil(t, 60*time.Second, "a slow job to be RUNNING", func() bool {
			l := wkIndex(t, readTopic(t, tgt, topic))
			for i, j := range slow {
				if len(l.running[j.JobID.String()]) > 0 {
					first, second = j, slow[1-i]
					return true
				}
			}
			return false
		})
		mustJobctl(t, tgt, "-t", topic, "group", "pause", group)
		wkWaitUntil(t, 30*time.Second, "the running job to finish while paused", func() bool {
			return len(wkIndex(t, readTopic(t, tgt, topic)).dones[first.JobID.String()]) == 1
		})
		time.Sleep(2500 * time.Millisecond)
		if l := wkIndex(t, readTopic(t, tgt, topic)); len(l.running[second.JobID.String()]) > 0 || len(l.dones[second.JobID.String()]) > 0 {
			t.Fatalf("the queued job started while the group was paused")
		}
		mustJobctl(t, tgt, "-t", topic, "group", "resume", group)
		wkWaitDone(t, tgt, topic, slow, 60*time.Second)
		if code := c.stop(t, syscall.SIGTERM, 30*time.Second); code != 0 {
			t.Errorf("consume exited %d; stderr:\n%s", code, c.stderr.String())
		}
		for _, want := range []string{"group paused", "group resumed"} {
			if !strings.Contains(c.stderr.String(), want) {
				t.Errorf("no %q in the log:\n%s", want, c.stderr.String())
			}
		}
	})
}

// TestControlAPI: the control endpoints need the token, answer 404 for
// unknown jobs, 409 for a finished one, cancel and retry through a real
// worker, and /stats lists paused groups.
func TestControlAPI(t *testing.T) {
	forEachBroker(t, func(t *testing.T, tgt Target) {
		topic := createTopic(t, tgt, 2)
		group := uniqueName(t, "g")
		sfx := uniqueName(t, "")
		done, later := mustID(t, "done-"+sfx), mustID(t, "later-"+sfx)
		wkProduce(t, tgt, topic, []job.Event{{JobID: done, Status: job.StatusNew}})
		consume := func() {
			mustJobctl(t, tgt, "-t", topic, "-g", group, "consume", "--sleep", "1ms", "--timeout", "2s", "--processed-log", "")
		}
		consume()
		wkProduce(t, tgt, topic, []job.Event{{JobID: later, Status: job.StatusNew}})

		srv := startServe(t, tgt, topic, "JOBCTL_API_TOKEN=ctl-secret")
		auth := []string{"Authorization", "Bearer ctl-secret"}
		srv.waitReady(t)
		eventually(t, 30*time.Second, "the view to see both jobs", func() bool {
			_, c1 := srv.getJob(t, done.String())
			_, c2 := srv.getJob(t, later.String())
			return c1 == 200 && c2 == 200
		})
		for _, path := range []string{"/jobs/" + later.String() + "/cancel", "/jobs/" + later.String() + "/retry", "/groups/" + group + "/pause", "/groups/" + group + "/resume"} {
			resp, body := srv.do(t, "POST", path, "")
			wantJSONError(t, "POST "+path+" without token", resp, body, 401)
		}
		resp, body := srv.do(t, "POST", "/jobs/nope-"+sfx+"/cancel", "", auth...)
		wantJSONError(t, "cancel of an unknown job", resp, body, 404)
		eventually(t, 30*time.Second, "the view to see the DONE", func() bool {
			j, _ := srv.getJob(t, done.String())
			return j.Status == "DONE"
		})
		resp, body = srv.do(t, "POST", "/jobs/"+done.String()+"/cancel", "", auth...)
		wantJSONError(t, "cancel of a DONE job", resp, body, 409)
		resp, body = srv.do(t, "POST", "/jobs/"+later.String()+"/retry", "", auth...)
		wantJSONError(t, "retry of a NEW job", resp, body, 409)

		resp, body = srv.do(t, "POST", "/jobs/"+later.String()+"/cancel", "", auth...)
		if resp.StatusCode != 202 {
			t.Fatalf("cancel: %d %s", resp.StatusCode, body)
		}
		consume()
		eventually(t, 30*time.Second, "the cancelled job to show CANCELED", func() bool {
			j, _ := srv.getJob(t, later.String())
			return j.Status == "CANCELED"
		})
		resp, body = srv.do(t, "POST", "/jobs/"+later.String()+"/retry", "", auth...)
		var ans struct {
			Run int `json:"run"`
		}
		if resp.StatusCode != 202 || json.Unmarshal(body, &ans) != nil || ans.Run != 1 {
			t.Fatalf("retry: %d %s", resp.StatusCode, body)
		}
		consume()
		eventually(t, 30*time.Second, "the retried job to be DONE", func() bool {
			j, _ := srv.getJob(t, later.String())
			return j.Status == "DONE"
		})

		paused := func() []string {
			resp, body := srv.do(t, "GET", "/stats", "")
			var s struct {
				PausedGroups []string `json:"paused_groups"`
			}
			if resp.StatusCode != 200 || json.Unmarshal(body, &s) != nil || s.PausedGroups == nil {
				t.Fatalf("GET /stats: %d %s", resp.StatusCode, body)
			}
			return s.PausedGroups
		}
		if resp, body := srv.do(t, "POST", "/groups/"+group+"/pause", "", auth...); resp.StatusCode != 202 {
			t.Fatalf("pause: %d %s", resp.StatusCode, body)
		}
		eventually(t, 10*time.Second, "/stats to list the paused group", func() bool { return slices.Contains(paused(), group) })
		if resp, body := srv.do(t, "POST", "/groups/"+group+"/resume", "", auth...); resp.StatusCode != 202 {
			t.Fatalf("resume: %d %s", resp.StatusCode, body)
		}
		eventually(t, 10*time.Second, "/stats to drop the resumed group", func() bool { return !slices.Contains(paused(), group) })
	})
}
