package schedule

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jobctl/jobctl/pkg/admin"
	"github.com/jobctl/jobctl/pkg/kafkaconn"
	"github.com/jobctl/jobctl/pkg/ledger"
	"github.com/segmentio/kafka-go"
)

// Topic is the compacted topic of jobTopic's schedule definitions.
func Topic(jobTopic string) string { return jobTopic + ".schedules" }

// LeaderTopic is the one-partition topic whose consumer group (of the
// same name) elects the scheduler that fires ticks.
func LeaderTopic(jobTopic string) string { return jobTopic + ".scheduler" }

// ErrNotFound means there is no schedule of that name.
var ErrNotFound = errors.New("no such schedule")

// ErrTopicNotFound means the schedules topic does not exist yet.
var ErrTopicNotFound = ledger.ErrTopicNotFound

// EnsureTopics creates jobTopic's schedules topic (compacted, one
// partition: definitions are few and read whole) and the leader topic
// (one partition: one owner) when missing, with the job topic's
// replication factor, like ledger.EnsureAuxTopics.
func EnsureTopics(ctx context.Context, conn *kafkaconn.Conn, jobTopic string) error {
	client := conn.Client()
	defer closeIdle(client)
	rf, err := replicationFactor(ctx, client, jobTopic)
	if err != nil {
		return err
	}
	a := admin.New(client)
	if _, err := a.CreateTopic(ctx, Topic(jobTopic), 1, rf, map[string]string{"cleanup.policy": "compact"}, true); err != nil {
		return err
	}
	_, err = a.CreateTopic(ctx, LeaderTopic(jobTopic), 1, rf, nil, true)
	return err
}

func closeIdle(client *kafka.Client) {
	if t, ok := client.Transport.(*kafka.Transport); ok {
		t.CloseIdleConnections()
	}
}

func replicationFactor(ctx context.Context, client *kafka.Client, topic string) (int, error) {
	md, err := client.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{topic}})
	if err != nil {
		return 0, fmt.Errorf("reading metadata of topic %q from %s: %w", topic, client.Addr, err)
	}
	for _, t := range md.Topics {
		if t.Name != topic || errors.Is(t.Error, kafka.UnknownTopicOrPartition) {
			continue
		}
		if t.Error != nil {
			return 0, fmt.Errorf("reading metadata of topic %q: %w", topic, t.Error)
		}
		rf := 1
		for _, p := range t.Partitions {
			rf = max(rf, len(p.Replicas))
		}
		return rf, nil
	}
	return 0, fmt.Errorf("topic %q: %w (create it with 'jobctl topic create --topic %s --partitions N')", topic, ErrTopicNotFound, topic)
}

// Store reads and writes the schedule definitions of one job topic.
// Writes are read-modify-write without a lock: two clients pausing and
// replacing one schedule at the same moment may lose one change (the
// last write wins), as with any compacted-topic key.
type Store struct {
	conn     *kafkaconn.Conn
	jobTopic string
	now      func() time.Time
}

// NewStore returns a store for jobTopic's schedules.
func NewStore(conn *kafkaconn.Conn, jobTopic string) *Store {
	return &Store{conn: conn, jobTopic: jobTopic, now: time.Now}
}

// List reads the schedules topic to its end (as of the call) and returns
// every live schedule, sorted by name. A missing topic is an empty list.
func (s *Store) List(ctx context.Context) ([]Schedule, error) {
	m, err := readAll(ctx, s.conn, Topic(s.jobTopic))
	if errors.Is(err, ErrTopicNotFound) {
		return []Schedule{}, nil
	}
	if err != nil {
		return nil, err
	}
	out := make([]Schedule, 0, len(m))
	for _, sc := range m {
		out = append(out, sc)
	}
	slices.SortFunc(out, func(a, b Schedule) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

// Get returns the schedule name, or an error wrapping ErrNotFound.
func (s *Store) Get(ctx context.Context, name string) (Schedule, error) {
	all, err := s.List(ctx)
	if err != nil {
		return Schedule{}, err
	}
	for _, sc := range all {
		if sc.Name == name {
			return sc, nil
		}
	}
	return Schedule{}, fmt.Errorf("schedule %q: %w", name, ErrNotFound)
}

// Put creates or replaces sc (validated; a SpecError when invalid). A
// replaced schedule keeps its created_at.
func (s *Store) Put(ctx context.Context, sc Schedule) (Schedule, error) {
	if err := sc.Validate(); err != nil {
		return sc, err
	}
	if err := EnsureTopics(ctx, s.conn, s.jobTopic); err != nil {
		return sc, err
	}
	now := s.now().UTC()
	sc.CreatedAt, sc.UpdatedAt = now, now
	if old, err := s.Get(ctx, sc.Name); err == nil {
		sc.CreatedAt = old.CreatedAt
	} else if !errors.Is(err, ErrNotFound) {
		return sc, err
	}
	return sc, s.write(ctx, sc.Name, &sc)
}

// SetPaused pauses or resumes the schedule name. Resuming fires no tick
// of the pause: ticks count from the resume (updated_at).
func (s *Store) SetPaused(ctx context.Context, name string, paused bool) (Schedule, error) {
	sc, err := s.Get(ctx, name)
	if err != nil {
		return sc, err
	}
	if sc.Paused == paused {
		return sc, nil
	}
	sc.Paused, sc.UpdatedAt = paused, s.now().UTC()
	return sc, s.write(ctx, name, &sc)
}

// Delete writes the tombstone of name; an error wrapping ErrNotFound when
// there is no such schedule.
func (s *Store) Delete(ctx context.Context, name string) error {
	if _, err := s.Get(ctx, name); err != nil {
		return err
	}
	return s.write(ctx, name, nil)
}

func (s *Store) write(ctx context.Context, name string, sc *Schedule) error {
	w := s.conn.Writer(Topic(s.jobTopic), &kafka.Hash{})
	defer w.Close()
	defer func() {
		if t, ok := w.Transport.(*kafka.Transport); ok {
			t.CloseIdleConnections()
		}
	}()
	msg := kafka.Message{Key: []byte(name)}
	if sc != nil {
		b, err := json.Marshal(sc)
		if err != nil {
			return err
		}
		msg.Value = b
	}
	if err := w.WriteMessages(ctx, msg); err != nil {
		return fmt.Errorf("writing schedule %q to %s: %w", name, Topic(s.jobTopic), err)
	}
	return nil
}

// apply folds one record of the schedules topic into m: the latest
// record of a key is its definition, a tombstone (or an undecodable
// value) removes it.
func apply(m map[string]Schedule, msg kafka.Message) {
	name := string(msg.Key)
	if name == "" {
		return
	}
	var sc Schedule
	if len(msg.Value) == 0 || json.Unmarshal(msg.Value, &sc) != nil || sc.Name != name || sc.Validate() != nil {
		delete(m, name)
		return
	}
	m[name] = sc
}

// readAll reads topic's one partition from its start to its end offset
// at the time of the call.
func readAll(ctx context.Context, conn *kafkaconn.Conn, topic string) (map[string]Schedule, error) {
	client := conn.Client()
	defer closeIdle(client)
	if _, err := ledger.Partitions(ctx, client, topic); err != nil {
		return nil, err
	}
	first, err := ledger.ListOffsets(ctx, client, topic, []int{0}, kafka.FirstOffset)
	if err != nil {
		return nil, err
	}
	end, err := ledger.ListOffsets(ctx, client, topic, []int{0}, kafka.LastOffset)
	if err != nil {
		return nil, err
	}
	m := map[string]Schedule{}
	if first[0] >= end[0] {
		return m, nil
	}
	r := newReader(conn, topic)
	defer r.Close()
	if err := r.SetOffset(first[0]); err != nil {
		return nil, fmt.Errorf("reading %s: %w", topic, err)
	}
	for {
		msg, err := r.FetchMessage(ctx)
		if err != nil {
			return nil, fmt.Errorf("reading %s up to offset %d: %w", topic, end[0], err)
		}
		apply(m, msg)
		if msg.Offset+1 >= end[0] || r.Lag() == 0 {
			return m, nil
		}
	}
}

func newReader(conn *kafkaconn.Conn, topic string) *kafka.Reader {
	return kafka.NewReader(kafka.ReaderConfig{
		Brokers:        conn.Brokers,
		Dialer:         conn.Dialer(),
		Topic:          topic,
		Partition:      0,
		MinBytes:       1,
		MaxBytes:       8 << 20,
		MaxWait:        200 * time.Millisecond,
		ReadBackoffMin: 50 * time.Millisecond,
		ReadBackoffMax: time.Second,
	})
}
