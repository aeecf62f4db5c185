// Package worker is jobctl's consumer-group runtime: it joins a Kafka
// consumer group, runs the NEW jobs of its assigned partitions through a
// handler.Handler, appends a DONE or FAILED event for each to the job's
// own partition, and commits offsets only over jobs whose event is
// written.
//
// Shape: per generation, one fetcher per assigned partition hands jobs to
// a KeyDispatcher (hash(key) % concurrency), so jobs of one key run in
// order and jobs of different keys run in parallel even within one
// partition. Finished jobs go to one recorder that batches their events
// per partition, waits for Kafka's acknowledgement, appends to the
// processed log and marks the offsets completed in an OffsetTracker; a
// committer commits the tracker's contiguous low-water marks. When a
// generation ends (rebalance, shutdown, partition growth) fetching stops,
// the jobs already handed to the workers (a few per goroutine) finish,
// their events are written and the final offsets are committed before the
// group may rejoin or leave: that is what keeps "one DONE per job" true
// across rebalances. Only when shutdown's grace period runs out are
// handlers cancelled; those jobs stay uncommitted and run again elsewhere.
package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jobctl/jobctl/pkg/handler"
	"github.com/jobctl/jobctl/pkg/job"
	"github.com/jobctl/jobctl/pkg/kafkaconn"
	"github.com/jobctl/jobctl/pkg/ledger"
	"github.com/jobctl/jobctl/pkg/metrics"
	"github.com/segmentio/kafka-go"
)

// Defaults for the Kafka timing fields of Config.
const (
	DefaultSessionTimeout         = 10 * time.Second
	DefaultHeartbeatInterval      = time.Second
	DefaultRebalanceTimeout       = 20 * time.Second
	DefaultMaxWait                = 500 * time.Millisecond
	DefaultPartitionCheckInterval = 2 * time.Second
	DefaultRunningAfter           = time.Second
)

// Config is what a Worker needs to know.
type Config struct {
	Topic string
	Group string
	// Concurrency is how many jobs run at once in this process.
	Concurrency int
	// MaxAttempts is how often a failing job is tried, in-process, before
	// it is recorded FAILED.
	MaxAttempts int
	// CommitInterval is how often completed offsets are committed.
	CommitInterval time.Duration
	// Grace is how long running jobs may take to finish after shutdown
	// starts, before their handlers are cancelled.
	Grace time.Duration
	// IdleTimeout stops the worker after this long without new jobs while
	// it is in the group; 0 runs until the context ends.
	IdleTimeout time.Duration
	// ProcessedLog is a file that gets one JSON line per processed job;
	// empty means none.
	ProcessedLog string
	// RunningAfter is how long a job runs before a RUNNING event is
	// written for it (0 = DefaultRunningAfter, negative = never). Short
	// jobs get no RUNNING event: it would double the writes per job for
	// a state nobody could watch.
	RunningAfter time.Duration

	// Kafka group timing; zero values take the Default* constants.
	SessionTimeout         time.Duration
	HeartbeatInterval      time.Duration
	RebalanceTimeout       time.Duration
	MaxWait                time.Duration
	PartitionCheckInterval time.Duration

	// noGroupWatch turns kafka-go's own partition watcher off, so tests
	// can see the fallback work alone.
	noGroupWatch bool
}

func (c *Config) setDefaults() {
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	def(&c.SessionTimeout, DefaultSessionTimeout)
	def(&c.HeartbeatInterval, DefaultHeartbeatInterval)
	def(&c.RebalanceTimeout, DefaultRebalanceTimeout)
	def(&c.MaxWait, DefaultMaxWait)
	def(&c.PartitionCheckInterval, DefaultPartitionCheckInterval)
	def(&c.RunningAfter, DefaultRunningAfter)
	def(&c.CommitInterval, time.Second)
	if c.Concurrency < 1 {
		c.Concurrency = 1
	}
	if c.MaxAttempts < 1 {
		c.MaxAttempts = 1
	}
}

// Summary is what a Worker did, for the final report.
type Summary struct {
	Group     string `json:"group"`
	Topic     string `json:"topic"`
	Worker    string `json:"worker"`
	Processed int64  `json:"processed"`
	Done      int64  `json:"done"`
	Failed    int64  `json:"failed"`
	// Invalid counts records that are not jobs (skipped, offsets still
	// committed); Skipped counts job events that are not NEW.
	Invalid int64 `json:"invalid"`
	Skipped int64 `json:"skipped"`
	// Reexecuted counts jobs this worker ran although another worker had
	// already recorded them (their offset was not committed before a
	// crash or a failed commit), noticed when that worker's event is
	// fetched after the job's NEW.
	Reexecuted  int64 `json:"reexecuted"`
	Generations int   `json:"generations"`
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
}

// Worker is one consumer process's membership in the group.
type Worker struct {
	cfg     Config
	conn    *kafkaconn.Conn
	client  *kafka.Client
	handler handler.Handler
	log     *slog.Logger
	metrics *metrics.Metrics
	id      string // hostname-pid; goroutine i is id-i
	// workerMarker is how this process's events look in JSON, to tell
	// them from other workers' without decoding.
	workerMarker []byte

	writer *ledger.Writer
	plog   *ProcessedLog

	// Shutdown: handlerCtx ends Grace after stop, writeCtx a little later
	// so the events of jobs that finished in time still get written.
	handlerCtx context.Context
	writeCtx   context.Context

	inflight     atomic.Int64 // jobs dispatched and not yet recorded or dropped
	lastActivity atomic.Int64 // unix nanos of the last NEW fetched or job recorded
	inGeneration atomic.Bool

	mu         sync.Mutex
	sum        Summary
	firstJob   time.Time
	lastJob    time.Time
	logErrOnce sync.Once
}

// ErrIdle is the stop cause when IdleTimeout passes without jobs.
var ErrIdle = errors.New("no new jobs within the idle timeout")

// writeGrace is how long after the handlers' grace the last events may
// take to be written.
const writeGrace = 10 * time.Second

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
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "localhost"
	}
	w := &Worker{
		cfg:     cfg,
		conn:    conn,
		client:  conn.Client(),
		handler: h,
		log:     log.With("group", cfg.Group, "topic", cfg.Topic),
		metrics: opts.Metrics,
		id:      fmt.Sprintf("%s-%d", host, os.Getpid()),
	}
	w.workerMarker = []byte(`"worker":"` + w.id + `-`)
	return w, nil
}

// ID is the worker's id, hostname-pid; the id of its goroutine n (in
// events and the processed log) is ID()-n.
func (w *Worker) ID() string { return w.id }

// Run consumes until ctx ends or the idle timeout passes, then finishes
// running jobs within the grace period, commits, leaves the group and
// returns what it did. Errors are returned only for problems that make
// consuming impossible (the topic does not exist, the processed log
// cannot be opened); job and broker errors are logged and retried.
func (w *Worker) Run(ctx context.Context) (Summary, error) {
	start := time.Now()
	if err := w.checkTopic(ctx); err != nil {
		return Summary{}, err
	}
	if w.cfg.ProcessedLog != "" {
		plog, err := OpenProcessedLog(w.cfg.ProcessedLog)
		if err != nil {
			return Summary{}, err
		}
		w.plog = plog
		defer func() {
			if err := plog.Close(); err != nil {
				w.log.Error("closing processed log", "err", err)
			}
		}()
	}
	w.writer = ledger.NewWriter(w.conn, w.cfg.Topic)
	defer func() {
		if err := w.writer.Close(); err != nil {
			w.log.Warn("closing event writer", "err", err)
		}
	}()

	stopCtx, stop := context.WithCancelCause(ctx)
	defer stop(nil)
	handlerCtx, cancelHandlers := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelHandlers()
	writeCtx, cancelWrites := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelWrites()
	w.handlerCtx, w.writeCtx = handlerCtx, writeCtx
	runDone := make(chan struct{})
	defer close(runDone)
	go func() {
		select {
		case <-runDone:
			return
		case <-stopCtx.Done():
		}
		w.log.Info("stopping: finishing running jobs", "cause", context.Cause(stopCtx), "grace", w.cfg.Grace, "running", w.inflight.Load())
		grace := time.NewTimer(w.cfg.Grace)
		defer grace.Stop()
		select {
		case <-runDone:
			return
		case <-grace.C:
			w.log.Warn("grace period over: cancelling running jobs (they stay uncommitted and will run again)", "running", w.inflight.Load())
			cancelHandlers()
		}
		last := time.NewTimer(writeGrace)
		defer last.Stop()
		select {
		case <-runDone:
		case <-last.C:
			cancelWrites()
		}
	}()
	w.lastActivity.Store(time.Now().UnixNano())
	if w.cfg.IdleTimeout > 0 {
		go w.watchIdle(stopCtx, runDone, stop)
	}

	for stopCtx.Err() == nil {
		cg, err := kafka.NewConsumerGroup(w.groupConfig())
		if err != nil {
			return Summary{}, fmt.Errorf("setting up consumer group %q: %w", w.cfg.Group, err)
		}
		w.runGroup(stopCtx, cg)
	}

	w.mu.Lock()
	defer w.mu.Unlock()
	s := w.sum
	s.Group, s.Topic, s.Worker = w.cfg.Group, w.cfg.Topic, w.id
	s.ElapsedSeconds = time.Since(start).Seconds()
	if !w.firstJob.IsZero() {
		s.ActiveSeconds = w.lastJob.Sub(w.firstJob).Seconds()
		if s.ActiveSeconds > 0 {
			s.JobsPerSecond = float64(s.Processed) / s.ActiveSeconds
		}
	}
	s.StopReason = "interrupted"
	if errors.Is(context.Cause(stopCtx), ErrIdle) {
		s.StopReason = "idle timeout"
	}
	return s, nil
}

func (w *Worker) groupConfig() kafka.ConsumerGroupConfig {
	return kafka.ConsumerGroupConfig{
		ID:                     w.cfg.Group,
		Brokers:                w.conn.Brokers,
		Dialer:                 w.conn.Dialer(),
		Topics:                 []string{w.cfg.Topic},
		HeartbeatInterval:      w.cfg.HeartbeatInterval,
		SessionTimeout:         w.cfg.SessionTimeout,
		RebalanceTimeout:       w.cfg.RebalanceTimeout,
		JoinGroupBackoff:       time.Second,
		WatchPartitionChanges:  !w.cfg.noGroupWatch,
		PartitionWatchInterval: w.cfg.PartitionCheckInterval,
		StartOffset:            kafka.FirstOffset,
		Logger:                 kafkaLogger{w.log, slog.LevelDebug},
		ErrorLogger:            kafkaLogger{w.log, slog.LevelDebug},
	}
}

// runGroup runs generations of cg until the worker stops or the topic
// grew past what the group assigns; either way cg is closed on return.
func (w *Worker) runGroup(stopCtx context.Context, cg *kafka.ConsumerGroup) {
	for {
		gen, err := cg.Next(stopCtx)
		if err != nil {
			if stopCtx.Err() != nil || errors.Is(err, kafka.ErrGroupClosed) {
				w.closeGroup(cg, nil)
				return
			}
			// kafka-go retries joining by itself; errors such as
			// GroupCoordinatorNotAvailable or RebalanceInProgress are
			// part of joining a busy group, not reasons to exit.
			level := slog.LevelWarn
			if errors.Is(err, kafka.RebalanceInProgress) {
				level = slog.LevelDebug
			}
			w.log.Log(stopCtx, level, "joining consumer group; retrying", "err", err)
			continue
		}
		g := w.startGeneration(gen)
		reason := g.wait(stopCtx)
		g.drain()
		if reason == endLost {
			g.release()
			continue
		}
		w.closeGroup(cg, g)
		return
	}
}

// closeGroup closes cg so it sends LeaveGroup and the others take over at
// once instead of after the session timeout. g, if not nil, is the
// generation just drained: it is released only once cg has noticed it is
// closing, so kafka-go leaves instead of rejoining first.
func (w *Worker) closeGroup(cg *kafka.ConsumerGroup, g *generation) {
	closed := make(chan error, 1)
	go func() { closed <- cg.Close() }()
	if g != nil {
		select {
		case <-g.lost:
		case <-time.After(5 * time.Second):
		}
		g.release()
	}
	select {
	case err := <-closed:
		if err != nil {
			w.log.Warn("leaving consumer group", "err", err)
		}
	case <-time.After(w.cfg.RebalanceTimeout + 5*time.Second):
		w.log.Warn("leaving consumer group: gave up waiting")
	}
}

// watchIdle stops the worker after IdleTimeout in the group with no job
// fetched or running. Time outside a generation (joining, rebalancing)
// does not count: a worker waiting for partitions is not idle.
func (w *Worker) watchIdle(stopCtx context.Context, runDone <-chan struct{}, stop context.CancelCauseFunc) {
	tick := w.cfg.IdleTimeout / 10
	tick = min(max(tick, 20*time.Millisecond), time.Second)
	t := time.NewTicker(tick)
	defer t.Stop()
	var idle time.Duration
	prev := time.Now()
	seen := w.lastActivity.Load()
	for {
		select {
		case <-runDone:
			return
		case <-stopCtx.Done():
			return
		case now := <-t.C:
			dt := now.Sub(prev)
			prev = now
			if act := w.lastActivity.Load(); act != seen || w.inflight.Load() > 0 {
				seen = act
				idle = 0
				continue
			}
			if w.inGeneration.Load() {
				idle += dt
			}
			if idle >= w.cfg.IdleTimeout {
				w.log.Info("no new jobs: stopping", "timeout", w.cfg.IdleTimeout)
				stop(ErrIdle)
				return
			}
		}
	}
}

// checkTopic fails early, with advice, when the topic is missing or the
// brokers cannot be reached.
func (w *Worker) checkTopic(ctx context.Context) error {
	n, err := w.partitionCount(ctx)
	if err != nil {
		return err
	}
	if n == 0 {
		return fmt.Errorf("topic %q has no partitions", w.cfg.Topic)
	}
	return nil
}

func (w *Worker) partitionCount(ctx context.Context) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	md, err := w.client.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{w.cfg.Topic}})
	if err != nil {
		return 0, fmt.Errorf("reading metadata of topic %q from %v: %w", w.cfg.Topic, w.conn.Brokers, err)
	}
	for _, t := range md.Topics {
		if t.Name != w.cfg.Topic {
			continue
		}
		if errors.Is(t.Error, kafka.UnknownTopicOrPartition) {
			return 0, fmt.Errorf("topic %q does not exist (create it with 'jobctl topic create')", w.cfg.Topic)
		}
		if t.Error != nil {
			return 0, fmt.Errorf("reading metadata of topic %q: %w", w.cfg.Topic, t.Error)
		}
		return len(t.Partitions), nil
	}
	return 0, fmt.Errorf("topic %q does not exist (create it with 'jobctl topic create')", w.cfg.Topic)
}

// unassigned returns how many of the topic's partitions no member of the
// group owns while the group is stable: more than zero means the group's
// generation predates a partition increase that kafka-go's own watcher
// missed.
func (w *Worker) unassigned(ctx context.Context) (int, error) {
	n, err := w.partitionCount(ctx)
	if err != nil {
		return 0, err
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	resp, err := w.client.DescribeGroups(ctx, &kafka.DescribeGroupsRequest{GroupIDs: []string{w.cfg.Group}})
	if err != nil {
		return 0, fmt.Errorf("describing group %q: %w", w.cfg.Group, err)
	}
	for _, g := range resp.Groups {
		if g.GroupID != w.cfg.Group || g.Error != nil || g.GroupState != "Stable" {
			continue
		}
		owned := map[int]bool{}
		for _, m := range g.Members {
			for _, t := range m.MemberAssignments.Topics {
				if t.Topic == w.cfg.Topic {
					for _, p := range t.Partitions {
						owned[p] = true
					}
				}
			}
		}
		if len(owned) == 0 {
			return 0, nil // nothing to judge by
		}
		return max(n-len(owned), 0), nil
	}
	return 0, nil
}

// record counts a finished job for the summary and metrics.
func (w *Worker) recordJob(status job.Status, at time.Time) {
	w.mu.Lock()
	w.sum.Processed++
	if status == job.StatusDone {
		w.sum.Done++
	} else {
		w.sum.Failed++
	}
	w.lastJob = at
	w.mu.Unlock()
	if w.metrics != nil {
		w.metrics.JobsProcessed.WithLabelValues(string(status)).Inc()
	}
}

func (w *Worker) countInvalid() {
	w.mu.Lock()
	w.sum.Invalid++
	w.mu.Unlock()
	if w.metrics != nil {
		w.metrics.InvalidRecords.Inc()
	}
}

func (w *Worker) countRerun() {
	w.mu.Lock()
	w.sum.Reexecuted++
	w.mu.Unlock()
	if w.metrics != nil {
		w.metrics.JobsReexecuted.Inc()
	}
}

func (w *Worker) countSkipped() {
	w.mu.Lock()
	w.sum.Skipped++
	w.mu.Unlock()
}

func (w *Worker) noteFetchedJob(at time.Time) {
	w.lastActivity.Store(at.UnixNano())
	w.mu.Lock()
	if w.firstJob.IsZero() {
		w.firstJob = at
	}
	w.mu.Unlock()
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
