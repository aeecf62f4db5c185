package integration

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jobctl/jobctl/pkg/job"
)

// TestRoutingAndResults: one consume with two exec routes runs each type
// through its own script; a type without a route ends DEAD at once with
// the reason (and a dead letter), never DONE; an exec job's JSON stdout is
// its result in the DONE event, `jobs get -o json` and GET /jobs/{id};
// stdout beyond 64 KiB is cut with a note and the job is still DONE; the
// summary line counts cancelled and scheduled jobs.
func TestRoutingAndResults(t *testing.T) {
	forEachBroker(t, func(t *testing.T, tgt Target) {
		topic := createTopic(t, tgt, 2)
		dir := t.TempDir()
		mail := filepath.Join(dir, "mail.sh")
		resize := filepath.Join(dir, "resize.sh")
		if err := os.WriteFile(mail, []byte("#!/bin/sh\necho mail > \""+dir+"/$JOB_ID.ran\"\nprintf '{\"sent\": true, \"job\": \"%s\"}\\n' \"$JOB_ID\"\n"), 0o755); err != nil {
			t.Fatal(err)
		}
		// resize prints 100 000 bytes when the payload asks for it.
		if err := os.WriteFile(resize, []byte("#!/bin/sh\necho resize > \""+dir+"/$JOB_ID.ran\"\nif grep -q big; then head -c 100000 /dev/zero | tr '\\0' x; else echo resized; fi\n"), 0o755); err != nil {
			t.Fatal(err)
		}
		sfx := uniqueName(t, "")
		mk := func(id, typ, payload string) job.Event {
			return job.Event{JobID: mustID(t, id+sfx), Status: job.StatusNew, Type: typ, Payload: json.RawMessage(payload), CreatedAt: time.Now().UTC()}
		}
		m1, r1, big, fax := mk("m1-", "email", `{"to":"a@b.c"}`), mk("r1-", "resize", `{"w":1}`), mk("big-", "resize", `{"size":"big"}`), mk("fax-", "fax", `{}`)
		// A job due in an hour is only recorded SCHEDULED: the summary counts it.
		later := mk("later-", "email", `{}`)
		later.RunAt = time.Now().Add(time.Hour).UTC()
		wkProduce(t, tgt, topic, []job.Event{m1, r1, big, fax, later})

		group := uniqueName(t, "g")
		r := jobctl(t, tgt, "-t", topic, "-g", group, "consume", "--route", "email=exec:"+mail, "--route", "resize=exec:"+resize,
			"--max-attempts", "3", "--timeout", "3s", "--processed-log", "")
		if r.Code != 0 {
			t.Fatal(r)
		}
		if !strings.Contains(r.Stderr, "4 attempts (3 done, 0 failed and retried, 1 dead), 0 cancelled, 1 scheduled") {
			t.Errorf("summary line: %s", r.Stderr)
		}
		id := func(e job.Event) string { return e.JobID.String() }
		for e, want := range map[string]string{id(m1): "mail", id(r1): "resize", id(big): "resize"} {
			if got, _ := os.ReadFile(filepath.Join(dir, e+".ran")); strings.TrimSpace(string(got)) != want {
				t.Errorf("job %s ran %q, want the %s route", e, got, want)
			}
		}
		if _, err := os.Stat(filepath.Join(dir, id(fax)+".ran")); err == nil {
			t.Errorf("the unrouted fax job ran a handler")
		}

		l := wkIndex(t, readTopic(t, tgt, topic))
		if d := l.dones[id(m1)]; len(d) != 1 || string(d[0].Event.Result) != `{"sent":true,"job":"`+id(m1)+`"}` {
			t.Errorf("email job: DONE events %+v, want one with the JSON result", d)
		}
		if d := l.dones[id(r1)]; len(d) != 1 || string(d[0].Event.Result) != `"resized"` {
			t.Errorf("resize job: DONE events %+v, want one with the string result", d)
		}
		var bigOut string
		if d := l.dones[id(big)]; len(d) != 1 || len(d[0].Event.Result) > 64<<10 || json.Unmarshal(d[0].Event.Result, &bigOut) != nil ||
			strings.Count(bigOut, "x") < 65000 || !strings.HasSuffix(bigOut, fmt.Sprintf("x\n[truncated: the first %d of 100000 bytes]", strings.Count(bigOut, "x"))) {
			t.Errorf("oversized stdout: %d DONE, result %.40q...%q, want the first 64 KiB and a note", len(d), bigOut, bigOut[max(0, len(bigOut)-60):])
		}
		if len(l.dones[id(fax)]) != 0 || len(l.failed[id(fax)]) != 0 {
			t.Errorf("the unrouted job must not be DONE or retried: %+v %+v", l.dones[id(fax)], l.failed[id(fax)])
		}
		if d := l.dead[id(fax)]; len(d) != 1 || d[0].Event.Attempt != 1 || d[0].Event.Error != `no handler for job type "fax"` {
			t.Errorf("unrouted job: DEAD events %+v, want one at attempt 1 naming the type", d)
		}
		var letters []struct {
			JobID  string `json:"job_id"`
			Reason string `json:"reason"`
		}
		dl := mustJobctl(t, tgt, "dlq", "list", "--topic", topic, "-o", "json")
		if err := json.Unmarshal([]byte(dl.Stdout), &letters); err != nil || len(letters) != 1 || letters[0].JobID != id(fax) || letters[0].Reason != `no handler for job type "fax"` {
			t.Errorf("want one dead letter naming the type: %s", dl)
		}

		out := mustJobctl(t, tgt, "-t", topic, "-o", "json", "jobs", "get", id(m1))
		var got struct {
			Status string          `json:"status"`
			Result json.RawMessage `json:"result"`
		}
		var compact bytes.Buffer
		if err := json.Unmarshal([]byte(out.Stdout), &got); err != nil || got.Status != "DONE" || json.Compact(&compact, got.Result) != nil || compact.String() != `{"sent":true,"job":"`+id(m1)+`"}` {
			t.Errorf("jobs get -o json: %s", out.Stdout)
		}
		if text := mustJobctl(t, tgt, "-t", topic, "jobs", "get", id(r1)).Stdout; !strings.Contains(text, `"resized"`) {
			t.Errorf("jobs get should show the result: %s", text)
		}

		srv := startServe(t, tgt, topic)
		wkWaitUntil(t, 60*time.Second, "GET /jobs/{id} to show the result", func() bool {
			_, b := srv.do(t, "GET", "/jobs/"+id(m1), "")
			return strings.Contains(string(b), `"result":{"sent":true,"job":"`+id(m1)+`"}`)
		})
	})
}

// TestRoutingConfigErrors: a bad route, from the flag or the environment,
// stops consume before it joins, naming the key and the spec.
func TestRoutingConfigErrors(t *testing.T) {
	tgt := targets[0]
	r := jobctl(t, tgt, "-t", "nope", "-g", "g", "consume", "--route", "email=run:./x.sh")
	if r.Code != 2 || !strings.Contains(r.Stderr, "handler.routes") || !strings.Contains(r.Stderr, `"email=run:./x.sh": unknown handler "run"`) {
		t.Errorf("bad --route: %s", r)
	}
	t.Setenv("JOBCTL_HANDLER_ROUTES", "report=sleep:soon")
	r = jobctl(t, tgt, "-t", "nope", "-g", "g", "consume")
	if r.Code != 2 || !strings.Contains(r.Stderr, "JOBCTL_HANDLER_ROUTES") && !strings.Contains(r.Stderr, "handler.routes") || !strings.Contains(r.Stderr, `"report=sleep:soon"`) {
		t.Errorf("bad JOBCTL_HANDLER_ROUTES: %s", r)
	}
}
