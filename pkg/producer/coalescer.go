package producer

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/jobctl/jobctl/pkg/job"
	"github.com/segmentio/kafka-go"
)

// ErrCoalescerClosed is what Append returns after Close.
var ErrCoalescerClosed = errors.New("producer: the coalescing writer is closed")

// DefaultCoalesceMax is the most events one write of a Coalescer carries.
const DefaultCoalesceMax = 10000

// CoalescerOptions tunes a Coalescer.
type CoalescerOptions struct {
	// MaxEvents is the most events one write carries (default
	// DefaultCoalesceMax); more wait for the next write.
	MaxEvents int
}

// Coalescer sends an Append at once when no write of its own is in
// flight, and gathers the Appends that arrive meanwhile into the next
// write. kafka-go's Writer sends a partial batch only when its
// BatchTimeout expires, so every lone job (an API request, a job every
// few milliseconds) waited out that timeout before its round trip;
// here a lone job pays one round trip, and under load the writes grow
// by themselves while the previous one is in flight, so throughput does
// not drop to one record per round trip. The batching is done here: a
// writer that can be tuned (ledger.Writer) gets a batch timeout of a
// microsecond, so that it sends what it is given at once.
//
// An Append whose context ends returns at once; its events may still be
// written if the write had started (as with kafka-go's Writer), and are
// dropped if it had not.
type Coalescer struct {
	w    Enqueuer
	max  int
	reqs chan *appendRequest // unbuffered: blocked senders are the queue

	quit      chan struct{}
	done      chan struct{}
	closeOnce sync.Once
}

type appendRequest struct {
	ctx    context.Context
	events []job.Event
	err    chan error // buffered: the loop never waits for a caller
}

// NewCoalescer starts a Coalescer over w, which it tunes (see above)
// and which must not have written yet; Close stops it (not w).
func NewCoalescer(w Enqueuer, opts CoalescerOptions) *Coalescer {
	if t, ok := w.(interface{ Tune(func(*kafka.Writer)) }); ok {
		t.Tune(func(kw *kafka.Writer) { kw.BatchTimeout = time.Microsecond })
	}
	if opts.MaxEvents <= 0 {
		opts.MaxEvents = DefaultCoalesceMax
	}
	c := &Coalescer{w: w, max: opts.MaxEvents, reqs: make(chan *appendRequest), quit: make(chan struct{}), done: make(chan struct{})}
	go c.loop()
	return c
}

// Append writes events and returns once they are acknowledged. On
// partial failure the error is a kafka.WriteErrors with one entry per
// event of this call.
func (c *Coalescer) Append(ctx context.Context, events ...job.Event) error {
	if len(events) == 0 {
		return nil
	}
	r := &appendRequest{ctx: ctx, events: events, err: make(chan error, 1)}
	select {
	case c.reqs <- r:
	case <-ctx.Done():
		return ctx.Err()
	case <-c.quit:
		return ErrCoalescerClosed
	}
	select {
	case err := <-r.err:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Close stops the Coalescer once the write in flight, if any, has ended.
func (c *Coalescer) Close() error {
	c.closeOnce.Do(func() { close(c.quit) })
	<-c.done
	return nil
}

func (c *Coalescer) loop() {
	defer close(c.done)
	// The writes outlive the callers' contexts (kafka-go retries a batch
	// in the background anyway) but not the Coalescer.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		<-c.quit
		cancel()
	}()
	var batch []*appendRequest
	var events []job.Event
	for {
		batch, events = batch[:0], events[:0]
		select {
		case r := <-c.reqs:
			batch = append(batch, r)
		case <-c.quit:
			return
		}
		n := len(batch[0].events)
	gather:
		for n < c.max {
			select {
			case r := <-c.reqs:
				batch = append(batch, r)
				n += len(r.events)
			default:
				break gather
			}
		}
		live := batch[:0]
		for _, r := range batch {
			if err := r.ctx.Err(); err != nil {
				r.err <- err // the caller gave up before the write: not sent
				continue
			}
			live = append(live, r)
			events = append(events, r.events...)
		}
		if len(live) == 0 {
			continue
		}
		err := c.w.Append(ctx, events...)
		answer(live, err)
		clear(events) // no payloads kept alive until the next write
	}
}

// answer hands each request its share of err.
func answer(reqs []*appendRequest, err error) {
	var we kafka.WriteErrors
	perEvent := errors.As(err, &we)
	total := 0
	for _, r := range reqs {
		total += len(r.events)
	}
	if err == nil || !perEvent || len(we) != total {
		for _, r := range reqs {
			r.err <- err
		}
		return
	}
	i := 0
	for _, r := range reqs {
		part := we[i : i+len(r.events) : i+len(r.events)]
		i += len(r.events)
		var failed bool
		for _, e := range part {
			if e != nil {
				failed = true
				break
			}
		}
		if failed {
			r.err <- part
		} else {
			r.err <- nil
		}
	}
}
