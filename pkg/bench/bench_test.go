package bench

import (
	"context"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/jobctl/jobctl/pkg/embedded"
	"github.com/jobctl/jobctl/pkg/job"
	"github.com/jobctl/jobctl/pkg/kafkaconn"
	"github.com/segmentio/kafka-go"
)

func TestPercentileNearestRank(t *testing.T) {
	var ds []time.Duration
	for i := 1; i <= 100; i++ {
		ds = append(ds, time.Duration(i)*time.Millisecond)
	}
	for q, want := range map[float64]time.Duration{0.5: 50 * time.Millisecond, 0.9: 90 * time.Millisecond, 0.99: 99 * time.Millisecond, 1: 100 * time.Millisecond} {
		if got := percentile(ds, q); got != want {
			t.Errorf("percentile(1..100 ms, %g) = %s, want %s", q, got, want)
		}
	}
	if got := percentile([]time.Duration{7}, 0.5); got != 7 {
		t.Errorf("one sample: got %s", got)
	}
	if got := percentile(nil, 0.99); got != 0 {
		t.Errorf("no samples: got %s", got)
	}
}

func TestTimingsLatencyCountsLost(t *testing.T) {
	tm := newTimings(1000, 4, 1)
	for i, d := range []time.Duration{2, 4, 6} {
		tm.sent[i].Store(int64(time.Second))
		tm.done[i].Store(int64(time.Second + d*time.Millisecond))
	}
	tm.sent[3].Store(int64(time.Second)) // sent, never done
	l := tm.latency(0, 4)
	if l.Jobs != 3 || l.Lost != 1 || l.P50Ms != 4 || l.MaxMs != 6 {
		t.Errorf("got %+v, want 3 jobs, 1 lost, p50 4 ms, max 6 ms", l)
	}
}

func TestJobSetClosesDoneOnceAllSeen(t *testing.T) {
	s := newJobSet(500, 3)
	for _, id := range []int64{500, 500, 499, 503, 501} { // a repeat and two outsiders
		s.add(job.NumericID(id))
	}
	if s.count() != 2 {
		t.Fatalf("count %d, want 2", s.count())
	}
	select {
	case <-s.done:
		t.Fatal("done before every job was seen")
	default:
	}
	s.add(job.NumericID(502))
	select {
	case <-s.done:
	default:
		t.Fatal("not done after every job was seen")
	}
	s.add(job.NumericID(502)) // again: no second close
}

func TestSeqSourceYieldsConsecutiveNewJobs(t *testing.T) {
	src := &seqSource{next: 41, end: 43}
	for _, want := range []string{"41", "42"} {
		e, err := src.Next(context.Background())
		if err != nil || e.JobID.String() != want || e.Status != job.StatusNew || !e.JobID.Numeric() {
			t.Fatalf("got %+v, %v; want NEW job %s", e, err, want)
		}
	}
	if _, err := src.Next(context.Background()); !errors.Is(err, io.EOF) {
		t.Fatalf("after the last job: %v, want io.EOF", err)
	}
}

func TestPacerKeepsItsSchedule(t *testing.T) {
	p := newPacer(1000)
	start := time.Now()
	time.Sleep(20 * time.Millisecond) // a stall: the sends it held back are due at once
	for range 20 {
		if err := p.Wait(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if el := time.Since(start); el > 200*time.Millisecond {
		t.Errorf("20 sends due within 20 ms took %s after a stall", el)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	slow := newPacer(0.001)
	_ = slow.Wait(ctx) // the first send is due at once
	if err := slow.Wait(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("Wait on a cancelled context: %v", err)
	}
}

func TestConfigValidate(t *testing.T) {
	good := Config{Partitions: 1, ReplicationFactor: 1, Count: 1, Workers: 1, Concurrency: 1, LatencyRate: 1}
	if err := good.Validate(); err != nil {
		t.Fatal(err)
	}
	for name, mut := range map[string]func(*Config){
		"partitions": func(c *Config) { c.Partitions = 0 },
		"rf":         func(c *Config) { c.ReplicationFactor = 0 },
		"count":      func(c *Config) { c.Count = -1 },
		"workers":    func(c *Config) { c.Workers = 0 },
		"concurrent": func(c *Config) { c.Concurrency = 0 },
		"rate":       func(c *Config) { c.LatencyRate = -5 },
		"duration":   func(c *Config) { c.LatencyDuration = -time.Second },
	} {
		c := good
		mut(&c)
		if c.Validate() == nil {
			t.Errorf("%s: invalid config accepted: %+v", name, c)
		}
	}
}

// TestRunOnEmbeddedBroker runs every phase small and checks the scratch
// topics are created and deleted.
func TestRunOnEmbeddedBroker(t *testing.T) {
	b, err := embedded.Start(embedded.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	conn := &kafkaconn.Conn{Brokers: []string{b.Addr()}, ClientID: "bench-test"}
	var phases []string
	opts := Options{Progress: func(p Progress) {
		if p.Final {
			phases = append(phases, p.Phase)
		}
	}}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	res, err := Run(ctx, conn, Config{Partitions: 2, Count: 500, Concurrency: 2, LatencyRate: 200, LatencyDuration: 500 * time.Millisecond}, opts)
	if err != nil {
		t.Fatal(err)
	}
	if res.Produce.Jobs != 500 || res.Processed.Jobs != 500 || !res.Processed.Committed || res.Latency == nil || res.Latency.Jobs == 0 {
		t.Errorf("result %+v, latency %+v", res, res.Latency)
	}
	if !res.TopicsDeleted || len(res.Topics) != 2 {
		t.Errorf("topics %v deleted=%v", res.Topics, res.TopicsDeleted)
	}
	md, err := conn.Client().Metadata(ctx, &kafka.MetadataRequest{Topics: res.Topics})
	if err != nil {
		t.Fatal(err)
	}
	for _, tp := range md.Topics {
		if tp.Error == nil {
			t.Errorf("topic %s still exists", tp.Name)
		}
	}
	want := []string{PhaseProduce, PhaseProcess, PhaseWarmUp, PhaseLatency}
	if len(phases) != len(want) {
		t.Fatalf("final progress of phases %v, want %v", phases, want)
	}
	for i := range want {
		if phases[i] != want[i] {
			t.Fatalf("final progress of phases %v, want %v", phases, want)
		}
	}
}
