// Package bench measures jobctl end to end on a live cluster, the way a
// user runs it: how fast `produce` appends NEW jobs, how fast workers turn
// them into DONE events with a handler that does nothing, and how long one
// job takes from the produce call to its DONE event being readable when
// jobs arrive at a steady rate.
//
// Every run works on scratch topics of its own (jobctl-bench-<random> and
// jobctl-bench-<random>-latency, with the delay and dead-letter topics the
// workers add) and scratch consumer groups, and deletes them at the end,
// also when the run is cancelled. It uses only the
// public APIs the commands use (pkg/producer, pkg/ledger, pkg/worker), so
// what it measures is what `jobctl produce` and `jobctl consume` do.
package bench

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/jobctl/jobctl/pkg/admin"
	"github.com/jobctl/jobctl/pkg/kafkaconn"
	"github.com/jobctl/jobctl/pkg/ledger"
	"github.com/segmentio/kafka-go"
)

// Defaults of Config.
const (
	DefaultPartitions      = 6
	DefaultCount           = 300_000
	DefaultConcurrency     = 8
	DefaultWorkers         = 1
	DefaultLatencyRate     = 1000
	DefaultLatencyDuration = 10 * time.Second
)

// Config is what one run measures.
type Config struct {
	// Partitions of each scratch topic.
	Partitions int
	// ReplicationFactor of each scratch topic (default 1); on a cluster
	// whose min.insync.replicas is above 1, every write (acks=all) waits
	// for that many replicas, as the Java tools' acks=all does.
	ReplicationFactor int
	// Count is how many jobs the throughput phases produce and process.
	Count int
	// Workers is how many worker.Workers (group members) run in this
	// process; Concurrency is each one's handler concurrency.
	Workers     int
	Concurrency int
	// LatencyRate (jobs/s) and LatencyDuration shape the latency phase;
	// a zero duration skips it.
	LatencyRate     float64
	LatencyDuration time.Duration
	// Keep leaves the scratch topics and groups in place.
	Keep bool
}

func (c *Config) setDefaults() {
	if c.Partitions == 0 {
		c.Partitions = DefaultPartitions
	}
	if c.Count == 0 {
		c.Count = DefaultCount
	}
	if c.ReplicationFactor == 0 {
		c.ReplicationFactor = 1
	}
	if c.Workers == 0 {
		c.Workers = DefaultWorkers
	}
	if c.Concurrency == 0 {
		c.Concurrency = DefaultConcurrency
	}
	if c.LatencyRate == 0 {
		c.LatencyRate = DefaultLatencyRate
	}
}

// Validate reports the first setting that cannot work.
func (c Config) Validate() error {
	switch {
	case c.Partitions < 1:
		return fmt.Errorf("partitions must be at least 1, got %d", c.Partitions)
	case c.ReplicationFactor < 1:
		return fmt.Errorf("replication factor must be at least 1, got %d", c.ReplicationFactor)
	case c.Count < 1:
		return fmt.Errorf("count must be at least 1, got %d", c.Count)
	case c.Workers < 1:
		return fmt.Errorf("workers must be at least 1, got %d", c.Workers)
	case c.Concurrency < 1:
		return fmt.Errorf("concurrency must be at least 1, got %d", c.Concurrency)
	case c.LatencyRate <= 0:
		return fmt.Errorf("latency rate must be positive, got %g", c.LatencyRate)
	case c.LatencyDuration < 0:
		return fmt.Errorf("latency duration must not be negative, got %s", c.LatencyDuration)
	}
	return nil
}

// Options are a run's optional collaborators.
type Options struct {
	Logger *slog.Logger // nil discards
	// Progress, if set, is called about every ProgressEvery while a phase
	// runs, and once at its end.
	Progress      func(Progress)
	ProgressEvery time.Duration
}

// Phase names, as Progress and the result report them.
const (
	PhaseProduce   = "produce"
	PhaseProcess   = "process"
	PhaseLatency   = "latency"
	PhaseWarmUp    = "latency warm-up"
	PhaseCleanUp   = "clean-up"
	progressPeriod = 200 * time.Millisecond
)

// Progress is a snapshot of the running phase.
type Progress struct {
	Phase   string
	Done    int // jobs produced / processed / measured so far
	Total   int // jobs the phase expects; 0 if unknown
	Elapsed time.Duration
	Final   bool // the phase's last report
}

// Result is what a run measured, with the settings it used.
type Result struct {
	Brokers         []string `json:"brokers"`
	Topics          []string `json:"topics"`
	Partitions      int      `json:"partitions"`
	Replication     int      `json:"replication_factor"`
	Count           int      `json:"count"`
	Workers         int      `json:"workers"`
	Concurrency     int      `json:"concurrency"`
	LatencyRate     float64  `json:"latency_rate"`
	LatencyDuration float64  `json:"latency_duration_seconds"`

	Produce   Throughput `json:"produce"`
	Processed Processed  `json:"processed"`
	Latency   *Latency   `json:"latency,omitempty"`

	// TopicsDeleted is true once the scratch topics are gone (false with
	// Keep, or when deleting them failed).
	TopicsDeleted bool `json:"topics_deleted"`
}

// Throughput is a job count over a time span.
type Throughput struct {
	Jobs          int     `json:"jobs"`
	Seconds       float64 `json:"seconds"`
	JobsPerSecond float64 `json:"jobs_per_second"`
}

func throughput(jobs int, d time.Duration) Throughput {
	t := Throughput{Jobs: jobs, Seconds: d.Seconds()}
	if d > 0 {
		t.JobsPerSecond = float64(jobs) / d.Seconds()
	}
	return t
}

// Processed is the processing phase: Throughput runs from the first NEW
// job handed to a handler to the last DONE event acknowledged by Kafka.
type Processed struct {
	Throughput
	// Executions counts handler calls; above Jobs when a rebalance made a
	// worker run jobs again.
	Executions int `json:"executions"`
	// Committed is true when, after the workers stopped, the group's
	// committed offsets covered every NEW job of the topic.
	Committed bool `json:"committed"`
}

// Latency is the produce-to-DONE phase: per job, from the start of its
// produce call to its DONE event being fetched by a reader of the topic.
type Latency struct {
	Jobs int `json:"jobs"`
	// Lost counts jobs whose DONE was not seen within the wait after the
	// last one was produced; they are not in the percentiles.
	Lost  int     `json:"lost"`
	P50Ms float64 `json:"p50_ms"`
	P90Ms float64 `json:"p90_ms"`
	P99Ms float64 `json:"p99_ms"`
	MaxMs float64 `json:"max_ms"`
	// NewAcked* run from the produce call to its return: the NEW event
	// acknowledged by Kafka.
	NewAckedP50Ms float64 `json:"new_acked_p50_ms"`
	NewAckedP99Ms float64 `json:"new_acked_p99_ms"`
	// DoneSent* run from the produce call to the DONE record's timestamp,
	// which the worker's writer stamps when it sends the record (whole
	// milliseconds): the part of the latency before the DONE write's
	// acknowledgement and the read. Where a remote broker's clock does
	// not matter: the worker runs in this process.
	DoneSentP50Ms float64 `json:"done_sent_p50_ms"`
	DoneSentP99Ms float64 `json:"done_sent_p99_ms"`
}

// Run creates the scratch topics on the cluster conn reaches, runs the
// phases and deletes the topics. A cancelled ctx stops the run; the
// topics are still deleted (bounded by a timeout of its own).
func Run(ctx context.Context, conn *kafkaconn.Conn, cfg Config, opts Options) (res Result, err error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return Result{}, err
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.ProgressEvery <= 0 {
		opts.ProgressEvery = progressPeriod
	}
	name := "jobctl-bench-" + randomHex(4)
	res = Result{
		Brokers: conn.Brokers, Partitions: cfg.Partitions, Replication: cfg.ReplicationFactor, Count: cfg.Count,
		Workers: cfg.Workers, Concurrency: cfg.Concurrency,
		LatencyRate: cfg.LatencyRate, LatencyDuration: cfg.LatencyDuration.Seconds(),
	}
	s := &scratch{conn: conn, log: opts.Logger}
	defer func() {
		if cfg.Keep {
			opts.Logger.Info("keeping scratch topics", "topics", s.topics, "groups", s.groups)
			return
		}
		report(opts, Progress{Phase: PhaseCleanUp})
		// Clean up even when ctx was cancelled (Ctrl-C).
		cleanCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		if err := s.delete(cleanCtx); err != nil {
			opts.Logger.Error("deleting scratch topics", "topics", s.topics, "err", err)
			return
		}
		res.TopicsDeleted = true
	}()

	// res is a named result: the deferred clean-up sets TopicsDeleted.
	topic, err := s.createTopic(ctx, name, cfg.Partitions, cfg.ReplicationFactor)
	if err != nil {
		return res, err
	}
	res.Topics = append(res.Topics, topic)
	base := randomBase(cfg.Count)
	if res.Produce, err = produce(ctx, conn, topic, base, cfg.Count, opts); err != nil {
		return res, err
	}
	if res.Processed, err = process(ctx, s, topic, base, cfg, opts); err != nil {
		return res, err
	}
	if cfg.LatencyDuration == 0 {
		return res, nil
	}
	latTopic, err := s.createTopic(ctx, name+"-latency", cfg.Partitions, cfg.ReplicationFactor)
	if err != nil {
		return res, err
	}
	res.Topics = append(res.Topics, latTopic)
	lat, err := measureLatency(ctx, s, latTopic, cfg, opts)
	if err != nil {
		return res, err
	}
	res.Latency = &lat
	return res, nil
}

// scratch is what a run created and must delete.
type scratch struct {
	conn   *kafkaconn.Conn
	log    *slog.Logger
	topics []string
	groups []string
}

func (s *scratch) createTopic(ctx context.Context, name string, partitions, replication int) (string, error) {
	createCtx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	// Record the names first: a create that times out may still happen.
	// Workers create the job topic's delay and dead-letter topics.
	s.topics = append(s.topics, name, ledger.DelayTopic(name), ledger.DLQTopic(name), ledger.ControlTopic(name))
	if _, err := admin.New(s.conn.Client()).CreateTopic(createCtx, name, partitions, replication, nil, false); err != nil {
		return "", fmt.Errorf("creating scratch topic %q (%d partitions, replication factor %d): %w", name, partitions, replication, err)
	}
	return name, nil
}

func (s *scratch) group(topic string) string {
	g := topic + "-workers"
	s.groups = append(s.groups, g)
	return g
}

// delete removes the scratch groups (best effort: a group that never got
// an offset does not exist) and topics (an error when one stays; a delay
// or dead-letter topic no worker created is not one).
func (s *scratch) delete(ctx context.Context) error {
	client := s.conn.Client()
	defer closeIdle(client)
	if len(s.groups) > 0 {
		resp, err := client.DeleteGroups(ctx, &kafka.DeleteGroupsRequest{GroupIDs: s.groups})
		switch {
		case err != nil:
			s.log.Warn("deleting scratch groups", "groups", s.groups, "err", err)
		default:
			for g, gerr := range resp.Errors {
				if gerr != nil && !errors.Is(gerr, kafka.GroupIdNotFound) {
					s.log.Warn("deleting scratch group", "group", g, "err", gerr)
				}
			}
		}
	}
	if len(s.topics) == 0 {
		return nil
	}
	resp, err := client.DeleteTopics(ctx, &kafka.DeleteTopicsRequest{Topics: s.topics})
	if err != nil {
		return fmt.Errorf("deleting topics %v: %w", s.topics, err)
	}
	var errs []error
	for t, terr := range resp.Errors {
		if terr != nil && !errors.Is(terr, kafka.UnknownTopicOrPartition) {
			errs = append(errs, fmt.Errorf("deleting topic %q: %w", t, terr))
		}
	}
	return errors.Join(errs...)
}

func closeIdle(c *kafka.Client) {
	if t, ok := c.Transport.(*kafka.Transport); ok {
		t.CloseIdleConnections()
	}
}

func report(opts Options, p Progress) {
	if opts.Progress != nil {
		opts.Progress(p)
	}
}

// reportEvery calls opts.Progress with snapshot() every ProgressEvery
// until the returned stop, which makes the phase's final report.
func reportEvery(opts Options, snapshot func() Progress) (stop func()) {
	if opts.Progress == nil {
		return func() {}
	}
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTicker(opts.ProgressEvery)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				opts.Progress(snapshot())
			}
		}
	}()
	return func() {
		close(done)
		<-finished
		p := snapshot()
		p.Final = true
		opts.Progress(p)
	}
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
