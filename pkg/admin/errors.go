package admin

import (
	"errors"
	"fmt"
	"sort"

	"github.com/segmentio/kafka-go"
)

// ErrUnknownTopic is matched (errors.Is) by every error about a topic that
// does not exist; so is kafka.UnknownTopicOrPartition.
var ErrUnknownTopic = errors.New("topic does not exist")

// unknownTopicError names the missing topic.
type unknownTopicError struct{ topic string }

func (e *unknownTopicError) Error() string {
	return fmt.Sprintf("topic %q does not exist", e.topic)
}

func (e *unknownTopicError) Is(target error) bool {
	return target == ErrUnknownTopic || target == kafka.UnknownTopicOrPartition
}

// PartitionCountError is AlterPartitions refusing a count that is not an
// increase. Kafka can only add partitions: removing one would lose its
// records, and the key -> partition mapping of every job would change.
type PartitionCountError struct {
	Topic     string
	Current   int
	Requested int
}

func (e *PartitionCountError) Error() string {
	return fmt.Sprintf("topic %q has %d partitions; the new count must be greater than %d, not %d (partitions can only be added)",
		e.Topic, e.Current, e.Current, e.Requested)
}

// foldTopicErrors turns a kafka-go per-topic error map (the Errors of
// CreateTopicsResponse or CreatePartitionsResponse) into one error. Each
// entry is wrapped with what was being done and its topic, in topic order,
// so errors.Is still finds the kafka.Error codes. want lists the topics
// that were asked for: a topic the broker did not answer for is an error
// too, never a silent success.
func foldTopicErrors(doing string, errs map[string]error, want ...string) error {
	topics := make([]string, 0, len(errs))
	for t := range errs {
		topics = append(topics, t)
	}
	sort.Strings(topics)
	var all []error
	for _, t := range want {
		if _, ok := errs[t]; !ok {
			all = append(all, fmt.Errorf("%s %q: the broker sent no result for the topic", doing, t))
		}
	}
	for _, t := range topics {
		if err := errs[t]; err != nil {
			all = append(all, topicError(doing, t, err))
		}
	}
	return errors.Join(all...)
}

// topicError words the common cases so they read well on a terminal.
func topicError(doing, topic string, err error) error {
	switch {
	case errors.Is(err, kafka.TopicAlreadyExists):
		return fmt.Errorf("%s %q: topic %q already exists: %w", doing, topic, topic, err)
	case errors.Is(err, kafka.UnknownTopicOrPartition):
		return fmt.Errorf("%s %q: %w (%w)", doing, topic, &unknownTopicError{topic}, err)
	}
	return fmt.Errorf("%s %q: %w", doing, topic, err)
}

// partitionError is one partition's error, wrapped with its position.
func partitionError(doing, topic string, partition int, err error) error {
	return fmt.Errorf("%s %s/%d: %w", doing, topic, partition, err)
}

// codeError turns a raw protocol error code into kafka-go's error (nil for
// 0), so raw responses fold the same way as kafka-go's typed ones.
func codeError(code int16) error {
	if code == 0 {
		return nil
	}
	return kafka.Error(code)
}
