package delay

import (
	"context"
	"errors"
	"fmt"
	"github.com/jobctl/jobctl/pkg/backoff"
	"log/slog"
	"slices"
	"time"

	"github.com/jobctl/jobctl/pkg/kafkaconn"
	"github.com/jobctl/jobctl/pkg/ledger"
	"github.com/segmentio/kafka-go"
)

// ReleaserConfig configures a Releaser. The callbacks are optional (for
// metrics and tests) and are called from the partitions' goroutines.
type ReleaserConfig struct {
	JobTopic string
	// Group is the consumer group; default "<JobTopic>.delay-releaser".
	Group  string
	Logger *slog.Logger
	// Released is called for every event written to the job topic, with
	// how long after its due time it was acknowledged.
	Released func(late time.Duration)
	// Rescheduled is called for every record that woke before it was due
	// and was written again, to tier.
	Rescheduled func(tier int)
	// Dropped is called for every record that could not be released and
	// was skipped: not a delayed job, or a permanent write error.
	Dropped func(err error)
	// Assigned is called at the start of every generation with the delay
	// partitions (tiers) this member owns in it.
	Assigned func(partitions []int)
}

// Releaser moves due items from the delay topic into the job topic. Every
// `jobctl consume` runs one; they share the tiers through a consumer group.
type Releaser struct {
	conn  *kafkaconn.Conn
	cfg   ReleaserConfig
	topic string
	tiers []time.Duration
	log   *slog.Logger
}

// NewReleaser returns a releaser for cfg.JobTopic's delay topic.
func NewReleaser(conn *kafkaconn.Conn, cfg ReleaserConfig) *Releaser {
	if cfg.Group == "" {
		cfg.Group = cfg.JobTopic + ".delay-releaser"
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	topic := Topic(cfg.JobTopic)
	return &Releaser{conn: conn, cfg: cfg, topic: topic, tiers: slices.Clone(Tiers),
		log: log.With("component", "delay-releaser", "topic", topic)}
}

// Run joins the releasers' consumer group and releases items from the tiers
// it is assigned until ctx ends; it returns nil then. It fails at once when
// the delay topic does not exist (ledger.EnsureAuxTopics creates it).
//
// It uses kafka-go's ConsumerGroup: a release is short, and every wait is
// interrupted when the generation ends, so the group's rebalances are not
// held up. Each assigned tier runs in its own goroutine (Generation.Start):
// a head record waiting on one tier never delays another.
func (r *Releaser) Run(ctx context.Context) error {
	if err := r.checkTopic(ctx); err != nil {
		return err
	}
	cg, err := kafka.NewConsumerGroup(kafka.ConsumerGroupConfig{
		ID:                r.cfg.Group,
		Brokers:           r.conn.Brokers,
		Dialer:            r.conn.Dialer(),
		Topics:            []string{r.topic},
		HeartbeatInterval: time.Second,
		SessionTimeout:    10 * time.Second,
		RebalanceTimeout:  10 * time.Second,
		JoinGroupBackoff:  time.Second,
		StartOffset:       kafka.FirstOffset,
		ErrorLogger:       kafka.LoggerFunc(func(msg string, args ...any) { r.log.Debug(fmt.Sprintf(msg, args...)) }),
	})
	if err != nil {
		return fmt.Errorf("joining group %q on %q: %w", r.cfg.Group, r.topic, err)
	}
	defer cg.Close()

	out := newOutput(r)
	defer out.close()

	for {
		gen, err := cg.Next(ctx)
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, kafka.ErrGroupClosed) {
				return nil
			}
			// The group retries by itself (JoinGroupBackoff); a rebalance
			// that started while joining is routine.
			level := slog.LevelWarn
			if errors.Is(err, kafka.RebalanceInProgress) {
				level = slog.LevelDebug
			}
			r.log.Log(ctx, level, "joining the releasers' group failed; retrying", "group", r.cfg.Group, "error", err)
			if sleep(ctx, 100*time.Millisecond) != nil {
				return nil
			}
			continue
		}
		assigned := gen.Assignments[r.topic]
		ids := make([]int, 0, len(assigned))
		for _, a := range assigned {
			ids = append(ids, a.ID)
		}
		slices.Sort(ids)
		r.log.Debug("assigned tiers", "generation", gen.ID, "partitions", ids)
		if r.cfg.Assigned != nil {
			r.cfg.Assigned(ids)
		}
		for _, a := range assigned {
			tp := &tierPartition{r: r, out: out, gen: gen, id: a.ID, offset: a.Offset}
			gen.Start(func(gctx context.Context) {
				// End with the generation, or with Run.
				pctx, cancel := context.WithCancel(gctx)
				defer cancel()
				stop := context.AfterFunc(ctx, cancel)
				defer stop()
				tp.run(pctx)
			})
		}
	}
}

func (r *Releaser) checkTopic(ctx context.Context) error {
	client := r.conn.Client()
	defer func() {
		if t, ok := client.Transport.(*kafka.Transport); ok {
			t.CloseIdleConnections()
		}
	}()
	n, err := ledger.Partitions(ctx, client, r.topic)
	if err != nil {
		return fmt.Errorf("delay releaser: %w", err)
	}
	if n < len(r.tiers) {
		return fmt.Errorf("delay releaser: topic %q has %d partitions, want one per tier (%d)", r.topic, n, len(r.tiers))
	}
	return nil
}

// sleep waits d or until ctx ends, then returns ctx's error.
func sleep(ctx context.Context, d time.Duration) error {
	backoff.Sleep(ctx, d)
	return ctx.Err()
}

// sleepUntil waits until t or until ctx ends.
func sleepUntil(ctx context.Context, t time.Time) error {
	d := time.Until(t)
	if d <= 0 {
		return ctx.Err()
	}
	return sleep(ctx, d)
}
