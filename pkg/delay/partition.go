package delay

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/segmentio/kafka-go"
)

const (
	// maxBatch bounds the records released with one round of writes.
	maxBatch = 500
	// drainWait is how long a fetch waits for a record already on its way
	// while a batch of awake records is collected.
	drainWait = 5 * time.Millisecond
	// earlyTolerance: a record this close to due is released (after waiting
	// out the rest) instead of being written to tier 0 again.
	earlyTolerance = 20 * time.Millisecond
)

// tierPartition releases one delay partition for one generation.
type tierPartition struct {
	r      *Releaser
	out    *output
	gen    *kafka.Generation
	id     int
	offset int64
	// held is a record fetched while collecting a batch that is not
	// awake yet: the next head.
	held *kafka.Message
}

// run fetches the head record, waits until it wakes, releases it with the
// records behind it that are awake too, and commits; until ctx ends. It
// returns only then: a function started on a generation that returns ends
// the generation.
func (tp *tierPartition) run(ctx context.Context) {
	log := tp.r.log.With("partition", tp.id)
	reader := kafka.NewReader(kafka.ReaderConfig{
		Brokers:        tp.r.conn.Brokers,
		Topic:          tp.r.topic,
		Partition:      tp.id,
		Dialer:         tp.r.conn.Dialer(),
		MinBytes:       1,
		MaxBytes:       10 << 20,
		MaxWait:        500 * time.Millisecond,
		ReadBackoffMin: 100 * time.Millisecond,
		ReadBackoffMax: time.Second,
		ErrorLogger:    kafka.LoggerFunc(func(msg string, args ...any) { log.Debug(fmt.Sprintf(msg, args...)) }),
	})
	defer reader.Close()
	if err := reader.SetOffset(tp.offset); err != nil {
		log.Error("cannot start reading", "offset", tp.offset, "error", err)
		<-ctx.Done()
		return
	}
	for ctx.Err() == nil {
		batch, err := tp.next(ctx, reader)
		if err != nil {
			if ctx.Err() == nil {
				log.Warn("reading the delay topic failed; retrying", "error", err)
				_ = sleep(ctx, time.Second)
			}
			continue
		}
		if err := tp.out.handle(ctx, batch); err != nil {
			return // ctx ended; the batch is released again by the next owner
		}
		last := batch[len(batch)-1].Offset + 1
		if err := tp.gen.CommitOffsets(map[string]map[int]int64{tp.r.topic: {tp.id: last}}); err != nil {
			// The next commit covers it; if the generation ended, the next
			// owner releases these records again (duplicates, no loss).
			log.Debug("committing failed", "offset", last, "error", err)
		}
	}
}

// next returns the head record, once it is awake, and the records behind it
// that are already fetched and awake too.
func (tp *tierPartition) next(ctx context.Context, reader *kafka.Reader) ([]kafka.Message, error) {
	var head kafka.Message
	if tp.held != nil {
		head, tp.held = *tp.held, nil
	} else {
		m, err := reader.FetchMessage(ctx)
		if err != nil {
			return nil, err
		}
		head = m
	}
	if err := sleepUntil(ctx, wakeOf(head)); err != nil {
		tp.held = &head
		return nil, err
	}
	batch := []kafka.Message{head}
	for len(batch) < maxBatch {
		fctx, cancel := context.WithTimeout(ctx, drainWait)
		m, err := reader.FetchMessage(fctx)
		cancel()
		if err != nil {
			if errors.Is(err, context.DeadlineExceeded) || ctx.Err() != nil {
				break
			}
			return batch, nil // reported at the next fetch, if it persists
		}
		if wakeOf(m).After(time.Now()) {
			tp.held = &m
			break
		}
		batch = append(batch, m)
	}
	return batch, ctx.Err()
}
