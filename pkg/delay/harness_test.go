package delay

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jobctl/jobctl/pkg/admin"
	"github.com/jobctl/jobctl/pkg/embedded"
	"github.com/jobctl/jobctl/pkg/job"
	"github.com/jobctl/jobctl/pkg/kafkaconn"
	"github.com/jobctl/jobctl/pkg/ledger"
	"github.com/segmentio/kafka-go"
)

// The broker tests run against the embedded broker and, when
// JOBCTL_TEST_BROKERS is set, against that cluster (real Kafka in CI).
type target struct {
	name    string
	brokers []string
}

var targets []target

func TestMain(m *testing.M) {
	b, err := embedded.Start(embedded.Options{Addr: "127.0.0.1:0"})
	if err != nil {
		fmt.Fprintln(os.Stderr, "starting embedded broker:", err)
		os.Exit(1)
	}
	targets = append(targets, target{"embedded", []string{b.Addr()}})
	if ext := os.Getenv("JOBCTL_TEST_BROKERS"); ext != "" {
		targets = append(targets, target{"kafka", strings.Split(ext, ",")})
	}
	code := m.Run()
	b.Close()
	os.Exit(code)
}

func forEachBroker(t *testing.T, fn func(t *testing.T, e *env)) {
	t.Helper()
	if testing.Short() {
		t.Skip("broker test")
	}
	for _, tgt := range targets {
		t.Run(tgt.name, func(t *testing.T) {
			fn(t, &env{tgt: tgt, conn: &kafkaconn.Conn{Brokers: tgt.brokers, ClientID: "delay-test"}})
		})
	}
}

type env struct {
	tgt      target
	conn     *kafkaconn.Conn
	jobTopic string
}

// createTopics creates a fresh job topic and its auxiliary topics.
func (e *env) createTopics(t *testing.T, partitions int, configs map[string]string) {
	t.Helper()
	var b [4]byte
	_, _ = rand.Read(b[:])
	e.jobTopic = "delay-" + strings.ReplaceAll(strings.ToLower(t.Name()), "/", "-") + "-" + hex.EncodeToString(b[:])
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := admin.New(e.conn.Client()).CreateTopic(ctx, e.jobTopic, partitions, 1, configs, false); err != nil {
		t.Fatal(err)
	}
	if err := ledger.EnsureAuxTopics(ctx, e.conn, e.jobTopic); err != nil {
		t.Fatal(err)
	}
}

// startReleaser runs a releaser until the returned stop is called (or the
// test ends); stop waits for Run to return. tiers, if set, replaces the
// releaser's tier durations (a test hook: the package's Tiers stay as they
// are, so tests need not share a global).
func (e *env) startReleaser(t *testing.T, cfg ReleaserConfig, tiers []time.Duration) (stop func()) {
	t.Helper()
	cfg.JobTopic = e.jobTopic
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	r := NewReleaser(e.conn, cfg)
	if tiers != nil {
		r.tiers = tiers
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("Run: %v", err)
				}
			case <-time.After(30 * time.Second):
				t.Errorf("Run did not return within 30 s of its context ending")
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

func (e *env) writer(t *testing.T, tiers []time.Duration) *Writer {
	t.Helper()
	w := NewWriter(e.conn, e.jobTopic)
	if tiers != nil {
		w.tiers = tiers
	}
	t.Cleanup(func() { _ = w.Close() })
	return w
}

func newEvent(t *testing.T, name string) job.Event {
	t.Helper()
	id, err := job.StringID(name)
	if err != nil {
		t.Fatal(err)
	}
	return job.Event{JobID: id, Status: job.StatusNew, Type: "test", Attempt: 1, Group: "g", Payload: []byte(`{}`)}
}

// arrival is one event seen on the job topic.
type arrival struct {
	partition int
	at        time.Time
}

// collector tails every partition of the job topic.
type collector struct {
	mu   sync.Mutex
	seen map[string][]arrival
}

func (e *env) collect(t *testing.T, partitions int) *collector {
	t.Helper()
	c := &collector{seen: map[string][]arrival{}}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for p := 0; p < partitions; p++ {
		r := kafka.NewReader(kafka.ReaderConfig{Brokers: e.tgt.brokers, Topic: e.jobTopic, Partition: p, MaxWait: 100 * time.Millisecond, MinBytes: 1, MaxBytes: 10 << 20})
		if err := r.SetOffset(kafka.FirstOffset); err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer r.Close()
			for {
				m, err := r.FetchMessage(ctx)
				if err != nil {
					return
				}
				at := time.Now()
				ev, err := ledger.Decode(m)
				if err != nil {
					t.Errorf("job topic holds a non-event: %v", err)
					continue
				}
				c.mu.Lock()
				c.seen[ev.JobID.String()] = append(c.seen[ev.JobID.String()], arrival{m.Partition, at})
				c.mu.Unlock()
			}
		}()
	}
	t.Cleanup(func() { cancel(); wg.Wait() })
	return c
}

// wait waits until every id has arrived at least once, or fails after
// timeout.
func (c *collector) wait(t *testing.T, timeout time.Duration, ids ...string) map[string][]arrival {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		c.mu.Lock()
		missing := []string{}
		for _, id := range ids {
			if len(c.seen[id]) == 0 {
				missing = append(missing, id)
			}
		}
		snapshot := make(map[string][]arrival, len(c.seen))
		for k, v := range c.seen {
			snapshot[k] = append([]arrival(nil), v...)
		}
		c.mu.Unlock()
		if len(missing) == 0 {
			return snapshot
		}
		if time.Now().After(deadline) {
			t.Fatalf("not released within %v: %v", timeout, missing)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// checkReleased asserts that every item arrived in its partition, never
// before it was due, and not absurdly late; it logs the lateness.
func checkReleased(t *testing.T, got map[string][]arrival, items []Item, maxLate time.Duration) {
	t.Helper()
	for _, it := range items {
		id := it.Event.JobID.String()
		arr := got[id]
		for i, a := range arr {
			late := a.at.Sub(it.DueAt)
			t.Logf("job %s: release %d in partition %d, %v after due", id, i+1, a.partition, late.Round(time.Millisecond))
			if a.partition != it.Partition {
				t.Errorf("job %s released into partition %d, want %d", id, a.partition, it.Partition)
			}
			if a.at.Before(it.DueAt) {
				t.Errorf("job %s released %v EARLY", id, -late)
			}
			if late > maxLate {
				t.Errorf("job %s released %v after due, over the generous bound %v", id, late, maxLate)
			}
		}
	}
}

// delayRecord is one record of the delay topic.
type delayRecord struct {
	tier int
	at   time.Time
	wake time.Time
}

// delayHistory reads the whole delay topic: per job id, the tiers its
// records were written to, in the order they were written.
func (e *env) delayHistory(t *testing.T) map[string][]delayRecord {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	out := map[string][]delayRecord{}
	for p := 0; p < len(Tiers); p++ {
		conn, err := kafka.DialLeader(ctx, "tcp", e.tgt.brokers[0], Topic(e.jobTopic), p)
		if err != nil {
			t.Fatal(err)
		}
		last, err := conn.ReadLastOffset()
		conn.Close()
		if err != nil {
			t.Fatal(err)
		}
		if last == 0 {
			continue
		}
		r := kafka.NewReader(kafka.ReaderConfig{Brokers: e.tgt.brokers, Topic: Topic(e.jobTopic), Partition: p, MaxWait: 100 * time.Millisecond})
		for {
			m, err := r.FetchMessage(ctx)
			if err != nil {
				r.Close()
				t.Fatalf("reading delay partition %d: %v", p, err)
			}
			if it, wake, err := decode(m); err == nil {
				id := it.Event.JobID.String()
				out[id] = append(out[id], delayRecord{tier: p, at: m.Time, wake: wake})
			}
			if m.Offset+1 >= last {
				break
			}
		}
		r.Close()
	}
	for _, recs := range out {
		// Hops are at least a tier's delay apart; record times order them.
		sortByTime(recs)
	}
	return out
}

func sortByTime(recs []delayRecord) {
	for i := 1; i < len(recs); i++ {
		for j := i; j > 0 && recs[j].at.Before(recs[j-1].at); j-- {
			recs[j], recs[j-1] = recs[j-1], recs[j]
		}
	}
}
