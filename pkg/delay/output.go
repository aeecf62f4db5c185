package delay

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jobctl/jobctl/pkg/job"
	"github.com/jobctl/jobctl/pkg/kafkaconn"
	"github.com/jobctl/jobctl/pkg/ledger"
	"github.com/segmentio/kafka-go"
)

// output is where a releaser's records go: the job topic when due, the
// delay topic again when not. One per Run, shared by its partitions.
type output struct {
	r      *Releaser
	jobs   *ledger.Writer
	delay  *Writer
	client *kafka.Client
}

func newOutput(r *Releaser) *output {
	return &output{
		r:      r,
		jobs:   ledger.NewWriter(r.conn, r.cfg.JobTopic),
		delay:  &Writer{w: r.conn.Writer(r.topic, toPartition{}), tiers: r.tiers},
		client: r.conn.Client(),
	}
}

func (o *output) close() {
	if err := errors.Join(o.jobs.Close(), o.delay.Close()); err != nil {
		o.r.log.Warn("closing the releaser's writers", "error", err)
	}
	if t, ok := o.client.Transport.(*kafka.Transport); ok {
		t.CloseIdleConnections()
	}
}

// handle releases the due records of batch and writes the others to the
// tier for their time left. It returns only when every record is written
// or dropped, or with ctx's error when ctx ends first.
func (o *output) handle(ctx context.Context, batch []kafka.Message) error {
	now := time.Now()
	var due, early []Item
	var latest time.Time
	for _, m := range batch {
		it, _, err := decode(m)
		if err != nil {
			o.drop(err)
			continue
		}
		if it.DueAt.Sub(now) > earlyTolerance {
			early = append(early, it)
			continue
		}
		due = append(due, it)
		if it.DueAt.After(latest) {
			latest = it.DueAt
		}
	}
	if len(early) > 0 {
		err := o.deliver(ctx, "rescheduling", early, false, func(ctx context.Context, items []Item) error {
			return o.delay.Schedule(ctx, items...)
		}, func(it Item) {
			if o.r.cfg.Rescheduled != nil {
				o.r.cfg.Rescheduled(TierFor(o.delay.tiers, time.Until(it.DueAt)))
			}
		})
		if err != nil {
			return err
		}
	}
	if len(due) == 0 {
		return nil
	}
	// Never early: wait out the last few milliseconds.
	if err := sleepUntil(ctx, latest); err != nil {
		return err
	}
	for _, part := range byPartition(due) {
		p := part[0].Partition
		err := o.deliver(ctx, "releasing", part, true, func(ctx context.Context, items []Item) error {
			events := make([]job.Event, len(items))
			for i, it := range items {
				events[i] = it.Event
			}
			return o.jobs.AppendTo(ctx, p, events...)
		}, func(it Item) {
			late := time.Since(it.DueAt)
			o.r.log.Debug("released", "job_id", it.Event.JobID.String(), "job_partition", it.Partition, "late", late)
			if o.r.cfg.Released != nil {
				o.r.cfg.Released(late)
			}
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// deliver writes items with write until each is acknowledged (then ok is
// called for it) or dropped for a permanent error. Temporary errors are
// retried with backoff until ctx ends. When a write of several items fails
// permanently, they are written one by one to find the culprit: Kafka
// fails a whole batch for one record that is too large.
func (o *output) deliver(ctx context.Context, what string, items []Item, toJobTopic bool,
	write func(context.Context, []Item) error, ok func(Item)) error {
	backoff := 500 * time.Millisecond
	pending, single := items, false
	for len(pending) > 0 {
		chunk := pending
		if single {
			chunk = pending[:1]
		}
		err := write(ctx, chunk)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		rest := pending[len(chunk):]
		if err == nil {
			for _, it := range chunk {
				ok(it)
			}
			pending = rest
			continue
		}
		errs := kafkaconn.Unwrap(err)
		var failed []Item
		var lastErr error
		permanentSeen := false
		for i, it := range chunk {
			e := err
			if len(errs) == len(chunk) {
				e = errs[i]
			}
			switch {
			case e == nil:
				ok(it)
			case o.permanent(ctx, it, e, toJobTopic):
				if len(chunk) == 1 {
					o.drop(fmt.Errorf("%s job %s (due %s, job partition %d): %w", what, it.Event.JobID, it.DueAt.Format(time.RFC3339Nano), it.Partition, e))
					continue
				}
				permanentSeen = true
				failed = append(failed, it)
			default:
				lastErr = e
				failed = append(failed, it)
			}
		}
		pending = append(failed, rest...)
		if permanentSeen {
			single = true
			continue
		}
		if lastErr != nil {
			o.r.log.Warn(what+" failed; retrying", "records", len(failed), "in", backoff, "error", lastErr)
			if err := sleep(ctx, backoff); err != nil {
				return err
			}
			backoff = min(2*backoff, 10*time.Second)
		}
	}
	return nil
}

// permanent reports whether writing it can never succeed: the record is
// too large or invalid for the broker, or its job-topic partition does not
// exist. Everything else (leaders moving, brokers down, authorization not
// granted yet) is retried, because dropping a job is worse than waiting.
func (o *output) permanent(ctx context.Context, it Item, err error, toJobTopic bool) bool {
	var tooLarge kafka.MessageTooLargeError
	if errors.As(err, &tooLarge) {
		return true
	}
	var ke kafka.Error
	if errors.As(err, &ke) {
		switch ke {
		case kafka.MessageSizeTooLarge, kafka.RecordListTooLarge, kafka.InvalidRecord, kafka.InvalidTimestamp:
			return true
		}
	}
	if toJobTopic {
		n, perr := ledger.Partitions(ctx, o.client, o.r.cfg.JobTopic)
		if perr == nil && it.Partition >= n {
			return true
		}
	}
	return false
}

func (o *output) drop(err error) {
	o.r.log.Error("skipping a delayed record that cannot be released", "error", err)
	if o.r.cfg.Dropped != nil {
		o.r.cfg.Dropped(err)
	}
}

// byPartition groups items by job-topic partition, keeping their order.
func byPartition(items []Item) [][]Item {
	index := map[int]int{}
	var out [][]Item
	for _, it := range items {
		i, ok := index[it.Partition]
		if !ok {
			i = len(out)
			index[it.Partition] = i
			out = append(out, nil)
		}
		out[i] = append(out[i], it)
	}
	return out
}
