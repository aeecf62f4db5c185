package producer

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/jobctl/jobctl/pkg/job"
	"github.com/segmentio/kafka-go"
)

// gatedEnqueuer records each write and holds it until released.
type gatedEnqueuer struct {
	mu     sync.Mutex
	writes [][]job.Event
	gate   chan struct{} // nil: writes return at once
	fail   func(events []job.Event) error
}

func (g *gatedEnqueuer) Append(ctx context.Context, events ...job.Event) error {
	g.mu.Lock()
	g.writes = append(g.writes, append([]job.Event(nil), events...))
	gate := g.gate
	g.mu.Unlock()
	if gate != nil {
		<-gate
	}
	if g.fail != nil {
		return g.fail(events)
	}
	return nil
}

func (g *gatedEnqueuer) snapshot() [][]job.Event {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([][]job.Event(nil), g.writes...)
}

func ev(id int64) job.Event { return job.Event{JobID: job.NumericID(id), Status: job.StatusNew} }

func TestCoalescerSendsALoneAppendAtOnce(t *testing.T) {
	g := &gatedEnqueuer{}
	c := NewCoalescer(g, CoalescerOptions{})
	defer c.Close()
	for i := int64(1); i <= 3; i++ {
		if err := c.Append(context.Background(), ev(i)); err != nil {
			t.Fatal(err)
		}
	}
	// One write per call: nothing waited for company.
	if w := g.snapshot(); len(w) != 3 || len(w[0]) != 1 || len(w[2]) != 1 || w[2][0].JobID != job.NumericID(3) {
		t.Fatalf("writes %v, want three writes of one event each", w)
	}
}

// Appends made while a write is in flight go out together in the next
// write, each caller getting its own answer.
func TestCoalescerGathersWhileAWriteIsInFlight(t *testing.T) {
	// Whether every waiting Append has reached the queue by the time the
	// first write returns depends on the scheduler of a loaded machine:
	// try a few times, waiting longer each time.
	for _, settle := range []time.Duration{20 * time.Millisecond, 200 * time.Millisecond, time.Second, 3 * time.Second} {
		g := &gatedEnqueuer{gate: make(chan struct{})}
		c := NewCoalescer(g, CoalescerOptions{MaxInFlight: 1})
		first := make(chan error, 1)
		go func() { first <- c.Append(context.Background(), ev(1)) }()
		for len(g.snapshot()) == 0 {
			time.Sleep(time.Millisecond)
		}
		var wg sync.WaitGroup
		errs := make([]error, 5)
		for i := range errs {
			wg.Go(func() { errs[i] = c.Append(context.Background(), ev(int64(10+i)), ev(int64(20+i))) })
		}
		time.Sleep(settle)
		close(g.gate) // the first write returns; later ones pass at once
		wg.Wait()
		if err := <-first; err != nil {
			t.Fatal(err)
		}
		for i, err := range errs {
			if err != nil {
				t.Fatalf("append %d: %v", i, err)
			}
		}
		c.Close()
		w := g.snapshot()
		total := 0
		for _, evs := range w {
			total += len(evs)
		}
		if total != 11 {
			t.Fatalf("%d events written in %v, want 11", total, w)
		}
		if len(w) == 2 {
			return // the five waiting Appends went out in one write
		}
		t.Logf("after %s: %d writes; trying again with a longer wait", settle, len(w))
	}
	t.Fatal("Appends waiting behind a write never went out together")
}

func TestCoalescerSplitsPerEventErrors(t *testing.T) {
	boom := errors.New("boom")
	reqs := []*appendRequest{
		{events: []job.Event{ev(1), ev(2)}, err: make(chan error, 1)},
		{events: []job.Event{ev(3)}, err: make(chan error, 1)},
		{events: []job.Event{ev(4)}, err: make(chan error, 1)},
	}
	answer(reqs, kafka.WriteErrors{nil, boom, nil, nil})
	var we kafka.WriteErrors
	if err := <-reqs[0].err; !errors.As(err, &we) || len(we) != 2 || we[0] != nil || we[1] != boom {
		t.Fatalf("first caller got %v, want WriteErrors{nil, boom}", err)
	}
	if err := <-reqs[1].err; err != nil {
		t.Fatalf("second caller got %v, want nil", err)
	}
	if err := <-reqs[2].err; err != nil {
		t.Fatalf("third caller got %v, want nil", err)
	}
	// A whole-write error goes to everyone.
	answer(reqs, boom)
	for i, r := range reqs {
		if err := <-r.err; err != boom {
			t.Fatalf("caller %d got %v, want boom", i, err)
		}
	}
}

func TestCoalescerDropsAppendsWhoseCallerGaveUp(t *testing.T) {
	g := &gatedEnqueuer{gate: make(chan struct{})}
	c := NewCoalescer(g, CoalescerOptions{MaxInFlight: 1})
	defer c.Close()
	first := make(chan error, 1)
	go func() { first <- c.Append(context.Background(), ev(1)) }()
	for len(g.snapshot()) == 0 {
		time.Sleep(time.Millisecond)
	}
	ctx, cancel := context.WithCancel(context.Background())
	gaveUp := make(chan error, 1)
	go func() { gaveUp <- c.Append(ctx, ev(2)) }()
	cancel()
	if err := <-gaveUp; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled Append returned %v, want context.Canceled", err)
	}
	close(g.gate)
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	if err := c.Append(context.Background(), ev(3)); err != nil {
		t.Fatal(err)
	}
	for _, w := range g.snapshot() {
		for _, e := range w {
			if e.JobID == job.NumericID(2) {
				t.Fatal("the event of an Append cancelled before its write was written")
			}
		}
	}
}

func TestCoalescerClosed(t *testing.T) {
	c := NewCoalescer(&gatedEnqueuer{}, CoalescerOptions{})
	c.Close()
	if err := c.Append(context.Background(), ev(1)); !errors.Is(err, ErrCoalescerClosed) {
		t.Fatalf("Append after Close: %v, want ErrCoalescerClosed", err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
}

// With room for two writes, a lone Append does not wait for a write
// that is stuck (a slow partition); a third waits for one of them.
func TestCoalescerWritesInParallelUpToMaxInFlight(t *testing.T) {
	g := &gatedEnqueuer{gate: make(chan struct{})}
	c := NewCoalescer(g, CoalescerOptions{MaxInFlight: 2})
	errs := make(chan error, 3)
	go func() { errs <- c.Append(context.Background(), ev(1)) }()
	for len(g.snapshot()) < 1 {
		time.Sleep(time.Millisecond)
	}
	go func() { errs <- c.Append(context.Background(), ev(2)) }()
	for len(g.snapshot()) < 2 {
		time.Sleep(time.Millisecond) // the second write starts while the first is stuck
	}
	go func() { errs <- c.Append(context.Background(), ev(3)) }()
	time.Sleep(20 * time.Millisecond)
	if n := len(g.snapshot()); n != 2 {
		t.Fatalf("%d writes started with two stuck, want 2 (MaxInFlight)", n)
	}
	close(g.gate)
	for range 3 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	c.Close()
	if n := len(g.snapshot()); n != 3 {
		t.Fatalf("%d writes, want 3", n)
	}
}
