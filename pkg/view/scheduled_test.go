package view

import (
	"testing"
	"time"

	"github.com/jobctl/jobctl/pkg/job"
)

// TestScheduledJob: a delayed job shows SCHEDULED (and is counted so)
// from its group's SCHEDULED event until the release, then NEW, then
// DONE; a late copy of the submitted NEW does not undo SCHEDULED. Its
// run_at is part of the job.
func TestScheduledJob(t *testing.T) {
	v := New(Options{})
	t0 := time.Date(2026, 11, 26, 3, 0, 0, 0, time.UTC)
	runAt := t0.Add(time.Minute)
	id := job.NumericID(42)
	submitted := job.Event{JobID: id, Status: job.StatusNew, UpdatedAt: t0, RunAt: runAt}
	scheduled := job.Event{JobID: id, Status: job.StatusScheduled, UpdatedAt: t0.Add(time.Second), Group: "g", RunAt: runAt}
	released := submitted
	released.Group, released.UpdatedAt = "g", runAt
	done := job.Event{JobID: id, Status: job.StatusDone, Attempt: 1, UpdatedAt: runAt.Add(time.Second), Group: "g"}

	check := func(want job.Status) {
		t.Helper()
		j, ok := v.Get("42")
		if !ok || j.Status != want {
			t.Fatalf("status %s, want %s", j.Status, want)
		}
		if !j.RunAt.Equal(runAt) {
			t.Fatalf("run_at %s, want %s", j.RunAt, runAt)
		}
		c := v.Counts()
		if c.Total != 1 || c.ByStatus[want] != 1 {
			t.Fatalf("counts %+v, want one %s", c, want)
		}
	}
	v.Apply(submitted, Record{})
	check(job.StatusNew)
	v.Apply(scheduled, Record{})
	check(job.StatusScheduled)
	late := submitted
	late.UpdatedAt = t0.Add(500 * time.Millisecond) // a duplicate read late
	v.Apply(late, Record{Partition: 1})
	check(job.StatusScheduled)
	v.Apply(released, Record{})
	check(job.StatusNew)
	v.Apply(done, Record{})
	check(job.StatusDone)
}
