package deadletter

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/jobctl/jobctl/pkg/kafkaconn"
)

// Service reads and replays the dead letters of one job topic for a
// long-running server: a read of the topic is reused for TTL, so a
// dashboard polling it does not re-read the topic on every request, and
// replays are serialized so two requests in one server never replay the
// same job twice.
type Service struct {
	conn     *kafkaconn.Conn
	jobTopic string
	ttl      time.Duration
	now      func() time.Time

	mu       sync.Mutex // held while reading, so concurrent misses read once
	cached   []Entry
	cachedAt time.Time
	missing  error // the ErrTopicNotFound of the cached read
	replayMu sync.Mutex
}

// DefaultCacheTTL is how long a Service reuses a read of the topic.
const DefaultCacheTTL = 2 * time.Second

// NewService returns a Service for jobTopic's dead letters; ttl <= 0
// means DefaultCacheTTL.
func NewService(conn *kafkaconn.Conn, jobTopic string, ttl time.Duration) *Service {
	if ttl <= 0 {
		ttl = DefaultCacheTTL
	}
	return &Service{conn: conn, jobTopic: jobTopic, ttl: ttl, now: time.Now}
}

// JobTopic is the job topic whose dead letters s serves.
func (s *Service) JobTopic() string { return s.jobTopic }

// List is List over a read at most TTL old. A missing topic is an error
// wrapping ErrTopicNotFound.
func (s *Service) List(ctx context.Context, f Filter) ([]Entry, error) {
	if err := f.Check(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cached == nil || s.now().Sub(s.cachedAt) >= s.ttl {
		all, err := readAll(ctx, s.conn, Topic(s.jobTopic))
		if err != nil && !errors.Is(err, ErrTopicNotFound) {
			return nil, err
		}
		if all == nil {
			all = []Entry{}
		}
		s.cached, s.cachedAt, s.missing = all, s.now(), err
	}
	if s.missing != nil {
		return nil, s.missing
	}
	return filterEntries(s.cached, f), nil
}

// Replay is Replay, one at a time, on a fresh read of the topic; it
// drops the cached read.
func (s *Service) Replay(ctx context.Context, req ReplayRequest) (ReplayResult, error) {
	s.replayMu.Lock()
	defer s.replayMu.Unlock()
	res, err := Replay(ctx, s.conn, s.jobTopic, req)
	if !req.DryRun {
		s.mu.Lock()
		s.cached = nil
		s.mu.Unlock()
	}
	return res, err
}
