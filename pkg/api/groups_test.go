package api

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/jobctl/jobctl/pkg/job"
	"github.com/jobctl/jobctl/pkg/view"
)

type twoGroupsLag struct{}

func (twoGroupsLag) GroupLag(context.Context) ([]GroupLag, error) {
	three, zero := int64(3), int64(0)
	return []GroupLag{
		{Group: "a", Lag: 0, Partitions: []PartitionLag{{Partition: 0, Committed: 10, EndOffset: 10, Lag: &zero}}},
		{Group: "b", Lag: 3, Partitions: []PartitionLag{{Partition: 0, Committed: 7, EndOffset: 10, Lag: &three}}},
	}, nil
}

// TestGroupsInAPI: GET /jobs/{id} has a row per group, GET /jobs?group=
// filters and shows that group's status, /stats and /metrics carry the
// pending jobs per group and partition.
func TestGroupsInAPI(t *testing.T) {
	f := newFixture(t, func(o *Options) { o.Lag = twoGroupsLag{} })
	at := time.Now()
	for _, id := range []int64{1, 2} {
		f.store.Apply(job.Event{JobID: job.NumericID(id), Status: job.StatusNew, UpdatedAt: at}, view.Record{})
		f.store.Apply(job.Event{JobID: job.NumericID(id), Status: job.StatusDone, Group: "a", Worker: "wa", Attempt: 1, UpdatedAt: at.Add(time.Second)}, view.Record{})
	}
	f.store.Apply(job.Event{JobID: job.NumericID(1), Status: job.StatusRunning, Group: "b", Worker: "wb", Attempt: 1, UpdatedAt: at.Add(2 * time.Second)}, view.Record{})

	resp, body := f.do(t, "GET", "/jobs/1", "")
	var j view.Job
	if err := json.Unmarshal(body, &j); err != nil || resp.StatusCode != 200 {
		t.Fatalf("GET /jobs/1: %d %s", resp.StatusCode, body)
	}
	if j.Status != job.StatusRunning || len(j.Groups) != 2 || j.Groups[0].Group != "a" || j.Groups[0].Status != job.StatusDone ||
		j.Groups[1].Group != "b" || j.Groups[1].Status != job.StatusRunning || j.Groups[1].Worker != "wb" {
		t.Fatalf("GET /jobs/1 = %s", body)
	}

	var list []view.Job
	_, body = f.do(t, "GET", "/jobs?group=b", "")
	if err := json.Unmarshal(body, &list); err != nil || len(list) != 1 || list[0].ID.String() != "1" || list[0].Status != job.StatusRunning {
		t.Fatalf("GET /jobs?group=b = %s", body)
	}
	_, body = f.do(t, "GET", "/jobs?group=a&status=DONE", "")
	if err := json.Unmarshal(body, &list); err != nil || len(list) != 2 || list[0].Status != job.StatusDone {
		t.Fatalf("GET /jobs?group=a&status=DONE = %s", body)
	}

	_, body = f.do(t, "GET", "/stats", "")
	var st Stats
	if err := json.Unmarshal(body, &st); err != nil {
		t.Fatal(err)
	}
	pending := map[string]int64{}
	for _, g := range st.Lag.Groups {
		if g.Pending == nil || g.Partitions[0].Pending == nil {
			t.Fatalf("group %s without pending: %s", g.Group, body)
		}
		pending[g.Group] = *g.Partitions[0].Pending
	}
	// a finished both; b runs job 1 and has not touched job 2 (it still
	// has records to read).
	if pending["a"] != 0 || pending["b"] != 2 {
		t.Fatalf("pending = %v, want a:0 b:2", pending)
	}
	_, body = f.do(t, "GET", "/metrics", "")
	for _, want := range []string{`jobctl_pending_jobs{group="a",partition="0"} 0`, `jobctl_pending_jobs{group="b",partition="0"} 2`} {
		if !strings.Contains(string(body), want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}
