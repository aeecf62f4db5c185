package admin_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/jobctl/jobctl/pkg/admin"
	"github.com/jobctl/jobctl/pkg/embedded"
	"github.com/segmentio/kafka-go"
)

// Size counts a topic's records, DeleteTopics returns once the topics are
// gone (a second delete is ErrUnknownTopic, nothing deleted silently), and
// GroupIDs lists a group with commits; on the embedded broker (the
// integration suite runs the same against Kafka through the CLI).
func TestSizeDeleteAndGroupIDs(t *testing.T) {
	b, err := embedded.Start(embedded.Options{Addr: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	client := &kafka.Client{Addr: kafka.TCP(b.Addr()), Timeout: 10 * time.Second, Transport: &kafka.Transport{}}
	adm := admin.New(client)
	for _, name := range []string{"jobs", "jobs.dlq"} {
		if _, err := adm.CreateTopic(ctx, name, 2, 1, nil, false); err != nil {
			t.Fatal(err)
		}
	}
	w := &kafka.Writer{Addr: kafka.TCP(b.Addr()), Topic: "jobs", RequiredAcks: kafka.RequireAll, BatchTimeout: time.Millisecond}
	defer w.Close()
	if err := w.WriteMessages(ctx, kafka.Message{Key: []byte("a")}, kafka.Message{Key: []byte("b")}, kafka.Message{Key: []byte("c")}); err != nil {
		t.Fatal(err)
	}
	size, err := adm.Size(ctx, "jobs")
	if err != nil || size != (admin.TopicSize{Topic: "jobs", Partitions: 2, Records: 3}) {
		t.Fatalf("Size = %+v, %v", size, err)
	}
	if _, err := adm.Size(ctx, "nope"); !errors.Is(err, admin.ErrUnknownTopic) {
		t.Fatalf("Size of a missing topic: %v", err)
	}

	if _, err := client.OffsetCommit(ctx, &kafka.OffsetCommitRequest{GroupID: "workers", GenerationID: -1,
		Topics: map[string][]kafka.OffsetCommit{"jobs": {{Partition: 0, Offset: 1}}}}); err != nil {
		t.Fatal(err)
	}
	ids, err := adm.GroupIDs(ctx)
	if err != nil || !slices.Contains(ids, "workers") {
		t.Fatalf("GroupIDs = %v, %v", ids, err)
	}

	if err := adm.DeleteTopics(ctx, "jobs", "jobs.dlq"); err != nil {
		t.Fatal(err)
	}
	topics, err := adm.ListTopics(ctx, false)
	if err != nil || len(topics) != 0 {
		t.Fatalf("after delete: %+v, %v", topics, err)
	}
	if err := adm.DeleteTopics(ctx, "jobs"); !errors.Is(err, admin.ErrUnknownTopic) {
		t.Fatalf("deleting a missing topic: %v", err)
	}
}
