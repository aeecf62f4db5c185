package worker

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jobctl/jobctl/pkg/handler"
	"github.com/jobctl/jobctl/pkg/job"
	"github.com/jobctl/jobctl/pkg/kafkaconn"
)

// TestTimeLimitOnAReusedClock runs attempts one after another on one slot
// (one clock): a job that outlives its limit fails with "timed out" and
// sees the context a context.WithTimeout would give it; the quick jobs
// after it on the same slot are not touched by the earlier limit.
func TestTimeLimitOnAReusedClock(t *testing.T) {
	const limit = 50 * time.Millisecond
	type seen struct {
		err         error
		deadline    time.Time
		hasDeadline bool
		cause       error
	}
	var mu sync.Mutex
	got := map[string]seen{}
	h := handler.HandlerFunc(func(ctx context.Context, ev job.Event) error {
		d, ok := ctx.Deadline()
		if ev.Type == "slow" {
			<-ctx.Done()
		}
		mu.Lock()
		got[ev.JobID.String()] = seen{ctx.Err(), d, ok, context.Cause(ctx)}
		mu.Unlock()
		return ctx.Err()
	})
	w, err := New(&kafkaconn.Conn{Brokers: []string{"127.0.0.1:1"}},
		Config{Topic: "t", Group: "g", Concurrency: 1, RunningAfter: -1, Policy: Policy{Timeout: limit, MaxAttempts: 3}}, h, Options{})
	if err != nil {
		t.Fatal(err)
	}
	w.handlerCtx, w.writeCtx = context.Background(), context.Background()
	w.pool = newJobPool(16)
	p := w.newPartition(0, -1)
	ctx, stop := context.WithCancel(context.Background())
	var slots sync.WaitGroup
	slots.Go(func() { w.slot(ctx, 0) })
	defer func() { stop(); slots.Wait() }()

	submit := func(id int64, typ string) {
		ev := job.Event{JobID: job.NumericID(id), Status: job.StatusNew, Type: typ}
		if err := w.pool.submit(context.Background(), &task{p: p, offset: id, key: ev.JobID.String(), event: ev}); err != nil {
			t.Fatal(err)
		}
	}
	next := func() *outcome {
		select {
		case o := <-p.results:
			return o
		case <-time.After(10 * time.Second):
			t.Fatal("no outcome within 10s")
			return nil
		}
	}

	before := time.Now()
	submit(1, "slow")
	o := next()
	if o.event.Status != job.StatusFailed || !strings.Contains(o.event.Error, "timed out after 50ms") {
		t.Fatalf("slow job: status %s error %q, want FAILED timed out after 50ms", o.event.Status, o.event.Error)
	}
	mu.Lock()
	s := got["1"]
	mu.Unlock()
	if !errors.Is(s.err, context.DeadlineExceeded) || !errors.As(s.cause, new(errTimeout)) {
		t.Fatalf("slow job saw Err %v, Cause %v; want DeadlineExceeded and the time limit", s.err, s.cause)
	}
	if !s.hasDeadline || s.deadline.Before(before.Add(limit)) {
		t.Fatalf("slow job saw deadline %v (set: %v), want one at least %s after the start", s.deadline, s.hasDeadline, limit)
	}

	// Quick jobs on the same slot: each outcome is DONE, and none of them
	// sees a cancelled context, however long after the slow one they run.
	for id := int64(2); id <= 6; id++ {
		submit(id, "")
		if o := next(); o.event.Status != job.StatusDone {
			t.Fatalf("job %d after the timed-out one: %s %q, want DONE", id, o.event.Status, o.event.Error)
		}
		if id == 3 {
			time.Sleep(2 * limit) // past the slow job's limit, were it still armed
		}
	}
	mu.Lock()
	defer mu.Unlock()
	for id := 2; id <= 6; id++ {
		if s := got[job.NumericID(int64(id)).String()]; s.err != nil || !s.hasDeadline {
			t.Fatalf("job %d saw Err %v, deadline set %v; want a live context with a deadline", id, s.err, s.hasDeadline)
		}
	}
}

// TestClockWithoutLimitOrRunning: no time limit and no RUNNING event
// leaves the timer unarmed; stop returns at once.
func TestClockWithoutLimitOrRunning(t *testing.T) {
	w := &Worker{cfg: Config{RunningAfter: -1}}
	c := newAttemptClock(w)
	cancelled := false
	c.start(nil, job.Event{}, 0, func(error) { cancelled = true })
	if c.runningAt != (time.Time{}) || c.timeoutAt != (time.Time{}) {
		t.Fatalf("deadlines set: running %v timeout %v", c.runningAt, c.timeoutAt)
	}
	c.fire() // a late timer of an earlier attempt does nothing
	c.stop()
	if cancelled {
		t.Fatal("an attempt without a time limit was cancelled")
	}
}
