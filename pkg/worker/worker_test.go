package worker

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jobctl/jobctl/pkg/embedded"
	"github.com/jobctl/jobctl/pkg/handler"
	"github.com/jobctl/jobctl/pkg/job"
	"github.com/jobctl/jobctl/pkg/kafkaconn"
	"github.com/jobctl/jobctl/pkg/ledger"
	"github.com/segmentio/kafka-go"
)

// These tests run the worker against the embedded broker; the shared
// integration suite (test/integration) runs the command against real
// Kafka too.

func startBroker(t *testing.T) *kafkaconn.Conn {
	t.Helper()
	b, err := embedded.Start(embedded.Options{Addr: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	return &kafkaconn.Conn{Brokers: []string{b.Addr()}, ClientID: "worker-test"}
}

func createTopic(t *testing.T, conn *kafkaconn.Conn, name string, partitions int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := conn.Client().CreateTopics(ctx, &kafka.CreateTopicsRequest{Topics: []kafka.TopicConfig{{Topic: name, NumPartitions: partitions, ReplicationFactor: 1}}})
	if err != nil || resp.Errors[name] != nil {
		t.Fatalf("creating topic: %v %v", err, resp)
	}
}

// syncBuffer collects log output written from many goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// seenJobs is a handler that records the jobs it ran.
type seenJobs struct {
	mu   sync.Mutex
	seen map[string]int
}

func (s *seenJobs) Handle(_ context.Context, j job.Event) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.seen == nil {
		s.seen = map[string]int{}
	}
	s.seen[j.JobID.String()]++
	return nil
}

func (s *seenJobs) has(ids ...string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, id := range ids {
		if s.seen[id] == 0 {
			return false
		}
	}
	return true
}

func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up after %s waiting for %s", d, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func newJob(t *testing.T, id string) job.Event {
	t.Helper()
	jid, err := job.StringID(id)
	if err != nil {
		t.Fatal(err)
	}
	return job.Event{JobID: jid, Status: job.StatusNew}
}

// TestPartitionGrowthFallback turns kafka-go's partition watcher off and
// checks that the worker's own check still gets partitions added to the
// topic consumed, by leaving and rejoining the group.
func TestPartitionGrowthFallback(t *testing.T) {
	conn := startBroker(t)
	createTopic(t, conn, "grow", 1)
	logs := &syncBuffer{}
	h := &seenJobs{}
	w, err := New(conn, Config{Topic: "grow", Group: "g", Concurrency: 2, PartitionCheckInterval: 300 * time.Millisecond, noGroupWatch: true},
		h, Options{Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	type runResult struct {
		s   Summary
		err error
	}
	done := make(chan runResult, 1)
	go func() {
		s, err := w.Run(ctx)
		done <- runResult{s, err}
	}()

	lw := ledger.NewWriter(conn, "grow")
	defer lw.Close()
	appendTo := func(p int, id string) {
		t.Helper()
		wctx, wcancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer wcancel()
		for {
			err := lw.AppendTo(wctx, p, newJob(t, id))
			if err == nil {
				return
			}
			if wctx.Err() != nil {
				t.Fatalf("writing %s to partition %d: %v", id, p, err)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	appendTo(0, "first")
	waitFor(t, 30*time.Second, "the job on partition 0", func() bool { return h.has("first") })

	cctx, ccancel := context.WithTimeout(context.Background(), 10*time.Second)
	resp, err := conn.Client().CreatePartitions(cctx, &kafka.CreatePartitionsRequest{Topics: []kafka.TopicPartitionsConfig{{Name: "grow", Count: 3}}})
	ccancel()
	if err != nil || resp.Errors["grow"] != nil {
		t.Fatalf("adding partitions: %v %v", err, resp)
	}
	appendTo(1, "second")
	appendTo(2, "third")
	waitFor(t, 60*time.Second, "the jobs on the new partitions", func() bool { return h.has("second", "third") })
	cancel()
	r := <-done
	if r.err != nil {
		t.Fatal(r.err)
	}
	if r.s.Generations < 2 || r.s.Processed != 3 {
		t.Errorf("summary %+v: want 3 processed over at least 2 generations", r.s)
	}
	if !strings.Contains(logs.String(), "rejoining the group") {
		t.Errorf("the fallback did not act (kafka-go's watcher was off):\n%s", logs.String())
	}
}

// TestHandlerPanicFailsTheJobNotTheWorker: a panicking or failing handler
// records FAILED and the worker goes on with the next job.
func TestHandlerPanicFailsTheJobNotTheWorker(t *testing.T) {
	conn := startBroker(t)
	createTopic(t, conn, "panics", 1)
	lw := ledger.NewWriter(conn, "panics")
	defer lw.Close()
	ctx := context.Background()
	if err := lw.Append(ctx, newJob(t, "boom"), newJob(t, "oops"), newJob(t, "fine")); err != nil {
		t.Fatal(err)
	}
	h := handler.HandlerFunc(func(_ context.Context, j job.Event) error {
		switch j.JobID.String() {
		case "boom":
			panic("kaboom")
		case "oops":
			return errors.New("plain failure")
		}
		return nil
	})
	w, err := New(conn, Config{Topic: "panics", Group: "g", Concurrency: 1, MaxAttempts: 2, IdleTimeout: time.Second}, h, Options{})
	if err != nil {
		t.Fatal(err)
	}
	s, err := w.Run(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if s.Processed != 3 || s.Done != 1 || s.Failed != 2 || s.StopReason != "idle timeout" {
		t.Fatalf("summary %+v: want 3 processed, 1 done, 2 failed, stopped by the idle timeout", s)
	}
	r := kafka.NewReader(kafka.ReaderConfig{Brokers: conn.Brokers, Topic: "panics", Partition: 0, MaxWait: 100 * time.Millisecond})
	defer r.Close()
	got := map[string]job.Event{}
	for len(got) < 3 {
		rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		m, err := r.FetchMessage(rctx)
		cancel()
		if err != nil {
			t.Fatalf("reading events back (have %v): %v", got, err)
		}
		if e, err := ledger.Decode(m); err == nil && e.Status.Terminal() {
			got[e.JobID.String()] = e
		}
	}
	want := map[string]string{"boom": "FAILED handler panicked: kaboom", "oops": "FAILED plain failure", "fine": "DONE "}
	for id, w := range want {
		e := got[id]
		if s := fmt.Sprintf("%s %s", e.Status, e.Error); s != w || e.Attempt != 1+boolInt(e.Status == job.StatusFailed) {
			t.Errorf("job %s: %q attempt %d, want %q attempt %d", id, s, e.Attempt, w, 1+boolInt(e.Status == job.StatusFailed))
		}
	}
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}
