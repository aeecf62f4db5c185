package worker

import (
	"bytes"
	"context"
	"errors"
	"fmt"
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
	attemptParent context.Context // handlerCtx's values without its cancellation (attempt.go)
	fetched       chan struct{}   // closed when the fetcher has returned

	tracker  *OffsetTracker
	results  chan *outcome
	written  chan struct{} // closed when the recorder has written everything
	eventBuf []job.Event   // the recorder's, reused for each write
	// completedBuf is the recorder's, reused for each batch's offsets.
	completedBuf []int64

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
	p.attemptParent = context.WithoutCancel(p.handlerCtx)
	// One registration per partition instead of one per attempt: when
	// handlerCtx ends, so do the attempts of the partition's jobs.
	context.AfterFunc(p.handlerCtx, func() { w.attempts.cancelPartition(p, context.Cause(p.handlerCtx)) })
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
// kafka.LastOffset) and queues its NEW jobs. The fetching goroutine
// (fetcher.go) reads ahead while a batch is classified; it ends on its
// own once fetching stops (it may still be waiting for a fetch to
// return: fetch does not wait for that).
func (p *partition) fetch(offset int64) {
	w := p.w
	batches := make(chan *fetchedBatch, 1)
	go func() {
		client := w.conn.Client()
		if t, ok := client.Transport.(*kafka.Transport); ok {
			defer t.CloseIdleConnections()
		}
		f := &fetcher{client: client, topic: w.cfg.Topic, partition: p.id, maxWait: w.cfg.MaxWait,
			// Read committed: nothing of a transaction still open is
			// fetched. Records of *aborted* transactions still are:
			// kafka-go reads the broker's list of them and drops it
			// (so did the kafka.Reader used before). jobctl writes no
			// transactions; a transactional producer that aborts would
			// have its jobs run.
			isolation: kafka.ReadCommitted, group: w.cfg.Group, log: p.log}
		f.run(p.fetchCtx, offset, batches)
	}()
	for b := range batches {
		queued := p.queue(b)
		b.release()
		if !queued {
			return
		}
	}
}

// queue classifies a fetched batch and queues its jobs in the pool. It
// returns false when the partition stopped meanwhile.
func (p *partition) queue(b *fetchedBatch) bool {
	w := p.w
	w.noteActivity()
	for i := range b.records {
		r := &b.records[i]
		if !p.tracker.Fetched(p.id, r.offset) {
			continue
		}
		t, skip := p.classify(r)
		if skip {
			p.tracker.Completed(p.id, r.offset)
			continue
		}
		if t == nil {
			continue // handed to the recorder (a poison record)
		}
		if err := w.pool.submit(p.fetchCtx, t); err != nil {
			return false // revoked; the job stays uncommitted for the next owner
		}
	}
	return true
}

// classify decides what a record is for this group: a job to run (task),
// a record to pass over (skip: another status, another group's retry, a
// duplicate), or one handed to the recorder (nil, false): a poison
// record, which goes to the dead-letter topic, or a job whose run_at is
// ahead, which waits in the delay topic (scheduled.go). Records with
// jobctl's headers are classified without decoding their JSON.
func (p *partition) classify(r *fetchedRecord) (t *task, skip bool) {
	w := p.w
	h := r.h
	if h.ok && h.status != job.StatusNew {
		p.noteEvent(keyOf(r.key), h, r)
		w.count(&w.stats.skipped)
		return nil, true
	}
	if h.ok && h.hasGroup && !h.ourGroup {
		return nil, true // another group's retry
	}
	if reason := poisonReason(r.value); reason != "" {
		p.poison(r, reason)
		return nil, false
	}
	ev, err := job.Decode(r.value)
	if err != nil {
		p.poison(r, err.Error())
		return nil, false
	}
	// The job id, not the record key, names the job: a foreign producer
	// may send no key or another one; its events are still keyed by id
	// and written to this partition.
	key := ev.JobID.String()
	if ev.Status != job.StatusNew {
		// An event from a client that sets no headers.
		eh := recordHeaders{status: ev.Status, ok: true, hasGroup: ev.Group != "", ourGroup: ev.Group == w.cfg.Group, run: ev.Run, attempt: ev.Attempt}
		p.noteEvent(keyOfString(key), eh, r)
		w.count(&w.stats.skipped)
		return nil, true
	}
	if ev.Group != "" && ev.Group != w.cfg.Group {
		return nil, true
	}
	pos := attemptPos{run: int32(ev.Run), attempt: int32(ev.NextAttempt())}
	var seenKey jobKey
	if p.seen.enabled() {
		seenKey = keyOfString(key)
		if !p.seen.runs(seenKey, pos) {
			w.count(&w.stats.duplicates)
			p.log.Debug("skipping a job the group already ran", "job_id", key, "run", ev.Run, "attempt", ev.NextAttempt(), "offset", r.offset)
			return nil, true
		}
	}
	if !ev.RunAt.IsZero() && p.deferUntilDue(r.offset, ev) {
		return nil, false // SCHEDULED: handed to the recorder
	}
	p.seen.note(seenKey, pos, r.offset)
	return &task{p: p, offset: r.offset, key: key, event: ev}, false
}

// noteEvent remembers an event of this group's for duplicate detection
// and notices re-executions: two terminal events for one attempt, one of
// them this process's, mean the attempt ran twice (its offset had not
// been committed when another worker took the partition).
func (p *partition) noteEvent(key jobKey, h recordHeaders, r *fetchedRecord) {
	w := p.w
	if !h.ourGroup {
		return
	}
	pos := attemptPos{run: int32(h.run), attempt: int32(h.attempt)}
	if !h.status.Terminal() {
		p.seen.note(key, pos, r.offset)
		return
	}
	if p.seen.terminal(key, pos, r.offset, bytes.Contains(r.value, w.workerMarker)) {
		w.count(&w.stats.reexecuted)
		if w.metrics != nil {
			w.metrics.JobsReexecuted.Inc()
		}
	}
}

// poisonReason says why a record cannot be a job before decoding it.
func poisonReason(value []byte) string {
	switch {
	case len(value) == 0:
		return "empty record value (a tombstone or an empty message), not a job"
	case len(value) > job.MaxJobBytes:
		return fmt.Sprintf("record is %d bytes, over the %d byte limit for a job (its retry and dead letter could not be written)", len(value), job.MaxJobBytes)
	}
	return ""
}

// poison hands a record that is not a job to the recorder, which writes
// it to the dead-letter topic and then completes its offset.
func (p *partition) poison(r *fetchedRecord, reason string) {
	w := p.w
	// The fetched bytes are reused: the letter keeps copies.
	m := struct{ Key, Value []byte }{bytes.Clone(r.key), bytes.Clone(r.value)}
	w.count(&w.stats.invalid)
	if w.metrics != nil {
		w.metrics.InvalidRecords.Inc()
	}
	p.log.Warn("record is not a job: moving it to the dead-letter topic", "offset", r.offset, "reason", reason)
	l := deadletter.Letter{
		Kind:   deadletter.KindPoison,
		Reason: reason,
		Origin: deadletter.Origin{Topic: w.cfg.Topic, Partition: p.id, Offset: r.offset},
		DeadAt: time.Now().UTC(),
		Key:    m.Key,
		Record: m.Value,
		Group:  w.cfg.Group,
	}
	if id, err := job.ParseID(string(m.Key)); err == nil && len(m.Key) > 0 {
		l.JobID = id
	}
	p.results <- &outcome{offset: r.offset, letter: &l}
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
	client := w.conn.Client()
	if t, ok := client.Transport.(*kafka.Transport); ok {
		defer t.CloseIdleConnections()
	}
	f := &fetcher{client: client, topic: w.cfg.Topic, partition: p.id, maxWait: w.cfg.MaxWait, group: w.cfg.Group, log: p.log}
	b := &fetchedBatch{}
	n, stalls := 0, 0
	for next := from; next < to; {
		// A slow fetch (a loaded broker) is waited for: giving up early
		// would run again every job the history would have shown done.
		fctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		after, err := f.fill(fctx, b, next)
		cancel()
		if err != nil {
			if ctx.Err() == nil && errors.Is(err, context.DeadlineExceeded) {
				stalls++
				p.log.Debug("reading the partition's history: still waiting", "from", from, "to", to, "read", n, "waits", stalls)
				continue
			}
			return fmt.Errorf("reading offsets %d to %d: %w", from, to, err)
		}
		if after == next {
			// Nothing at or after next although the range was below the
			// end: it ends in offsets that hold no record (compacted
			// away, transaction markers).
			break
		}
		for i := range b.records {
			r := &b.records[i]
			if r.offset >= to {
				break
			}
			if r.h.ok && r.h.status != job.StatusNew {
				p.noteEvent(keyOf(r.key), r.h, r)
			}
			n++
		}
		next = after
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
