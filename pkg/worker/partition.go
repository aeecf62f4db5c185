package worker

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"github.com/jobctl/jobctl/pkg/backoff"
	"log/slog"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jobctl/jobctl/pkg/deadletter"
	"github.com/jobctl/jobctl/pkg/job"
	"github.com/jobctl/jobctl/pkg/ledger"
	"github.com/segmentio/kafka-go"
)

// Commit metadata. A partition handed over cleanly has no finished job
// above its committed offset, so its next owner need not look ahead for
// them; "open" (periodic commits, and anything older or foreign) makes
// the next owner read the partition to its end first, to skip the jobs
// that were finished but not yet committed when their worker died.
const (
	metaClean = "jobctl/1 clean"
	metaOpen  = "jobctl/1 open"
)

// partition is this worker's part of one assigned partition: it fetches
// the partition's records, queues its NEW jobs in the pool, records their
// outcomes (recorder.go) and tracks which offsets may be committed.
type partition struct {
	w   *Worker
	id  int
	log *slog.Logger

	// fetchCtx ends when the partition is revoked or lost: fetching stops
	// and queued jobs are dropped. Running jobs go on until they finish,
	// unless handlerCtx ends (partition lost, shutdown grace over, abort).
	fetchCtx      context.Context
	stopFetch     context.CancelFunc
	handlerCtx    context.Context
	cancelHandler context.CancelFunc
	fetched       chan struct{} // closed when the fetcher has returned

	tracker *OffsetTracker
	results chan *outcome
	written chan struct{} // closed when the recorder has written everything

	mu      sync.Mutex
	closing bool
	running int
	idle    *sync.Cond // signalled when running drops to 0
	lost    atomic.Bool

	seen *seenJobs // used by the fetcher goroutine only

	// cleanFrom is the lowest committed offset a hand-over may call
	// clean: below it, earlier owners may have finished jobs this owner
	// has not passed yet (the history it was told to read ahead). Until
	// the history scan knows that range it is math.MaxInt64: never clean.
	cleanFrom atomic.Int64
}

func (w *Worker) newPartition(id int, committed int64) *partition {
	p := &partition{
		w:       w,
		id:      id,
		log:     w.log.With("partition", id),
		fetched: make(chan struct{}),
		tracker: NewOffsetTracker(),
		results: make(chan *outcome, maxEventBatch),
		written: make(chan struct{}),
		seen:    newSeenJobs(w.cfg.DedupWindow),
	}
	p.idle = sync.NewCond(&p.mu)
	p.cleanFrom.Store(math.MaxInt64)
	p.fetchCtx, p.stopFetch = context.WithCancel(context.Background())
	p.handlerCtx, p.cancelHandler = context.WithCancel(w.handlerCtx)
	p.tracker.Assign(id, committed)
	return p
}

// stopped reports whether the partition no longer starts jobs.
func (p *partition) stopped() bool { return p.fetchCtx.Err() != nil }

// begin registers a job about to start; false means the partition is
// being given up and the job must not start.
func (p *partition) begin() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closing || p.stopped() {
		return false
	}
	p.running++
	return true
}

// end unregisters a job begun with begin.
func (p *partition) end() {
	p.mu.Lock()
	p.running--
	if p.running == 0 {
		p.idle.Broadcast()
	}
	p.mu.Unlock()
}

// runningJobs returns how many jobs of the partition are running.
func (p *partition) runningJobs() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.running
}

// start fetches from the committed offset (when the group has none, from
// fresh: see freshStarts) after rebuilding what the group has already run
// (seenJobs).
func (p *partition) start(committed int64, metadata string, fresh int64) {
	if committed < 0 && p.w.cfg.From == FromLatest {
		p.tracker.startAt(p.id, fresh)
	}
	switch {
	case !p.seen.enabled():
		p.cleanFrom.Store(-1) // nothing is read ahead, by anyone
	case committed >= 0 && metadata == metaClean:
		p.cleanFrom.Store(committed) // nothing finished above it
	}
	go p.recordLoop()
	go func() {
		defer close(p.fetched)
		if p.seen.enabled() {
			if err := p.scanHistory(committed, metadata, fresh); err != nil {
				if p.fetchCtx.Err() != nil {
					return
				}
				p.log.Warn("reading the partition's history for duplicate detection; going on without it", "err", err)
			}
		}
		if committed < 0 {
			committed = fresh
		}
		p.fetch(committed)
	}()
}

// giveUp stops the partition for a revocation: fetching stops, queued
// jobs are dropped, running ones finish and their events are written.
// It returns when nothing of the partition runs or waits to be written.
func (p *partition) giveUp() {
	p.stopFetch()
	<-p.fetched
	p.mu.Lock()
	p.closing = true
	for p.running > 0 {
		p.idle.Wait()
	}
	p.mu.Unlock()
	close(p.results)
	<-p.written
}

// fetch reads the partition from offset (or kafka.FirstOffset,
// kafka.LastOffset) and queues its NEW jobs.
func (p *partition) fetch(offset int64) {
	w := p.w
	r := kafka.NewReader(kafka.ReaderConfig{
		Brokers:        w.conn.Brokers,
		Topic:          w.cfg.Topic,
		Partition:      p.id,
		Dialer:         w.conn.Dialer(),
		MinBytes:       1,
		MaxBytes:       8 << 20,
		MaxWait:        w.cfg.MaxWait,
		ReadBackoffMin: 100 * time.Millisecond,
		ReadBackoffMax: time.Second,
		// Jobs of aborted transactions never happened.
		IsolationLevel: kafka.ReadCommitted,
		ErrorLogger:    kafkaLogger{p.log, slog.LevelDebug},
	})
	defer r.Close()
	if err := r.SetOffset(offset); err != nil {
		p.log.Error("setting the fetch offset", "offset", offset, "err", err)
		return
	}
	for {
		m, err := r.FetchMessage(p.fetchCtx)
		if err != nil {
			if p.fetchCtx.Err() != nil {
				return
			}
			p.log.Warn("fetching records; retrying", "err", err)
			if !backoff.Sleep(p.fetchCtx, 500*time.Millisecond) {
				return
			}
			continue
		}
		if !p.tracker.Fetched(p.id, m.Offset) {
			continue
		}
		w.noteActivity()
		t, skip := p.classify(m)
		if skip {
			p.tracker.Completed(p.id, m.Offset)
			continue
		}
		if t == nil {
			continue // handed to the recorder (a poison record)
		}
		if err := w.pool.submit(p.fetchCtx, t); err != nil {
			return // revoked; the job stays uncommitted for the next owner
		}
	}
}

// classify decides what a record is for this group: a job to run (task),
// a record to pass over (skip: another status, another group's retry, a
// duplicate), or one handed to the recorder (nil, false): a poison
// record, which goes to the dead-letter topic, or a job whose run_at is
// ahead, which waits in the delay topic (scheduled.go). Records with
// jobctl's headers are classified without decoding their JSON.
func (p *partition) classify(m kafka.Message) (t *task, skip bool) {
	w := p.w
	h := ledger.ReadHeaders(m)
	if h.OK && h.Status != job.StatusNew {
		p.noteEvent(string(m.Key), h, m)
		w.count(&w.stats.skipped)
		return nil, true
	}
	if h.OK && h.Group != "" && h.Group != w.cfg.Group {
		return nil, true // another group's retry
	}
	if reason := poisonReason(m); reason != "" {
		p.poison(m, reason)
		return nil, false
	}
	ev, err := job.Decode(m.Value)
	if err != nil {
		p.poison(m, err.Error())
		return nil, false
	}
	// The job id, not the record key, names the job: a foreign producer
	// may send no key or another one; its events are still keyed by id
	// and written to this partition.
	key := ev.JobID.String()
	if ev.Status != job.StatusNew {
		// An event from a client that sets no headers.
		p.noteEvent(key, ledger.Headers{Status: ev.Status, Group: ev.Group, Run: ev.Run, Attempt: ev.Attempt, OK: true}, m)
		w.count(&w.stats.skipped)
		return nil, true
	}
	if ev.Group != "" && ev.Group != w.cfg.Group {
		return nil, true
	}
	pos := attemptPos{run: int32(ev.Run), attempt: int32(ev.NextAttempt())}
	if p.seen.enabled() && !p.seen.runs(key, pos) {
		w.count(&w.stats.duplicates)
		p.log.Debug("skipping a job the group already ran", "job_id", key, "run", ev.Run, "attempt", ev.NextAttempt(), "offset", m.Offset)
		return nil, true
	}
	if !ev.RunAt.IsZero() && p.deferUntilDue(m.Offset, ev) {
		return nil, false // SCHEDULED: handed to the recorder
	}
	p.seen.note(key, pos, m.Offset)
	return &task{p: p, offset: m.Offset, key: key, event: ev}, false
}

// noteEvent remembers an event of this group's for duplicate detection
// and notices re-executions: two terminal events for one attempt, one of
// them this process's, mean the attempt ran twice (its offset had not
// been committed when another worker took the partition).
func (p *partition) noteEvent(key string, h ledger.Headers, m kafka.Message) {
	w := p.w
	if h.Group != w.cfg.Group {
		return
	}
	pos := attemptPos{run: int32(h.Run), attempt: int32(h.Attempt)}
	if !h.Status.Terminal() {
		p.seen.note(key, pos, m.Offset)
		return
	}
	if p.seen.terminal(key, pos, m.Offset, bytes.Contains(m.Value, w.workerMarker)) {
		w.count(&w.stats.reexecuted)
		if w.metrics != nil {
			w.metrics.JobsReexecuted.Inc()
		}
	}
}

// poisonReason says why a record cannot be a job before decoding it.
func poisonReason(m kafka.Message) string {
	switch {
	case len(m.Value) == 0:
		return "empty record value (a tombstone or an empty message), not a job"
	case len(m.Value) > job.MaxJobBytes:
		return fmt.Sprintf("record is %d bytes, over the %d byte limit for a job (its retry and dead letter could not be written)", len(m.Value), job.MaxJobBytes)
	}
	return ""
}

// poison hands a record that is not a job to the recorder, which writes
// it to the dead-letter topic and then completes its offset.
func (p *partition) poison(m kafka.Message, reason string) {
	w := p.w
	w.count(&w.stats.invalid)
	if w.metrics != nil {
		w.metrics.InvalidRecords.Inc()
	}
	p.log.Warn("record is not a job: moving it to the dead-letter topic", "offset", m.Offset, "reason", reason)
	l := deadletter.Letter{
		Kind:   deadletter.KindPoison,
		Reason: reason,
		Origin: deadletter.Origin{Topic: w.cfg.Topic, Partition: p.id, Offset: m.Offset},
		DeadAt: time.Now().UTC(),
		Key:    m.Key,
		Record: m.Value,
		Group:  w.cfg.Group,
	}
	if id, err := job.ParseID(string(m.Key)); err == nil && len(m.Key) > 0 {
		l.JobID = id
	}
	p.results <- &outcome{offset: m.Offset, letter: &l}
}

// scanHistory rebuilds seenJobs from the partition before fetching: the
// group's events in the dedup window below the committed offset and,
// unless the last owner handed the partition over cleanly, every record
// up to the current end, so jobs the last owner finished but did not
// commit before it died are not run again.
func (p *partition) scanHistory(committed int64, metadata string, fresh int64) error {
	w := p.w
	noCommit := committed < 0
	if noCommit {
		// A new group, or one whose last owner of this partition died
		// before its first commit (CI caught that: a crash a second after
		// the start re-ran every job the dead worker had finished). Only
		// reading tells them apart: from where the group starts, ahead.
		if fresh < 0 {
			return nil // the start is not known as an offset
		}
		committed, metadata = fresh, metaOpen
	}
	ctx, cancel := context.WithTimeout(p.fetchCtx, 2*time.Minute)
	defer cancel()
	first, end, err := w.offsetRange(ctx, p.id)
	if err != nil {
		return err
	}
	from := max(first, committed-int64(w.cfg.DedupWindow))
	if noCommit {
		from = max(first, committed)
	}
	to := committed
	if metadata != metaClean {
		to = min(end, committed+int64(w.cfg.DedupWindow))
	}
	// Up to to, earlier owners may have finished jobs: a hand-over
	// below it is not clean, whether or not this scan gets there (a
	// revocation during the scan committed "clean" at the old offset,
	// and the next owner ran again what the dead one had finished).
	p.cleanFrom.Store(max(to, committed))
	if from >= to {
		return nil
	}
	started := time.Now()
	// Reading a long history is work, not idleness: the idle timeout
	// must not stop the worker before its first job (a fresh group on a
	// big topic reads up to DedupWindow records per partition first).
	w.scanning.Add(1)
	defer w.scanning.Add(-1)
	r := kafka.NewReader(kafka.ReaderConfig{
		Brokers:   w.conn.Brokers,
		Topic:     w.cfg.Topic,
		Partition: p.id,
		Dialer:    w.conn.Dialer(),
		MinBytes:  1,
		MaxBytes:  8 << 20,
		MaxWait:   w.cfg.MaxWait,
	})
	defer r.Close()
	if err := r.SetOffset(from); err != nil {
		return err
	}
	n, stalls := 0, 0
	for {
		// A range can end in offsets that hold no record (compacted
		// away, transaction markers): a fetch that finds nothing more
		// while the reader is past the range ends the scan.
		// A slow fetch (a loaded broker) is waited for: giving up early
		// would run again every job the history would have shown done.
		fctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		m, err := r.FetchMessage(fctx)
		cancel()
		if err != nil {
			if ctx.Err() == nil && errors.Is(err, context.DeadlineExceeded) {
				if n > 0 && r.Offset() >= to {
					break
				}
				stalls++
				p.log.Debug("reading the partition's history: still waiting", "from", from, "to", to, "read", n, "waits", stalls)
				continue
			}
			return fmt.Errorf("reading offsets %d to %d: %w", from, to, err)
		}
		if h := ledger.ReadHeaders(m); h.OK && h.Status != job.StatusNew {
			p.noteEvent(string(m.Key), h, m)
		}
		n++
		if m.Offset+1 >= to {
			break
		}
	}
	p.log.Debug("read the partition's history", "from", from, "to", to, "records", n, "took", time.Since(started).Round(time.Millisecond))
	return nil
}

// offsetRange returns the first and the end offset of partition id.
func (w *Worker) offsetRange(ctx context.Context, id int) (first, end int64, err error) {
	firsts, err := ledger.ListOffsets(ctx, w.client, w.cfg.Topic, []int{id}, kafka.FirstOffset)
	if err != nil {
		return 0, 0, err
	}
	ends, err := ledger.ListOffsets(ctx, w.client, w.cfg.Topic, []int{id}, kafka.LastOffset)
	if err != nil {
		return 0, 0, err
	}
	return firsts[id], ends[id], nil
}
