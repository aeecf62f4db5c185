package control

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jobctl/jobctl/pkg/deadletter"
	"github.com/jobctl/jobctl/pkg/job"
	"github.com/jobctl/jobctl/pkg/kafkaconn"
	"github.com/jobctl/jobctl/pkg/ledger"
	"github.com/jobctl/jobctl/pkg/view"
)

// ErrConflict is the error of a cancel or retry the job's status does not
// allow (a finished job cannot be cancelled, a running one not retried).
var ErrConflict = errors.New("not allowed in the job's status")

// Cancellable reports whether a job in status st can still be cancelled:
// it has not finished (DONE, DEAD, CANCELED). A FAILED job waits for its
// next attempt, which the cancel stops.
func Cancellable(st job.Status) bool {
	return st != job.StatusDone && st != job.StatusDead && st != job.StatusCancelled
}

// Retryable reports whether a job in status st can be retried now.
func Retryable(st job.Status) bool {
	return st == job.StatusFailed || st == job.StatusDead || st == job.StatusCancelled
}

// Controller carries out job control requests: cancel and retry (checked
// against the job's state in the job view), pause and resume.
type Controller struct {
	control *Writer
	jobs    *ledger.Writer
	letters *deadletter.Writer
	now     func() time.Time
}

// NewController returns a controller of jobTopic.
func NewController(conn *kafkaconn.Conn, jobTopic string) *Controller {
	return &Controller{control: NewWriter(conn, jobTopic), jobs: ledger.NewWriter(conn, jobTopic), letters: deadletter.NewWriter(conn, jobTopic), now: time.Now}
}

// Close closes the writers.
func (c *Controller) Close() error {
	return errors.Join(c.control.Close(), c.jobs.Close(), c.letters.Close())
}

// Cancel cancels j's current run: a worker that has not started it never
// does, a running attempt's context is cancelled, and the run ends
// CANCELED. A finished job is an ErrConflict.
func (c *Controller) Cancel(ctx context.Context, j view.Job) error {
	if !Cancellable(j.Status) {
		return fmt.Errorf("job %s is %s: %w (only NEW, RUNNING and FAILED jobs can be cancelled; retry it to run it again)", j.ID, j.Status, ErrConflict)
	}
	return c.control.Write(ctx, Record{Kind: KindCancel, JobID: j.ID, Run: j.Run, At: c.now().UTC()})
}

// Retry starts a new run of a FAILED, DEAD or CANCELED job: a NEW with
// run+1 (same id, type and payload, for every group) in the job's
// partition. It returns that NEW; other statuses are an ErrConflict.
// Retrying a DEAD job also marks its dead letter as replayed, so a later
// `dlq replay --all` does not run the job yet again.
func (c *Controller) Retry(ctx context.Context, j view.Job) (job.Event, error) {
	if !Retryable(j.Status) {
		return job.Event{}, fmt.Errorf("job %s is %s: %w (only FAILED, DEAD and CANCELED jobs can be retried)", j.ID, j.Status, ErrConflict)
	}
	at := c.now().UTC()
	ev := job.Event{JobID: j.ID, Status: job.StatusNew, Type: j.Type, Payload: j.Payload, Run: j.Run + 1, CreatedAt: at, UpdatedAt: at}
	if err := c.jobs.AppendTo(ctx, j.Partition, ev); err != nil {
		return job.Event{}, fmt.Errorf("writing run %d of job %s: %w", ev.Run, j.ID, err)
	}
	if j.Status == job.StatusDead {
		marker := deadletter.Letter{
			Kind: deadletter.KindReplayed, JobID: j.ID, Run: j.Run, Type: j.Type,
			Reason: fmt.Sprintf("retried as run %d at %s", ev.Run, at.Format(time.RFC3339Nano)),
		}
		if err := c.letters.Write(ctx, marker); err != nil {
			return ev, fmt.Errorf("run %d of job %s is written, but marking its dead letter as replayed failed (a later dlq replay would run it again): %w", ev.Run, j.ID, err)
		}
	}
	return ev, nil
}

// Pause stops group's members from starting new jobs.
func (c *Controller) Pause(ctx context.Context, group string) error {
	return c.control.Write(ctx, Record{Kind: KindPause, Group: group, At: c.now().UTC()})
}

// Resume lets group's members start jobs again.
func (c *Controller) Resume(ctx context.Context, group string) error {
	return c.control.Write(ctx, Record{Kind: KindResume, Group: group, At: c.now().UTC()})
}
