package group

import (
	"context"
	"errors"
	"fmt"
	"github.com/jobctl/jobctl/pkg/ledger"
	"log/slog"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/segmentio/kafka-go"
)

// Member is one membership of the group. Create it with New, then call Run.
type Member struct {
	cfg     Config
	h       Handler
	log     *slog.Logger
	client  *kafka.Client // short requests
	waiting *kafka.Client // JoinGroup/SyncGroup, which may block a rebalance long

	events chan event

	mu         sync.Mutex
	memberID   string
	generation int
	// stable is true between a successful SyncGroup and the next join
	// attempt: only then are heartbeats sent.
	stable bool
	// epoch counts join attempts; heartbeat results of an older epoch are
	// ignored.
	epoch uint64
	// owned holds the partitions handed to the Handler (Assigned and not
	// yet Revoked or Lost); ownedGen is the generation they were confirmed in.
	owned    map[int]bool
	ownedGen int
	// knownPartitions is the largest partition count seen in a join or
	// an assignment.
	knownPartitions int
	// lastAlive is when the last request that proved the session alive
	// (heartbeat, join, sync) was sent.
	lastAlive  time.Time
	sess       context.Context
	sessCancel context.CancelFunc

	// crashed is a test hook: stop like a killed process (no revoke, no
	// LeaveGroup).
	crashed atomic.Bool
}

type eventKind int

const (
	eventRebalance eventKind = iota // the coordinator is rebalancing
	eventLost                       // the session is gone
	eventFenced                     // another process uses our instance id
)

type event struct {
	kind  eventKind
	epoch uint64
	cause error
}

// ErrNotOwned is returned by Commit for partitions this member does not own.
var ErrNotOwned = errors.New("partition not owned by this member")

// New checks cfg, fills in defaults and returns a member that has not
// joined yet.
func New(cfg Config, h Handler) (*Member, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if h == nil {
		return nil, errors.New("group membership: a handler is required")
	}
	waiting := *cfg.Client
	waiting.Timeout = cfg.RebalanceTimeout + cfg.SessionTimeout + 5*time.Second
	sess, cancel := context.WithCancel(context.Background())
	m := &Member{
		cfg:        cfg,
		h:          h,
		client:     cfg.Client,
		waiting:    &waiting,
		events:     make(chan event, 8),
		generation: -1,
		ownedGen:   -1,
		owned:      map[int]bool{},
		sess:       sess,
		sessCancel: cancel,
	}
	m.log = cfg.Logger.With("group", cfg.Group, "topic", cfg.Topic)
	if cfg.InstanceID != "" {
		m.log = m.log.With("instance", cfg.InstanceID)
	}
	return m, nil
}

// MemberID is the id the coordinator gave this member ("" before joining).
func (m *Member) MemberID() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.memberID
}

// Generation is the group generation of the current assignment (-1 before
// the first one).
func (m *Member) Generation() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.generation
}

// Run joins and stays in the group until ctx ends, then revokes every
// partition (Handler.Revoked, inside which offsets are committed) and
// leaves the group, also as a static member so its partitions move at
// once. Broker errors are retried with backoff; Run returns an error only
// for fatal ones (authorization, protocol or configuration mismatch, the
// instance id taken by another live process).
func (m *Member) Run(ctx context.Context) error {
	hbCtx, stopHeartbeats := context.WithCancel(context.Background())
	var hbDone sync.WaitGroup
	hbDone.Add(1)
	go func() {
		defer hbDone.Done()
		m.heartbeatLoop(hbCtx)
	}()
	defer func() {
		stopHeartbeats()
		hbDone.Wait()
		m.sessCancel()
	}()

	err := m.loop(ctx)
	if m.crashed.Load() {
		return nil
	}
	if err != nil {
		m.loseAll("the member stops with an error")
		return err
	}
	m.stop()
	return nil
}

// loop returns nil when ctx ends, or a fatal error.
func (m *Member) loop(ctx context.Context) error {
	reason := "starting"
	for {
		if ctx.Err() != nil {
			return nil
		}
		asg, err := m.joinAndSync(ctx, reason)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		rejoin := m.apply(asg)
		if rejoin {
			reason = "partitions were handed back"
			continue
		}
		reason, err = m.wait(ctx)
		if err != nil || reason == "" {
			return err
		}
	}
}

// wait blocks until the member has to rejoin (returning why), ctx ends
// ("") or a fatal error happens.
func (m *Member) wait(ctx context.Context) (string, error) {
	tick := time.NewTicker(m.cfg.PartitionCheckInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return "", nil
		case ev := <-m.events:
			m.mu.Lock()
			current := ev.epoch == m.epoch
			m.mu.Unlock()
			if !current {
				continue
			}
			switch ev.kind {
			case eventRebalance:
				return "the group is rebalancing", nil
			case eventLost:
				m.loseAll(ev.cause.Error())
				return "the session was lost", nil
			case eventFenced:
				return "", m.fencedError()
			}
		case <-tick.C:
			n, err := m.partitionCount(ctx)
			if err != nil {
				if ctx.Err() == nil {
					m.log.Warn("checking the topic's partition count failed", "error", err)
				}
				continue
			}
			m.mu.Lock()
			known := m.knownPartitions
			m.mu.Unlock()
			if n > known {
				m.log.Info("the topic has new partitions, rebalancing", "partitions_before", known, "partitions", n)
				return "the topic has new partitions", nil
			}
		}
	}
}

func (m *Member) fencedError() error {
	return fmt.Errorf("group %q: instance id %q is in use by another running member; give each worker its own instance id", m.cfg.Group, m.cfg.InstanceID)
}

// apply hands the assignment's changes to the Handler and reports whether
// the member must rejoin (it handed partitions back).
func (m *Member) apply(asg []int) bool {
	m.mu.Lock()
	sess := m.sess
	next := make(map[int]bool, len(asg))
	for _, p := range asg {
		next[p] = true
	}
	var revoked, added []int
	for p := range m.owned {
		if !next[p] {
			revoked = append(revoked, p)
		}
	}
	for p := range next {
		if !m.owned[p] {
			added = append(added, p)
		}
	}
	gen := m.generation
	m.mu.Unlock()
	sort.Ints(revoked)
	sort.Ints(added)

	if len(revoked) > 0 {
		m.log.Info("handing partitions over to other members", "generation", gen, "partitions", revoked)
		start := time.Now()
		m.h.Revoked(sess, revoked)
		m.mu.Lock()
		for _, p := range revoked {
			delete(m.owned, p)
		}
		m.mu.Unlock()
		m.log.Info("partitions handed over", "partitions", revoked, "took", time.Since(start).Round(time.Millisecond).String())
	}
	if len(added) > 0 && sess.Err() == nil {
		parts, err := m.fetchOffsets(sess, added)
		if err != nil {
			// The session ended while fetching: the next join sorts it out.
			m.log.Warn("reading committed offsets failed", "partitions", added, "error", err)
			return len(revoked) > 0
		}
		m.mu.Lock()
		for _, p := range added {
			m.owned[p] = true
		}
		m.mu.Unlock()
		m.log.Info("partitions assigned", "generation", gen, "partitions", added)
		m.h.Assigned(sess, parts)
	}
	return len(revoked) > 0
}

// loseAll tells the Handler that every owned partition is lost and starts
// a fresh session.
func (m *Member) loseAll(why string) {
	m.mu.Lock()
	m.sessCancel()
	lost := make([]int, 0, len(m.owned))
	for p := range m.owned {
		lost = append(lost, p)
	}
	m.owned = map[int]bool{}
	m.ownedGen = -1
	m.stable = false
	m.sess, m.sessCancel = context.WithCancel(context.Background())
	m.mu.Unlock()
	if len(lost) == 0 {
		return
	}
	sort.Ints(lost)
	m.log.Warn("partitions lost without a final commit", "reason", why, "partitions", lost)
	m.h.Lost(lost)
}

// stop revokes everything and leaves the group.
func (m *Member) stop() {
	m.mu.Lock()
	sess := m.sess
	var parts []int
	for p := range m.owned {
		parts = append(parts, p)
	}
	m.mu.Unlock()
	sort.Ints(parts)
	if len(parts) > 0 {
		m.log.Info("stopping: handing all partitions back", "partitions", parts)
		m.h.Revoked(sess, parts)
		m.mu.Lock()
		m.owned = map[int]bool{}
		m.mu.Unlock()
	}
	m.leave()
}

func (m *Member) leave() {
	m.mu.Lock()
	id := m.memberID
	m.stable = false
	m.epoch++
	m.mu.Unlock()
	if id == "" {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	resp, err := m.client.LeaveGroup(ctx, &kafka.LeaveGroupRequest{
		GroupID: m.cfg.Group,
		Members: []kafka.LeaveGroupRequestMember{{ID: id, GroupInstanceID: m.cfg.InstanceID}},
	})
	if err == nil {
		err = resp.Error
		for _, mr := range resp.Members {
			if err == nil && mr.Error != nil {
				err = mr.Error
			}
		}
	}
	if err != nil {
		m.log.Warn("leaving the group failed; the coordinator drops the member after the session timeout", "member", id, "error", err)
		return
	}
	m.log.Info("left the group", "member", id)
}

func (m *Member) partitionCount(ctx context.Context) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	return ledger.Partitions(ctx, m.client, m.cfg.Topic)
}
