package admin

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/segmentio/kafka-go"
	metadataAPI "github.com/segmentio/kafka-go/protocol/metadata"
)

// TopicSummary is one line of a topic listing. The JSON names are part of
// jobctl's documented output (`jobctl topic list -o json`).
type TopicSummary struct {
	Topic             string `json:"topic"`
	Partitions        int    `json:"partitions"`
	ReplicationFactor int    `json:"replication_factor"`
	Internal          bool   `json:"internal"`
}

// CreateResult is what CreateTopic did.
type CreateResult struct {
	Topic string `json:"topic"`
	// Created is false when the topic already existed and ifNotExists was
	// set; Partitions and ReplicationFactor are then the existing topic's.
	Created           bool              `json:"created"`
	Partitions        int               `json:"partitions"`
	ReplicationFactor int               `json:"replication_factor"`
	Configs           map[string]string `json:"configs"`
}

// AlterResult is what AlterPartitions did.
type AlterResult struct {
	Topic              string `json:"topic"`
	PreviousPartitions int    `json:"previous_partitions"`
	Partitions         int    `json:"partitions"`
}

// CreateTopic creates topic name and waits until every broker's metadata
// shows all its partitions with a leader, or ctx ends. With ifNotExists an
// existing topic is not an error (its settings are left as they are and
// reported); without it the error matches kafka.TopicAlreadyExists.
func (a *Admin) CreateTopic(ctx context.Context, name string, partitions, replicationFactor int, configs map[string]string, ifNotExists bool) (CreateResult, error) {
	res := CreateResult{Topic: name, Partitions: partitions, ReplicationFactor: replicationFactor, Configs: configs}
	if res.Configs == nil {
		res.Configs = map[string]string{}
	}
	if partitions < 1 {
		return res, fmt.Errorf("creating topic %q: %d partitions: need at least 1", name, partitions)
	}
	if replicationFactor < 1 {
		return res, fmt.Errorf("creating topic %q: replication factor %d: need at least 1", name, replicationFactor)
	}
	entries := make([]kafka.ConfigEntry, 0, len(configs))
	for _, k := range sortedKeys(configs) {
		entries = append(entries, kafka.ConfigEntry{ConfigName: k, ConfigValue: configs[k]})
	}

	c, done := a.session()
	defer done()
	resp, err := c.CreateTopics(ctx, &kafka.CreateTopicsRequest{Topics: []kafka.TopicConfig{{
		Topic:             name,
		NumPartitions:     partitions,
		ReplicationFactor: replicationFactor,
		ConfigEntries:     entries,
	}}})
	if err != nil {
		return res, fmt.Errorf("creating topic %q: %w", name, err)
	}
	if err := foldTopicErrors("creating topic", resp.Errors, name); err != nil {
		if !ifNotExists || !errors.Is(resp.Errors[name], kafka.TopicAlreadyExists) {
			return res, err
		}
		// It exists: report what is there rather than what was asked for.
		// Created a moment ago by someone else, it may not be in every
		// broker's metadata yet.
		sum, err := a.topicSummary(ctx, name)
		for wait := 0; err != nil && errors.Is(err, kafka.UnknownTopicOrPartition) && wait < 50; wait++ {
			if sleep(ctx, 200*time.Millisecond) != nil {
				break
			}
			sum, err = a.topicSummary(ctx, name)
		}
		if err != nil {
			return res, fmt.Errorf("topic %q exists, but reading it: %w", name, err)
		}
		res.Partitions, res.ReplicationFactor, res.Configs = sum.Partitions, sum.ReplicationFactor, map[string]string{}
		// Someone may have created it a moment ago: the caller is about to
		// use it, so wait for it the same way as for a topic created here.
		if err := a.waitForPartitions(ctx, name, sum.Partitions); err != nil {
			return res, fmt.Errorf("topic %q exists, but %w", name, err)
		}
		return res, nil
	}
	res.Created = true
	if err := a.waitForPartitions(ctx, name, partitions); err != nil {
		return res, fmt.Errorf("created topic %q, but %w", name, err)
	}
	return res, nil
}

// AlterPartitions raises topic's partition count to n and waits until
// every broker's metadata shows them with leaders. It reads the current
// count first and refuses, before changing anything, a count that is not
// an increase (a *PartitionCountError): Kafka cannot remove partitions,
// and brokers differ on "the same count" (Kafka rejects it, kfake accepts).
func (a *Admin) AlterPartitions(ctx context.Context, topic string, n int) (AlterResult, error) {
	res := AlterResult{Topic: topic, Partitions: n}
	cur, err := a.topicSummary(ctx, topic)
	if err != nil {
		if errors.Is(err, ErrUnknownTopic) {
			return res, err
		}
		return res, fmt.Errorf("adding partitions to topic %q: %w", topic, err)
	}
	res.PreviousPartitions = cur.Partitions
	if n <= cur.Partitions {
		return res, &PartitionCountError{Topic: topic, Current: cur.Partitions, Requested: n}
	}
	c, done := a.session()
	defer done()
	resp, err := c.CreatePartitions(ctx, &kafka.CreatePartitionsRequest{Topics: []kafka.TopicPartitionsConfig{{
		Name: topic, Count: int32(n),
	}}})
	if err != nil {
		return res, fmt.Errorf("adding partitions to topic %q: %w", topic, err)
	}
	if err := foldTopicErrors("adding partitions to topic", resp.Errors, topic); err != nil {
		return res, err
	}
	if err := a.waitForPartitions(ctx, topic, n); err != nil {
		return res, fmt.Errorf("grew topic %q to %d partitions, but %w", topic, n, err)
	}
	return res, nil
}

// ListTopics lists the cluster's topics by name. Internal topics (Kafka's
// own, like __consumer_offsets, and any name starting with "__") are left
// out unless includeInternal. Topic-level errors in the metadata are
// returned, joined, next to the topics that could be listed.
func (a *Admin) ListTopics(ctx context.Context, includeInternal bool) ([]TopicSummary, error) {
	c, done := a.session()
	defer done()
	md, err := metadata(ctx, c, nil, nil)
	if err != nil {
		return nil, fmt.Errorf("listing topics: %w", err)
	}
	var errs []error
	out := make([]TopicSummary, 0, len(md.Topics))
	for _, t := range md.Topics {
		if err := codeError(t.ErrorCode); err != nil {
			errs = append(errs, topicError("listing topic", t.Name, err))
			continue
		}
		sum := summarize(t)
		if sum.Internal && !includeInternal {
			continue
		}
		out = append(out, sum)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Topic < out[j].Topic })
	return out, errors.Join(errs...)
}

// IsInternal reports whether a topic is Kafka's own bookkeeping: flagged
// internal by the broker, or named with the reserved "__" prefix
// (__consumer_offsets, __transaction_state, __share_group_state).
func IsInternal(name string, flagged bool) bool {
	return flagged || strings.HasPrefix(name, "__")
}

func summarize(t metadataAPI.ResponseTopic) TopicSummary {
	sum := TopicSummary{Topic: t.Name, Partitions: len(t.Partitions), Internal: IsInternal(t.Name, t.IsInternal)}
	for _, p := range t.Partitions {
		// Partitions can differ after a reassignment; report the largest.
		sum.ReplicationFactor = max(sum.ReplicationFactor, len(p.ReplicaNodes))
	}
	return sum
}

// topicSummary reads one topic's current shape from the broker.
func (a *Admin) topicSummary(ctx context.Context, topic string) (TopicSummary, error) {
	c, done := a.session()
	defer done()
	t, err := topicMetadata(ctx, c, nil, topic)
	if err != nil {
		return TopicSummary{}, err
	}
	return summarize(t), nil
}

// topicMetadata reads one topic's metadata from the broker at addr; a
// missing topic is an error that names it.
func topicMetadata(ctx context.Context, c *kafka.Client, addr net.Addr, topic string) (metadataAPI.ResponseTopic, error) {
	md, err := metadata(ctx, c, addr, []string{topic})
	if err != nil {
		return metadataAPI.ResponseTopic{}, fmt.Errorf("reading metadata: %w", err)
	}
	for _, t := range md.Topics {
		if t.Name != topic {
			continue
		}
		if err := codeError(t.ErrorCode); err != nil {
			if errors.Is(err, kafka.UnknownTopicOrPartition) {
				return t, &unknownTopicError{topic}
			}
			return t, fmt.Errorf("topic %q: %w", topic, err)
		}
		return t, nil
	}
	return metadataAPI.ResponseTopic{}, &unknownTopicError{topic}
}

// waitForPartitions waits until every broker of the cluster reports topic
// with n partitions, each with a leader and no error. Kafka applies topic
// changes asynchronously: a broker that has not caught up yet would fail
// the next produce or fetch that reaches it.
func (a *Admin) waitForPartitions(ctx context.Context, topic string, n int) error {
	var last error
	for {
		last = a.checkPartitions(ctx, topic, n)
		if last == nil {
			return nil
		}
		if err := sleep(ctx, a.PollInterval); err != nil {
			return fmt.Errorf("it was not visible with %d partitions and leaders on every broker before %v (last check: %v)", n, err, last)
		}
	}
}

func (a *Admin) checkPartitions(ctx context.Context, topic string, n int) error {
	c, done := a.session()
	defer done()
	md, err := metadata(ctx, c, nil, []string{topic})
	if err != nil {
		return err
	}
	if len(md.Brokers) == 0 {
		return errors.New("the metadata lists no brokers")
	}
	for _, b := range md.Brokers {
		addr := kafka.TCP(net.JoinHostPort(b.Host, strconv.Itoa(int(b.Port))))
		t, err := topicMetadata(ctx, c, addr, topic)
		if err != nil {
			return fmt.Errorf("broker %d: %w", b.NodeID, err)
		}
		if len(t.Partitions) != n {
			return fmt.Errorf("broker %d: topic %q has %d partitions, want %d", b.NodeID, topic, len(t.Partitions), n)
		}
		for _, p := range t.Partitions {
			if err := codeError(p.ErrorCode); err != nil {
				return fmt.Errorf("broker %d: %w", b.NodeID, partitionError("topic", topic, int(p.PartitionIndex), err))
			}
			if p.LeaderID < 0 {
				return fmt.Errorf("broker %d: partition %s/%d has no leader yet", b.NodeID, topic, p.PartitionIndex)
			}
		}
	}
	// Kafka's metadata can name a leader before that broker has taken the
	// partition over: a ListOffsets sent then fails with "Not Leader For
	// Partition" (seen in TestTopicAlter on Kafka 4.4). Ready means every
	// leader answers.
	reqs := make([]kafka.OffsetRequest, n)
	for i := range reqs {
		reqs[i] = kafka.LastOffsetOf(i)
	}
	resp, err := c.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{topic: reqs}})
	if err != nil {
		return fmt.Errorf("reading offsets of topic %q: %w", topic, err)
	}
	if got := len(resp.Topics[topic]); got != n {
		return fmt.Errorf("offsets of topic %q: %d of %d partitions answered", topic, got, n)
	}
	for _, po := range resp.Topics[topic] {
		if po.Error != nil {
			return partitionError("reading offsets of", topic, po.Partition, po.Error)
		}
	}
	return nil
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
