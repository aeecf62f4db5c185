package group

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/segmentio/kafka-go"
)

// heartbeatLoop keeps the session alive while the member is in a stable
// generation, independently of what the Handler is doing, and reports
// rebalances and lost sessions to Run's loop.
func (m *Member) heartbeatLoop(ctx context.Context) {
	tick := time.NewTicker(m.cfg.HeartbeatInterval)
	defer tick.Stop()
	var coordinator net.Addr
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		m.mu.Lock()
		stable, id, gen, epoch := m.stable, m.memberID, m.generation, m.epoch
		m.mu.Unlock()
		if !stable || id == "" {
			continue
		}
		sent := time.Now()
		hctx, cancel := context.WithTimeout(ctx, m.cfg.SessionTimeout)
		err := m.heartbeat(hctx, &coordinator, id, gen)
		cancel()
		if ctx.Err() != nil {
			return
		}
		m.heartbeatResult(err, sent, epoch)
	}
}

func (m *Member) heartbeatResult(err error, sent time.Time, epoch uint64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if epoch != m.epoch {
		return // a join started meanwhile; this answer is about the past
	}
	switch {
	case err == nil:
		m.lastAlive = sent
	case errors.Is(err, kafka.RebalanceInProgress):
		m.lastAlive = sent // the coordinator still counts the member
		m.notify(event{kind: eventRebalance, epoch: epoch})
	case errors.Is(err, kafka.UnknownMemberId), errors.Is(err, kafka.IllegalGeneration):
		m.endSession(event{kind: eventLost, epoch: epoch, cause: fmt.Errorf("the coordinator answered a heartbeat with: %w", err)})
	case errors.Is(err, kafka.FencedInstanceID):
		m.endSession(event{kind: eventFenced, epoch: epoch, cause: err})
	default:
		if time.Since(m.lastAlive) > m.cfg.SessionTimeout {
			m.endSession(event{kind: eventLost, epoch: epoch, cause: fmt.Errorf("no heartbeat succeeded for the session timeout (%s), last error: %w", m.cfg.SessionTimeout, err)})
			return
		}
		m.log.Warn("heartbeat failed, retrying", "error", err)
	}
}

// endSession stops heartbeating, ends the session context (Handler.Revoked
// sees it) and tells Run's loop. m.mu is held.
func (m *Member) endSession(ev event) {
	m.stable = false
	m.sessCancel()
	m.notify(ev)
}

func (m *Member) notify(ev event) {
	select {
	case m.events <- ev:
	default:
	}
}

// heartbeat sends one heartbeat to the group coordinator.
//
// Two kafka-go v0.4.51 defects are worked around here. Its Heartbeat
// request does not name its group to the transport, so the transport sends
// it to any broker instead of the coordinator: the coordinator is looked
// up here and addressed directly. And its Heartbeat response declares
// ErrorCode before ThrottleTimeMs while Kafka (v1+) sends the throttle
// first, so HeartbeatResponse.Error is always nil and the error code lands
// in the low 16 bits of the throttle field; decodeHeartbeatError recovers it.
func (m *Member) heartbeat(ctx context.Context, coordinator *net.Addr, id string, gen int) error {
	if *coordinator == nil {
		fc, err := m.client.FindCoordinator(ctx, &kafka.FindCoordinatorRequest{Key: m.cfg.Group, KeyType: kafka.CoordinatorKeyTypeConsumer})
		if err != nil {
			return fmt.Errorf("finding the group coordinator: %w", err)
		}
		if fc.Error != nil {
			return fmt.Errorf("finding the group coordinator: %w", fc.Error)
		}
		if fc.Coordinator == nil {
			return errors.New("finding the group coordinator: no coordinator in the answer")
		}
		*coordinator = kafka.TCP(net.JoinHostPort(fc.Coordinator.Host, strconv.Itoa(fc.Coordinator.Port)))
	}
	resp, err := m.client.Heartbeat(ctx, &kafka.HeartbeatRequest{
		Addr:            *coordinator,
		GroupID:         m.cfg.Group,
		GenerationID:    int32(gen),
		MemberID:        id,
		GroupInstanceID: m.cfg.InstanceID,
	})
	if err == nil {
		err = decodeHeartbeatError(resp)
	}
	if err != nil && !errors.Is(err, kafka.RebalanceInProgress) && !errors.Is(err, kafka.UnknownMemberId) &&
		!errors.Is(err, kafka.IllegalGeneration) && !errors.Is(err, kafka.FencedInstanceID) {
		*coordinator = nil // look the coordinator up again next time
	}
	return err
}

func decodeHeartbeatError(resp *kafka.HeartbeatResponse) error {
	if resp.Error != nil {
		return resp.Error
	}
	raw := int32(resp.Throttle / time.Millisecond)
	if code := int16(uint16(raw)); code != 0 {
		return kafka.Error(code)
	}
	return nil
}
