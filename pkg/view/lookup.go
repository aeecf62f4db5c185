package view

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jobctl/jobctl/pkg/job"
	"github.com/jobctl/jobctl/pkg/kafkaconn"
	"github.com/jobctl/jobctl/pkg/ledger"
	"github.com/segmentio/kafka-go"
)

// FindJob reads topic once, up to the end offsets it has when called, and
// returns job id as View.Get would after a full replay: its state,
// history and per-group states. Only records whose key is id are decoded
// (jobctl keys every event by its job id), so it costs one pass over the
// topic's bytes but no view of every job: the CLI's `jobs get` without a
// server. progress, when not nil, is called from time to time with the
// records read so far and the total to read.
func FindJob(ctx context.Context, conn *kafkaconn.Conn, topic, id string, progress func(read, total int64)) (Job, bool, error) {
	if conn == nil || topic == "" {
		return Job{}, false, errors.New("finding a job: a connection and a topic are needed")
	}
	if _, err := job.ParseID(id); err != nil {
		return Job{}, false, fmt.Errorf("finding job %q: %w", id, err)
	}
	client := conn.Client()
	parts, err := ledger.Partitions(ctx, client, topic)
	if err != nil {
		return Job{}, false, fmt.Errorf("finding job %s in topic %s: %w", id, topic, err)
	}
	ids := make([]int, parts)
	for i := range ids {
		ids[i] = i
	}
	first, err := ledger.ListOffsets(ctx, client, topic, ids, kafka.FirstOffset)
	if err != nil {
		return Job{}, false, fmt.Errorf("finding job %s in topic %s: %w", id, topic, err)
	}
	last, err := ledger.ListOffsets(ctx, client, topic, ids, kafka.LastOffset)
	if err != nil {
		return Job{}, false, fmt.Errorf("finding job %s in topic %s: %w", id, topic, err)
	}
	var total int64
	for _, p := range ids {
		total += max(last[p]-first[p], 0)
	}
	var read atomic.Int64
	var progressMu sync.Mutex
	report := func(n int64) {
		r := read.Add(n)
		if progress != nil {
			progressMu.Lock()
			progress(r, total)
			progressMu.Unlock()
		}
	}

	key := []byte(id)
	found := make([][]kafka.Message, parts)
	errs := make([]error, parts)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 4) // a few partitions at a time: the broker and the CPU are shared
	// The first partition that fails stops the others: the answer would
	// be incomplete anyway.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	for _, p := range ids {
		if first[p] >= last[p] {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			select {
			case sem <- struct{}{}:
				defer func() { <-sem }()
			case <-ctx.Done():
				errs[p] = ctx.Err()
				return
			}
			k := make([]byte, len(key))
			defer func() {
				if errs[p] != nil {
					cancel()
				}
			}()
			errs[p] = scanPartition(ctx, client, topic, p, first[p], last[p], func(rec kafka.Record) error {
				if rec.Key == nil || rec.Key.Len() != len(key) {
					return nil
				}
				if _, err := io.ReadFull(rec.Key, k); err != nil || !bytes.Equal(k, key) {
					return err
				}
				m := kafka.Message{Topic: topic, Partition: p, Offset: rec.Offset, Time: rec.Time}
				if rec.Value != nil {
					value, err := io.ReadAll(rec.Value) // err is this goroutine's, not FindJob's
					if err != nil {
						return err
					}
					m.Value = value
				}
				found[p] = append(found[p], m)
				return nil
			}, report)
		}()
	}
	wg.Wait()
	// The partition that failed first, not the ones it cancelled.
	var failed error
	for _, err := range errs {
		if err != nil && (failed == nil || errors.Is(failed, context.Canceled) && !errors.Is(err, context.Canceled)) {
			failed = err
		}
	}
	if err := failed; err != nil {
		return Job{}, false, fmt.Errorf("finding job %s in topic %s: %w", id, topic, err)
	}
	if progress != nil {
		progress(read.Load(), total)
	}

	// The job's events, applied the way Run applies them; one partition
	// holds them all, partitions are taken in order if a foreign
	// producer spread them.
	v := New(Options{})
	for _, p := range ids {
		for _, m := range found[p] {
			ev, err := ledger.Decode(m)
			if err != nil || ev.JobID.String() != id {
				continue // Run skips it too, or files it under another job
			}
			v.Apply(ev, Record{Partition: m.Partition, Offset: m.Offset, Time: m.Time})
		}
	}
	j, ok := v.Get(id)
	return j, ok, nil
}

// scanPartition calls fn for every record of partition p in [from, to),
// in offset order, and report with the number of records each fetch
// brought. Records handed to fn are valid only during the call.
func scanPartition(ctx context.Context, client *kafka.Client, topic string, p int, from, to int64, fn func(kafka.Record) error, report func(int64)) error {
	next, empty := from, 0
	for next < to {
		resp, err := client.Fetch(ctx, &kafka.FetchRequest{Topic: topic, Partition: p, Offset: next, MinBytes: 1, MaxBytes: fetchMaxBytes, MaxWait: fetchMaxWait})
		if err == nil {
			err = resp.Error
		}
		if err != nil {
			return fmt.Errorf("reading partition %d from offset %d: %w", p, next, err)
		}
		n, err := eachRecord(resp.Records, next, to, fn)
		if err != nil {
			return fmt.Errorf("reading partition %d from offset %d: %w", p, next, err)
		}
		if n.next == next {
			if resp.HighWatermark <= next {
				// The records up to `to` are gone (retention ran while we
				// read): nothing more to find.
				return nil
			}
			// Records at next were removed by compaction or are control
			// records; go on after the batch if the broker said where.
			if n.batchEnd > next {
				next = n.batchEnd
				continue
			}
			if empty++; empty < 3 {
				continue // an empty answer under load; ask again
			}
			return fmt.Errorf("reading partition %d: the broker returned no records at offset %d (high watermark %d)", p, next, resp.HighWatermark)
		}
		report(n.count)
		next, empty = n.next, 0
	}
	return nil
}

type scanned struct {
	count    int64 // records in [from, to) passed to fn
	next     int64 // offset after the last of them
	batchEnd int64 // offset after the last record seen, in or out of range
}

// eachRecord passes the records of rs in [from, to) to fn; a fetch may
// start before from (the start of a batch) and end after to.
func eachRecord(rs kafka.RecordReader, from, to int64, fn func(kafka.Record) error) (scanned, error) {
	s := scanned{next: from, batchEnd: from}
	for {
		rec, err := rs.ReadRecord()
		if err != nil {
			if errors.Is(err, io.EOF) {
				return s, nil
			}
			return s, err
		}
		s.batchEnd = max(s.batchEnd, rec.Offset+1)
		if rec.Offset < from || rec.Offset >= to {
			continue
		}
		if err := fn(*rec); err != nil {
			return s, err
		}
		s.count++
		s.next = rec.Offset + 1
	}
}

// fetchMaxWait bounds how long the broker holds a fetch that has no
// records yet.
const fetchMaxWait = 500 * time.Millisecond
