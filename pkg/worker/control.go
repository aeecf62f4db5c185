package worker

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/jobctl/jobctl/pkg/control"
	"github.com/jobctl/jobctl/pkg/job"
)

// Job control (pkg/control): the worker tails the control topic and
// checks it before each attempt starts. Cancelled runs end CANCELED
// without starting; a running attempt of a run cancelled meanwhile has its
// context cancelled. While the group is paused, slots start nothing:
// queued jobs wait, running ones finish, and the idle timeout does not
// count (a paused worker is waiting, not idle).

// errCancelled is the cause of an attempt context ended by a cancel.
var errCancelled = errors.New("cancelled by request (jobctl jobs cancel)")

// runningAttempts are the attempts the slots run now, one place per
// slot, so a cancel (by job id) or the loss of a partition can reach
// them. A slot writes only its own place; the rare readers (a cancel, a
// lost partition) walk them all. A map by job id under one lock, and a
// context registered with its partition's per attempt, cost two locks
// and four map writes per job (~5% of a no-op job's CPU).
type runningAttempts struct {
	places []attemptPlace
}

type attemptPlace struct {
	mu     sync.Mutex
	key    string
	run    int
	p      *partition
	cancel context.CancelCauseFunc // nil: the slot runs nothing
	_      [64]byte                // slots on different cores: no false sharing
}

func (a *runningAttempts) init(slots int) { a.places = make([]attemptPlace, slots) }

// track registers the attempt slot runs; untrack unregisters it.
func (a *runningAttempts) track(slot int, key string, run int, p *partition, cancel context.CancelCauseFunc) {
	pl := &a.places[slot]
	pl.mu.Lock()
	pl.key, pl.run, pl.p, pl.cancel = key, run, p, cancel
	pl.mu.Unlock()
}

func (a *runningAttempts) untrack(slot int) {
	pl := &a.places[slot]
	pl.mu.Lock()
	pl.key, pl.p, pl.cancel = "", nil, nil
	pl.mu.Unlock()
}

// cancel ends the running attempt of job id if its run is up to run.
func (a *runningAttempts) cancel(id string, run int) bool {
	found := false
	for i := range a.places {
		pl := &a.places[i]
		pl.mu.Lock()
		if pl.cancel != nil && pl.key == id && pl.run <= run {
			pl.cancel(errCancelled)
			found = true
		}
		pl.mu.Unlock()
	}
	return found
}

// cancelPartition ends the running attempts of p's jobs with cause.
func (a *runningAttempts) cancelPartition(p *partition, cause error) {
	for i := range a.places {
		pl := &a.places[i]
		pl.mu.Lock()
		if pl.cancel != nil && pl.p == p {
			pl.cancel(cause)
		}
		pl.mu.Unlock()
	}
}

// onControl follows the control topic's changes (from the Tail's
// goroutine).
func (w *Worker) onControl(r control.Record) {
	switch r.Kind {
	case control.KindCancel:
		if w.attempts.cancel(r.JobID.String(), r.Run) {
			w.log.Info("cancelling a running job", "job_id", r.JobID, "run", r.Run)
		}
	case control.KindPause, control.KindResume:
		if r.Group != w.cfg.Group {
			return
		}
		paused := r.Kind == control.KindPause
		if w.paused.Swap(paused) == paused {
			return
		}
		if paused {
			w.log.Info("group paused: no new jobs start until it is resumed (jobctl group resume); running jobs finish", "running", w.running.Load())
		} else {
			w.log.Info("group resumed: starting jobs again")
		}
	}
}

// startControl starts tailing the control topic and waits until it has
// read it, so a restarted member of a paused group stays paused and a
// cancelled job does not start. The returned func stops the tail.
func (w *Worker) startControl(ctx context.Context) (stop func(), ok bool) {
	tctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := w.control.Run(tctx); err != nil {
			w.log.Error("reading the control topic stopped", "err", err)
		}
	}()
	stop = func() { cancel(); <-done }
	slow := time.NewTimer(5 * time.Second)
	defer slow.Stop()
	for {
		select {
		case <-w.control.CaughtUp():
			return stop, true
		case <-ctx.Done():
			stop()
			return nil, false
		case <-slow.C:
			w.log.Warn("still reading the control topic (cancelled jobs, paused groups) before starting")
		}
	}
}

// waitWhilePaused holds a taken job while the group is paused. It returns
// false when the job must not start now: the slot is stopping or the
// job's partition is being given up.
func (w *Worker) waitWhilePaused(ctx context.Context, t *task) bool {
	if !w.paused.Load() {
		return true // the per-job cost: one atomic load
	}
	for {
		// The state changes before Changed's channel closes: a resume
		// after this check closes the channel taken before it.
		changed := w.control.Changed()
		if !w.control.Paused(w.cfg.Group) {
			return true
		}
		select {
		case <-ctx.Done():
			return false
		case <-t.p.fetchCtx.Done():
			return false
		case <-changed:
		}
	}
}

// cancelledOutcome is the CANCELED event of an attempt that was cancelled
// (ran) or never started: no retry, no dead letter.
func (w *Worker) cancelledOutcome(t *task, ev job.Event, started, ended time.Time, ran bool) *outcome {
	ev.Status = job.StatusCancelled
	ev.Error = errCancelled.Error()
	ev.UpdatedAt = ended.UTC()
	ev.Payload = nil
	if ran {
		ev.StartedAt = started.UTC()
	}
	t.p.log.Info("job cancelled", "job_id", ev.JobID, "run", ev.Run, "attempt", ev.Attempt, "was_running", ran)
	return &outcome{task: t, offset: t.offset, event: ev, started: started, ended: ended, notStarted: !ran}
}
