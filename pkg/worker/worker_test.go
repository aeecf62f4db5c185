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

// ranJobs is a handler that records the jobs it ran.
type ranJobs struct {
	mu  sync.Mutex
	ran map[string]int
}

func (s *ranJobs) Handle(_ context.Context, j job.Event) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ran == nil {
		s.ran = map[string]int{}
	}
	s.ran[j.JobID.String()]++
	return nil
}

func (s *ranJobs) has(ids ...string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, id := range ids {
		if s.ran[id] == 0 {
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

// terminalEvents reads topic partition 0..n-1 until want jobs have a
// DEAD or DONE event and returns the last terminal event per job.
func terminalEvents(t *testing.T, conn *kafkaconn.Conn, topic string, partitions, want int) map[string]job.Event {
	t.Helper()
	got := map[string]job.Event{}
	deadline := time.Now().Add(60 * time.Second)
	readers := make([]*kafka.Reader, partitions)
	for p := range readers {
		readers[p] = kafka.NewReader(kafka.ReaderConfig{Brokers: conn.Brokers, Topic: topic, Partition: p, MaxWait: 100 * time.Millisecond})
		defer readers[p].Close()
	}
	final := func() int {
		n := 0
		for _, e := range got {
			if e.Status == job.StatusDone || e.Status == job.StatusDead {
				n++
			}
		}
		return n
	}
	for final() < want {
		if time.Now().After(deadline) {
			t.Fatalf("only %d of %d jobs finished: %v", final(), want, got)
		}
		for _, r := range readers {
			ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
			m, err := r.FetchMessage(ctx)
			cancel()
			if err != nil {
				continue
			}
			if e, err := ledger.Decode(m); err == nil && e.Status.Terminal() {
				if cur, ok := got[e.JobID.String()]; !ok || e.Supersedes(cur) {
					got[e.JobID.String()] = e
				}
			}
		}
	}
	return got
}

func runWorker(t *testing.T, w *Worker, ctx context.Context) <-chan Summary {
	t.Helper()
	done := make(chan Summary, 1)
	go func() {
		s, err := w.Run(ctx)
		if err != nil {
			t.Errorf("worker: %v", err)
		}
		done <- s
	}()
	return done
}

// TestPartitionGrowth: partitions added to the topic are consumed without
// a restart.
func TestPartitionGrowth(t *testing.T) {
	conn := startBroker(t)
	createTopic(t, conn, "grow", 1)
	h := &ranJobs{}
	w, err := New(conn, Config{Topic: "grow", Group: "g", Concurrency: 2, PartitionCheckInterval: 300 * time.Millisecond}, h, Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := runWorker(t, w, ctx)

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
	s := <-done
	if s.Assignments < 2 || s.Processed != 3 {
		t.Errorf("summary %+v: want 3 processed over at least 2 assignments", s)
	}
}

// TestFailuresRetryThenDie: a panicking and a failing handler retry off
// the partition and end DEAD with every attempt's error; the good job is
// DONE; the worker goes on.
func TestFailuresRetryThenDie(t *testing.T) {
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
	w, err := New(conn, Config{Topic: "panics", Group: "g", Concurrency: 1, IdleTimeout: 3 * time.Second,
		Policy: Policy{MaxAttempts: 2, Backoff: 100 * time.Millisecond, BackoffMax: 200 * time.Millisecond}}, h, Options{})
	if err != nil {
		t.Fatal(err)
	}
	s, err := w.Run(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if s.Processed != 5 || s.Done != 1 || s.Failed != 2 || s.Dead != 2 || s.StopReason != "idle timeout" {
		t.Fatalf("summary %+v: want 5 attempts: 1 done, 2 failed, 2 dead, stopped by the idle timeout", s)
	}
	got := terminalEvents(t, conn, "panics", 1, 3)
	want := map[string]string{"boom": "DEAD 2 handler panicked: kaboom", "oops": "DEAD 2 plain failure", "fine": "DONE 1 "}
	for id, w := range want {
		e := got[id]
		if s := fmt.Sprintf("%s %d %s", e.Status, e.Attempt, e.Error); s != w || e.Group != "g" {
			t.Errorf("job %s: %q group %q, want %q group g", id, s, e.Group, w)
		}
	}
}

// TestHungJobHoldsOneSlot: a handler that ignores its context holds one
// slot until its timeout; every other job on the same partition runs
// meanwhile in the other slot; the hung job fails by its timeout.
func TestHungJobHoldsOneSlot(t *testing.T) {
	conn := startBroker(t)
	createTopic(t, conn, "hang", 1)
	lw := ledger.NewWriter(conn, "hang")
	defer lw.Close()
	ctx := context.Background()
	jobs := []job.Event{newJob(t, "hang")}
	for i := range 200 {
		jobs = append(jobs, newJob(t, fmt.Sprintf("j%d", i)))
	}
	if err := lw.Append(ctx, jobs...); err != nil {
		t.Fatal(err)
	}
	release := make(chan struct{})
	defer close(release)
	var mu sync.Mutex
	var lastOther time.Time
	h := handler.HandlerFunc(func(_ context.Context, j job.Event) error {
		if j.JobID.String() == "hang" {
			<-release // ignores its context
			return nil
		}
		mu.Lock()
		lastOther = time.Now()
		mu.Unlock()
		return nil
	})
	w, err := New(conn, Config{Topic: "hang", Group: "g", Concurrency: 2, IdleTimeout: 2 * time.Second,
		Policy: Policy{Timeout: time.Second, MaxAttempts: 1}}, h, Options{})
	if err != nil {
		t.Fatal(err)
	}
	s, err := w.Run(ctx)
	if err != nil {
		t.Fatal(err)
	}
	got := terminalEvents(t, conn, "hang", 1, 201)
	e := got["hang"]
	if e.Status != job.StatusDead || !strings.Contains(e.Error, "timed out after 1s") {
		t.Errorf("hung job: %+v, want DEAD timed out", e)
	}
	mu.Lock()
	defer mu.Unlock()
	if !lastOther.Before(e.UpdatedAt) || s.Done != 200 || s.Abandoned != 1 {
		t.Errorf("last other job ran at %s, the hung one ended at %s; summary %+v: want all 200 others done before the hung one ended, 1 abandoned",
			lastOther.Format(time.StampMilli), e.UpdatedAt.Format(time.StampMilli), s)
	}
}

// TestIdleTimeoutWaitsForHistoryScan: a worker reading a partition's
// history (a fresh group on a big topic reads ahead up to DedupWindow
// records per partition before its first job) is not idle. Before the
// fix, consume --timeout 300ms on 300,000 jobs stopped with 0 processed.
func TestIdleTimeoutWaitsForHistoryScan(t *testing.T) {
	w := &Worker{cfg: Config{IdleTimeout: 10 * time.Millisecond}, log: slog.New(slog.DiscardHandler), pool: newJobPool(1)}
	w.lastActivity.Store(time.Now().Add(-time.Hour).UnixNano())
	w.scanning.Add(1)
	ctx, cancel := context.WithCancelCause(context.Background())
	defer cancel(nil)
	done := make(chan struct{})
	go func() { defer close(done); w.watchIdle(ctx, cancel) }()
	time.Sleep(30 * w.cfg.IdleTimeout) // many ticks of the idle watch
	if ctx.Err() != nil {
		t.Fatalf("stopped while reading a partition's history: %v", context.Cause(ctx))
	}
	cancel(nil)
	<-done
}

// TestHandOverIsCleanOnlyPastInheritedHistory: a partition whose earlier
// owner may have finished jobs up to an offset (the read-ahead of an
// "open" commit) is handed over clean only once this owner's committed
// offset is past it; until the history scan knows that range, never.
func TestHandOverIsCleanOnlyPastInheritedHistory(t *testing.T) {
	w := &Worker{cfg: Config{DedupWindow: 100}, log: slog.New(slog.DiscardHandler), handlerCtx: context.Background()}
	p := w.newPartition(3, 10)
	if got := p.commitMetadata(true, 10); got != metaOpen {
		t.Fatalf("before the scan knows the inherited range: %q, want open", got)
	}
	p.cleanFrom.Store(50) // the scan: earlier owners may have finished jobs below 50
	if got := p.commitMetadata(true, 10); got != metaOpen {
		t.Fatalf("revoked at 10 with history up to 50 unread: %q, want open", got)
	}
	if got := p.commitMetadata(true, 50); got != metaClean {
		t.Fatalf("committed past the inherited range, nothing done above: %q, want clean", got)
	}
	if got := p.commitMetadata(false, 50); got != metaOpen {
		t.Fatalf("a periodic commit: %q, want open", got)
	}
	p.tracker.Fetched(3, 50)
	p.tracker.Fetched(3, 51)
	p.tracker.Completed(3, 51) // done above a gap
	if got := p.commitMetadata(true, 50); got != metaOpen {
		t.Fatalf("a job done above the committed offset: %q, want open", got)
	}
}

// promptPanicky is a handler that says it returns promptly, so the worker
// runs it on the slot's goroutine: a panic must still become the attempt's
// error, and its time limit must still end it.
type promptPanicky struct{}

func (promptPanicky) ReturnsPromptly(string) bool { return true }

func (promptPanicky) Handle(ctx context.Context, j job.Event) error {
	switch j.JobID.String() {
	case "panics":
		panic("boom")
	case "slow":
		<-ctx.Done() // honours its context, as it promised
		return ctx.Err()
	}
	return nil
}

// TestPromptHandlerRunsInlineSafely: a handler run without a goroutine of
// its own (handler.Sleep, ReturnsPromptly) has its panic recovered and its
// time limit enforced like any other.
func TestPromptHandlerRunsInlineSafely(t *testing.T) {
	conn := startBroker(t)
	createTopic(t, conn, "inline", 1)
	lw := ledger.NewWriter(conn, "inline")
	defer lw.Close()
	ctx := context.Background()
	if err := lw.Append(ctx, newJob(t, "panics"), newJob(t, "slow"), newJob(t, "fine")); err != nil {
		t.Fatal(err)
	}
	w, err := New(conn, Config{Topic: "inline", Group: "g", Concurrency: 2, IdleTimeout: 2 * time.Second,
		Policy: Policy{Timeout: 300 * time.Millisecond, MaxAttempts: 1}}, promptPanicky{}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if w.prompt == nil {
		t.Fatal("the worker did not see that the handler returns promptly")
	}
	s, err := w.Run(ctx)
	if err != nil {
		t.Fatal(err)
	}
	got := terminalEvents(t, conn, "inline", 1, 3)
	if e := got["panics"]; e.Status != job.StatusDead || !strings.Contains(e.Error, "handler panicked: boom") {
		t.Errorf("panicking job: %s %q, want DEAD with the panic", e.Status, e.Error)
	}
	if e := got["slow"]; e.Status != job.StatusDead || !strings.Contains(e.Error, "timed out after 300ms") {
		t.Errorf("slow job: %s %q, want DEAD by its time limit", e.Status, e.Error)
	}
	if e := got["fine"]; e.Status != job.StatusDone {
		t.Errorf("fine job: %s, want DONE", e.Status)
	}
	if s.Abandoned != 0 {
		t.Errorf("%d handlers abandoned, want 0", s.Abandoned)
	}
}
