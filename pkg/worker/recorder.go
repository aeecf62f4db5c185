package worker

import (
	"context"
	"errors"
	"github.com/jobctl/jobctl/pkg/backoff"
	"time"

	"github.com/jobctl/jobctl/pkg/deadletter"
	"github.com/jobctl/jobctl/pkg/delay"
	"github.com/jobctl/jobctl/pkg/job"
	"github.com/segmentio/kafka-go"
)

// maxEventBatch bounds the outcomes written in one round.
const maxEventBatch = 1000

// outcome is what one record leaves to write before its offset completes:
// an attempt's event, a retry to schedule, a dead letter (of a job or a
// poison record).
type outcome struct {
	task   *task // nil for a poison record
	offset int64
	event  job.Event // Status empty: no event (poison)
	retry  *delay.Item
	letter *deadletter.Letter

	started, ended time.Time
	dropped        bool // not written (stopping): the offset stays uncommitted
	notStarted     bool // cancelled before it started: no processed log line
}

// recordLoop writes the partition's outcomes in batches until the
// partition is given up. Each partition has its own recorder: a write
// that keeps failing on one partition does not hold back the others.
func (p *partition) recordLoop() {
	defer close(p.written)
	for o := range p.results {
		batch := []*outcome{o}
	more:
		for len(batch) < maxEventBatch {
			select {
			case o2, ok := <-p.results:
				if !ok {
					break more
				}
				batch = append(batch, o2)
			default:
				break more
			}
		}
		p.record(batch)
	}
}

// record writes a batch in the order that keeps every job findable: a
// retry's delay record and a dead letter before the job's FAILED/DEAD
// event, the event before the processed log line and the offset. An
// outcome not written because the worker is stopping is dropped: its
// offset stays uncommitted and the job runs again elsewhere.
func (p *partition) record(batch []*outcome) {
	w := p.w
	p.writeEach(batch, "scheduling retries", func(o *outcome) bool { return o.retry != nil },
		func(ctx context.Context, os []*outcome) error {
			items := make([]delay.Item, len(os))
			for i, o := range os {
				items[i] = *o.retry
			}
			return w.delays.Schedule(ctx, items...)
		},
		func(o *outcome, err error) {
			if o.task == nil { // a scheduled job (scheduled.go)
				p.unschedulable(o, err)
				return
			}
			// The retry can never be stored: the job is dead now.
			errs := append(append([]job.AttemptError(nil), o.task.event.Errors...), job.AttemptError{Attempt: o.event.Attempt, Error: o.event.Error, At: o.event.UpdatedAt})
			o.retry = nil
			o.event.Status, o.event.RetryAt = job.StatusDead, time.Time{}
			o.letter = w.deadLetter(o.task, o.event, errs, "its retry could not be stored: "+err.Error())
		})
	p.writeEach(batch, "writing dead letters", func(o *outcome) bool { return o.letter != nil },
		func(ctx context.Context, os []*outcome) error {
			ls := make([]deadletter.Letter, len(os))
			for i, o := range os {
				ls[i] = *o.letter
			}
			return w.dlq.Write(ctx, ls...)
		},
		func(o *outcome, err error) {
			p.log.Error("a dead letter cannot be written; going on without it", "offset", o.offset, "err", err)
		})
	p.writeEach(batch, "writing job events", func(o *outcome) bool { return o.event.Status != "" },
		func(ctx context.Context, os []*outcome) error {
			// One buffer per recorder, reused: a batch's events are
			// copied here for every write (up to maxEventBatch of them).
			evs := p.eventBuf[:0]
			for _, o := range os {
				evs = append(evs, o.event)
			}
			err := w.writer.AppendTo(ctx, p.id, evs...)
			clear(evs) // hold no payloads or results until the next write
			p.eventBuf = evs[:0]
			return err
		},
		func(o *outcome, err error) {
			p.log.Error("a job event cannot be written; going on without it", "job_id", o.event.JobID, "status", o.event.Status, "err", err)
		})
	p.finish(batch)
}

// writeEach writes the outcomes of batch that want this step. Those whose
// write fails for good go to onPermanent; those left unwritten because
// the worker is stopping are marked dropped.
func (p *partition) writeEach(batch []*outcome, what string, wants func(*outcome) bool,
	write func(context.Context, []*outcome) error, onPermanent func(*outcome, error)) {
	var todo []*outcome
	for _, o := range batch {
		if !o.dropped && wants(o) {
			todo = append(todo, o)
		}
	}
	if len(todo) == 0 {
		return
	}
	failed := p.writeAll(what, len(todo), func(ctx context.Context, idx []int) error {
		os := make([]*outcome, len(idx))
		for i, j := range idx {
			os[i] = todo[j]
		}
		return write(ctx, os)
	})
	for j, err := range failed {
		if err == nil {
			todo[j].dropped = true
		} else {
			onPermanent(todo[j], err)
		}
	}
}

// finish logs, counts and completes the offsets of the outcomes that were
// written.
func (p *partition) finish(batch []*outcome) {
	w := p.w
	now := time.Now()
	var lines []ProcessedRecord
	if w.plog != nil {
		lines = make([]ProcessedRecord, 0, len(batch))
	}
	for _, o := range batch {
		if w.plog == nil || o.dropped || o.task == nil || o.notStarted {
			continue // not written, a poison record, or cancelled before it ran
		}
		ev := o.event
		lines = append(lines, ProcessedRecord{
			JobID: ev.JobID, Status: ev.Status, Worker: ev.Worker, Group: w.cfg.Group,
			Partition: p.id, Offset: o.offset, DurationMS: float64(o.ended.Sub(o.started).Microseconds()) / 1000,
			Started: o.started.UTC(), Time: o.ended.UTC(), Run: ev.Run, Attempt: ev.Attempt, Error: ev.Error,
		})
	}
	if err := w.plog.Write(lines...); err != nil {
		w.logErrOnce.Do(func() { p.log.Error("writing the processed log", "err", err) })
	}
	offsets := p.completedBuf[:0]
	var counts outcomeCounts
	for _, o := range batch {
		if o.dropped {
			continue
		}
		offsets = append(offsets, o.offset)
		if o.task == nil {
			if o.event.Status == job.StatusScheduled {
				w.count(&w.stats.scheduled)
			}
			continue
		}
		ev := o.event
		counts.add(ev.Status)
		switch ev.Status {
		case job.StatusFailed:
			p.log.Info("job attempt failed; retrying later", "job_id", ev.JobID, "attempt", ev.Attempt, "retry_at", ev.RetryAt, "err", ev.Error)
		case job.StatusDead:
			p.log.Warn("job is dead: moved to the dead-letter topic", "job_id", ev.JobID, "attempt", ev.Attempt, "err", ev.Error)
		}
	}
	// Once per batch: the tracker's lock is shared with the fetcher, and
	// the counters with every other partition's recorder.
	p.tracker.Completed(p.id, offsets...)
	p.completedBuf = offsets[:0]
	w.countOutcomes(counts, now)
	w.noteActivity()
}

// writeAll runs write over n items until each is written, retrying the
// ones that failed with a transient error. It returns the items it could
// not write: with the permanent error, or nil when it stopped because
// the worker is stopping (writeCtx ended) or the partition was lost.
func (p *partition) writeAll(what string, n int, write func(ctx context.Context, idx []int) error) map[int]error {
	w := p.w
	todo := make([]int, n)
	for i := range todo {
		todo[i] = i
	}
	failed := map[int]error{}
	for attempt := 1; len(todo) > 0; attempt++ {
		err := write(w.writeCtx, todo)
		if err == nil {
			return failed
		}
		var we kafka.WriteErrors
		var retry []int
		if errors.As(err, &we) && len(we) == len(todo) {
			for i, j := range todo {
				switch {
				case we[i] == nil:
				case isPermanent(we[i]):
					failed[j] = we[i]
				default:
					retry = append(retry, j)
				}
			}
		} else if isPermanent(err) {
			for _, j := range todo {
				failed[j] = err
			}
		} else {
			retry = todo
		}
		todo = retry
		if len(todo) == 0 {
			return failed
		}
		if w.writeCtx.Err() != nil || p.lost.Load() {
			p.log.Error(what+": giving up at shutdown; those jobs stay uncommitted and run again", "jobs", len(todo), "err", err)
			for _, j := range todo {
				failed[j] = nil
			}
			return failed
		}
		p.log.Warn(what+"; retrying", "jobs", len(todo), "attempt", attempt, "err", err)
		backoff.Sleep(w.writeCtx, backoff.Exponential(attempt, 100*time.Millisecond, 2*time.Second))
	}
	return failed
}

// isPermanent reports whether a write error will not go away by retrying
// the same record: retrying it forever would stall the partition.
func isPermanent(err error) bool {
	for _, e := range []error{kafka.MessageSizeTooLarge, kafka.RecordListTooLarge, kafka.InvalidRecord,
		kafka.InvalidTopic, kafka.UnsupportedForMessageFormat, kafka.InvalidRequiredAcks} {
		if errors.Is(err, e) {
			return true
		}
	}
	var pe interface{ Permanent() bool }
	return errors.As(err, &pe) && pe.Permanent()
}
