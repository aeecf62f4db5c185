package group

import (
	"context"
	"errors"
	"fmt"
	"github.com/jobctl/jobctl/pkg/backoff"
	"io"
	"sort"
	"time"

	"github.com/segmentio/kafka-go"
)

// joinAndSync joins the group (retrying broker errors with backoff) and
// returns this member's assignment.
func (m *Member) joinAndSync(ctx context.Context, reason string) ([]int, error) {
	wait := newRetryWait()
	for attempt := 0; ; attempt++ {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		m.mu.Lock()
		sessGone := m.sess.Err() != nil
		m.mu.Unlock()
		if sessGone {
			m.loseAll("the session was lost")
		}
		m.checkExpiry()
		asg, retry, err := m.joinOnce(ctx, reason, attempt)
		if err == nil {
			return asg, nil
		}
		if !retry {
			return nil, err
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if d := wait.next(err); d > 0 {
			m.log.Warn("joining the group failed, retrying", "error", err, "retry_in", d.Round(time.Millisecond).String())
			if !backoff.Sleep(ctx, d) {
				return nil, ctx.Err()
			}
		}
	}
}

// checkExpiry treats the session as lost once no request proved it alive
// for a session timeout: by then the coordinator may have given the
// partitions to another member.
func (m *Member) checkExpiry() {
	m.mu.Lock()
	expired := len(m.owned) > 0 && !m.lastAlive.IsZero() && time.Since(m.lastAlive) > m.cfg.SessionTimeout
	m.mu.Unlock()
	if expired {
		m.loseAll(fmt.Sprintf("no contact with the group coordinator for more than the session timeout (%s)", m.cfg.SessionTimeout))
	}
}

// errRejoin means: join again at once, no backoff.
var errRejoin = errors.New("rejoin")

func (m *Member) joinOnce(ctx context.Context, reason string, attempt int) (asg []int, retry bool, err error) {
	m.mu.Lock()
	m.stable = false
	m.epoch++
	memberID := m.memberID
	owned := make([]int, 0, len(m.owned))
	for p := range m.owned {
		owned = append(owned, p)
	}
	sub := subscriptionData{Generation: m.ownedGen, Partitions: m.knownPartitions}
	m.mu.Unlock()
	sort.Ints(owned)

	if n, err := m.partitionCount(ctx); err == nil && n > sub.Partitions {
		sub.Partitions = n
	} else if err != nil && sub.Partitions == 0 {
		return nil, true, err
	}
	if attempt == 0 {
		m.log.Info("joining the group", "reason", reason, "member", memberID, "owned", owned)
	}

	sent := time.Now()
	jctx, cancel := context.WithTimeout(ctx, m.waiting.Timeout)
	defer cancel()
	jr, err := m.waiting.JoinGroup(jctx, &kafka.JoinGroupRequest{
		GroupID:          m.cfg.Group,
		SessionTimeout:   m.cfg.SessionTimeout,
		RebalanceTimeout: m.cfg.RebalanceTimeout,
		MemberID:         memberID,
		GroupInstanceID:  m.cfg.InstanceID,
		ProtocolType:     protocolType,
		Protocols: []kafka.GroupProtocol{{
			Name: protocolName,
			Metadata: kafka.GroupProtocolSubscription{
				Topics:          []string{m.cfg.Topic},
				UserData:        sub.encode(),
				OwnedPartitions: map[string][]int{m.cfg.Topic: owned},
			},
		}},
	})
	if err != nil {
		return nil, true, fmt.Errorf("joining group %q: %w", m.cfg.Group, err)
	}
	m.log.Debug("join answered", "error", jr.Error, "member", jr.MemberID, "generation", jr.GenerationID, "leader", jr.LeaderID, "members", len(jr.Members), "took", time.Since(sent).String())
	switch {
	case jr.Error == nil:
	case errors.Is(jr.Error, kafka.MemberIDRequired):
		m.setMemberID(jr.MemberID)
		return nil, true, errRejoin
	case errors.Is(jr.Error, kafka.UnknownMemberId):
		m.loseAll("the coordinator no longer knows this member")
		m.setMemberID("")
		return nil, true, errRejoin
	case errors.Is(jr.Error, kafka.RebalanceInProgress):
		return nil, true, errRejoin
	default:
		if fatal := m.fatal(jr.Error); fatal != nil {
			return nil, false, fatal
		}
		return nil, true, fmt.Errorf("joining group %q: %w", m.cfg.Group, jr.Error)
	}
	m.mu.Lock()
	m.memberID = jr.MemberID
	m.lastAlive = sent
	m.mu.Unlock()

	var assignments []kafka.SyncGroupRequestAssignment
	if jr.LeaderID == jr.MemberID && len(jr.Members) > 0 {
		assignments = m.lead(jr, sub.Partitions)
	}

	sent = time.Now()
	sctx, cancel2 := context.WithTimeout(ctx, m.waiting.Timeout)
	defer cancel2()
	sr, err := m.waiting.SyncGroup(sctx, &kafka.SyncGroupRequest{
		GroupID:         m.cfg.Group,
		GenerationID:    jr.GenerationID,
		MemberID:        jr.MemberID,
		GroupInstanceID: m.cfg.InstanceID,
		ProtocolType:    protocolType,
		ProtocolName:    protocolName,
		Assignments:     assignments,
	})
	m.log.Debug("sync answered", "error", err, "took", time.Since(sent).String())
	if errors.Is(err, io.ErrUnexpectedEOF) {
		// kafka-go cannot decode the empty assignment of an error answer
		// (typically REBALANCE_IN_PROGRESS): rejoin, the join answer tells.
		return nil, true, errRejoin
	}
	if err != nil {
		return nil, true, fmt.Errorf("syncing group %q: %w", m.cfg.Group, err)
	}
	switch {
	case sr.Error == nil:
	case errors.Is(sr.Error, kafka.RebalanceInProgress):
		return nil, true, errRejoin
	case errors.Is(sr.Error, kafka.UnknownMemberId), errors.Is(sr.Error, kafka.IllegalGeneration):
		m.loseAll("the coordinator moved on without this member")
		if errors.Is(sr.Error, kafka.UnknownMemberId) {
			m.setMemberID("")
		}
		return nil, true, errRejoin
	default:
		if fatal := m.fatal(sr.Error); fatal != nil {
			return nil, false, fatal
		}
		return nil, true, fmt.Errorf("syncing group %q: %w", m.cfg.Group, sr.Error)
	}

	parts := sr.Assignment.AssignedPartitions[m.cfg.Topic]
	sort.Ints(parts)
	data := decodeAssignmentData(sr.Assignment.UserData)
	m.mu.Lock()
	m.generation = jr.GenerationID
	m.ownedGen = jr.GenerationID
	m.stable = true
	m.lastAlive = sent
	m.knownPartitions = max(sub.Partitions, data.Partitions)
	m.mu.Unlock()
	m.log.Info("joined the group", "member", jr.MemberID, "generation", jr.GenerationID,
		"leader", jr.LeaderID == jr.MemberID, "assigned", parts)
	return parts, false, nil
}

// lead computes every member's assignment.
func (m *Member) lead(jr *kafka.JoinGroupResponse, partitions int) []kafka.SyncGroupRequestAssignment {
	claims := make([]claim, 0, len(jr.Members))
	for _, mem := range jr.Members {
		sd := decodeSubscriptionData(mem.Metadata.UserData)
		partitions = max(partitions, sd.Partitions)
		claims = append(claims, claim{
			MemberID:   mem.ID,
			Owned:      mem.Metadata.OwnedPartitions[m.cfg.Topic],
			Generation: sd.Generation,
		})
	}
	plan := assign(claims, partitions)
	data := assignmentData{Partitions: partitions}.encode()
	out := make([]kafka.SyncGroupRequestAssignment, 0, len(claims))
	for _, c := range claims {
		out = append(out, kafka.SyncGroupRequestAssignment{
			MemberID: c.MemberID,
			Assignment: kafka.GroupProtocolAssignment{
				AssignedPartitions: map[string][]int{m.cfg.Topic: plan[c.MemberID]},
				UserData:           data,
			},
		})
	}
	m.log.Info("assigned partitions as group leader", "generation", jr.GenerationID, "members", len(claims), "partitions", partitions, "plan", plan)
	return out
}

func (m *Member) setMemberID(id string) {
	m.mu.Lock()
	m.memberID = id
	m.mu.Unlock()
}

// fatal returns the error Run must end with, or nil for a retriable one.
func (m *Member) fatal(err error) error {
	switch {
	case errors.Is(err, kafka.FencedInstanceID):
		return m.fencedError()
	case errors.Is(err, kafka.GroupAuthorizationFailed):
		return fmt.Errorf("group %q: not authorized to use this consumer group: %w", m.cfg.Group, err)
	case errors.Is(err, kafka.TopicAuthorizationFailed):
		return fmt.Errorf("group %q: not authorized to read topic %q: %w", m.cfg.Group, m.cfg.Topic, err)
	case errors.Is(err, kafka.InconsistentGroupProtocol):
		return fmt.Errorf("group %q is used by consumers of another kind (different protocol type or assignor): %w", m.cfg.Group, err)
	case errors.Is(err, kafka.InvalidSessionTimeout):
		return fmt.Errorf("group %q: the broker rejects the session timeout %s: %w", m.cfg.Group, m.cfg.SessionTimeout, err)
	case errors.Is(err, kafka.GroupMaxSizeReached):
		return fmt.Errorf("group %q is full (the broker's group.max.size): %w", m.cfg.Group, err)
	case errors.Is(err, kafka.InvalidGroupId):
		return fmt.Errorf("group %q: invalid group id: %w", m.cfg.Group, err)
	}
	return nil
}

// retryWait is the wait before the next attempt to join: none for a
// plain rejoin, otherwise 100ms doubling to 5s, with jitter.
type retryWait struct{ attempt int }

func newRetryWait() *retryWait { return &retryWait{} }

func (b *retryWait) next(err error) time.Duration {
	if errors.Is(err, errRejoin) {
		return 0
	}
	b.attempt++
	return backoff.Jitter(backoff.Exponential(b.attempt, 100*time.Millisecond, 5*time.Second))
}
