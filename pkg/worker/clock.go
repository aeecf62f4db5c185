package worker

import (
	"context"
	"sync"
	"time"

	"github.com/jobctl/jobctl/pkg/job"
)

// attemptClock is a slot's timer for the attempt it runs: it writes the
// RUNNING event once the attempt has run for RunningAfter and ends the
// attempt's context with errTimeout at the policy's time limit. A slot
// runs one attempt at a time, so one clock per slot, reused for every
// attempt, does what a timer, a context with a deadline and a RUNNING
// timer per attempt did — without allocating any of them per job (they
// were a fifth of the allocations of a no-op job).
//
// The timer may fire late, or for an attempt that has already ended:
// fire decides from the current attempt and the time, never from the
// fact that the timer fired.
type attemptClock struct {
	w     *Worker
	timer *time.Timer

	mu        sync.Mutex
	active    bool
	p         *partition
	ev        job.Event // the attempt's event, for its RUNNING event
	cancel    context.CancelCauseFunc
	limit     time.Duration
	runningAt time.Time // zero: no RUNNING event (written, or never)
	timeoutAt time.Time // zero: no time limit (or already ended)
	writing   sync.WaitGroup
}

func newAttemptClock(w *Worker) *attemptClock {
	c := &attemptClock{w: w}
	c.timer = time.AfterFunc(time.Hour, c.fire)
	c.timer.Stop()
	return c
}

// start times an attempt beginning now: cancel ends its context when the
// time limit (0 = none) passes.
func (c *attemptClock) start(p *partition, ev job.Event, limit time.Duration, cancel context.CancelCauseFunc) {
	now := time.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	c.active, c.p, c.ev, c.cancel, c.limit = true, p, ev, cancel, limit
	c.runningAt, c.timeoutAt = time.Time{}, time.Time{}
	if c.w.cfg.RunningAfter >= 0 {
		c.runningAt = now.Add(c.w.cfg.RunningAfter)
	}
	if limit > 0 {
		c.timeoutAt = now.Add(limit)
	}
	c.schedule(now)
}

// stop ends the timing of the attempt and, if its RUNNING event is being
// written, waits for it, so RUNNING always precedes the outcome in the
// partition.
func (c *attemptClock) stop() {
	c.mu.Lock()
	c.active = false
	c.p, c.cancel, c.ev = nil, nil, job.Event{}
	c.timer.Stop()
	c.mu.Unlock()
	c.writing.Wait()
}

// schedule sets the timer to the next pending deadline; c.mu is held.
func (c *attemptClock) schedule(now time.Time) {
	next := c.runningAt
	if next.IsZero() || (!c.timeoutAt.IsZero() && c.timeoutAt.Before(next)) {
		next = c.timeoutAt
	}
	if next.IsZero() {
		c.timer.Stop()
		return
	}
	c.timer.Reset(max(next.Sub(now), 0))
}

func (c *attemptClock) fire() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.active {
		return
	}
	now := time.Now()
	if !c.runningAt.IsZero() && !now.Before(c.runningAt) {
		c.runningAt = time.Time{}
		c.writing.Add(1)
		go c.writeRunning(c.p, c.ev)
	}
	if !c.timeoutAt.IsZero() && !now.Before(c.timeoutAt) {
		c.timeoutAt = time.Time{}
		c.cancel(errTimeout{c.limit})
	}
	c.schedule(now)
}

// writeRunning writes the RUNNING event of an attempt still running.
func (c *attemptClock) writeRunning(p *partition, ev job.Event) {
	defer c.writing.Done()
	w := c.w
	run := ev
	run.Status = job.StatusRunning
	run.Payload = nil
	run.UpdatedAt = time.Now().UTC()
	ctx, cancel := context.WithTimeout(w.writeCtx, 10*time.Second)
	defer cancel()
	if err := w.writer.AppendTo(ctx, p.id, run); err != nil {
		p.log.Warn("writing a RUNNING event", "job_id", ev.JobID, "err", err)
	}
}
