// Package worker is jobctl's job runtime: a member of a consumer group
// that runs the NEW jobs of its partitions through a handler.Handler and
// records each attempt's outcome on the job topic, so that nothing can
// stall it: not a slow, hung, failing, huge or poisoned job, not a
// rebalance, not a crash. docs/runtime.md is the contract; the parts live
// in files named after them:
//
//   - worker.go     the process: lifecycle, shutdown, idle timeout, summary
//   - partition.go  one assigned partition: fetching, classifying records,
//     reading its history for duplicate detection, giving it up
//   - dedup.go      what the group already ran (seenJobs)
//   - scheduled.go  a NEW whose run_at is ahead: SCHEDULED, parked in
//     pkg/delay until due
//   - startoffsets.go  where a group without committed offsets starts
//     (--from) and the announcement of it
//   - pool.go       the job pool: C slots, one job per id at a time
//   - attempt.go    running one attempt: time limit, panics, outcome
//   - retry.go      policies and backoff (retries wait in pkg/delay)
//   - recorder.go   writing outcomes: delay record, dead letter, event
//   - commit.go     committing contiguous completed offsets
//   - control.go    cancel and pause (pkg/control's topic)
//   - tracker.go    which offsets are complete
//
// Group membership (static, cooperative, heartbeats throughout) is
// pkg/group; the delay topic pkg/delay; dead letters pkg/deadletter.
package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jobctl/jobctl/pkg/control"
	"github.com/jobctl/jobctl/pkg/deadletter"
	"github.com/jobctl/jobctl/pkg/delay"
	"github.com/jobctl/jobctl/pkg/group"
	"github.com/jobctl/jobctl/pkg/handler"
	"github.com/jobctl/jobctl/pkg/job"
	"github.com/jobctl/jobctl/pkg/kafkaconn"
	"github.com/jobctl/jobctl/pkg/ledger"
	"github.com/jobctl/jobctl/pkg/metrics"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"
)

// Defaults for the timing fields of Config.
const (
	DefaultSessionTimeout = 10 * time.Second
	DefaultMaxWait        = 500 * time.Millisecond
	DefaultRunningAfter   = time.Second
	DefaultDedupWindow    = 100000
)

// Config is what a Worker needs to know.
type Config struct {
	Topic string
	Group string
	// Concurrency is how many jobs run at once in this process.
	Concurrency int
	// Policy is how jobs are run and retried; Policies override it per
	// job type.
	Policy   Policy
	Policies map[string]Policy
	// CommitInterval is how often completed offsets are committed.
	CommitInterval time.Duration
	// Grace is how long running jobs may take to finish after shutdown
	// starts, before their handlers are cancelled.
	Grace time.Duration
	// IdleTimeout stops the worker after this long without new jobs;
	// 0 runs until the context ends.
	IdleTimeout time.Duration
	// ProcessedLog is a file that gets one JSON line per finished
	// attempt; empty means none.
	ProcessedLog string
	// RunningAfter is how long an attempt runs before a RUNNING event is
	// written for it (0 = DefaultRunningAfter, negative = never).
	RunningAfter time.Duration
	// DedupWindow is how many records per partition duplicate detection
	// covers (0 = DefaultDedupWindow, negative = off).
	DedupWindow int
	// InstanceID makes the membership static (see pkg/group).
	InstanceID     string
	SessionTimeout time.Duration
	MaxWait        time.Duration
	// PartitionCheckInterval is how often the topic's partition count is
	// checked; 0 keeps pkg/group's default.
	PartitionCheckInterval time.Duration
	// NoReleaser leaves releasing due retries to other processes (tests).
	NoReleaser bool
	// From is where the group starts on a partition it has no committed
	// offset on: FromEarliest (also when empty) or FromLatest.
	From string
}

func (c *Config) setDefaults() {
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	def(&c.SessionTimeout, DefaultSessionTimeout)
	def(&c.MaxWait, DefaultMaxWait)
	def(&c.RunningAfter, DefaultRunningAfter)
	def(&c.CommitInterval, time.Second)
	if c.Concurrency < 1 {
		c.Concurrency = 1
	}
	switch {
	case c.DedupWindow == 0:
		c.DedupWindow = DefaultDedupWindow
	case c.DedupWindow < 0:
		c.DedupWindow = 0
	}
	c.Policy = c.Policy.withDefaults()
}

// Summary is what a Worker did, for the final report.
type Summary struct {
	Group  string `json:"group"`
	Topic  string `json:"topic"`
	Worker string `json:"worker"`
	// Processed counts finished attempts: Done + Failed (retried later)
	// + Dead.
	Processed int64 `json:"processed"`
	Done      int64 `json:"done"`
	Failed    int64 `json:"failed"`
	Dead      int64 `json:"dead"`
	// Cancelled counts runs ended CANCELED (not in Processed); Scheduled
	// counts NEW jobs recorded SCHEDULED until their run_at.
	Cancelled int64 `json:"cancelled"`
	Scheduled int64 `json:"scheduled"`
	// Invalid counts poison records (moved to the dead-letter topic);
	// Skipped counts job events that are not NEW; DuplicatesSkipped NEW
	// records of jobs the group had already run.
	Invalid           int64 `json:"invalid"`
	Skipped           int64 `json:"skipped"`
	DuplicatesSkipped int64 `json:"duplicates_skipped"`
	// Reexecuted counts attempts this worker ran that another worker had
	// also finished, noticed when that worker's event is fetched.
	Reexecuted int64 `json:"reexecuted"`
	// Interrupted counts attempts stopped by shutdown or a lost
	// partition (left uncommitted); Abandoned counts handlers that did
	// not return after their context ended.
	Interrupted int64 `json:"interrupted"`
	Abandoned   int64 `json:"abandoned"`
	// Assignments counts the times partitions were assigned.
	Assignments int `json:"assignments"`
	// ElapsedSeconds is the whole run; ActiveSeconds runs from the first
	// job fetched to the last one recorded, and JobsPerSecond is
	// Processed over it, so the idle timeout does not dilute the rate.
	ElapsedSeconds float64 `json:"elapsed_seconds"`
	ActiveSeconds  float64 `json:"active_seconds"`
	JobsPerSecond  float64 `json:"jobs_per_second"`
	StopReason     string  `json:"stop_reason"`
}

// Options are a Worker's optional collaborators.
type Options struct {
	Logger  *slog.Logger     // nil discards
	Metrics *metrics.Metrics // nil counts nothing
	// Abort, when it ends, stops the worker at once: running handlers are
	// cancelled and nothing more is written (a second Ctrl-C).
	Abort context.Context
}

// Worker is one consumer process's membership in the group.
type Worker struct {
	cfg           Config
	defaultPolicy Policy
	policies      map[string]Policy
	conn          *kafkaconn.Conn
	client        *kafka.Client
	handler       handler.Handler
	resultHandler handler.ResultHandler // the handler, when it returns results
	prompt        promptHandler         // the handler, when it says which jobs it returns promptly
	log           *slog.Logger
	metrics       *metrics.Metrics
	// The handler duration histogram's two series, looked up once
	// (WithLabelValues hashes its labels on every call).
	handlerDone, handlerFailed prometheus.Observer
	abort                      context.Context
	id                         string // hostname-pid; slot n is id-n
	// workerMarker is how this process's events look in JSON, to tell
	// them from other workers' without decoding.
	workerMarker []byte

	writer *ledger.Writer
	delays *delay.Writer
	dlq    *deadletter.Writer
	plog   *ProcessedLog
	pool   *jobPool
	member *group.Member

	control  *control.Tail
	attempts runningAttempts
	paused   atomic.Bool // the group is paused (control.go)

	// handlerCtx ends when running handlers must stop (grace over,
	// abort); writeCtx when nothing more may be written (abort).
	handlerCtx context.Context
	writeCtx   context.Context

	mu    sync.Mutex
	parts map[int]*partition

	running      atomic.Int64 // attempts running now
	scanning     atomic.Int64 // partitions reading their history (partition.go)
	lastActivity atomic.Int64 // unix nanos of the last record fetched or outcome written
	stats        struct {
		processed, done, failed, dead, cancelled, scheduled, invalid, skipped, duplicates, reexecuted, interrupted, abandoned atomic.Int64
	}
	assignments atomic.Int64
	announced   atomic.Bool // freshStarts said where the group starts
	firstJob    atomic.Int64
	lastJob     atomic.Int64
	logErrOnce  sync.Once
}

// ErrIdle is the stop cause when IdleTimeout passes without jobs.
var ErrIdle = errors.New("no new jobs within the idle timeout")

// New returns a worker; Run starts it.
func New(conn *kafkaconn.Conn, cfg Config, h handler.Handler, opts Options) (*Worker, error) {
	if cfg.Topic == "" || cfg.Group == "" {
		return nil, errors.New("worker: topic and group are required")
	}
	if h == nil {
		return nil, errors.New("worker: a handler is required")
	}
	cfg.setDefaults()
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	abort := opts.Abort
	if abort == nil {
		abort = context.Background()
	}
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "localhost"
	}
	w := &Worker{
		cfg:           cfg,
		defaultPolicy: cfg.Policy,
		policies:      make(map[string]Policy, len(cfg.Policies)),
		conn:          conn,
		client:        conn.Client(),
		handler:       h,
		log:           log.With("group", cfg.Group, "topic", cfg.Topic),
		metrics:       opts.Metrics,
		abort:         abort,
		id:            fmt.Sprintf("%s-%d", host, os.Getpid()),
		parts:         map[int]*partition{},
	}
	for typ, p := range cfg.Policies {
		w.policies[typ] = cfg.Policy.override(p)
	}
	w.resultHandler, _ = h.(handler.ResultHandler)
	w.prompt, _ = h.(promptHandler)
	w.attempts.init(cfg.Concurrency)
	if w.metrics != nil {
		w.handlerDone = w.metrics.HandlerDuration.WithLabelValues(string(job.StatusDone))
		w.handlerFailed = w.metrics.HandlerDuration.WithLabelValues(string(job.StatusFailed))
	}
	w.workerMarker = []byte(`"worker":"` + w.id + `-`)
	w.control = control.NewTail(conn, cfg.Topic, control.TailOptions{Logger: w.log.With("part", "control"), OnChange: w.onControl})
	return w, nil
}

// ID is the worker's id, hostname-pid; the id of its slot n (in events
// and the processed log) is ID()-n.
func (w *Worker) ID() string { return w.id }

// Run consumes until ctx ends or the idle timeout passes. Then it stops
// starting jobs, lets running ones finish within the grace period (the
// abort context cuts that short), writes their outcomes, commits, leaves
// the group and returns what it did. Errors are returned only for
// problems that make consuming impossible (the topic does not exist, the
// processed log cannot be opened, the instance id is in use); job and
// broker errors are logged and retried.
func (w *Worker) Run(ctx context.Context) (Summary, error) {
	start := time.Now()
	if err := w.checkTopic(ctx); err != nil {
		return Summary{}, err
	}
	if err := ledger.EnsureAuxTopics(ctx, w.conn, w.cfg.Topic); err != nil {
		return Summary{}, err
	}
	stopControl, ok := w.startControl(ctx)
	if !ok {
		return w.summary(start, ctx), nil // stopped while starting
	}
	defer stopControl()
	if w.cfg.ProcessedLog != "" {
		plog, err := OpenProcessedLog(w.cfg.ProcessedLog)
		if err != nil {
			return Summary{}, err
		}
		w.plog = plog
		defer func() {
			if err := plog.Close(); err != nil {
				w.log.Error("closing the processed log", "err", err)
			}
		}()
	}
	// Each partition's recorder hands its outcomes over in batches, one
	// write at a time, and waits for it; the writer sends each call at
	// once. Under load the batches grow by themselves while the previous
	// write is in flight.
	w.writer = ledger.NewWriter(w.conn, w.cfg.Topic)
	w.delays = delay.NewWriter(w.conn, w.cfg.Topic)
	w.dlq = deadletter.NewWriter(w.conn, w.cfg.Topic)
	defer func() {
		if err := errors.Join(w.writer.Close(), w.delays.Close(), w.dlq.Close()); err != nil {
			w.log.Warn("closing writers", "err", err)
		}
	}()

	handlerCtx, cancelHandlers := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelHandlers()
	writeCtx, cancelWrites := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelWrites()
	w.handlerCtx, w.writeCtx = handlerCtx, writeCtx

	member, err := group.New(group.Config{
		Client:                 w.client,
		Group:                  w.cfg.Group,
		Topic:                  w.cfg.Topic,
		InstanceID:             w.cfg.InstanceID,
		SessionTimeout:         w.cfg.SessionTimeout,
		RebalanceTimeout:       w.rebalanceTimeout(),
		PartitionCheckInterval: w.cfg.PartitionCheckInterval,
		Logger:                 w.log,
	}, w)
	if err != nil {
		return Summary{}, err
	}
	w.member = member

	// stopCtx ends on the caller's stop or the idle timeout: the member
	// then revokes everything (Revoked drains) and leaves.
	stopCtx, stop := context.WithCancelCause(ctx)
	defer stop(nil)
	runDone := make(chan struct{})
	defer close(runDone)
	go w.watchStop(stopCtx, runDone, cancelHandlers, cancelWrites)
	w.pool = newJobPool(max(64, 4*w.cfg.Concurrency))
	w.lastActivity.Store(time.Now().UnixNano())
	if w.cfg.IdleTimeout > 0 {
		go w.watchIdle(stopCtx, stop)
	}

	slotsCtx, stopSlots := context.WithCancel(context.Background())
	var slots sync.WaitGroup
	for n := range w.cfg.Concurrency {
		slots.Go(func() { w.slot(slotsCtx, n) })
	}
	var background sync.WaitGroup
	bgCtx, stopBackground := context.WithCancel(context.WithoutCancel(ctx))
	background.Go(func() { w.commitLoop(bgCtx) })
	if !w.cfg.NoReleaser {
		releaser := delay.NewReleaser(w.conn, delay.ReleaserConfig{JobTopic: w.cfg.Topic, Logger: w.log.With("part", "delay")})
		background.Go(func() {
			if err := releaser.Run(stopCtx); err != nil && stopCtx.Err() == nil {
				w.log.Error("releasing due retries stopped", "err", err)
			}
		})
	}

	runErr := w.member.Run(stopCtx)
	stopBackground()
	background.Wait()
	stopSlots()
	slots.Wait()
	if runErr != nil && stopCtx.Err() == nil {
		return w.summary(start, stopCtx), runErr
	}
	return w.summary(start, stopCtx), nil
}

// rebalanceTimeout is how long the coordinator may wait for this member
// to rejoin; a member giving partitions up waits for their running jobs
// first, so it must cover the longest attempt.
func (w *Worker) rebalanceTimeout() time.Duration {
	const floor, ceiling = time.Minute, 30 * time.Minute
	longest := w.defaultPolicy.Timeout
	for _, p := range w.policies {
		if p.Timeout == 0 {
			return ceiling
		}
		longest = max(longest, p.Timeout)
	}
	if longest == 0 {
		return ceiling
	}
	return min(max(longest+abandonAfter+10*time.Second, floor), ceiling)
}

// watchStop announces a shutdown, cancels running handlers once the grace
// period is over, and stops everything at once on abort.
func (w *Worker) watchStop(stopCtx context.Context, runDone <-chan struct{}, cancelHandlers, cancelWrites context.CancelFunc) {
	select {
	case <-runDone:
		return
	case <-stopCtx.Done():
	case <-w.abort.Done():
	}
	if w.abort.Err() == nil {
		w.log.Info(fmt.Sprintf("stopping: no new jobs start; waiting up to %s for %d running jobs to finish (interrupt again to stop at once)", w.cfg.Grace, w.running.Load()),
			"reason", context.Cause(stopCtx))
	}
	grace := time.NewTimer(w.cfg.Grace)
	defer grace.Stop()
	select {
	case <-runDone:
		return
	case <-w.abort.Done():
		w.log.Warn("stopping at once: running jobs are cancelled and left uncommitted for the next owner", "running", w.running.Load())
		cancelHandlers()
		cancelWrites()
		return
	case <-grace.C:
		w.log.Warn("grace period over: cancelling running jobs (they stay uncommitted and will run again)", "running", w.running.Load())
		cancelHandlers()
	}
	select {
	case <-runDone:
	case <-w.abort.Done():
		cancelWrites()
	case <-time.After(10 * time.Second):
		cancelWrites()
	}
}

// Assigned starts the partitions the group gave this member (group.Handler).
func (w *Worker) Assigned(ctx context.Context, parts []group.Partition) {
	w.assignments.Add(1)
	ids := make([]int, 0, len(parts))
	fresh := w.freshStarts(ctx, parts)
	for _, gp := range parts {
		p := w.newPartition(gp.ID, gp.Offset)
		w.mu.Lock()
		w.parts[gp.ID] = p
		w.mu.Unlock()
		p.start(gp.Offset, gp.Metadata, fresh[gp.ID])
		ids = append(ids, gp.ID)
	}
	w.noteActivity()
	w.log.Info("partitions assigned", "partitions", ids)
}

// Revoked gives partitions up (group.Handler): fetching stops, queued
// jobs are dropped (the next owner runs them), running jobs finish and
// their outcomes are written, and the offsets are committed. The member
// keeps heartbeating meanwhile.
func (w *Worker) Revoked(ctx context.Context, ids []int) {
	ps := w.takePartitions(ids)
	if len(ps) == 0 {
		return
	}
	running := 0
	for _, p := range ps {
		p.stopFetch()
		running += p.runningJobs()
	}
	w.log.Info("giving partitions up: waiting for their running jobs", "partitions", ids, "running", running)
	// Should the session end meanwhile, another member may get these
	// partitions: stop their jobs at once then.
	stopWatching := context.AfterFunc(ctx, func() {
		for _, p := range ps {
			p.lost.Store(true)
			p.cancelHandler()
		}
	})
	defer stopWatching()
	var wg sync.WaitGroup
	for _, p := range ps {
		wg.Go(p.giveUp)
	}
	wg.Wait()
	w.commit(ctx, ps, true)
	w.log.Info("partitions given up", "partitions", ids)
}

// Lost stops partitions taken away without a chance to commit
// (group.Handler): their running handlers are cancelled at once, since
// another member may already run the same jobs.
func (w *Worker) Lost(ids []int) {
	ps := w.takePartitions(ids)
	for _, p := range ps {
		p.lost.Store(true)
		p.cancelHandler()
	}
	for _, p := range ps {
		go p.giveUp()
	}
	if len(ps) > 0 {
		w.log.Warn("partitions lost (the group gave them away): their running jobs are cancelled", "partitions", ids)
	}
}

func (w *Worker) takePartitions(ids []int) []*partition {
	w.mu.Lock()
	defer w.mu.Unlock()
	var ps []*partition
	for _, id := range ids {
		if p := w.parts[id]; p != nil {
			ps = append(ps, p)
			delete(w.parts, id)
		}
	}
	return ps
}

func (w *Worker) ownedPartitions() []*partition {
	w.mu.Lock()
	defer w.mu.Unlock()
	ps := make([]*partition, 0, len(w.parts))
	for _, p := range w.parts {
		ps = append(ps, p)
	}
	slices.SortFunc(ps, func(a, b *partition) int { return a.id - b.id })
	return ps
}

// watchIdle stops the worker after IdleTimeout with nothing fetched,
// running or waiting to be written, counted from its first assignment.
func (w *Worker) watchIdle(stopCtx context.Context, stop context.CancelCauseFunc) {
	tick := min(max(w.cfg.IdleTimeout/10, 20*time.Millisecond), time.Second)
	t := time.NewTicker(tick)
	defer t.Stop()
	for {
		select {
		case <-stopCtx.Done():
			return
		case <-t.C:
		}
		// Busy (running, queued, reading a partition's history), not in
		// the group yet (the first join can wait for a crashed member's
		// session to expire), or paused: not idle.
		if w.running.Load() > 0 || w.pool.queued() > 0 || w.scanning.Load() > 0 || w.member.Generation() < 0 || w.paused.Load() {
			w.noteActivity()
			continue
		}
		if time.Since(time.Unix(0, w.lastActivity.Load())) >= w.cfg.IdleTimeout {
			w.log.Info("no new jobs: stopping", "timeout", w.cfg.IdleTimeout)
			stop(ErrIdle)
			return
		}
	}
}

func (w *Worker) noteActivity() { w.lastActivity.Store(time.Now().UnixNano()) }

func (w *Worker) count(c *atomic.Int64) { c.Add(1) }

// outcomeCounts counts a batch's written attempt outcomes by status.
type outcomeCounts struct{ done, failed, dead, cancelled int64 }

func (c *outcomeCounts) add(status job.Status) {
	switch status {
	case job.StatusDone:
		c.done++
	case job.StatusFailed:
		c.failed++
	case job.StatusDead:
		c.dead++
	case job.StatusCancelled:
		c.cancelled++
	}
}

// countOutcomes counts a batch of written attempt outcomes, ended at at.
func (w *Worker) countOutcomes(c outcomeCounts, at time.Time) {
	for _, s := range []struct {
		status job.Status
		n      int64
		stat   *atomic.Int64
	}{{job.StatusDone, c.done, &w.stats.done}, {job.StatusFailed, c.failed, &w.stats.failed}, {job.StatusDead, c.dead, &w.stats.dead}, {job.StatusCancelled, c.cancelled, &w.stats.cancelled}} {
		if s.n == 0 {
			continue
		}
		s.stat.Add(s.n)
		if w.metrics != nil {
			w.metrics.JobsProcessed.WithLabelValues(string(s.status)).Add(float64(s.n))
		}
	}
	if n := c.done + c.failed + c.dead; n > 0 {
		w.stats.processed.Add(n)
		ns := at.UnixNano()
		w.firstJob.CompareAndSwap(0, ns)
		w.lastJob.Store(ns)
	}
}

func (w *Worker) summary(start time.Time, stopCtx context.Context) Summary {
	s := Summary{
		Group: w.cfg.Group, Topic: w.cfg.Topic, Worker: w.id,
		Processed: w.stats.processed.Load(), Done: w.stats.done.Load(), Failed: w.stats.failed.Load(), Dead: w.stats.dead.Load(), Cancelled: w.stats.cancelled.Load(), Scheduled: w.stats.scheduled.Load(),
		Invalid: w.stats.invalid.Load(), Skipped: w.stats.skipped.Load(), DuplicatesSkipped: w.stats.duplicates.Load(),
		Reexecuted: w.stats.reexecuted.Load(), Interrupted: w.stats.interrupted.Load(), Abandoned: w.stats.abandoned.Load(),
		Assignments:    int(w.assignments.Load()),
		ElapsedSeconds: time.Since(start).Seconds(),
	}
	if first := w.firstJob.Load(); first != 0 {
		s.ActiveSeconds = time.Duration(w.lastJob.Load() - first).Seconds()
		if s.ActiveSeconds > 0 {
			s.JobsPerSecond = float64(s.Processed) / s.ActiveSeconds
		}
	}
	switch {
	case w.abort.Err() != nil:
		s.StopReason = "aborted"
	case errors.Is(context.Cause(stopCtx), ErrIdle):
		s.StopReason = "idle timeout"
	default:
		s.StopReason = "interrupted"
	}
	return s
}

// checkTopic fails early, with advice, when the topic is missing or the
// brokers cannot be reached.
func (w *Worker) checkTopic(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	n, err := ledger.Partitions(ctx, w.client, w.cfg.Topic)
	if err != nil {
		return err
	}
	if n == 0 {
		return fmt.Errorf("topic %q has no partitions", w.cfg.Topic)
	}
	return nil
}

// kafkaLogger sends kafka-go's printf logging to slog.
type kafkaLogger struct {
	l     *slog.Logger
	level slog.Level
}

func (k kafkaLogger) Printf(format string, args ...any) {
	if k.l.Enabled(context.Background(), k.level) {
		k.l.Log(context.Background(), k.level, fmt.Sprintf(format, args...), "component", "kafka-go")
	}
}
