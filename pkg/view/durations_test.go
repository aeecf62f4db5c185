package view

import (
	"fmt"
	"math"
	"reflect"
	"testing"
	"time"

	"github.com/jobctl/jobctl/pkg/job"
)

// attemptEvents are the events of one attempt of job jobID: its NEW
// (first attempt only), RUNNING at start and end (status) at start+d.
func attemptEvents(t testing.TB, jobID, typ, group string, attempt int, start time.Time, d time.Duration, end job.Status) []job.Event {
	var evs []job.Event
	if attempt == 1 {
		evs = append(evs, job.Event{JobID: id(t, jobID), Status: job.StatusNew, Type: typ, UpdatedAt: start.Add(-time.Second)})
	}
	return append(evs,
		job.Event{JobID: id(t, jobID), Status: job.StatusRunning, Group: group, Attempt: attempt, UpdatedAt: start, Worker: "w"},
		job.Event{JobID: id(t, jobID), Status: end, Group: group, Attempt: attempt, UpdatedAt: start.Add(d), Worker: "w"},
	)
}

func near(got, want float64) bool { return math.Abs(got-want) <= want*0.06 }

func TestDurationsPerTypeAndBucket(t *testing.T) {
	now := t0.Add(time.Hour)
	v := New(Options{Now: func() time.Time { return now }})
	// 100 "fast" jobs of 100 ms and one of 5 s, ending 1 minute ago; 10
	// "slow" jobs of 2 s ending 5 minutes ago, one of them failing first.
	for i := range 100 {
		for _, e := range attemptEvents(t, fmt.Sprint(i), "fast", "g", 1, now.Add(-time.Minute), 100*time.Millisecond, job.StatusDone) {
			v.Apply(e, Record{})
		}
	}
	for _, e := range attemptEvents(t, "100", "fast", "g", 1, now.Add(-time.Minute), 5*time.Second, job.StatusDone) {
		v.Apply(e, Record{})
	}
	for i := range 10 {
		jid := fmt.Sprint(200 + i)
		for _, e := range attemptEvents(t, jid, "slow", "g", 1, now.Add(-5*time.Minute), 2*time.Second, job.StatusFailed) {
			v.Apply(e, Record{})
			if i > 0 {
				break // only job 200 fails first; the others go to attempt 1's DONE below
			}
		}
	}
	for i := range 10 {
		jid := fmt.Sprint(200 + i)
		attempt, start := 1, now.Add(-5*time.Minute)
		if i == 0 {
			attempt, start = 2, now.Add(-5*time.Minute+3*time.Second)
		}
		for _, e := range attemptEvents(t, jid, "slow", "g", attempt, start, 2*time.Second, job.StatusDone) {
			v.Apply(e, Record{})
		}
	}
	// A replayed DONE changes nothing; an attempt without RUNNING has no
	// duration; a duration older than the window is not shown.
	v.Apply(job.Event{JobID: id(t, "5"), Status: job.StatusDone, Group: "g", Attempt: 1, UpdatedAt: now.Add(-time.Minute + 100*time.Millisecond), Worker: "w"}, Record{})
	v.Apply(job.Event{JobID: id(t, "300"), Status: job.StatusNew, Type: "fast", UpdatedAt: now.Add(-time.Second)}, Record{})
	v.Apply(job.Event{JobID: id(t, "300"), Status: job.StatusDone, Group: "g", Attempt: 1, UpdatedAt: now}, Record{})
	for _, e := range attemptEvents(t, "301", "fast", "g", 1, now.Add(-time.Hour), time.Second, job.StatusDone) {
		v.Apply(e, Record{})
	}

	d := v.Durations()
	if d.BucketSeconds != 30 || d.End.Before(now) || d.End.Sub(now) > 30*time.Second || d.End.Unix()%30 != 0 {
		t.Fatalf("end %v bucket %d, want the end of the 30 s bucket holding %v", d.End, d.BucketSeconds, now)
	}
	if len(d.Types) != 2 || d.Types[0].Type != "fast" || d.Types[1].Type != "slow" {
		t.Fatalf("types = %+v, want fast and slow", d.Types)
	}
	fast, slow := d.Types[0], d.Types[1]
	if fast.Count != 101 || !near(fast.P50Ms, 100) || !near(fast.P99Ms, 100) {
		t.Errorf("fast: count %d p50 %v p99 %v, want 101, ~100 ms, ~100 ms", fast.Count, fast.P50Ms, fast.P99Ms)
	}
	if slow.Count != 11 || !near(slow.P50Ms, 2000) || !near(slow.P99Ms, 2000) {
		t.Errorf("slow: count %d p50 %v p99 %v, want 11 (10 DONE + 1 FAILED), ~2000 ms", slow.Count, slow.P50Ms, slow.P99Ms)
	}
	if len(fast.Buckets) != 20 || len(slow.Buckets) != 20 {
		t.Fatalf("%d and %d buckets, want 20 (10 min of 30 s)", len(fast.Buckets), len(slow.Buckets))
	}
	// Bucket k covers [End-600s+30k, End-600s+30(k+1)).
	bucketOf := func(at time.Time) int { return int(at.Sub(d.End.Add(-10*time.Minute)) / (30 * time.Second)) }
	fb := fast.Buckets[bucketOf(now.Add(-time.Minute+100*time.Millisecond))]
	if fb.Count != 101 || !near(fb.P50Ms, 100) || !near(fb.P99Ms, 100) {
		t.Errorf("fast bucket = %+v, want 101 jobs, p50 and p99 (rank 100 of 101) ~100 ms", fb)
	}
	slowIn := 0
	for k, b := range slow.Buckets {
		if b.Count > 0 && k != bucketOf(now.Add(-5*time.Minute+2*time.Second)) && k != bucketOf(now.Add(-5*time.Minute+5*time.Second)) {
			t.Errorf("slow bucket %d = %+v, want durations only 5 min back", k, b)
		}
		slowIn += b.Count
	}
	if slowIn != 11 {
		t.Errorf("slow buckets hold %d durations, want 11", slowIn)
	}
}

// A restarted serve replays the topic: it must draw the same chart.
func TestDurationsSameAfterReplay(t *testing.T) {
	now := t0.Add(time.Hour)
	var evs []job.Event
	for i := range 50 {
		evs = append(evs, attemptEvents(t, fmt.Sprint(i), fmt.Sprint("t", i%3), "g", 1, now.Add(-time.Duration(i)*7*time.Second), time.Duration(i+1)*37*time.Millisecond, job.StatusDone)...)
	}
	build := func() Durations {
		v := New(Options{Now: func() time.Time { return now }})
		for _, e := range evs {
			v.Apply(e, Record{})
		}
		return v.Durations()
	}
	a, b := build(), build()
	if !reflect.DeepEqual(a, b) || len(a.Types) != 3 {
		t.Fatalf("two replays differ or miss types:\n%+v\n%+v", a, b)
	}
}

func TestDurationsCapTypes(t *testing.T) {
	now := t0
	v := New(Options{Now: func() time.Time { return now }})
	for i := range maxDurationTypes + 10 {
		for _, e := range attemptEvents(t, fmt.Sprint(i), fmt.Sprintf("type-%d", i), "g", 1, now.Add(-10*time.Second), time.Second, job.StatusDone) {
			v.Apply(e, Record{})
		}
	}
	d := v.Durations()
	if len(d.Types) != maxDurationTypes+1 {
		t.Fatalf("%d types, want %d and %q", len(d.Types), maxDurationTypes, OtherDurationType)
	}
	if other := d.Types[maxDurationTypes]; other.Type != OtherDurationType || other.Count != 10 {
		t.Fatalf("last type = %+v, want %q with the 10 durations past the cap", other.Type, OtherDurationType)
	}
}

func TestDurationsSlideOut(t *testing.T) {
	now := t0
	v := New(Options{Now: func() time.Time { return now }})
	for _, e := range attemptEvents(t, "1", "mock", "g", 1, now.Add(-10*time.Second), time.Second, job.StatusDone) {
		v.Apply(e, Record{})
	}
	if d := v.Durations(); len(d.Types) != 1 || d.Types[0].Count != 1 {
		t.Fatalf("durations = %+v, want one", d)
	}
	now = now.Add(ThroughputWindow + time.Minute)
	if d := v.Durations(); len(d.Types) != 0 {
		t.Fatalf("durations 11 minutes later = %+v, want none", d)
	}
	// A new duration landing in the reused slot does not count the old one.
	for _, e := range attemptEvents(t, "2", "mock", "g", 1, now.Add(-10*time.Second), time.Second, job.StatusDone) {
		v.Apply(e, Record{})
	}
	if d := v.Durations(); len(d.Types) != 1 || d.Types[0].Count != 1 {
		t.Fatalf("durations = %+v, want only the new one", d)
	}
}

func TestGroupRates(t *testing.T) {
	now := t0.Add(time.Hour)
	v := New(Options{Now: func() time.Time { return now }})
	for i := range 120 {
		jid := fmt.Sprint(i)
		at := now.Add(time.Second/2 - time.Duration(i)*time.Second/2) // 120 jobs over the last 60 s
		v.Apply(job.Event{JobID: id(t, jid), Status: job.StatusNew, UpdatedAt: at.Add(-time.Second)}, Record{})
		v.Apply(job.Event{JobID: id(t, jid), Status: job.StatusDone, Group: "a", Attempt: 1, UpdatedAt: at}, Record{})
		v.Apply(job.Event{JobID: id(t, jid), Status: job.StatusDone, Group: "a", Attempt: 1, UpdatedAt: at}, Record{}) // replayed
		if i%4 == 0 {
			v.Apply(job.Event{JobID: id(t, jid), Status: job.StatusFailed, Group: "b", Attempt: 1, UpdatedAt: at}, Record{})
			v.Apply(job.Event{JobID: id(t, jid), Status: job.StatusRunning, Group: "b", Attempt: 2, UpdatedAt: at}, Record{})
		}
	}
	// Events of an hour ago are out of the window; a RUNNING is not a finish.
	v.Apply(job.Event{JobID: id(t, "old"), Status: job.StatusDead, Group: "c", Attempt: 1, UpdatedAt: now.Add(-time.Hour)}, Record{})
	got := v.GroupRates()
	want := map[string]float64{"a": 2, "b": 0.5, "c": 0}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("GroupRates = %v, want %v", got, want)
	}
}

// TestDurationsFromStartedAt: an attempt shorter than a second has no
// RUNNING event; its ending event's started_at gives the duration.
func TestDurationsFromStartedAt(t *testing.T) {
	now := t0.Add(time.Hour)
	v := New(Options{Now: func() time.Time { return now }})
	start := now.Add(-time.Minute)
	for i := range 50 {
		jid := id(t, fmt.Sprint(i))
		v.Apply(job.Event{JobID: jid, Status: job.StatusNew, Type: "quick", UpdatedAt: start.Add(-time.Second)}, Record{})
		v.Apply(job.Event{JobID: jid, Status: job.StatusDone, Group: "g", Attempt: 1, Worker: "w", StartedAt: start, UpdatedAt: start.Add(20 * time.Millisecond)}, Record{})
	}
	d := v.Durations()
	if len(d.Types) != 1 || d.Types[0].Type != "quick" || d.Types[0].Count != 50 {
		t.Fatalf("durations = %+v, want 50 of type quick", d.Types)
	}
	if !near(d.Types[0].P50Ms, 20) {
		t.Errorf("p50 = %.1f ms, want ~20", d.Types[0].P50Ms)
	}
	// The job's history says when the attempt started.
	j, _ := v.Get("7")
	if len(j.History) != 2 || !j.History[1].StartedAt.Equal(start) || !j.History[0].StartedAt.IsZero() {
		t.Errorf("history = %+v, want the DONE to carry started_at %s", j.History, start)
	}
}
