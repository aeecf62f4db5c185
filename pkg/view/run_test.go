package view

import (
	"context"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/jobctl/jobctl/pkg/embedded"
	"github.com/jobctl/jobctl/pkg/job"
	"github.com/jobctl/jobctl/pkg/kafkaconn"
	"github.com/jobctl/jobctl/pkg/ledger"
	"github.com/jobctl/jobctl/pkg/metrics"
	"github.com/segmentio/kafka-go"
)

// TestRunCatchesUpAndRebuilds reads a topic with an empty partition and a
// record that is not a job: the view catches up (without waiting on the
// empty partition), counts the garbage, and a second view built from the
// same topic holds exactly the same jobs.
func TestRunCatchesUpAndRebuilds(t *testing.T) {
	b, err := embedded.Start(embedded.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conn := &kafkaconn.Conn{Brokers: []string{b.Addr()}, ClientID: "view-test"}
	const topic = "jobs"
	resp, err := conn.Client().CreateTopics(ctx, &kafka.CreateTopicsRequest{Topics: []kafka.TopicConfig{{Topic: topic, NumPartitions: 3, ReplicationFactor: 1}}})
	if err != nil || resp.Errors[topic] != nil {
		t.Fatalf("creating topic: %v %v", err, resp)
	}
	w := ledger.NewWriter(conn, topic)
	defer w.Close()
	now := time.Now().UTC()
	for i := range 20 {
		id := job.NumericID(int64(i))
		// Partitions 0 and 1 only: 2 stays empty.
		must(t, w.AppendTo(ctx, i%2, job.Event{JobID: id, Status: job.StatusNew, CreatedAt: now, UpdatedAt: now}))
		if i%3 == 0 {
			must(t, w.AppendTo(ctx, i%2, job.Event{JobID: id, Status: job.StatusDone, Attempt: 1, UpdatedAt: now.Add(time.Second)}))
		}
	}
	raw := conn.Writer(topic, nil)
	defer raw.Close()
	must(t, raw.WriteMessages(ctx, kafka.Message{Key: []byte("x"), Value: []byte("{not json")}))

	build := func() (*View, *metrics.Metrics, context.CancelFunc, chan error) {
		m := metrics.New()
		v := New(Options{Conn: conn, Topic: topic, Metrics: m})
		rctx, stop := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- v.Run(rctx) }()
		must(t, v.WaitCaughtUp(ctx))
		return v, m, stop, done
	}
	v1, _, stop1, done1 := build()
	if v1.Len() != 20 || v1.Counts().ByStatus[job.StatusDone] != 7 {
		t.Fatalf("view has %d jobs, %v", v1.Len(), v1.Counts())
	}
	if p := v1.Progress(); p.InvalidRecords != 1 || !p.CaughtUp || len(p.Partitions) != 3 {
		t.Fatalf("progress %+v", p)
	}
	first, _ := v1.List(Query{})
	stop1()
	must(t, <-done1)

	v2, _, stop2, done2 := build()
	defer func() { stop2(); <-done2 }()
	second, _ := v2.List(Query{})
	if !reflect.DeepEqual(first, second) {
		t.Fatalf("rebuilt view differs:\n%v\n%v", first, second)
	}
	for _, j := range first {
		a, _ := v1.Get(j.ID.String())
		b, _ := v2.Get(j.ID.String())
		if !reflect.DeepEqual(a, b) {
			t.Fatalf("job %s differs after rebuild: %+v vs %+v", j.ID, a, b)
		}
	}
}

func TestRunFailsFastOnAMissingTopic(t *testing.T) {
	b, err := embedded.Start(embedded.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	v := New(Options{Conn: &kafkaconn.Conn{Brokers: []string{b.Addr()}}, Topic: "nope"})
	if err := v.Run(context.Background()); err == nil || !errors.Is(err, ErrTopicNotFound) {
		t.Fatalf("Run on a missing topic: %v", err)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
