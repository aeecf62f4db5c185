package view

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/jobctl/jobctl/pkg/job"
)

func TestViewKeepsTheLatestResultBounded(t *testing.T) {
	v := New(Options{})
	id := job.NumericID(7)
	v.Apply(job.Event{JobID: id, Status: job.StatusNew, Type: "t", CreatedAt: t0, UpdatedAt: t0}, Record{})
	v.Apply(job.Event{JobID: id, Status: job.StatusDone, Attempt: 1, UpdatedAt: t0.Add(time.Second), Result: json.RawMessage(`{"n":1}`)}, Record{})
	if j, _ := v.Get("7"); string(j.Result) != `{"n":1}` {
		t.Fatalf("result %s", j.Result)
	}
	// A later run's DONE replaces it; a DONE without a result keeps it.
	v.Apply(job.Event{JobID: id, Status: job.StatusDone, Run: 1, Attempt: 1, UpdatedAt: t0.Add(2 * time.Second), Result: json.RawMessage(`"second"`)}, Record{})
	v.Apply(job.Event{JobID: id, Status: job.StatusDone, Run: 1, Attempt: 1, Worker: "other", UpdatedAt: t0.Add(3 * time.Second)}, Record{})
	if j, _ := v.Get("7"); string(j.Result) != `"second"` {
		t.Fatalf("result %s, want the latest", j.Result)
	}
	huge, _ := json.Marshal(strings.Repeat("x", ResultLimit))
	v.Apply(job.Event{JobID: id, Status: job.StatusDone, Run: 2, Attempt: 1, UpdatedAt: t0.Add(4 * time.Second), Result: huge}, Record{})
	j, _ := v.Get("7")
	var note string
	if err := json.Unmarshal(j.Result, &note); err != nil || !strings.Contains(note, "more than the 65536 the view keeps") {
		t.Fatalf("an oversized result: %.100s (%v)", j.Result, err)
	}
}
