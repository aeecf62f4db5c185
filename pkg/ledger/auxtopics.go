package ledger

import (
	"context"
	"fmt"

	"github.com/jobctl/jobctl/pkg/admin"
	"github.com/jobctl/jobctl/pkg/kafkaconn"
	"github.com/segmentio/kafka-go"
)

// The auxiliary topics of a job topic. They live here, not in pkg/delay
// and pkg/deadletter, because those packages write job events through
// ledger: `jobctl consume` creates both topics with one call and no import
// cycle.
const (
	// DelayPartitions is the delay topic's partition count: one partition
	// per delay tier. pkg/delay fails to compile if its tier list has
	// another length.
	DelayPartitions = 7
	// DLQPartitions is the partition count a new dead-letter topic gets.
	// Dead letters are rare and read whole (list, replay): one partition
	// keeps them in the order they died.
	DLQPartitions = 1
	// ControlPartitions is the control topic's partition count: it holds
	// one small record per cancelled job and paused group, read whole by
	// every worker.
	ControlPartitions = 1
)

// DelayTopic is the topic where jobs of jobTopic wait for a later attempt.
func DelayTopic(jobTopic string) string { return jobTopic + ".delay" }

// DLQTopic is jobTopic's dead-letter topic.
func DLQTopic(jobTopic string) string { return jobTopic + ".dlq" }

// ControlTopic is jobTopic's compacted control topic (pkg/control):
// cancelled jobs and paused groups.
func ControlTopic(jobTopic string) string { return jobTopic + ".control" }

// EnsureAuxTopics creates jobTopic's delay, dead-letter and (compacted)
// control topics when they are missing, with jobTopic's replication
// factor, and waits until every partition of each has a leader. A topic created meanwhile by another
// process is fine. An existing delay topic with fewer partitions than there
// are tiers is an error: records for the missing tiers could not be written.
func EnsureAuxTopics(ctx context.Context, conn *kafkaconn.Conn, jobTopic string) error {
	client := conn.Client()
	defer func() {
		if t, ok := client.Transport.(*kafka.Transport); ok {
			t.CloseIdleConnections()
		}
	}()
	rf, err := replicationFactor(ctx, client, jobTopic)
	if err != nil {
		return err
	}
	a := admin.New(client)
	for _, t := range []struct {
		name       string
		partitions int
		configs    map[string]string
	}{
		{DelayTopic(jobTopic), DelayPartitions, nil},
		{DLQTopic(jobTopic), DLQPartitions, nil},
		{ControlTopic(jobTopic), ControlPartitions, map[string]string{"cleanup.policy": "compact"}},
	} {
		res, err := a.CreateTopic(ctx, t.name, t.partitions, rf, t.configs, true)
		if err != nil {
			return err
		}
		if t.name == DelayTopic(jobTopic) && res.Partitions < t.partitions {
			return fmt.Errorf("topic %q has %d partitions, want %d (one per delay tier): grow it with 'jobctl topic alter --topic %s --partitions %d'",
				t.name, res.Partitions, t.partitions, t.name, t.partitions)
		}
	}
	return nil
}

// replicationFactor is the largest replica count among topic's partitions.
func replicationFactor(ctx context.Context, client *kafka.Client, topic string) (int, error) {
	t, err := topicMetadata(ctx, client, topic)
	if err != nil {
		return 0, err
	}
	rf := 0
	for _, p := range t.Partitions {
		rf = max(rf, len(p.Replicas))
	}
	if rf < 1 {
		return 0, fmt.Errorf("topic %q: metadata shows no replicas", topic)
	}
	return rf, nil
}
