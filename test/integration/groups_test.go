package integration

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/jobctl/jobctl/pkg/job"
	"github.com/jobctl/jobctl/pkg/view"
)

// TestGroupsStatusAndPending: two consumer groups each process every
// job. Group b exists (it has committed offsets) but runs only after
// group a is done: a's pending jobs drop to 0 while b's stay at n, then
// b's drop to 0 too. `jobs get` shows a row per group, `jobs list
// --group` filters by group, and topic describe --pending, GET /stats and
// /metrics carry the pending jobs per group and partition.
func TestGroupsStatusAndPending(t *testing.T) {
	t.Parallel()
	forEachBroker(t, func(t *testing.T, tgt Target) {
		const n = 6
		topic := createTopic(t, tgt, 2)
		a, b := uniqueName(t, "a"), uniqueName(t, "b")
		var lines strings.Builder
		for i := range n {
			fmt.Fprintf(&lines, "{\"job_id\": \"gj-%d\", \"type\": \"mock\"}\n", i)
		}
		if r := jobctlIn(t, tgt, lines.String(), "-t", topic, "produce", "-f", "-"); r.Code != 0 {
			t.Fatalf("produce: %s", r)
		}
		// b exists before it runs: committed at the start of each partition.
		commitOffsetsAsAdmin(t, tgt, b, topic, map[int]int64{0: 0, 1: 0})

		consume := func(group string) {
			t.Helper()
			c := jobctlProcess(t, tgt, nil, "consume", "--topic", topic, "-g", group, "--sleep", "0s", "--timeout", "2s", "--processed-log", "", "--commit-interval", "200ms")
			if out, err := c.CombinedOutput(); err != nil {
				t.Fatalf("consume -g %s: %v\n%s", group, err, out)
			}
		}
		pending := func() map[string]int64 {
			t.Helper()
			r := mustJobctl(t, tgt, "topic", "describe", topic, "--pending", "-o", "json")
			var d struct {
				Groups []struct {
					Group      string `json:"group"`
					Pending    *int64 `json:"pending"`
					Partitions []struct {
						Pending *int64 `json:"pending"`
					} `json:"partitions"`
				} `json:"groups"`
			}
			if err := json.Unmarshal([]byte(r.Stdout), &d); err != nil {
				t.Fatalf("describe --pending -o json: %v\n%s", err, r)
			}
			out := map[string]int64{}
			for _, g := range d.Groups {
				if g.Pending == nil {
					t.Fatalf("group %s has no pending count:\n%s", g.Group, r.Stdout)
				}
				var sum int64
				for _, p := range g.Partitions {
					if p.Pending == nil {
						t.Fatalf("a partition of group %s has no pending count:\n%s", g.Group, r.Stdout)
					}
					sum += *p.Pending
				}
				if sum != *g.Pending {
					t.Fatalf("group %s: partitions' pending add up to %d, group says %d", g.Group, sum, *g.Pending)
				}
				out[g.Group] = *g.Pending
			}
			return out
		}
		if got := pending(); got[b] != n {
			t.Fatalf("before any group ran: pending %v, want %s: %d", got, b, n)
		}
		// Without --pending, no pending column and no topic read.
		if r := mustJobctl(t, tgt, "topic", "describe", topic); strings.Contains(r.Stdout, "PENDING") || !strings.Contains(r.Stdout, "RECORD-LAG") {
			t.Fatalf("describe without --pending:\n%s", r.Stdout)
		}

		consume(a)
		if got := pending(); got[a] != 0 || got[b] != n {
			t.Fatalf("after group a ran: pending %v, want %s: 0, %s: %d", got, a, b, n)
		}
		r := mustJobctl(t, tgt, "topic", "describe", topic, "--pending")
		for _, want := range []string{"RECORD-LAG", "PENDING"} {
			if !strings.Contains(r.Stdout, want) {
				t.Fatalf("describe --pending lacks %s:\n%s", want, r.Stdout)
			}
		}
		listed := func(group string) []view.Job {
			t.Helper()
			r := mustJobctl(t, tgt, "-t", topic, "jobs", "list", "--group", group, "--limit", "0", "-o", "json")
			var jobs []view.Job
			if err := json.Unmarshal([]byte(r.Stdout), &jobs); err != nil {
				t.Fatalf("jobs list --group %s: %v\n%s", group, err, r)
			}
			return jobs
		}
		if jobs := listed(a); len(jobs) != n || jobs[0].Status != job.StatusDone {
			t.Fatalf("jobs list --group a: %+v", jobs)
		}
		if jobs := listed(b); len(jobs) != 0 {
			t.Fatalf("jobs list --group b before b ran: %+v", jobs)
		}

		// The server says the same, in /stats and /metrics.
		srv := startServe(t, tgt, topic)
		srv.waitReady(t)
		var stats struct {
			Lag struct {
				Groups []struct {
					Group      string `json:"group"`
					Pending    *int64 `json:"pending"`
					Partitions []struct {
						Partition int    `json:"partition"`
						Pending   *int64 `json:"pending"`
					} `json:"partitions"`
				} `json:"groups"`
			} `json:"lag"`
		}
		resp, body := srv.do(t, "GET", "/stats", "")
		if err := json.Unmarshal(body, &stats); err != nil || resp.StatusCode != 200 {
			t.Fatalf("GET /stats: %d %s", resp.StatusCode, body)
		}
		statsPending := map[string]int64{}
		for _, g := range stats.Lag.Groups {
			if g.Pending == nil {
				t.Fatalf("GET /stats: group %s without pending: %s", g.Group, body)
			}
			statsPending[g.Group] = *g.Pending
		}
		if statsPending[a] != 0 || statsPending[b] != n {
			t.Fatalf("GET /stats pending %v, want %s: 0, %s: %d", statsPending, a, b, n)
		}
		_, body = srv.do(t, "GET", "/metrics", "")
		for _, want := range []string{
			`jobctl_pending_jobs{group="` + a + `",partition="0"} 0`,
			`jobctl_pending_jobs{group="` + a + `",partition="1"} 0`,
			`jobctl_pending_jobs{group="` + b + `",partition="`,
		} {
			if !strings.Contains(string(body), want) {
				t.Fatalf("/metrics lacks %s", want)
			}
		}
		srv.stop(t)

		consume(b)
		if got := pending(); got[a] != 0 || got[b] != 0 {
			t.Fatalf("after group b ran: pending %v, want 0 for both", got)
		}
		for i := range n {
			id := fmt.Sprintf("gj-%d", i)
			r := mustJobctl(t, tgt, "-t", topic, "jobs", "get", id, "-o", "json")
			var j view.Job
			if err := json.Unmarshal([]byte(r.Stdout), &j); err != nil {
				t.Fatalf("jobs get %s: %v\n%s", id, err, r)
			}
			rows := map[string]job.Status{}
			for _, g := range j.Groups {
				rows[g.Group] = g.Status
			}
			if j.Status != job.StatusDone || len(j.Groups) != 2 || rows[a] != job.StatusDone || rows[b] != job.StatusDone {
				t.Fatalf("jobs get %s: status %s, groups %+v", id, j.Status, j.Groups)
			}
		}
		r = mustJobctl(t, tgt, "-t", topic, "jobs", "get", "gj-0")
		for _, want := range []string{"GROUP", a, b} {
			if !strings.Contains(r.Stdout, want) {
				t.Fatalf("jobs get table lacks %s:\n%s", want, r.Stdout)
			}
		}
		if jobs := listed(b); len(jobs) != n || jobs[0].Status != job.StatusDone {
			t.Fatalf("jobs list --group b: %+v", jobs)
		}
	})
}
