package integration

import (
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jobctl/jobctl/pkg/job"
	"github.com/jobctl/jobctl/pkg/ledger"
	"github.com/jobctl/jobctl/pkg/schedule"
)

const leadingLog = "leading the schedulers"

// scheduledTicks reads the job topic and returns, for the schedule name,
// the NEW records per tick (Unix seconds) and the DONE events of group
// per job id.
func scheduledTicks(t *testing.T, tgt Target, topic, name, group string) (news map[int64]int, dones map[string]int) {
	t.Helper()
	news, dones = map[int64]int{}, map[string]int{}
	prefix := "schedule:" + name + ":"
	for _, m := range readTopic(t, tgt, topic) {
		e, err := ledger.Decode(m)
		if err != nil || !strings.HasPrefix(e.JobID.String(), prefix) {
			continue
		}
		switch {
		case e.Status == job.StatusNew:
			tick, err := strconv.ParseInt(strings.TrimPrefix(e.JobID.String(), prefix), 10, 64)
			if err != nil {
				t.Fatalf("job id %q: not schedule:<name>:<unix>", e.JobID)
			}
			news[tick]++
			if e.Type != "tick" || string(e.Payload) != `{"n":1}` {
				t.Errorf("job %s: type %q payload %s, want the schedule's", e.JobID, e.Type, e.Payload)
			}
		case e.Status == job.StatusDone && e.Group == group:
			dones[e.JobID.String()]++
		}
	}
	return news, dones
}

// leaders returns the indexes of the processes whose last scheduler
// message says they lead.
func leaders(procs []*wkProc) []int {
	var out []int
	for i, p := range procs {
		s := p.stderr.String()
		if k := strings.LastIndex(s, leadingLog); k >= 0 && !strings.Contains(s[k:], "no longer leading") {
			out = append(out, i)
		}
	}
	return out
}

// TestScheduleFailoverPauseResumeDelete: a per-second schedule, three
// consumers running the scheduler, the leader SIGKILLed: one job id per
// tick and no tick missed over the window; pause stops the ticks (and
// resume does not make them up), resume restarts them, delete ends them.
func TestScheduleFailoverPauseResumeDelete(t *testing.T) {
	forEachBroker(t, func(t *testing.T, tgt Target) {
		topic := createTopic(t, tgt, 2)
		group := uniqueName(t, "g")
		name := "tick"
		mustJobctl(t, tgt, "schedule", "create", name, "-t", topic, "--cron", "*/1 * * * * *", "--catch-up", "all",
			"--type", "tick", "--payload", `{"n":1}`)
		args := []string{"consume", "-t", topic, "-g", group, "--timeout", "0", "--session-timeout", "6s", "--sleep", "1ms", "--processed-log", ""}
		var procs []*wkProc
		for range 3 {
			procs = append(procs, wkStart(t, tgt, args...))
		}
		off := wkStart(t, tgt, append(args, "--scheduler=false")...)

		var leader int
		wkWaitUntil(t, 60*time.Second, "a scheduler to lead", func() bool {
			l := leaders(procs)
			if len(l) == 1 {
				leader = l[0]
			}
			return len(l) == 1
		})
		time.Sleep(4 * time.Second)
		if err := procs[leader].cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		killedAt := time.Now()
		procs[leader].wait(t, 10*time.Second)
		rest := append(append([]*wkProc{}, procs[:leader]...), procs[leader+1:]...)
		wkWaitUntil(t, 45*time.Second, "another scheduler to lead", func() bool { return len(leaders(rest)) == 1 })
		t.Logf("process %d led and was SIGKILLed; the next leader took over after %s", leader, time.Since(killedAt).Round(100*time.Millisecond))
		time.Sleep(3 * time.Second)

		pausedAt := time.Now()
		mustJobctl(t, tgt, "schedule", "pause", name, "-t", topic)
		time.Sleep(3 * time.Second)
		resumedAt := time.Now()
		mustJobctl(t, tgt, "schedule", "resume", name, "-t", topic)
		time.Sleep(3 * time.Second)
		deletedAt := time.Now()
		mustJobctl(t, tgt, "schedule", "delete", name, "-t", topic)
		time.Sleep(3 * time.Second)

		news, dones := scheduledTicks(t, tgt, topic, name, group)
		var ticks []int64
		for tick := range news {
			ticks = append(ticks, tick)
		}
		sort.Slice(ticks, func(i, j int) bool { return ticks[i] < ticks[j] })
		if len(ticks) == 0 {
			t.Fatal("no scheduled job was written")
		}
		// Window 1: from the first tick to the pause; window 2: from the
		// resume to the delete. A tick within a second of the pause, the
		// resume or the delete may go either way.
		missed, duplicates := 0, 0
		first := ticks[0]
		check := func(from, to int64) {
			for s := from; s <= to; s++ {
				if news[s] == 0 {
					missed++
					t.Errorf("tick %d (%s) has no job", s, time.Unix(s, 0).UTC().Format(time.TimeOnly))
				}
			}
		}
		check(first, pausedAt.Unix()-1)
		check(resumedAt.Unix()+2, deletedAt.Unix()-1)
		windowTicks := int(pausedAt.Unix()-first) + int(deletedAt.Unix()-1-(resumedAt.Unix()+2)+1)
		for _, s := range ticks {
			if s > pausedAt.Unix()+1 && s <= resumedAt.Unix() {
				t.Errorf("tick %d fired while the schedule was paused (%s to %s)", s, pausedAt.Format(time.TimeOnly), resumedAt.Format(time.TimeOnly))
			}
			if s > deletedAt.Unix()+1 {
				t.Errorf("tick %d fired after the schedule was deleted at %s", s, deletedAt.Format(time.TimeOnly))
			}
			id := schedule.JobID(name, time.Unix(s, 0)).String()
			if dones[id] > 1 {
				duplicates++
				t.Errorf("job %s ran %d times in group %s", id, dones[id], group)
			}
		}
		dupNews := 0
		for _, n := range news {
			dupNews += n - 1
		}
		// The new leader went on from the stored state: at most the ticks
		// in flight at the kill were written again (same id, run once).
		if dupNews > 2 {
			t.Errorf("%d NEW records repeat a tick's job id: the next leader did not go on from the stored state", dupNews)
		}
		jobs := 0
		for s := range news {
			if s >= first && s <= pausedAt.Unix()-1 || s >= resumedAt.Unix()+2 && s <= deletedAt.Unix()-1 {
				jobs++
			}
		}
		if strings.Contains(off.stderr.String(), "component=scheduler") {
			t.Errorf("the consumer with --scheduler=false ran a scheduler:\n%s", off.stderr.String())
		}
		t.Logf("over the windows %d ticks, %d jobs (%d more at the windows' edges), %d NEW records written again for a tick after the SIGKILL (one id, run once)",
			windowTicks, jobs, len(ticks)-jobs, dupNews)
		fmt.Printf("schedule: target=%s ticks=%d jobs=%d missed=%d duplicates=%d\n", tgt.Name, windowTicks, jobs, missed, duplicates)
	})
}

// TestScheduleCLI: create, list, get, pause, resume and delete, as
// tables and as JSON; bad specs and zones exit 2 naming the problem.
func TestScheduleCLI(t *testing.T) {
	forEachBroker(t, func(t *testing.T, tgt Target) {
		topic := createTopic(t, tgt, 1)
		r := jobctl(t, tgt, "schedule", "list", "-t", topic, "-o", "json")
		if r.Code != 0 || strings.TrimSpace(r.Stdout) != "[]" {
			t.Fatalf("list before any schedule: %s", r)
		}
		r = mustJobctl(t, tgt, "schedule", "create", "nightly", "-t", topic, "--cron", "0 2 * * *", "--tz", "Europe/Berlin", "--type", "report", "--payload", `{"a":1}`)
		if !strings.Contains(r.Stdout, "schedule nightly saved; next run") {
			t.Fatalf("create: %s", r)
		}
		mustJobctl(t, tgt, "schedule", "create", "every", "-t", topic, "--cron", "@every 10s", "--catch-up", "skip")
		r = mustJobctl(t, tgt, "schedule", "list", "-t", topic)
		for _, want := range []string{"NAME", "CRON", "TZ", "TYPE", "PAUSED", "NEXT_RUN", "nightly", "0 2 * * *", "Europe/Berlin", "report", "every", "@every 10s", "skip"} {
			if !strings.Contains(r.Stdout, want) {
				t.Errorf("list table lacks %q:\n%s", want, r.Stdout)
			}
		}
		var ls []schedule.Listed
		r = mustJobctl(t, tgt, "schedule", "list", "-t", topic, "-o", "json")
		if err := json.Unmarshal([]byte(r.Stdout), &ls); err != nil || len(ls) != 2 || ls[0].Name != "every" || ls[1].Name != "nightly" {
			t.Fatalf("list -o json: %v\n%s", err, r.Stdout)
		}
		n := ls[1]
		if n.CatchUp != schedule.CatchUpOne || compact(n.Payload) != `{"a":1}` || n.NextRun.IsZero() || n.CreatedAt.IsZero() ||
			n.NextRun.In(mustLoc(t, "Europe/Berlin")).Hour() != 2 {
			t.Errorf("nightly: %+v", n)
		}
		r = mustJobctl(t, tgt, "schedule", "get", "nightly", "-t", topic)
		if !strings.Contains(r.Stdout, "Cron:       0 2 * * *") || !strings.Contains(r.Stdout, "Paused:     false") {
			t.Errorf("get: %s", r)
		}
		mustJobctl(t, tgt, "schedule", "pause", "nightly", "-t", topic)
		var got schedule.Listed
		r = mustJobctl(t, tgt, "schedule", "get", "nightly", "-t", topic, "-o", "json")
		if err := json.Unmarshal([]byte(r.Stdout), &got); err != nil || !got.Paused || !got.NextRun.IsZero() || !got.CreatedAt.Equal(n.CreatedAt) {
			t.Errorf("after pause: %v %s", err, r.Stdout)
		}
		r = mustJobctl(t, tgt, "schedule", "resume", "nightly", "-t", topic, "-o", "json")
		if err := json.Unmarshal([]byte(r.Stdout), &got); err != nil || got.Paused || got.NextRun.IsZero() {
			t.Errorf("after resume: %v %s", err, r.Stdout)
		}
		r = mustJobctl(t, tgt, "schedule", "delete", "every", "-t", topic)
		if !strings.Contains(r.Stdout, "schedule every deleted") {
			t.Errorf("delete: %s", r)
		}
		r = mustJobctl(t, tgt, "schedule", "list", "-t", topic, "-o", "json")
		if err := json.Unmarshal([]byte(r.Stdout), &ls); err != nil || len(ls) != 1 || ls[0].Name != "nightly" {
			t.Fatalf("list after delete: %v\n%s", err, r.Stdout)
		}
		for _, c := range []struct {
			args []string
			code int
			want string
		}{
			{[]string{"create", "bad", "--cron", "* * *"}, 2, `bad cron spec "* * *"`},
			{[]string{"create", "bad", "--cron", "*/1 * * * * * *"}, 2, "bad cron spec"},
			{[]string{"create", "bad", "--cron", "* * * * *", "--tz", "Nowhere/City"}, 2, `unknown time zone "Nowhere/City"`},
			{[]string{"create", "bad", "--cron", "* * * * *", "--catch-up", "most"}, 2, "want skip, one or all"},
			{[]string{"create", "bad", "--cron", "* * * * *", "--payload", "{"}, 2, "--payload is not valid JSON"},
			{[]string{"create", "bad"}, 2, "--cron is required"},
			{[]string{"get", "every"}, 1, `schedule "every": no such schedule`},
			{[]string{"delete", "every"}, 1, "no such schedule"},
			{[]string{"pause", "every"}, 1, "no such schedule"},
		} {
			r := jobctl(t, tgt, append(append([]string{"schedule"}, c.args...), "-t", topic)...)
			if r.Code != c.code || !strings.Contains(r.Stderr, c.want) {
				t.Errorf("schedule %v: want exit %d naming %q; got %s", c.args, c.code, c.want, r)
			}
		}
	})
}

func mustLoc(t *testing.T, name string) *time.Location {
	t.Helper()
	l, err := time.LoadLocation(name)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// TestScheduleAPI: the same verbs over HTTP; writes need the token when
// api.token is set, errors are JSON.
func TestScheduleAPI(t *testing.T) {
	forEachBroker(t, func(t *testing.T, tgt Target) {
		topic := createTopic(t, tgt, 1)
		const token = "s3cret"
		srv := startServe(t, tgt, topic, "JOBCTL_API_TOKEN="+token)
		auth := []string{"Authorization", "Bearer " + token}

		resp, body := srv.do(t, "GET", "/schedules", "")
		if resp.StatusCode != 200 || strings.TrimSpace(string(body)) != `{"schedules":[]}` {
			t.Fatalf("GET /schedules before any: %d %s", resp.StatusCode, body)
		}
		create := `{"name": "api-1", "cron": "*/5 * * * *", "type": "cleanup", "payload": {"x": 1}, "catch_up": "skip"}`
		resp, body = srv.do(t, "POST", "/schedules", create)
		wantJSONError(t, "POST /schedules without the token", resp, body, 401)
		for _, c := range []struct {
			body, want string
		}{
			{`{"name": "bad", "cron": "* * *"}`, "bad cron spec"},
			{`{"name": "bad", "cron": "* * * * *", "tz": "Nowhere/City"}`, "unknown time zone"},
			{`{"name": "bad", "cron": "* * * * *", "catch_up": "most"}`, "catch_up"},
			{`{"name": "bad", "cron": "* * * * *", "typo": 1}`, "typo"},
			{`{"cron": "* * * * *"}`, "needs a name"},
		} {
			resp, body = srv.do(t, "POST", "/schedules", c.body, auth...)
			wantJSONError(t, "POST /schedules "+c.body, resp, body, 400)
			if !strings.Contains(string(body), c.want) {
				t.Errorf("POST /schedules %s: %s does not name %q", c.body, body, c.want)
			}
		}
		var got schedule.Listed
		resp, body = srv.do(t, "POST", "/schedules", create, auth...)
		if resp.StatusCode != 200 || json.Unmarshal(body, &got) != nil || got.Name != "api-1" || got.CatchUp != schedule.CatchUpSkip ||
			got.NextRun.IsZero() || got.NextRun.Minute()%5 != 0 || compact(got.Payload) != `{"x":1}` {
			t.Fatalf("POST /schedules: %d %s", resp.StatusCode, body)
		}
		resp, body = srv.do(t, "GET", "/schedules/api-1", "")
		if resp.StatusCode != 200 || json.Unmarshal(body, &got) != nil || got.Cron != "*/5 * * * *" || got.Type != "cleanup" {
			t.Fatalf("GET /schedules/api-1: %d %s", resp.StatusCode, body)
		}
		resp, body = srv.do(t, "GET", "/schedules/nope", "")
		wantJSONError(t, "GET /schedules/nope", resp, body, 404)

		for _, path := range []string{"/schedules/api-1/pause", "/schedules/api-1/resume"} {
			resp, body = srv.do(t, "POST", path, "")
			wantJSONError(t, "POST "+path+" without the token", resp, body, 401)
		}
		resp, body = srv.do(t, "POST", "/schedules/api-1/pause", "", auth...)
		got = schedule.Listed{}
		if resp.StatusCode != 200 || json.Unmarshal(body, &got) != nil || !got.Paused || !got.NextRun.IsZero() {
			t.Fatalf("pause: %d %s", resp.StatusCode, body)
		}
		r := mustJobctl(t, tgt, "schedule", "get", "api-1", "-t", topic)
		if !strings.Contains(r.Stdout, "Paused:     true") {
			t.Errorf("the CLI does not see the pause: %s", r.Stdout)
		}
		resp, body = srv.do(t, "POST", "/schedules/api-1/resume", "", auth...)
		if resp.StatusCode != 200 || json.Unmarshal(body, &got) != nil || got.Paused {
			t.Fatalf("resume: %d %s", resp.StatusCode, body)
		}
		resp, body = srv.do(t, "POST", "/schedules/nope/pause", "", auth...)
		wantJSONError(t, "pause of a missing schedule", resp, body, 404)

		var list struct {
			Schedules []schedule.Listed `json:"schedules"`
		}
		resp, body = srv.do(t, "GET", "/schedules", "")
		if resp.StatusCode != 200 || json.Unmarshal(body, &list) != nil || len(list.Schedules) != 1 || list.Schedules[0].Name != "api-1" {
			t.Fatalf("GET /schedules: %d %s", resp.StatusCode, body)
		}
		resp, body = srv.do(t, "DELETE", "/schedules/api-1", "")
		wantJSONError(t, "DELETE without the token", resp, body, 401)
		resp, body = srv.do(t, "DELETE", "/schedules/api-1", "", auth...)
		if resp.StatusCode != 200 || strings.TrimSpace(string(body)) != `{"deleted":"api-1"}` {
			t.Fatalf("DELETE: %d %s", resp.StatusCode, body)
		}
		resp, body = srv.do(t, "DELETE", "/schedules/api-1", "", auth...)
		wantJSONError(t, "second DELETE", resp, body, 404)
		resp, body = srv.do(t, "GET", "/schedules", "")
		if resp.StatusCode != 200 || strings.TrimSpace(string(body)) != `{"schedules":[]}` {
			t.Fatalf("GET /schedules after delete: %d %s", resp.StatusCode, body)
		}
	})
}
