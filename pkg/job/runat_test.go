package job

import (
	"strings"
	"testing"
	"time"
)

func TestRunAtRoundTrip(t *testing.T) {
	at := time.Date(2026, 11, 26, 3, 4, 5, 600000000, time.UTC)
	e := Event{JobID: NumericID(7), Status: StatusNew, RunAt: at}
	enc, err := e.Encode()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(enc), `"run_at":"2026-11-26T03:04:05.6Z"`) {
		t.Fatalf("encoded: %s", enc)
	}
	got, err := Decode(enc)
	if err != nil {
		t.Fatal(err)
	}
	if !got.RunAt.Equal(at) {
		t.Fatalf("run_at %v, want %v", got.RunAt, at)
	}
	if _, ok := fastParse(enc); !ok {
		t.Fatalf("the fast decoder should take a record with run_at: %s", enc)
	}
}

func TestSubmissionRunAt(t *testing.T) {
	soon := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	e, err := DecodeSubmission([]byte(`{"type": "x", "run_at": "` + soon + `"}`))
	if err != nil || e.RunAt.IsZero() {
		t.Fatalf("a run_at within a year: %+v, %v", e, err)
	}
	past := time.Now().Add(-time.Hour).UTC().Format(time.RFC3339)
	if _, err := DecodeSubmission([]byte(`{"run_at": "` + past + `"}`)); err != nil {
		t.Fatalf("a run_at in the past means now: %v", err)
	}
	for in, want := range map[string]string{
		`{"run_at": "tomorrow"}`:             `run_at: "tomorrow" is not an RFC 3339 time`,
		`{"run_at": "2026-11-26 03:04:05"}`:  "is not an RFC 3339 time",
		`{"run_at": 1764126245}`:             "is not an RFC 3339 time",
		`{"run_at": "2999-01-01T00:00:00Z"}`: "more than a year ahead",
	} {
		_, err := DecodeSubmission([]byte(in))
		if err == nil || !strings.Contains(err.Error(), want) || !IsRunAtError(err) {
			t.Errorf("DecodeSubmission(%s) = %v, want a RunAtError containing %q", in, err, want)
		}
	}
}

// TestScheduledOrdering: SCHEDULED stands with the NEW it waits for; the
// later update wins between them, and anything the attempt writes after
// (RUNNING, DONE) supersedes both.
func TestScheduledOrdering(t *testing.T) {
	t0 := time.Date(2026, 11, 26, 3, 0, 0, 0, time.UTC)
	submitted := Event{JobID: NumericID(1), Status: StatusNew, UpdatedAt: t0, RunAt: t0.Add(time.Minute)}
	scheduled := Event{JobID: NumericID(1), Status: StatusScheduled, UpdatedAt: t0.Add(time.Second), Group: "g"}
	released := submitted
	released.Group, released.UpdatedAt = "g", submitted.RunAt
	running := Event{JobID: NumericID(1), Status: StatusRunning, Attempt: 1, UpdatedAt: t0.Add(61 * time.Second)}
	done := Event{JobID: NumericID(1), Status: StatusDone, Attempt: 1, UpdatedAt: t0.Add(62 * time.Second)}
	chain := []Event{submitted, scheduled, released, running, done}
	for i := 1; i < len(chain); i++ {
		if !chain[i].Supersedes(chain[i-1]) {
			t.Errorf("%s should supersede %s", chain[i].Status, chain[i-1].Status)
		}
		if chain[i-1].Supersedes(chain[i]) && chain[i].Status != StatusScheduled {
			t.Errorf("%s should not supersede %s", chain[i-1].Status, chain[i].Status)
		}
	}
	if submitted.Supersedes(scheduled) {
		t.Error("a late copy of the submitted NEW should not undo SCHEDULED")
	}
	if scheduled.Supersedes(done) || scheduled.Supersedes(running) {
		t.Error("SCHEDULED should not supersede the attempt's events")
	}
	if !StatusScheduled.Valid() || StatusScheduled.Terminal() {
		t.Error("SCHEDULED is a valid, non-terminal status")
	}
	if Statuses[1] != StatusScheduled {
		t.Errorf("Statuses should list SCHEDULED right after NEW: %v", Statuses)
	}
}
