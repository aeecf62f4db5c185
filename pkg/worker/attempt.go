package worker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jobctl/jobctl/pkg/deadletter"
	"github.com/jobctl/jobctl/pkg/delay"
	"github.com/jobctl/jobctl/pkg/handler"
	"github.com/jobctl/jobctl/pkg/job"
)

// abandonAfter is how long a handler may go on after its context ended
// (timeout, shutdown) before its slot stops waiting for it. A handler
// that ignores its context cannot be stopped in Go; it is left running,
// counted, and its slot serves other jobs.
const abandonAfter = 5 * time.Second

// maxErrorBytes caps an attempt's error text in events and letters.
const maxErrorBytes = 4 << 10

// errTimeout is the cause of an attempt context ended by its time limit.
type errTimeout struct{ limit time.Duration }

func (e errTimeout) Error() string { return fmt.Sprintf("timed out after %s", e.limit) }

// slot runs jobs from the pool, one at a time, until ctx ends.
func (w *Worker) slot(ctx context.Context, n int) {
	workerID := fmt.Sprintf("%s-%d", w.id, n)
	clock := newAttemptClock(w)
	for {
		t := w.pool.take(ctx)
		if t == nil {
			return
		}
		if !w.waitWhilePaused(ctx, t) {
			w.pool.release(t) // stopping, or the partition is given up
			continue
		}
		w.runAttempt(t, n, workerID, clock)
	}
}

// runAttempt runs one attempt of t and hands its outcome to the
// partition's recorder.
func (w *Worker) runAttempt(t *task, slot int, workerID string, clock *attemptClock) {
	p := t.p
	if !p.begin() {
		w.pool.release(t)
		return // the partition is being given up: the next owner runs it
	}
	defer p.end()
	pol := w.policyFor(t.event.Type)
	ev := t.event
	ev.Attempt = t.event.NextAttempt()
	ev.Group = w.cfg.Group
	ev.Worker = workerID
	ev.Errors = nil
	ev.RetryAt = time.Time{}

	// Registered before the cancel check: a cancel written meanwhile
	// either is seen by the check or finds the attempt registered. The
	// context is not registered with the partition's (attemptParent has
	// no Done): the partition's end reaches it through w.attempts
	// (partition.go, start), and a partition that ended before the
	// registration is seen by the check after it.
	attemptCtx, cancelAttempt := context.WithCancelCause(p.attemptParent)
	w.attempts.track(slot, t.key, ev.Run, p, cancelAttempt)
	defer w.attempts.untrack(slot)
	defer cancelAttempt(nil)
	if p.handlerCtx.Err() != nil {
		cancelAttempt(context.Cause(p.handlerCtx))
	}
	if w.control.Cancelled(t.key, ev.Run) {
		w.pool.release(t)
		now := time.Now()
		p.results <- w.cancelledOutcome(t, ev, now, now, false)
		return
	}
	// The slot's clock ends attemptCtx at the time limit (cause
	// errTimeout) and writes RUNNING; the handler sees a context whose
	// Deadline and Err are those of a context.WithTimeout.
	var ctx context.Context = attemptCtx
	if pol.Timeout > 0 {
		ctx = &timedContext{Context: attemptCtx, deadline: time.Now().Add(pol.Timeout)}
	}
	w.running.Add(1)
	started := time.Now()
	clock.start(p, ev, pol.Timeout, cancelAttempt)
	result, err := w.callHandler(ctx, ev)
	clock.stop()
	ended := time.Now()
	timedOut := errors.As(context.Cause(attemptCtx), new(errTimeout))
	cancelled := errors.Is(context.Cause(attemptCtx), errCancelled)
	w.running.Add(-1)
	w.pool.release(t)

	if err != nil && !timedOut && p.handlerCtx.Err() != nil {
		// Cancelled by shutdown, abort or a lost partition: not the job's
		// fault. Nothing is recorded; the offset stays uncommitted.
		p.log.Warn("job stopped before it finished; it is left for the next owner", "job_id", ev.JobID, "attempt", ev.Attempt, "offset", t.offset)
		w.count(&w.stats.interrupted)
		return
	}
	if err != nil && cancelled {
		p.results <- w.cancelledOutcome(t, ev, started, ended, true)
		return
	}
	if timedOut && err != nil {
		err = fmt.Errorf("%w: %v", errTimeout{pol.Timeout}, err)
		if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
			err = errTimeout{pol.Timeout}
		}
	}
	if w.metrics != nil {
		observe := w.handlerDone
		if err != nil {
			observe = w.handlerFailed
		}
		observe.Observe(ended.Sub(started).Seconds())
	}
	ev.Result = result
	p.results <- w.outcomeOf(t, ev, pol, err, started, ended)
}

// handlerReturn is what a handler returned.
type handlerReturn struct {
	result json.RawMessage
	err    error
}

// promptHandler is implemented by handlers that return soon after their
// context ends, whatever the job (handler.Sleep, and a handler.Mux whose
// route for the type is such a handler). Their attempts run on the
// slot's own goroutine: the goroutine, channel and select per attempt
// that let a slot abandon a handler ignoring its context were ~8% of a
// no-op job's CPU.
type promptHandler interface {
	ReturnsPromptly(jobType string) bool
}

// callHandler runs the handler, turning a panic into the attempt's error.
// A handler that may ignore its context runs in its own goroutine, and
// the slot stops waiting for it abandonAfter after ctx ended. A
// handler.ResultHandler's result comes back capped at
// handler.MaxResultBytes (cut results become a string with a note).
func (w *Worker) callHandler(ctx context.Context, ev job.Event) (json.RawMessage, error) {
	if w.prompt != nil && w.prompt.ReturnsPromptly(ev.Type) {
		r := w.invoke(ctx, ev)
		return r.result, r.err
	}
	return w.callHandlerAside(ctx, ev)
}

// callHandlerAside is callHandler's goroutine path, apart so that only
// it moves the event to the heap.
func (w *Worker) callHandlerAside(ctx context.Context, ev job.Event) (json.RawMessage, error) {
	done := make(chan handlerReturn, 1)
	go func() { done <- w.invoke(ctx, ev) }()
	select {
	case r := <-done:
		return r.result, r.err
	case <-ctx.Done():
	}
	t := time.NewTimer(abandonAfter)
	defer t.Stop()
	select {
	case r := <-done:
		return r.result, r.err
	case <-t.C:
		w.count(&w.stats.abandoned)
		w.log.Warn("a job's handler did not return after its context ended; leaving it behind", "job_id", ev.JobID, "attempt", ev.Attempt)
		cause := context.Cause(ctx)
		if cause == nil {
			cause = ctx.Err()
		}
		return nil, fmt.Errorf("%w (the handler did not stop)", cause)
	}
}

// invoke calls the handler once.
func (w *Worker) invoke(ctx context.Context, ev job.Event) (r handlerReturn) {
	defer func() {
		if p := recover(); p != nil {
			r = handlerReturn{err: fmt.Errorf("handler panicked: %v", p)}
		}
	}()
	if w.resultHandler == nil {
		return handlerReturn{err: w.handler.Handle(ctx, ev)}
	}
	res, err := w.resultHandler.HandleResult(ctx, ev)
	if len(res) > handler.MaxResultBytes {
		res = handler.Result(res, int64(len(res)))
	}
	return handlerReturn{res, err}
}

// outcomeOf turns an attempt's result into what must be written: DONE
// (with the handler's result, if any); a retry (delay record, then FAILED
// with retry_at); or, after the last attempt or when no handler serves
// the job's type (handler.ErrNoHandler: every attempt would fail the
// same way), a dead letter and DEAD.
func (w *Worker) outcomeOf(t *task, ev job.Event, pol Policy, err error, started, ended time.Time) *outcome {
	o := &outcome{task: t, offset: t.offset, started: started, ended: ended}
	ev.UpdatedAt = ended.UTC()
	ev.StartedAt = started.UTC() // the view's durations: RUNNING is written only for attempts past a second
	ev.Payload = nil             // the NEW holds it; follow-up events stay small
	if err == nil {
		ev.Status = job.StatusDone
		ev.Error = ""
		o.event = ev
		return o
	}
	ev.Result = nil
	msg := truncate(err.Error(), maxErrorBytes)
	ev.Error = msg
	errs := append(append([]job.AttemptError(nil), t.event.Errors...), job.AttemptError{Attempt: ev.Attempt, Error: msg, At: ev.UpdatedAt})
	noHandler := errors.Is(err, handler.ErrNoHandler)
	if ev.Attempt < pol.MaxAttempts && !noHandler {
		due := ended.Add(pol.BackoffAfter(ev.Attempt)).UTC()
		ev.Status = job.StatusFailed
		ev.RetryAt = due
		o.event = ev
		next := t.event // the NEW, payload and all
		next.Attempt = ev.Attempt
		next.Group = w.cfg.Group
		next.Errors = keepLastErrors(errs)
		next.UpdatedAt = ev.UpdatedAt
		next.Worker, next.Error, next.RetryAt = "", "", time.Time{}
		o.retry = &delay.Item{DueAt: due, Partition: t.p.id, Event: next}
		return o
	}
	ev.Status = job.StatusDead
	o.event = ev
	reason := fmt.Sprintf("failed %d of %d attempts", ev.Attempt, pol.MaxAttempts)
	if noHandler {
		reason = msg
	}
	o.letter = w.deadLetter(t, ev, errs, reason)
	return o
}

// deadLetter is the dead-letter record of a job whose run ends dead.
func (w *Worker) deadLetter(t *task, ev job.Event, errs []job.AttemptError, reason string) *deadletter.Letter {
	return &deadletter.Letter{
		Kind:     deadletter.KindJob,
		JobID:    ev.JobID,
		Group:    w.cfg.Group,
		Run:      ev.Run,
		Type:     ev.Type,
		Payload:  t.event.Payload,
		Attempts: ev.Attempt,
		Errors:   errs,
		Reason:   reason,
		Origin:   deadletter.Origin{Topic: w.cfg.Topic, Partition: t.p.id, Offset: t.offset},
		DeadAt:   ev.UpdatedAt,
	}
}

// keepLastErrors bounds the errors a retry carries along: the first and
// the most recent ones, so a job with many attempts still fits a record.
func keepLastErrors(errs []job.AttemptError) []job.AttemptError {
	const keep = 10
	if len(errs) <= keep {
		return errs
	}
	return append(errs[:1:1], errs[len(errs)-keep+1:]...)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// timedContext is an attempt's context under a time limit: the slot's
// clock cancels it with errTimeout at deadline, and to the handler it
// looks like a context.WithTimeout (Deadline, DeadlineExceeded).
type timedContext struct {
	context.Context
	deadline time.Time
}

func (c *timedContext) Deadline() (time.Time, bool) { return c.deadline, true }

func (c *timedContext) Err() error {
	err := c.Context.Err()
	if err != nil && errors.As(context.Cause(c.Context), new(errTimeout)) {
		return context.DeadlineExceeded
	}
	return err
}
