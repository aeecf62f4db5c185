package api

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/jobctl/jobctl/pkg/job"
	"github.com/jobctl/jobctl/pkg/view"
)

// TestStatsDurations: /stats carries the view's run durations per type.
func TestStatsDurations(t *testing.T) {
	f := newFixture(t, nil)
	start := time.Now().Add(-time.Minute)
	for i, d := range []time.Duration{100 * time.Millisecond, 200 * time.Millisecond, 2 * time.Second} {
		id := job.NumericID(int64(i + 1))
		f.store.Apply(job.Event{JobID: id, Type: "resize", Status: job.StatusNew, UpdatedAt: start}, view.Record{})
		f.store.Apply(job.Event{JobID: id, Type: "resize", Status: job.StatusRunning, Group: "g", Run: 0, Attempt: 1, UpdatedAt: start}, view.Record{})
		f.store.Apply(job.Event{JobID: id, Type: "resize", Status: job.StatusDone, Group: "g", Run: 0, Attempt: 1, UpdatedAt: start.Add(d)}, view.Record{})
	}
	resp, body := f.do(t, "GET", "/stats", "")
	var st struct {
		Durations view.Durations `json:"durations"`
	}
	if err := json.Unmarshal(body, &st); err != nil || resp.StatusCode != 200 {
		t.Fatalf("GET /stats: %d %s", resp.StatusCode, body)
	}
	want := f.store.Durations()
	d := st.Durations
	if d.BucketSeconds != want.BucketSeconds || !d.End.Equal(want.End) || len(d.Types) != 1 || d.Types[0].Type != "resize" || d.Types[0].Count != 3 ||
		d.Types[0].P50Ms <= 0 || len(d.Types[0].Buckets) != len(want.Types[0].Buckets) {
		t.Fatalf("durations in /stats = %+v, want %+v", d, want)
	}
}

// TestStatsDurationsEmpty: no finished run is an empty list, not null.
func TestStatsDurationsEmpty(t *testing.T) {
	f := newFixture(t, nil)
	_, body := f.do(t, "GET", "/stats", "")
	var st map[string]json.RawMessage
	if err := json.Unmarshal(body, &st); err != nil {
		t.Fatal(err)
	}
	var d map[string]json.RawMessage
	if err := json.Unmarshal(st["durations"], &d); err != nil || string(d["types"]) != "[]" {
		t.Fatalf("durations = %s", st["durations"])
	}
}
