package admin

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"

	"github.com/segmentio/kafka-go"
)

// TopicSize is how big a topic is: what `topic delete` asks about before
// deleting it.
type TopicSize struct {
	Topic      string `json:"topic"`
	Partitions int    `json:"partitions"`
	// Records is the sum over partitions of high watermark minus start
	// offset: the records still stored (a compacted topic may hold fewer).
	Records int64 `json:"records"`
}

// Size reads topic's partition count and the number of records it holds.
// A missing topic is an error matching ErrUnknownTopic.
func (a *Admin) Size(ctx context.Context, topic string) (TopicSize, error) {
	c, done := a.session()
	defer done()
	t, err := topicMetadata(ctx, c, nil, topic)
	if err != nil {
		if errors.Is(err, ErrUnknownTopic) {
			return TopicSize{Topic: topic}, err
		}
		return TopicSize{Topic: topic}, fmt.Errorf("sizing topic %q: %w", topic, err)
	}
	size := TopicSize{Topic: topic, Partitions: len(t.Partitions)}
	reqs := make([]kafka.OffsetRequest, 0, 2*len(t.Partitions))
	for _, p := range t.Partitions {
		reqs = append(reqs, kafka.FirstOffsetOf(int(p.PartitionIndex)), kafka.LastOffsetOf(int(p.PartitionIndex)))
	}
	if len(reqs) == 0 {
		return size, nil
	}
	resp, err := c.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{topic: reqs}})
	if err != nil {
		return size, fmt.Errorf("reading offsets of topic %q: %w", topic, err)
	}
	var errs []error
	for _, po := range resp.Topics[topic] {
		if po.Error != nil {
			errs = append(errs, partitionError("reading offsets of", topic, po.Partition, po.Error))
			continue
		}
		size.Records += max(po.LastOffset-po.FirstOffset, 0)
	}
	return size, errors.Join(errs...)
}

// DeleteTopics deletes topics and waits until no broker's metadata shows
// any of them, or ctx ends: Kafka deletes asynchronously, and a topic
// created again under the same name right after would otherwise collide
// with the one being removed. Every topic must exist; a missing one is an
// error matching ErrUnknownTopic (nothing is deleted silently by name).
func (a *Admin) DeleteTopics(ctx context.Context, topics ...string) error {
	if len(topics) == 0 {
		return nil
	}
	c, done := a.session()
	defer done()
	resp, err := c.DeleteTopics(ctx, &kafka.DeleteTopicsRequest{Topics: topics})
	if err != nil {
		return fmt.Errorf("deleting topics %v: %w", topics, err)
	}
	if err := foldTopicErrors("deleting topic", resp.Errors, topics...); err != nil {
		return err
	}
	for _, t := range topics {
		if err := a.waitForDeletion(ctx, t); err != nil {
			return fmt.Errorf("deleted topic %q, but %w", t, err)
		}
	}
	return nil
}

// waitForDeletion waits until every broker reports topic as unknown.
func (a *Admin) waitForDeletion(ctx context.Context, topic string) error {
	var last error
	for {
		last = a.checkDeleted(ctx, topic)
		if last == nil {
			return nil
		}
		if err := sleep(ctx, a.PollInterval); err != nil {
			return fmt.Errorf("it was still listed by a broker before %v (last check: %v)", err, last)
		}
	}
}

func (a *Admin) checkDeleted(ctx context.Context, topic string) error {
	c, done := a.session()
	defer done()
	md, err := metadata(ctx, c, nil, []string{topic})
	if err != nil {
		return err
	}
	for _, b := range md.Brokers {
		addr := kafka.TCP(net.JoinHostPort(b.Host, strconv.Itoa(int(b.Port))))
		_, err := topicMetadata(ctx, c, addr, topic)
		if err == nil {
			return fmt.Errorf("broker %d still lists topic %q", b.NodeID, topic)
		}
		if !errors.Is(err, ErrUnknownTopic) {
			return fmt.Errorf("broker %d: %w", b.NodeID, err)
		}
	}
	return nil
}
