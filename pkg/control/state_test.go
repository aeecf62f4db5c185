package control

import (
	"slices"
	"testing"

	"github.com/jobctl/jobctl/pkg/job"
)

func TestCancelCoversRunsUpToItsOwn(t *testing.T) {
	s := newState()
	id := job.NumericID(7)
	if s.Cancelled("7", 0) {
		t.Fatal("nothing cancelled yet")
	}
	s.Apply(Record{Kind: KindCancel, JobID: id, Run: 1})
	for run, want := range []bool{true, true, false, false} {
		if got := s.Cancelled("7", run); got != want {
			t.Errorf("cancel of run 1: run %d cancelled = %v, want %v", run, got, want)
		}
	}
	if s.Cancelled("8", 0) {
		t.Error("another job is cancelled")
	}
	// A retry's run 2 cancelled later: the latest record per key wins.
	s.Apply(Record{Kind: KindCancel, JobID: id, Run: 2})
	if !s.Cancelled("7", 2) || s.Cancelled("7", 3) {
		t.Error("cancel of run 2 must cover run 2, not run 3")
	}
}

func TestPauseAndResume(t *testing.T) {
	s := newState()
	s.Apply(Record{Kind: KindPause, Group: "b"})
	s.Apply(Record{Kind: KindPause, Group: "a"})
	if !s.Paused("a") || !s.Paused("b") || s.Paused("c") {
		t.Fatal("pause state wrong")
	}
	if got := s.PausedGroups(); !slices.Equal(got, []string{"a", "b"}) {
		t.Errorf("paused groups %v", got)
	}
	s.Apply(Record{Kind: KindResume, Group: "a"})
	s.Apply(Record{Kind: KindResume, Group: "never-paused"})
	if s.Paused("a") || !s.Paused("b") {
		t.Error("resume of a must leave b paused")
	}
	if got := s.PausedGroups(); !slices.Equal(got, []string{"b"}) {
		t.Errorf("paused groups %v", got)
	}
}

func TestRecordKeysAndChecks(t *testing.T) {
	c := Record{Kind: KindCancel, JobID: job.NumericID(12), Run: 3}
	if c.Key() != "job:12" {
		t.Errorf("cancel key %q", c.Key())
	}
	if p := (Record{Kind: KindPause, Group: "g"}); p.Key() != "group:g" || (Record{Kind: KindResume, Group: "g"}).Key() != p.Key() {
		t.Error("pause and resume of a group must share one key (compaction keeps the latest)")
	}
	for _, bad := range []Record{{Kind: KindCancel}, {Kind: KindCancel, JobID: job.NumericID(1), Run: -1}, {Kind: KindPause}, {Kind: "stop", Group: "g"}} {
		if bad.Check() == nil {
			t.Errorf("%+v passed the check", bad)
		}
	}
	if _, err := decode([]byte(`{"kind":"cancel","job_id":"x-1","run":2}`)); err != nil {
		t.Error(err)
	}
	for _, v := range []string{``, `nope`, `{"kind":"cancel"}`, `{"kind":"explode","group":"g"}`} {
		if _, err := decode([]byte(v)); err == nil {
			t.Errorf("decoded %q", v)
		}
	}
}

func TestCancellableAndRetryable(t *testing.T) {
	for _, st := range job.Statuses {
		finished := st == job.StatusDone || st == job.StatusDead || st == job.StatusCancelled
		if Cancellable(st) == finished {
			t.Errorf("%s: cancellable = %v", st, Cancellable(st))
		}
		want := st == job.StatusFailed || st == job.StatusDead || st == job.StatusCancelled
		if Retryable(st) != want {
			t.Errorf("%s: retryable = %v", st, Retryable(st))
		}
	}
}

func TestTailSignalsChanges(t *testing.T) {
	var seen []Record
	tl := NewTail(nil, "t", TailOptions{OnChange: func(r Record) { seen = append(seen, r) }})
	ch := tl.Changed()
	tl.Apply(Record{Kind: KindPause, Group: "g"})
	select {
	case <-ch:
	default:
		t.Fatal("Changed's channel not closed by a change")
	}
	if !tl.Paused("g") || len(seen) != 1 {
		t.Errorf("state or callback missing: paused %v, seen %v", tl.Paused("g"), seen)
	}
	select {
	case <-tl.Changed():
		t.Fatal("a new channel must stay open until the next change")
	default:
	}
}
