package view

import (
	"context"
	"errors"
	"fmt"
	"io"
	"runtime/debug"
	"slices"
	"sync"
	"time"

	"github.com/jobctl/jobctl/pkg/backoff"
	"github.com/jobctl/jobctl/pkg/job"
	"github.com/jobctl/jobctl/pkg/ledger"
	"github.com/segmentio/kafka-go"
)

// ErrTopicNotFound is returned by Run when the topic does not exist and
// the view does not wait for it.
var ErrTopicNotFound = ledger.ErrTopicNotFound

// Progress is how far the view has read.
type Progress struct {
	// Started is true once Run has found the topic's partitions.
	Started bool `json:"started"`
	// CaughtUp is true once every partition present at start has been
	// read up to the end offset it had at start. It never turns false.
	CaughtUp bool `json:"caught_up"`
	// BrokerReachable is the result of the last metadata request.
	BrokerReachable bool   `json:"broker_reachable"`
	LastError       string `json:"last_error,omitempty"`
	// InvalidRecords counts records that are not job events (skipped).
	InvalidRecords int64               `json:"invalid_records"`
	Partitions     []PartitionProgress `json:"partitions"`
}

// PartitionProgress is how far one partition has been read.
type PartitionProgress struct {
	Partition  int   `json:"partition"`
	NextOffset int64 `json:"next_offset"`
	// EndOffsetAtStart is the end offset when the view started; -1 for a
	// partition added while the view was running.
	EndOffsetAtStart int64 `json:"end_offset_at_start"`
	CaughtUp         bool  `json:"caught_up"`
}

type progress struct {
	started   bool
	reachable bool
	lastErr   string
	invalid   int64
	parts     map[int]*partState
}

type partState struct {
	endAtStart int64
	next       int64
	caughtUp   bool
}

// Progress returns how far the view has read.
func (v *View) Progress() Progress {
	v.mu.RLock()
	defer v.mu.RUnlock()
	p := Progress{
		Started:         v.progress.started,
		CaughtUp:        v.isCaughtUp(),
		BrokerReachable: v.progress.reachable,
		LastError:       v.progress.lastErr,
		InvalidRecords:  v.progress.invalid,
	}
	for id, ps := range v.progress.parts {
		p.Partitions = append(p.Partitions, PartitionProgress{Partition: id, NextOffset: ps.next, EndOffsetAtStart: ps.endAtStart, CaughtUp: ps.caughtUp})
	}
	slices.SortFunc(p.Partitions, func(a, b PartitionProgress) int { return a.Partition - b.Partition })
	return p
}

// Ready reports whether the view can answer for the whole topic: it has
// caught up and the broker answered the last metadata request.
func (v *View) Ready() bool {
	v.mu.RLock()
	defer v.mu.RUnlock()
	return v.isCaughtUp() && v.progress.reachable
}

func (v *View) isCaughtUp() bool {
	select {
	case <-v.caughtUp:
		return true
	default:
		return false
	}
}

// CaughtUp is closed once the view has read every partition present at
// start up to the end offset it had then.
func (v *View) CaughtUp() <-chan struct{} { return v.caughtUp }

// WaitCaughtUp blocks until the view has caught up or ctx ends.
func (v *View) WaitCaughtUp(ctx context.Context) error {
	select {
	case <-v.caughtUp:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("waiting for the job view to read topic %s: %w", v.opts.Topic, context.Cause(ctx))
	}
}

// Run reads the topic into the view until ctx ends: every partition from
// its first offset, then the tail; partitions added later are found by
// polling metadata every Options.PartitionPoll. It returns nil when ctx
// ends, or an error when the view cannot start (broker unreachable or
// topic missing) and Options.WaitForBroker is false.
func (v *View) Run(ctx context.Context) error {
	if v.opts.Conn == nil || v.opts.Topic == "" {
		return errors.New("job view: Run needs a connection and a topic")
	}
	client := v.opts.Conn.Client()
	var (
		parts []int
		ends  map[int]bounds
	)
	for attempt := 0; ; attempt++ {
		var err error
		parts, err = v.partitions(ctx, client)
		if err == nil {
			ends, err = v.offsetBounds(ctx, client, parts)
		}
		if err == nil {
			break
		}
		v.setReachable(err)
		if ctx.Err() != nil {
			return nil
		}
		if !v.opts.WaitForBroker {
			return err
		}
		if attempt%10 == 0 {
			v.log.Warn("job view waiting for the broker and topic", "topic", v.opts.Topic, "err", err)
		}
		if !backoff.Sleep(ctx, min(time.Duration(attempt+1)*500*time.Millisecond, 5*time.Second)) {
			return nil
		}
	}
	v.setReachable(nil)

	var wg sync.WaitGroup
	defer wg.Wait()
	v.mu.Lock()
	v.progress.started = true
	v.progress.parts = make(map[int]*partState, len(parts))
	for _, p := range parts {
		b := ends[p]
		ps := &partState{endAtStart: b.last, next: b.first}
		// An empty partition (or one whose records all expired) is
		// caught up at once: a fetch on it would wait for a record that
		// may never come.
		ps.caughtUp = b.first >= b.last
		v.progress.parts[p] = ps
	}
	v.checkCaughtUpLocked()
	v.mu.Unlock()
	v.log.Info("job view reading topic", "topic", v.opts.Topic, "partitions", len(parts))
	for _, p := range parts {
		wg.Add(1)
		go func() { defer wg.Done(); v.readPartition(ctx, p) }()
	}

	tick := time.NewTicker(v.opts.PartitionPoll)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		now, err := v.partitions(ctx, client)
		v.setReachable(err)
		if err != nil {
			if ctx.Err() == nil {
				v.log.Warn("job view cannot read topic metadata", "topic", v.opts.Topic, "err", err)
			}
			continue
		}
		v.mu.Lock()
		var added []int
		for _, p := range now {
			if _, ok := v.progress.parts[p]; !ok {
				v.progress.parts[p] = &partState{endAtStart: -1, caughtUp: true}
				added = append(added, p)
			}
		}
		v.mu.Unlock()
		for _, p := range added {
			v.log.Info("job view found a new partition", "topic", v.opts.Topic, "partition", p)
			wg.Add(1)
			go func() { defer wg.Done(); v.readPartition(ctx, p) }()
		}
	}
}

func (v *View) setReachable(err error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	// A missing topic is an answer: the broker is reachable.
	v.progress.reachable = err == nil || errors.Is(err, ErrTopicNotFound)
	v.progress.lastErr = ""
	if err != nil {
		v.progress.lastErr = err.Error()
	}
}

// readPartition reads partition p from its first offset until ctx ends.
//
// It fetches with the low-level client rather than a kafka.Reader: the
// Reader copies every record into a Message and hands them over one by
// one, and the view took its lock once per record. Here a whole fetch
// (up to fetchMaxBytes) is decoded outside the lock, by this partition's
// goroutine, so partitions decode in parallel, and applied
// applyBatchSize records per lock. See docs/benchmarks.md, "View", for
// the rebuild rates before and after.
func (v *View) readPartition(ctx context.Context, p int) {
	client := v.opts.Conn.Client()
	if t, ok := client.Transport.(*kafka.Transport); ok {
		defer t.CloseIdleConnections()
	}
	v.mu.RLock()
	next := int64(0)
	if ps := v.progress.parts[p]; ps != nil {
		next = ps.next
	}
	v.mu.RUnlock()
	var (
		batch []decoded
		buf   []byte
	)
	for {
		resp, err := client.Fetch(ctx, &kafka.FetchRequest{Topic: v.opts.Topic, Partition: p, Offset: next, MinBytes: 1, MaxBytes: fetchMaxBytes, MaxWait: fetchMaxWait})
		if err == nil {
			err = resp.Error
		}
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			if errors.Is(err, kafka.OffsetOutOfRange) {
				// Retention removed records before we read them: go on
				// from the partition's first offset still there.
				if first, lerr := ledger.ListOffsets(ctx, client, v.opts.Topic, []int{p}, kafka.FirstOffset); lerr == nil && first[p] > next {
					v.log.Warn("job view: records expired before they were read", "topic", v.opts.Topic, "partition", p, "from", next, "to", first[p])
					next = first[p]
					continue
				}
			}
			v.log.Warn("job view read failed; retrying", "topic", v.opts.Topic, "partition", p, "offset", next, "err", err)
			if !backoff.Sleep(ctx, time.Second) {
				return
			}
			continue
		}
		batch = batch[:0]
		for {
			rec, rerr := resp.Records.ReadRecord()
			if rerr != nil {
				if !errors.Is(rerr, io.EOF) {
					v.log.Warn("job view: reading a fetched batch failed; fetching again", "topic", v.opts.Topic, "partition", p, "offset", next, "err", rerr)
				}
				break
			}
			if rec.Offset < next {
				closeRecord(rec)
				continue // a fetch may start at the beginning of a batch
			}
			d := decoded{rec: Record{Partition: p, Offset: rec.Offset, Time: rec.Time}}
			if rec.Value != nil {
				n := rec.Value.Len()
				if cap(buf) < n {
					buf = make([]byte, n)
				}
				buf = buf[:n]
				if _, rerr := io.ReadFull(rec.Value, buf); rerr != nil {
					d.err = rerr
				}
			} else {
				buf = buf[:0]
			}
			closeRecord(rec)
			if d.err == nil {
				// The decoder copies what it keeps, so buf is reused.
				d.ev, d.err = job.Decode(buf)
			}
			if d.err != nil {
				d.err = fmt.Errorf("record %s/%d@%d is not a job event: %w", v.opts.Topic, p, rec.Offset, d.err)
			}
			batch = append(batch, d)
			next = rec.Offset + 1
			if len(batch) == applyBatchSize {
				// Apply in slices: a fetch holds tens of thousands of
				// records, and holding all their events decoded at once
				// was most of the rebuild's transient memory.
				v.applyBatch(p, batch, next, -1)
				clear(batch)
				batch = batch[:0]
			}
		}
		v.applyBatch(p, batch, next, resp.HighWatermark)
		clear(batch)
	}
}

// closeRecord hands a fetched record's key and value back to kafka-go
// once read. Each record batch of a fetch is copied into 64 KiB pages
// that go back to kafka-go's pool only when every record's key and value
// is closed; unclosed, every batch the view tailed was a new 64 KiB for
// the GC: with 1,000 POST /jobs a second (a record batch each, or a few)
// ~40 MB/s, 80% of serve's garbage.
func closeRecord(rec *kafka.Record) {
	if rec.Key != nil {
		rec.Key.Close()
	}
	if rec.Value != nil {
		rec.Value.Close()
	}
}

// decoded is one fetched record, decoded outside the view's lock.
type decoded struct {
	ev  job.Event
	rec Record
	err error
}

// applyBatch applies records of partition p under one lock and records
// how far p has been read (next) and its high watermark (-1: unknown).
func (v *View) applyBatch(p int, batch []decoded, next, highWatermark int64) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.batchNow = v.now().Unix()
	defer func() { v.batchNow = 0 }()
	for i := range batch {
		d := &batch[i]
		if d.err != nil {
			v.progress.invalid++
			if v.opts.Metrics != nil {
				v.opts.Metrics.InvalidRecords.Inc()
			}
			v.log.Debug("skipping a record that is not a job event", "err", d.err)
			continue
		}
		if d.ev.UpdatedAt.IsZero() {
			d.ev.UpdatedAt = d.rec.Time
		}
		v.applyLocked(d.ev, d.rec)
	}
	if ps := v.progress.parts[p]; ps != nil {
		ps.next = max(ps.next, next)
		if !ps.caughtUp && (next >= ps.endAtStart || highWatermark >= 0 && highWatermark <= next) {
			ps.caughtUp = true
			v.checkCaughtUpLocked()
		}
	}
}

// fetchMaxBytes bounds one fetch of one partition: large enough that a
// fetch's round trip is small next to decoding what it brought.
const fetchMaxBytes = 4 << 20

// applyBatchSize is how many decoded records are applied under one lock.
const applyBatchSize = 512

func (v *View) checkCaughtUpLocked() {
	for _, ps := range v.progress.parts {
		if !ps.caughtUp {
			return
		}
	}
	v.caughtUpOnce.Do(func() {
		close(v.caughtUp)
		v.log.Info("job view caught up", "topic", v.opts.Topic, "jobs", v.intJobs.n+len(v.strJobs))
		// Reading the topic made several times the view's size in
		// garbage (decoded events, fetch buffers); the heap grew to
		// twice the live view meanwhile. Give that back to the system
		// now, once, rather than hold it until the scavenger does (at 1 M
		// jobs ~600 MiB RSS at catch-up, ~175 MiB after; docs/benchmarks.md,
		// "View").
		go debug.FreeOSMemory()
	})
}

// partitions lists the topic's partition ids.
func (v *View) partitions(ctx context.Context, client *kafka.Client) ([]int, error) {
	md, err := client.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{v.opts.Topic}})
	if err != nil {
		return nil, fmt.Errorf("reading metadata of topic %s: %w", v.opts.Topic, err)
	}
	for _, t := range md.Topics {
		if t.Name != v.opts.Topic {
			continue
		}
		if t.Error != nil {
			if errors.Is(t.Error, kafka.UnknownTopicOrPartition) {
				return nil, fmt.Errorf("topic %q: %w (create it with 'jobctl topic create --topic %s --partitions N')", v.opts.Topic, ErrTopicNotFound, v.opts.Topic)
			}
			return nil, fmt.Errorf("reading metadata of topic %s: %w", v.opts.Topic, t.Error)
		}
		ids := make([]int, 0, len(t.Partitions))
		for _, p := range t.Partitions {
			ids = append(ids, p.ID)
		}
		slices.Sort(ids)
		if len(ids) == 0 {
			return nil, fmt.Errorf("topic %q has no partitions: %w", v.opts.Topic, ErrTopicNotFound)
		}
		return ids, nil
	}
	return nil, fmt.Errorf("topic %q: %w (create it with 'jobctl topic create --topic %s --partitions N')", v.opts.Topic, ErrTopicNotFound, v.opts.Topic)
}

type bounds struct{ first, last int64 }

// offsetBounds returns the first and end offsets of every partition.
func (v *View) offsetBounds(ctx context.Context, client *kafka.Client, parts []int) (map[int]bounds, error) {
	first, err := ledger.ListOffsets(ctx, client, v.opts.Topic, parts, kafka.FirstOffset)
	if err != nil {
		return nil, err
	}
	last, err := ledger.ListOffsets(ctx, client, v.opts.Topic, parts, kafka.LastOffset)
	if err != nil {
		return nil, err
	}
	out := make(map[int]bounds, len(parts))
	for _, p := range parts {
		out[p] = bounds{first: first[p], last: last[p]}
	}
	return out, nil
}

// applyMessages decodes and applies records of one partition the way
// readPartition does (benchmarks and tests without a broker).
func (v *View) applyMessages(ms []kafka.Message) {
	batch := make([]decoded, 0, len(ms))
	for _, m := range ms {
		d := decoded{rec: Record{Partition: m.Partition, Offset: m.Offset, Time: m.Time}}
		d.ev, d.err = ledger.Decode(m)
		batch = append(batch, d)
	}
	if len(ms) > 0 {
		v.applyBatch(ms[0].Partition, batch, ms[len(ms)-1].Offset+1, -1)
	}
}
