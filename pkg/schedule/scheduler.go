package schedule

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/jobctl/jobctl/pkg/backoff"
	"github.com/jobctl/jobctl/pkg/group"
	"github.com/jobctl/jobctl/pkg/job"
	"github.com/jobctl/jobctl/pkg/kafkaconn"
	"github.com/jobctl/jobctl/pkg/ledger"
	"github.com/segmentio/kafka-go"
)

// SchedulerConfig configures a Scheduler.
type SchedulerConfig struct {
	// JobTopic is the topic the jobs are written to; its schedules are
	// in Topic(JobTopic).
	JobTopic string
	// SessionTimeout of the leader group: how long a SIGKILLed leader
	// keeps the leadership (default 10s; brokers accept 6s and more).
	SessionTimeout time.Duration
	Logger         *slog.Logger
}

// Scheduler runs in every `jobctl consume`. All of them join the consumer
// group LeaderTopic(JobTopic) on the one-partition topic of that name;
// the member that owns partition 0 is the leader and fires ticks, the
// others only keep their definitions current and wait.
//
// Exactly one job per tick: a tick's job id is JobID(name, tick), the same
// on every scheduler, and the leader keeps the last handled tick of every
// schedule in the metadata of its offset commit on partition 0. A new
// leader reads it with the assignment and goes on from there, so it fires
// no handled tick again and skips none (the catch-up rule decides what is
// done with ticks missed while no leader ran). The jobs of a batch are
// written (acknowledged by all in-sync replicas) before the state is
// committed: a leader killed in between leaves a tick that the next leader
// fires again with the same job id, which workers run once (duplicate
// detection, docs/runtime.md).
//
// Why commit metadata and not a state topic: the commit is fenced by the
// group generation, so a deposed leader that still runs (a long GC pause,
// a network partition) cannot overwrite its successor's state, and the
// state arrives with the assignment, no extra topic to read. The price is
// the broker's offset.metadata.max.bytes (4096 by default): about 100
// schedules with 20-character names; beyond that commits fail and are
// logged, and ticks after the last stored state may fire twice (still one
// job id each).
type Scheduler struct {
	conn  *kafkaconn.Conn
	cfg   SchedulerConfig
	log   *slog.Logger
	group string

	mu      sync.Mutex
	defs    map[string]Schedule
	ready   bool          // the definitions were read to the end once
	changed chan struct{} // a definition changed (cap 1)

	member *group.Member
	lead   *leadership // non-nil while leading; touched by handler calls only
}

type leadership struct {
	cancel context.CancelFunc
	done   chan struct{}
}

// NewScheduler returns a scheduler for cfg.JobTopic.
func NewScheduler(conn *kafkaconn.Conn, cfg SchedulerConfig) *Scheduler {
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Scheduler{
		conn: conn, cfg: cfg, group: LeaderTopic(cfg.JobTopic),
		log:     log.With("component", "scheduler", "topic", Topic(cfg.JobTopic)),
		defs:    map[string]Schedule{},
		changed: make(chan struct{}, 1),
	}
}

// Run creates the schedules and leader topics when missing, then follows
// the definitions and takes part in the leader election until ctx ends;
// it returns nil then, after giving up the leadership (a clean hand-over:
// the next leader starts at once).
func (s *Scheduler) Run(ctx context.Context) error {
	if err := EnsureTopics(ctx, s.conn, s.cfg.JobTopic); err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("scheduler: %w", err)
	}
	m, err := group.New(group.Config{
		Client:         s.conn.Client(),
		Group:          s.group,
		Topic:          LeaderTopic(s.cfg.JobTopic),
		SessionTimeout: s.cfg.SessionTimeout,
		Logger:         slog.New(quietHandler{s.log.Handler()}),
	}, s)
	if err != nil {
		return err
	}
	s.member = m
	var wg sync.WaitGroup
	tailCtx, stopTail := context.WithCancel(ctx)
	wg.Go(func() { s.tail(tailCtx) })
	err = m.Run(ctx)
	stopTail()
	wg.Wait()
	return err
}

// Assigned starts leading when partition 0 is among parts.
func (s *Scheduler) Assigned(ctx context.Context, parts []group.Partition) {
	for _, p := range parts {
		if p.ID != 0 || s.lead != nil {
			continue
		}
		state, err := decodeState(p.Metadata)
		if err != nil {
			s.log.Error("the stored scheduler state is unreadable; starting from the schedules' own times", "err", err)
		}
		lctx, cancel := context.WithCancel(ctx)
		l := &leadership{cancel: cancel, done: make(chan struct{})}
		s.lead = l
		go func() {
			defer close(l.done)
			s.leadLoop(lctx, state)
		}()
	}
}

// Revoked stops firing before the partition moves on.
func (s *Scheduler) Revoked(_ context.Context, parts []int) {
	if slices.Contains(parts, 0) {
		s.stopLeading("the leadership moves to another scheduler")
	}
}

// Lost stops firing at once.
func (s *Scheduler) Lost(parts []int) {
	if slices.Contains(parts, 0) {
		s.stopLeading("the leader's session was lost")
	}
}

func (s *Scheduler) stopLeading(why string) {
	if s.lead == nil {
		return
	}
	s.lead.cancel()
	<-s.lead.done
	s.lead = nil
	s.log.Info("no longer leading the schedulers", "reason", why, "pid", os.Getpid())
}

// state is what the leader commits: per schedule, the last tick handled
// (fired, or skipped by the catch-up rule), in Unix seconds.
type state struct {
	V    int              `json:"v"`
	Last map[string]int64 `json:"last"`
}

func decodeState(md string) (map[string]int64, error) {
	if md == "" {
		return map[string]int64{}, nil
	}
	var st state
	if err := json.Unmarshal([]byte(md), &st); err != nil || st.V != 1 {
		return map[string]int64{}, fmt.Errorf("scheduler state %q: not version 1 JSON (%v)", md, err)
	}
	if st.Last == nil {
		st.Last = map[string]int64{}
	}
	return st.Last, nil
}

func encodeState(last map[string]int64) string {
	b, _ := json.Marshal(state{V: 1, Last: last})
	return string(b)
}

// cursor is the leader's position in one schedule.
type cursor struct {
	updatedAt time.Time // of the definition it was computed for
	handled   time.Time // the last tick handled
}

// leadLoop fires ticks until ctx ends (the leadership or the process).
func (s *Scheduler) leadLoop(ctx context.Context, stored map[string]int64) {
	leadStart := time.Now()
	s.log.Info("leading the schedulers", "pid", os.Getpid(), "schedules_in_state", len(stored))
	if !s.waitReady(ctx) {
		return
	}
	w := ledger.NewWriter(s.conn, s.cfg.JobTopic)
	defer w.Close()
	cursors := map[string]cursor{}
	committed := encodeState(stored)
	for {
		defs := s.snapshot()
		now := time.Now()
		var fire []job.Event
		next := map[string]cursor{}
		wake := now.Add(time.Second)
		for name, def := range defs {
			c, ok := cursors[name]
			if !ok || !c.updatedAt.Equal(def.UpdatedAt) {
				since := def.UpdatedAt
				if last, ok := stored[name]; ok && time.Unix(last, 0).After(since) {
					since = time.Unix(last, 0)
				}
				if ok && c.handled.After(since) {
					since = c.handled
				}
				c = cursor{updatedAt: def.UpdatedAt, handled: since}
			}
			if !def.Paused {
				ticks, handled := def.Due(c.handled, leadStart, now)
				for _, t := range ticks {
					fire = append(fire, def.Job(t, now))
				}
				c.handled = handled
				if n := def.Next(handled); !n.IsZero() && n.Before(wake) {
					wake = n
				}
			}
			next[name] = c
		}
		if len(fire) > 0 {
			if err := w.Append(ctx, fire...); err != nil {
				if ctx.Err() != nil {
					return
				}
				s.log.Warn("writing scheduled jobs failed; retrying", "jobs", len(fire), "err", err)
				if !backoff.Sleep(ctx, 500*time.Millisecond) {
					return
				}
				continue // cursors not advanced: the same ticks again
			}
			for _, e := range fire {
				s.log.Debug("fired", "job_id", e.JobID.String())
			}
		}
		cursors = next
		last := make(map[string]int64, len(cursors))
		for name, c := range cursors {
			last[name] = c.handled.Unix()
		}
		if st := encodeState(last); st != committed {
			if err := s.member.Commit(ctx, map[int]group.Offset{0: {Offset: 0, Metadata: st}}); err != nil {
				if ctx.Err() != nil {
					return
				}
				if errors.Is(err, kafka.OffsetMetadataTooLarge) {
					s.log.Error("the scheduler state is over the broker's offset.metadata.max.bytes: too many schedules (or too long names) to store; a new leader may fire the ticks since the last stored state again (same job ids)", "bytes", len(st), "schedules", len(last))
				} else {
					s.log.Warn("storing the scheduler state failed (retried with the next tick)", "err", err)
				}
			} else {
				committed, stored = st, last
			}
		}
		d := time.Until(wake)
		if d < 0 {
			d = 0
		}
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-s.changed:
		case <-t.C:
		}
		t.Stop()
	}
}

func (s *Scheduler) snapshot() map[string]Schedule {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]Schedule, len(s.defs))
	for k, v := range s.defs {
		out[k] = v
	}
	return out
}

func (s *Scheduler) waitReady(ctx context.Context) bool {
	for {
		s.mu.Lock()
		ready := s.ready
		s.mu.Unlock()
		if ready {
			return true
		}
		if !backoff.Sleep(ctx, 50*time.Millisecond) {
			return false
		}
	}
}

func (s *Scheduler) notify() {
	select {
	case s.changed <- struct{}{}:
	default:
	}
}

// tail keeps the definitions current: it reads the schedules topic to its
// end (then the leader may start), and follows it until ctx ends.
func (s *Scheduler) tail(ctx context.Context) {
	topic := Topic(s.cfg.JobTopic)
	for ctx.Err() == nil {
		err := s.tailOnce(ctx, topic)
		if ctx.Err() != nil {
			return
		}
		s.log.Warn("reading the schedules failed; retrying", "err", err)
		if !backoff.Sleep(ctx, time.Second) {
			return
		}
	}
}

func (s *Scheduler) tailOnce(ctx context.Context, topic string) error {
	client := s.conn.Client()
	first, err := ledger.ListOffsets(ctx, client, topic, []int{0}, kafka.FirstOffset)
	if err != nil {
		closeIdle(client)
		return err
	}
	end, err := ledger.ListOffsets(ctx, client, topic, []int{0}, kafka.LastOffset)
	closeIdle(client)
	if err != nil {
		return err
	}
	r := newReader(s.conn, topic)
	defer r.Close()
	if err := r.SetOffset(first[0]); err != nil {
		return err
	}
	defs := map[string]Schedule{}
	// The leader starts only once the definitions up to end are read, so it
	// never acts on a state a later record already changed (a schedule
	// created long ago and then paused must not fire its catch-up first).
	ready := first[0] >= end[0]
	if ready {
		s.publish(defs, true)
	}
	for {
		msg, err := r.FetchMessage(ctx)
		if err != nil {
			return err
		}
		apply(defs, msg)
		if !ready && (msg.Offset+1 >= end[0] || r.Lag() == 0) {
			ready = true
		}
		if ready {
			s.publish(defs, true)
		}
	}
}

func (s *Scheduler) publish(defs map[string]Schedule, ready bool) {
	cp := make(map[string]Schedule, len(defs))
	for k, v := range defs {
		cp[k] = v
	}
	s.mu.Lock()
	s.defs, s.ready = cp, ready
	s.mu.Unlock()
	s.notify()
}

var _ group.Handler = (*Scheduler)(nil)
