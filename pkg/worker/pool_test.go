package worker

import (
	"context"
	"sync"
	"testing"
	"time"
)

// TestPoolKeepsOrderPerKeyOnly: jobs of a key held by a running job wait
// behind it in order, and other keys pass them.
func TestPoolKeepsOrderPerKeyOnly(t *testing.T) {
	q := newJobPool(8)
	p := &partition{}
	p.fetchCtx, p.stopFetch = context.WithCancel(context.Background())
	ctx := context.Background()
	submit := func(key string, off int64) {
		t.Helper()
		if err := q.submit(ctx, &task{p: p, key: key, offset: off}); err != nil {
			t.Fatal(err)
		}
	}
	submit("a", 1)
	submit("a", 2)
	submit("b", 3)
	submit("a", 4)
	first := q.take(ctx)
	second := q.take(ctx)
	if first.offset != 1 || second.offset != 3 {
		t.Fatalf("took %d then %d, want 1 then 3 (a's second job waits behind its first)", first.offset, second.offset)
	}
	tctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	if got := q.take(tctx); got != nil {
		t.Fatalf("took %d while key a is still held", got.offset)
	}
	cancel()
	q.release(first)
	if got := q.take(ctx); got.offset != 2 {
		t.Fatalf("took %d after releasing a, want 2", got.offset)
	}
}

// TestPoolDropsRevokedJobs: jobs of a stopped partition are never handed
// out, and the keys they held are freed.
func TestPoolDropsRevokedJobs(t *testing.T) {
	q := newJobPool(8)
	gone := &partition{}
	gone.fetchCtx, gone.stopFetch = context.WithCancel(context.Background())
	kept := &partition{}
	kept.fetchCtx, kept.stopFetch = context.WithCancel(context.Background())
	ctx := context.Background()
	_ = q.submit(ctx, &task{p: gone, key: "x", offset: 1})
	_ = q.submit(ctx, &task{p: kept, key: "x", offset: 2})
	gone.stopFetch()
	if got := q.take(ctx); got.p != kept || got.offset != 2 {
		t.Fatalf("took %+v, want the kept partition's job", got)
	}
	if q.queued() != 0 {
		t.Fatalf("%d jobs still queued", q.queued())
	}
}

// TestPoolBoundsQueued: submit waits while the pool is full.
func TestPoolBoundsQueued(t *testing.T) {
	q := newJobPool(2)
	p := &partition{}
	p.fetchCtx, p.stopFetch = context.WithCancel(context.Background())
	ctx := context.Background()
	_ = q.submit(ctx, &task{p: p, key: "a"})
	_ = q.submit(ctx, &task{p: p, key: "b"})
	tctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if err := q.submit(tctx, &task{p: p, key: "c"}); err == nil {
		t.Fatal("a third job fit a pool of two")
	}
	var wg sync.WaitGroup
	wg.Go(func() { _ = q.submit(ctx, &task{p: p, key: "c"}) })
	q.take(ctx)
	wg.Wait()
}

func TestSeenJobs(t *testing.T) {
	s := newSeenJobs(10)
	s.note(keyOfString("a"), attemptPos{0, 1}, 5)
	if s.runs(keyOfString("a"), attemptPos{0, 1}) {
		t.Error("a duplicate NEW of attempt 1 would run again")
	}
	if !s.runs(keyOfString("a"), attemptPos{0, 2}) || !s.runs(keyOfString("a"), attemptPos{1, 1}) {
		t.Error("the next attempt or a new run must run")
	}
	s.note(keyOfString("b"), attemptPos{0, 1}, 30) // a is now more than 10 records behind
	if !s.runs(keyOfString("a"), attemptPos{0, 1}) {
		t.Error("an id outside the window is still remembered")
	}
	if s.size() != 1 {
		t.Errorf("%d ids kept, want 1", s.size())
	}
	// Re-executions: two terminal events of one attempt, one of them ours.
	s.note(keyOfString("c"), attemptPos{0, 1}, 31)
	if s.terminal(keyOfString("c"), attemptPos{0, 1}, 32, false) {
		t.Error("the first terminal event is no re-execution")
	}
	if !s.terminal(keyOfString("c"), attemptPos{0, 1}, 33, true) {
		t.Error("our terminal event after another worker's is a re-execution")
	}
	if s.terminal(keyOfString("c"), attemptPos{0, 1}, 34, true) || s.terminal(keyOfString("c"), attemptPos{0, 2}, 35, true) {
		t.Error("counted a re-execution twice, or a later attempt as one")
	}
}

func TestBackoffDoublesWithJitterUpToMax(t *testing.T) {
	p := Policy{Backoff: time.Second, BackoffMax: 10 * time.Second}
	for n, full := range map[int]time.Duration{1: time.Second, 2: 2 * time.Second, 3: 4 * time.Second, 5: 10 * time.Second, 60: 10 * time.Second} {
		for range 50 {
			d := p.BackoffAfter(n)
			if d < full/2 || d > full {
				t.Fatalf("attempt %d: waited %s, want between %s and %s", n, d, full/2, full)
			}
		}
	}
}

func TestSeenJobsIntegerAndTextIDs(t *testing.T) {
	for text, want := range map[string]bool{
		"0": true, "7": true, "-7": true, "9223372036854775807": true, "-9223372036854775808": true,
		"": false, "007": false, "-0": false, "+7": false, "7a": false, "9223372036854775808": false,
		"-9223372036854775809": false, "99999999999999999999": false, "-": false, "abc": false,
	} {
		k := keyOf([]byte(text))
		if k.textual == want || keyOfString(text) != k {
			t.Errorf("%q: integer key %v (%+v), want %v", text, !k.textual, k, want)
		}
	}
	s := newSeenJobs(100)
	// "7" and "007" are different jobs; "" is not job 0.
	s.note(keyOfString("7"), attemptPos{0, 1}, 1)
	if !s.runs(keyOfString("007"), attemptPos{0, 1}) || !s.runs(keyOfString(""), attemptPos{0, 1}) || !s.runs(keyOfString("0"), attemptPos{0, 1}) {
		t.Error("a different id shares job 7's entry")
	}
	s.note(keyOfString("007"), attemptPos{0, 1}, 2)
	s.note(keyOfString(""), attemptPos{0, 1}, 3)
	if s.runs(keyOf([]byte("7")), attemptPos{0, 1}) || s.runs(keyOf([]byte("007")), attemptPos{0, 1}) || s.size() != 3 {
		t.Errorf("ids not remembered: %d kept", s.size())
	}
	s.note(keyOfString("8"), attemptPos{0, 1}, 200) // forgets all three
	if s.size() != 1 {
		t.Errorf("%d ids kept after the window moved on, want 1", s.size())
	}
}
