package worker

import (
	"time"

	"github.com/jobctl/jobctl/pkg/backoff"
	"github.com/jobctl/jobctl/pkg/delay"
	"github.com/jobctl/jobctl/pkg/job"
)

// scheduleAhead is how far ahead a NEW's run_at must be for the job to
// wait in the delay topic. A job due sooner is held by the fetcher until
// its time (a few milliseconds at most): a round trip through the delay
// topic would make it later, not more punctual.
const scheduleAhead = 50 * time.Millisecond

// deferUntilDue is the run_at check of classify, for a NEW that has one.
// It reports true when the job was put off: a delay record (the NEW, for
// this group only, due at run_at, released into this partition) and a
// SCHEDULED event are handed to the recorder, which completes the offset
// once both are written, as for a retry waiting (docs/runtime.md, "Delayed
// jobs"). The released NEW comes back through classify and runs; its
// position (run, attempt+1) is noted only then, so the release is not
// mistaken for a duplicate, while a second release is.
func (p *partition) deferUntilDue(offset int64, ev job.Event) bool {
	wait := time.Until(ev.RunAt)
	if wait <= 0 {
		return false
	}
	if wait <= scheduleAhead {
		backoff.Sleep(p.fetchCtx, wait) // never early; a revocation ends it
		return false
	}
	w := p.w
	next := ev
	next.Group = w.cfg.Group
	// The release supersedes the SCHEDULED below in every reader (same
	// position, later update).
	next.UpdatedAt = ev.RunAt.UTC()
	sched := ev
	sched.Status = job.StatusScheduled
	sched.Group = w.cfg.Group
	sched.Worker = w.id
	sched.Payload, sched.Errors, sched.Error = nil, nil, ""
	sched.RetryAt = time.Time{}
	sched.UpdatedAt = time.Now().UTC()
	p.log.Debug("job scheduled", "job_id", ev.JobID, "run_at", ev.RunAt, "offset", offset)
	// No task: no attempt runs, so the recorder logs and counts nothing.
	p.results <- &outcome{offset: offset, event: sched, retry: &delay.Item{DueAt: ev.RunAt, Partition: p.id, Event: next}}
	return true
}

// unschedulable handles a scheduled job whose delay record can never be
// written (the broker refuses it for good): the job cannot wait, so it is
// dead, with the reason, instead of silently lost.
func (p *partition) unschedulable(o *outcome, err error) {
	w := p.w
	t := &task{p: p, offset: o.offset, key: o.event.JobID.String(), event: o.retry.Event}
	o.retry = nil
	o.event.Status = job.StatusDead
	o.event.Error = truncate("its schedule could not be stored: "+err.Error(), maxErrorBytes)
	o.letter = w.deadLetter(t, o.event, nil, o.event.Error)
	p.log.Error("a scheduled job cannot wait in the delay topic: it is dead", "job_id", o.event.JobID, "err", err)
}
