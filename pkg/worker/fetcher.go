package worker

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strconv"
	"time"

	"github.com/jobctl/jobctl/pkg/backoff"
	"github.com/jobctl/jobctl/pkg/job"
	"github.com/jobctl/jobctl/pkg/ledger"
	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/protocol"
)

// fetchMaxBytes bounds one fetch of one partition (about 6,000 mock
// jobs). A fetched response is held in memory whole, and each partition
// holds up to fetchBuffers of them, so this is also the memory bound.
const (
	fetchMaxBytes = 1 << 20
	fetchBuffers  = 3 // one being filled, one queued, one being classified
)

// fetcher reads one partition with kafka-go's low-level Client.Fetch
// instead of a kafka.Reader. The Reader copies every record into a
// kafka.Message (a key, a value and a header slice allocated per record)
// and hands each one over a channel: about a fifth of a no-op job's CPU.
// Here a goroutine fetches the next response while the previous one is
// classified, copies the records' bytes into a reused arena and parses
// jobctl's headers once, without allocating per record.
type fetcher struct {
	client    *kafka.Client
	topic     string
	partition int
	maxWait   time.Duration
	isolation kafka.IsolationLevel
	group     string // this worker's group: header "group" is compared to it
	log       *slog.Logger
}

// fetchedBatch is one fetch's records. Their bytes live in arena and are
// valid until the batch is released: whatever outlives it must be copied
// (job.Decode copies what it keeps).
type fetchedBatch struct {
	records []fetchedRecord
	arena   []byte
	free    chan *fetchedBatch
}

// release hands the batch back for the next fetch.
func (b *fetchedBatch) release() { b.free <- b }

// fetchedRecord is a record as classify needs it.
type fetchedRecord struct {
	offset     int64
	key, value []byte // nil when the record has none
	h          recordHeaders
}

// recordHeaders is what jobctl's record headers say, parsed without
// allocating: the status as one of job's constants, the group only as
// "this worker's or not".
type recordHeaders struct {
	status   job.Status
	ok       bool // a status header is present (a record jobctl wrote)
	hasGroup bool // a group header is present
	ourGroup bool // ... and names this worker's group
	run      int
	attempt  int
}

// run fetches from offset until ctx ends, sending each non-empty batch on
// out in offset order; out is closed when it returns.
func (f *fetcher) run(ctx context.Context, offset int64, out chan<- *fetchedBatch) {
	defer close(out)
	free := make(chan *fetchedBatch, fetchBuffers)
	for range fetchBuffers {
		free <- &fetchedBatch{free: free}
	}
	offset, ok := f.resolve(ctx, offset)
	if !ok {
		return
	}
	errs := 0
	for {
		var b *fetchedBatch
		select {
		case b = <-free:
		case <-ctx.Done():
			return
		}
		next, err := f.fill(ctx, b, offset)
		if err != nil {
			b.release()
			if ctx.Err() != nil {
				return
			}
			if errors.Is(err, kafka.OffsetOutOfRange) {
				// Retention removed records before we read them: go on from
				// the first offset still there (as kafka.Reader does).
				if first, lerr := ledger.ListOffsets(ctx, f.client, f.topic, []int{f.partition}, kafka.FirstOffset); lerr == nil && first[f.partition] > offset {
					f.log.Warn("records expired before they were fetched: going on from the first one left", "from", offset, "to", first[f.partition])
					offset = first[f.partition]
					continue
				}
			}
			errs++
			f.log.Warn("fetching records; retrying", "offset", offset, "err", err)
			if !backoff.Sleep(ctx, backoff.Exponential(errs, 100*time.Millisecond, time.Second)) {
				return
			}
			continue
		}
		errs = 0
		offset = next
		if len(b.records) == 0 {
			b.release()
			continue
		}
		select {
		case out <- b:
		case <-ctx.Done():
			return
		}
	}
}

// resolve turns kafka.FirstOffset or kafka.LastOffset into an offset.
func (f *fetcher) resolve(ctx context.Context, offset int64) (int64, bool) {
	for attempt := 1; offset < 0; attempt++ {
		offsets, err := ledger.ListOffsets(ctx, f.client, f.topic, []int{f.partition}, offset)
		if err == nil {
			return offsets[f.partition], true
		}
		if ctx.Err() != nil {
			return 0, false
		}
		f.log.Warn("looking up where to start fetching; retrying", "err", err)
		if !backoff.Sleep(ctx, backoff.Exponential(attempt, 100*time.Millisecond, time.Second)) {
			return 0, false
		}
	}
	return offset, true
}

// fill fetches records from offset into b and returns the offset to
// fetch next.
func (f *fetcher) fill(ctx context.Context, b *fetchedBatch, offset int64) (int64, error) {
	resp, err := f.client.Fetch(ctx, &kafka.FetchRequest{
		Topic: f.topic, Partition: f.partition, Offset: offset,
		MinBytes: 1, MaxBytes: fetchMaxBytes, MaxWait: f.maxWait, IsolationLevel: f.isolation,
	})
	if err == nil {
		err = resp.Error
	}
	if err != nil {
		return offset, err
	}
	b.records, b.arena = b.records[:0], b.arena[:0]
	next := offset
	// A response is a stream of record batches. Control batches
	// (transaction markers) hold no jobs but take offsets: stepping over
	// them keeps a partition whose last record is a marker from being
	// fetched again and again.
	readers := []kafka.RecordReader{resp.Records}
	if stream, ok := resp.Records.(*protocol.RecordStream); ok {
		readers = stream.Records
	}
	for _, rr := range readers {
		_, isControl := rr.(*protocol.ControlBatch)
		for {
			rec, err := rr.ReadRecord()
			if err != nil {
				if errors.Is(err, io.EOF) {
					break
				}
				if len(b.records) > 0 || next > offset {
					return f.slice(b, next), nil // keep what was read; the rest is fetched again
				}
				return offset, err
			}
			if isControl {
				next = max(next, rec.Offset+1)
				closeRecord(rec)
				continue
			}
			if rec.Offset < next {
				closeRecord(rec)
				continue // a fetch starts at the beginning of a record batch
			}
			r := fetchedRecord{offset: rec.Offset, h: f.parseHeaders(rec.Headers)}
			if r.key, b.arena, err = appendBytes(b.arena, rec.Key); err == nil {
				r.value, b.arena, err = appendBytes(b.arena, rec.Value)
			}
			// Closing hands the response's pages back to kafka-go's pool
			// once every record of theirs is read; unclosed, each fetch
			// allocated its pages anew (~11% of a no-op job's bytes).
			closeRecord(rec)
			if err != nil {
				if len(b.records) > 0 || next > offset {
					return f.slice(b, next), nil
				}
				return offset, err
			}
			b.records = append(b.records, r)
			next = rec.Offset + 1
		}
	}
	return f.slice(b, next), nil
}

// closeRecord releases what a record read from a fetch holds.
func closeRecord(rec *kafka.Record) {
	if rec.Key != nil {
		rec.Key.Close()
	}
	if rec.Value != nil {
		rec.Value.Close()
	}
}

// slice points the records of b at their bytes in its arena and returns
// next.
func (f *fetcher) slice(b *fetchedBatch, next int64) int64 {
	// The arena may have moved while growing: slice the records again.
	// (appendBytes returned offsets into the arena as it was then.)
	pos := 0
	for i := range b.records {
		r := &b.records[i]
		if r.key != nil {
			n := len(r.key)
			r.key = b.arena[pos : pos+n : pos+n]
			pos += n
		}
		if r.value != nil {
			n := len(r.value)
			r.value = b.arena[pos : pos+n : pos+n]
			pos += n
		}
	}
	return next
}

// appendBytes appends the bytes of src to arena. The returned slice has
// the right length but may point into an old arena: fill re-slices it.
// A nil src (no key, a tombstone) stays nil; an empty one is empty.
func appendBytes(arena []byte, src kafka.Bytes) ([]byte, []byte, error) {
	if src == nil {
		return nil, arena, nil
	}
	n := src.Len()
	start := len(arena)
	arena = append(arena, make([]byte, n)...)
	if _, err := io.ReadFull(src, arena[start:]); err != nil {
		return nil, arena, err
	}
	return arena[start:], arena, nil
}

// parseHeaders reads jobctl's headers (pkg/ledger writes them).
func (f *fetcher) parseHeaders(hs []kafka.Header) recordHeaders {
	var h recordHeaders
	for _, kv := range hs {
		switch kv.Key {
		case job.HeaderStatus:
			h.status, h.ok = internStatus(kv.Value), true
		case job.HeaderGroup:
			h.hasGroup, h.ourGroup = true, string(kv.Value) == f.group
		case job.HeaderRun:
			h.run = smallInt(kv.Value)
		case job.HeaderAttempt:
			h.attempt = smallInt(kv.Value)
		}
	}
	return h
}

// internStatus returns the status b names, as job's constant when it is
// one (no allocation), or as a new string.
func internStatus(b []byte) job.Status {
	for _, s := range job.Statuses {
		if string(b) == string(s) {
			return s
		}
	}
	return job.Status(b)
}

// smallInt parses a run or attempt number; anything unparsable is 0, as
// before (strconv.Atoi's error was ignored).
func smallInt(b []byte) int {
	if len(b) == 0 || len(b) > 9 {
		n, _ := strconv.Atoi(string(b))
		return n
	}
	n := 0
	for _, c := range b {
		if c < '0' || c > '9' {
			n, _ = strconv.Atoi(string(b))
			return n
		}
		n = n*10 + int(c-'0')
	}
	return n
}
