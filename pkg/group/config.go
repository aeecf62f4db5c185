package group

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/segmentio/kafka-go"
)

// Config describes one membership of one topic's consumer group.
type Config struct {
	// Client has its Transport (TLS/SASL) set; see kafkaconn.Conn.Client.
	// Its Timeout bounds the short requests; JoinGroup and SyncGroup, which
	// the coordinator may hold for the rebalance timeout, get their own.
	Client *kafka.Client
	// Group is the consumer group id, Topic the one topic it consumes.
	Group, Topic string
	// InstanceID is the static member id (group.instance.id); "" makes a
	// dynamic member.
	InstanceID string
	// SessionTimeout is how long the coordinator keeps a silent member;
	// default 10s (brokers accept 6s to 5m by default).
	SessionTimeout time.Duration
	// RebalanceTimeout is how long the coordinator waits for members to
	// rejoin during a rebalance; default 60s. A member busy in
	// Handler.Revoked rejoins only afterwards, so a revoke longer than this
	// gets it removed from the group.
	RebalanceTimeout time.Duration
	// HeartbeatInterval defaults to 1s.
	HeartbeatInterval time.Duration
	// PartitionCheckInterval is how often the topic's partition count is
	// checked for growth; default 2s.
	PartitionCheckInterval time.Duration
	// Logger defaults to slog.Default().
	Logger *slog.Logger
}

// Partition is a partition newly assigned to this member.
type Partition struct {
	ID int
	// Offset is the committed offset (the next one to process), -1 if the
	// group has none.
	Offset int64
	// Metadata is the metadata committed with Offset.
	Metadata string
}

// Offset is what Member.Commit stores for one partition.
type Offset struct {
	// Offset is the next offset to process.
	Offset   int64
	Metadata string
}

// Handler gets assignment changes; calls are never concurrent with each
// other.
type Handler interface {
	// Assigned: partitions newly owned by this member in generation
	// Member.Generation(). Must return quickly (start work in goroutines).
	// ctx ends when the session is lost or the member has stopped.
	Assigned(ctx context.Context, parts []Partition)
	// Revoked: partitions this member loses (a rebalance moves them, or
	// the member is stopping). Must return only when their running work is
	// finished and their offsets committed (via Member.Commit); the member
	// keeps heartbeating meanwhile. ctx ends when the session is lost (then
	// commits fail, work should be abandoned).
	Revoked(ctx context.Context, parts []int)
	// Lost: partitions taken away without a chance to commit (session
	// expired, fenced, unknown member). Work must stop at once, nothing
	// may be committed.
	Lost(parts []int)
}

const (
	defaultSessionTimeout         = 10 * time.Second
	defaultRebalanceTimeout       = 60 * time.Second
	defaultHeartbeatInterval      = time.Second
	defaultPartitionCheckInterval = 2 * time.Second
)

func (c *Config) validate() error {
	if c.Client == nil {
		return errors.New("group membership: a Kafka client is required")
	}
	if c.Group == "" {
		return errors.New("group membership: a group id is required")
	}
	if c.Topic == "" {
		return errors.New("group membership: a topic is required")
	}
	if c.SessionTimeout <= 0 {
		c.SessionTimeout = defaultSessionTimeout
	}
	if c.RebalanceTimeout <= 0 {
		c.RebalanceTimeout = defaultRebalanceTimeout
	}
	if c.HeartbeatInterval <= 0 {
		c.HeartbeatInterval = defaultHeartbeatInterval
	}
	if c.HeartbeatInterval >= c.SessionTimeout {
		return errors.New("group membership: the heartbeat interval must be shorter than the session timeout")
	}
	if c.PartitionCheckInterval <= 0 {
		c.PartitionCheckInterval = defaultPartitionCheckInterval
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return nil
}
