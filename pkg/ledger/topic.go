package ledger

import (
	"context"
	"errors"
	"fmt"

	"github.com/segmentio/kafka-go"
)

// ErrTopicNotFound means the ledger topic does not exist yet.
var ErrTopicNotFound = errors.New("topic does not exist")

// Partitions returns the topic's partition count, or an error wrapping
// ErrTopicNotFound with a hint on how to create it. jobctl never creates
// topics implicitly: partition count and replication are decisions.
func Partitions(ctx context.Context, client *kafka.Client, topic string) (int, error) {
	t, err := topicMetadata(ctx, client, topic)
	if err != nil {
		return 0, err
	}
	return len(t.Partitions), nil
}

// topicMetadata returns topic's metadata, or an error wrapping
// ErrTopicNotFound with a hint on how to create it.
func topicMetadata(ctx context.Context, client *kafka.Client, topic string) (kafka.Topic, error) {
	md, err := client.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{topic}})
	if err != nil {
		return kafka.Topic{}, fmt.Errorf("reading metadata of topic %q from %s: %w", topic, client.Addr, err)
	}
	for _, t := range md.Topics {
		if t.Name != topic {
			continue
		}
		if errors.Is(t.Error, kafka.UnknownTopicOrPartition) {
			break
		}
		if t.Error != nil {
			return kafka.Topic{}, fmt.Errorf("reading metadata of topic %q: %w", topic, t.Error)
		}
		return t, nil
	}
	return kafka.Topic{}, fmt.Errorf("topic %q: %w (create it with 'jobctl topic create --topic %s --partitions N')", topic, ErrTopicNotFound, topic)
}
