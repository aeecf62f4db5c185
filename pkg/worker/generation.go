package worker

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jobctl/jobctl/pkg/job"
	"github.com/jobctl/jobctl/pkg/ledger"
	"github.com/segmentio/kafka-go"
)

// queueDepth is each worker goroutine's queue. Small, because every
// queued job must still run before a generation can end: dropping one
// would leave a hole below jobs already DONE, and the commit could not
// cover them.
const queueDepth = 4

// maxEventBatch bounds the events written in one request.
const maxEventBatch = 1000

// endReason says why a generation ended.
type endReason int

const (
	endLost   endReason = iota // kafka-go ended it: rebalance or lost coordinator; rejoin
	endStop                    // the worker is stopping; leave the group
	endGrowth                  // the topic grew past the group's assignment; leave and join anew
)

// task is one NEW job on its way through a generation.
type task struct {
	partition int
	offset    int64
	event     job.Event
}

// result is a processed job whose event is to be written.
type result struct {
	task
	event    job.Event // the DONE or FAILED event
	worker   string
	duration time.Duration
	ok       bool // set by the recorder once the event is acknowledged
}

// generation is the worker's part of one consumer group generation.
type generation struct {
	w       *Worker
	gen     *kafka.Generation
	log     *slog.Logger
	tracker *OffsetTracker

	lost    chan struct{} // closed when kafka-go ends the generation
	release func()        // lets kafka-go finish ending it

	fetchCtx  context.Context
	stopFetch context.CancelFunc
	fetchers  sync.WaitGroup
	dispatch  *KeyDispatcher[task]
	results   chan result
	recorded  chan struct{} // closed when the recorder has written everything
	committed chan struct{} // closed when the periodic committer has stopped
	growth    chan struct{} // closed when the partition check wants a new group
}

func (w *Worker) startGeneration(gen *kafka.Generation) *generation {
	g := &generation{
		w:         w,
		gen:       gen,
		log:       w.log.With("generation", gen.ID),
		tracker:   NewOffsetTracker(),
		lost:      make(chan struct{}),
		results:   make(chan result, maxEventBatch),
		recorded:  make(chan struct{}),
		committed: make(chan struct{}),
		growth:    make(chan struct{}),
	}
	// The holder keeps kafka-go from ending the generation (and rejoining,
	// or leaving) until this worker has drained it and committed.
	releaseCh := make(chan struct{})
	g.release = sync.OnceFunc(func() { close(releaseCh) })
	gen.Start(func(ctx context.Context) {
		select {
		case <-ctx.Done():
			close(g.lost)
			<-releaseCh
		case <-releaseCh:
		}
	})

	assigned := gen.Assignments[w.cfg.Topic]
	parts := make([]int, 0, len(assigned))
	for _, a := range assigned {
		g.tracker.Assign(a.ID, a.Offset)
		parts = append(parts, a.ID)
	}
	g.log.Info("joined generation", "member", gen.MemberID, "partitions", parts)
	w.mu.Lock()
	w.sum.Generations++
	w.mu.Unlock()
	w.inGeneration.Store(true)

	g.fetchCtx, g.stopFetch = context.WithCancel(context.Background())
	g.dispatch = NewKeyDispatcher(w.cfg.Concurrency, queueDepth, g.process)
	go g.recordLoop()
	for _, a := range assigned {
		g.fetchers.Go(func() { g.fetch(a.ID, a.Offset) })
	}
	go g.commitLoop()
	go g.watchPartitions()
	return g
}

// wait blocks until the generation must end and says why.
func (g *generation) wait(stopCtx context.Context) endReason {
	select {
	case <-g.lost:
		g.log.Info("generation ended by the group (rebalance); draining")
		return endLost
	case <-stopCtx.Done():
		return endStop
	case <-g.growth:
		return endGrowth
	}
}

// drain stops fetching, lets the jobs already handed to the workers finish
// and their events be written, and commits.
func (g *generation) drain() {
	g.w.inGeneration.Store(false)
	g.stopFetch()
	g.fetchers.Wait()
	g.dispatch.Close()
	close(g.results)
	<-g.recorded
	<-g.committed
	g.commit()
	g.log.Info("generation drained", "committed", g.tracker.Committed())
}

// fetch reads one partition from offset and hands its NEW jobs on.
func (g *generation) fetch(partition int, offset int64) {
	w := g.w
	log := g.log.With("partition", partition)
	r := kafka.NewReader(kafka.ReaderConfig{
		Brokers:        w.conn.Brokers,
		Topic:          w.cfg.Topic,
		Partition:      partition,
		Dialer:         w.conn.Dialer(),
		MinBytes:       1,
		MaxBytes:       8 << 20,
		MaxWait:        w.cfg.MaxWait,
		ReadBackoffMin: 100 * time.Millisecond,
		ReadBackoffMax: time.Second,
		// Jobs of aborted transactions never happened.
		IsolationLevel: kafka.ReadCommitted,
		ErrorLogger:    kafkaLogger{log, slog.LevelDebug},
	})
	defer r.Close()
	if err := r.SetOffset(offset); err != nil {
		log.Error("setting fetch offset", "offset", offset, "err", err)
		return
	}
	// Jobs this generation ran from this partition whose own DONE/FAILED
	// has not come back through the fetch yet: a terminal event by another
	// worker for one of them means the job ran twice.
	awaiting := map[string]struct{}{}
	for {
		m, err := r.FetchMessage(g.fetchCtx)
		if err != nil {
			if g.fetchCtx.Err() != nil {
				return
			}
			log.Warn("fetching records; retrying", "err", err)
			select {
			case <-g.fetchCtx.Done():
				return
			case <-time.After(500 * time.Millisecond):
			}
			continue
		}
		if !g.tracker.Fetched(partition, m.Offset) {
			continue
		}
		ev, ok := g.classify(m, awaiting)
		if !ok {
			g.tracker.Completed(partition, m.Offset)
			continue
		}
		w.inflight.Add(1)
		w.noteFetchedJob(time.Now())
		key := m.Key
		if len(key) == 0 {
			key = ev.Key()
		}
		awaiting[ev.JobID.String()] = struct{}{} // our events are keyed by job id
		if err := g.dispatch.Submit(g.fetchCtx, key, task{partition: partition, offset: m.Offset, event: ev}); err != nil {
			w.inflight.Add(-1)
			return // the generation is ending; the job stays uncommitted
		}
	}
}

// classify returns the job a record asks to run, or false for records to
// pass over: events that are not NEW (told by the status header, without
// decoding) and records that are not jobs at all, which are counted and
// logged with their position but never stop the worker.
//
// Terminal events of jobs in awaiting are also how re-executions are
// noticed, without decoding: ours carry this process's worker id.
func (g *generation) classify(m kafka.Message, awaiting map[string]struct{}) (job.Event, bool) {
	if status, ok := ledger.StatusHeader(m); ok && status != job.StatusNew {
		g.w.countSkipped()
		if status.Terminal() {
			g.checkRerun(awaiting, string(m.Key), bytes.Contains(m.Value, g.w.workerMarker))
		}
		return job.Event{}, false
	}
	ev, err := ledger.Decode(m)
	if err != nil {
		g.w.countInvalid()
		g.log.Warn("skipping a record that is not a job event", "partition", m.Partition, "offset", m.Offset, "err", err)
		return job.Event{}, false
	}
	if ev.Status != job.StatusNew {
		g.w.countSkipped()
		if ev.Status.Terminal() {
			g.checkRerun(awaiting, ev.JobID.String(), strings.HasPrefix(ev.Worker, g.w.id+"-"))
		}
		return job.Event{}, false
	}
	return ev, true
}

// checkRerun handles a DONE/FAILED of job key: our own ends the wait for
// it; another worker's, for a job we ran (or are running), means the job
// ran twice, because its offset had not been committed.
func (g *generation) checkRerun(awaiting map[string]struct{}, key string, ours bool) {
	if _, ok := awaiting[key]; !ok {
		return
	}
	delete(awaiting, key)
	if !ours {
		g.w.countRerun()
		g.log.Debug("job ran again after another worker had finished it", "job_id", key)
	}
}

// process runs one job on worker goroutine i, retrying up to MaxAttempts,
// and hands its DONE or FAILED event to the recorder.
func (g *generation) process(i int, t task) {
	w := g.w
	if w.handlerCtx.Err() != nil {
		w.inflight.Add(-1) // shutdown's grace is over: left for the next owner
		return
	}
	workerID := fmt.Sprintf("%s-%d", w.id, i)
	start := time.Now()
	var attempt atomic.Int64
	running := g.startRunningTimer(t, workerID, &attempt)
	var err error
	n := 1
	for ; ; n++ {
		attempt.Store(int64(n))
		ev := t.event
		ev.Attempt = n
		err = w.safeHandle(w.handlerCtx, ev)
		if err == nil || w.handlerCtx.Err() != nil || n >= w.cfg.MaxAttempts {
			break
		}
		g.log.Debug("job attempt failed; retrying", "job_id", t.event.JobID, "attempt", n, "err", err)
		if !sleepCtx(w.handlerCtx, retryBackoff(n)) {
			break
		}
	}
	running()
	dur := time.Since(start)
	if err != nil && w.handlerCtx.Err() != nil {
		g.log.Warn("job cancelled by shutdown; left for the next owner", "job_id", t.event.JobID, "partition", t.partition, "offset", t.offset)
		w.inflight.Add(-1)
		return
	}
	out := t.event
	out.Status = job.StatusDone
	out.Attempt = n
	out.Worker = workerID
	out.UpdatedAt = time.Now().UTC()
	out.Error = ""
	if err != nil {
		out.Status = job.StatusFailed
		out.Error = err.Error()
	}
	if w.metrics != nil {
		w.metrics.HandlerDuration.WithLabelValues(string(out.Status)).Observe(dur.Seconds())
	}
	g.results <- result{task: t, event: out, worker: workerID, duration: dur}
}

// startRunningTimer writes a RUNNING event if the job is still running
// after RunningAfter. The returned func stops the timer and, if the event
// is being written, waits for it, so RUNNING always precedes DONE in the
// partition.
func (g *generation) startRunningTimer(t task, workerID string, attempt *atomic.Int64) func() {
	w := g.w
	if w.cfg.RunningAfter < 0 {
		return func() {}
	}
	written := make(chan struct{})
	timer := time.AfterFunc(w.cfg.RunningAfter, func() {
		defer close(written)
		ev := t.event
		ev.Status = job.StatusRunning
		ev.Attempt = int(attempt.Load())
		ev.Worker = workerID
		ev.UpdatedAt = time.Now().UTC()
		if err := w.writer.AppendTo(w.writeCtx, t.partition, ev); err != nil {
			g.log.Warn("writing RUNNING event", "job_id", t.event.JobID, "err", err)
		}
	})
	return func() {
		if !timer.Stop() {
			<-written
		}
	}
}

// safeHandle runs the handler, turning a panic into the job's error: a
// broken handler fails its job, never the worker.
func (w *Worker) safeHandle(ctx context.Context, ev job.Event) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("handler panicked: %v", r)
		}
	}()
	return w.handler.Handle(ctx, ev)
}

// recordLoop writes the events of finished jobs in batches.
func (g *generation) recordLoop() {
	defer close(g.recorded)
	for r := range g.results {
		batch := []result{r}
	more:
		for len(batch) < maxEventBatch {
			select {
			case r2, ok := <-g.results:
				if !ok {
					break more
				}
				batch = append(batch, r2)
			default:
				break more
			}
		}
		g.record(batch)
	}
}

// record writes a batch's events, each into the partition of its job's
// NEW record, and then, for the acknowledged ones, appends to the
// processed log and marks the offsets completed.
func (g *generation) record(batch []result) {
	w := g.w
	byPartition := map[int][]*result{}
	for i := range batch {
		r := &batch[i]
		byPartition[r.partition] = append(byPartition[r.partition], r)
	}
	var wg sync.WaitGroup
	for p, rs := range byPartition {
		wg.Go(func() { g.appendWithRetry(p, rs) })
	}
	wg.Wait()
	now := time.Now()
	var lines []ProcessedRecord
	for _, r := range batch {
		if !r.ok {
			continue
		}
		lines = append(lines, ProcessedRecord{
			JobID: r.event.JobID, Status: r.event.Status, Worker: r.worker, Group: w.cfg.Group,
			Partition: r.partition, Offset: r.offset, DurationMS: float64(r.duration.Microseconds()) / 1000,
			Time: now.UTC(), Attempt: r.event.Attempt,
		})
	}
	if err := w.plog.Write(lines...); err != nil {
		w.logErrOnce.Do(func() { g.log.Error("processed log", "err", err) })
	}
	for _, r := range batch {
		if r.ok {
			g.tracker.Completed(r.partition, r.offset)
			w.recordJob(r.event.Status, now)
			if r.event.Status == job.StatusFailed {
				g.log.Info("job failed", "job_id", r.event.JobID, "attempt", r.event.Attempt, "err", r.event.Error)
			}
		}
		w.inflight.Add(-1)
	}
	w.lastActivity.Store(now.UnixNano())
}

// appendWithRetry writes rs's events to partition until all are
// acknowledged or the write deadline of a shutdown passes. Only the
// events that failed are retried, so a partial failure does not duplicate
// the others.
func (g *generation) appendWithRetry(partition int, rs []*result) {
	w := g.w
	for attempt := 1; ; attempt++ {
		events := make([]job.Event, len(rs))
		for i, r := range rs {
			events[i] = r.event
		}
		err := w.writer.AppendTo(w.writeCtx, partition, events...)
		if err == nil {
			for _, r := range rs {
				r.ok = true
			}
			return
		}
		var we kafka.WriteErrors
		if errors.As(err, &we) && len(we) == len(rs) {
			failed := rs[:0:0]
			for i, r := range rs {
				if we[i] == nil {
					r.ok = true
				} else {
					failed = append(failed, r)
				}
			}
			rs = failed
		}
		if w.writeCtx.Err() != nil {
			g.log.Error("giving up writing job events at shutdown; their jobs stay uncommitted and will run again", "partition", partition, "jobs", len(rs), "err", err)
			return
		}
		g.log.Warn("writing job events; retrying", "partition", partition, "jobs", len(rs), "attempt", attempt, "err", err)
		if !sleepCtx(w.writeCtx, retryBackoff(attempt)) {
			return
		}
	}
}

// commitLoop commits completed offsets every CommitInterval until
// fetching stops; drain makes the final commit.
func (g *generation) commitLoop() {
	defer close(g.committed)
	t := time.NewTicker(g.w.cfg.CommitInterval)
	defer t.Stop()
	for {
		select {
		case <-g.fetchCtx.Done():
			return
		case <-t.C:
			g.commit()
		}
	}
}

// commit sends the tracker's low-water marks that moved since the last
// commit. Failures are logged; the next commit carries the same offsets.
func (g *generation) commit() {
	offsets := g.tracker.Committable()
	if len(offsets) == 0 {
		return
	}
	if err := g.gen.CommitOffsets(map[string]map[int]int64{g.w.cfg.Topic: offsets}); err != nil {
		g.log.Warn("committing offsets", "offsets", offsets, "err", err)
		return
	}
	g.tracker.MarkCommitted(offsets)
	g.log.Debug("committed offsets", "offsets", offsets)
}

// watchPartitions is the fallback for kafka-go's partition watcher, which
// has known races: when the topic has partitions that no member of the
// stable group owns, twice in a row, the worker leaves and joins anew,
// which forces a rebalance that assigns them.
func (g *generation) watchPartitions() {
	t := time.NewTicker(g.w.cfg.PartitionCheckInterval)
	defer t.Stop()
	strikes := 0
	for {
		select {
		case <-g.fetchCtx.Done():
			return
		case <-t.C:
		}
		n, err := g.w.unassigned(g.fetchCtx)
		if err != nil {
			if g.fetchCtx.Err() == nil {
				g.log.Debug("checking partition assignment", "err", err)
			}
			strikes = 0
			continue
		}
		if n == 0 {
			strikes = 0
			continue
		}
		if strikes++; strikes >= 2 {
			g.log.Info("topic has partitions no group member owns; rejoining the group", "unassigned", n)
			close(g.growth)
			return
		}
	}
}

func retryBackoff(attempt int) time.Duration {
	d := 100 * time.Millisecond << min(attempt-1, 6)
	return min(d, 5*time.Second)
}

// sleepCtx waits d; false means ctx ended first.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
