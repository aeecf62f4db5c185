package integration

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/jobctl/jobctl/pkg/handler"
	"github.com/jobctl/jobctl/pkg/job"
	"github.com/jobctl/jobctl/pkg/ledger"
	"github.com/jobctl/jobctl/pkg/worker"
	"github.com/segmentio/kafka-go"
)

// Benchmarks of the two halves of jobctl against every target:
//
//	go test -run '^$' -bench . ./test/integration/
//	JOBCTL_TEST_BROKERS=127.0.0.1:9092 go test -run '^$' -bench . -benchtime 3x ./test/integration/
//
// Each reports jobs/s (b.ReportMetric); ns/op is not meaningful for
// BenchmarkConsume, whose every op includes joining the group.

// benchPartitions is the topic size of the benchmarks.
const benchPartitions = 6

// BenchmarkProduce appends b.N NEW jobs with the ledger writer tuned for
// bulk: batches of up to 5000 per partition, 10 000 jobs per call.
func BenchmarkProduce(b *testing.B) {
	for _, tgt := range targets {
		b.Run(tgt.Name, func(b *testing.B) {
			topic := benchTopic(b, tgt)
			w := ledger.NewWriter(wkConn(tgt), topic)
			defer w.Close()
			w.Tune(func(kw *kafka.Writer) {
				kw.BatchSize = 5000
				kw.BatchBytes = 1 << 20
				kw.BatchTimeout = 5 * time.Millisecond
			})
			jobs := wkJobs(benchID(), b.N)
			ctx := context.Background()
			b.ResetTimer()
			start := time.Now()
			for batch := range slices.Chunk(jobs, 10000) {
				if err := w.Append(ctx, batch...); err != nil {
					b.Fatalf("producing: %v", err)
				}
			}
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "jobs/s")
		})
	}
}

// BenchmarkConsume processes benchConsumeJobs jobs per op with a worker
// of concurrency 8 and a handler that does nothing (0 ms), and reports
// the rate from the first job fetched to the last DONE acknowledged.
// JOBCTL_TEST_BENCH_JOBS overrides the job count.
func BenchmarkConsume(b *testing.B) {
	n := 50000
	if s := os.Getenv("JOBCTL_TEST_BENCH_JOBS"); s != "" {
		v, err := strconv.Atoi(s)
		if err != nil || v < 1 {
			b.Fatalf("JOBCTL_TEST_BENCH_JOBS=%q is not a positive number", s)
		}
		n = v
	}
	noop := handler.HandlerFunc(func(context.Context, job.Event) error { return nil })
	for _, tgt := range targets {
		b.Run(tgt.Name, func(b *testing.B) {
			var processed int64
			var active float64
			for range b.N {
				b.StopTimer()
				topic := benchTopic(b, tgt)
				w := ledger.NewWriter(wkConn(tgt), topic)
				w.Tune(func(kw *kafka.Writer) { kw.BatchSize = 5000; kw.BatchBytes = 1 << 20 })
				for batch := range slices.Chunk(wkJobs(benchID(), n), 10000) {
					if err := w.Append(context.Background(), batch...); err != nil {
						b.Fatalf("producing: %v", err)
					}
				}
				w.Close()
				wk, err := worker.New(wkConn(tgt), worker.Config{
					Topic: topic, Group: "bench-" + benchID(), Concurrency: 8, Policy: worker.Policy{MaxAttempts: 1},
					CommitInterval: time.Second, Grace: 10 * time.Second, IdleTimeout: time.Second,
				}, noop, worker.Options{})
				if err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
				sum, err := wk.Run(context.Background())
				if err != nil {
					b.Fatal(err)
				}
				if sum.Processed != int64(n) {
					b.Fatalf("processed %d jobs, want %d", sum.Processed, n)
				}
				processed += sum.Processed
				active += sum.ActiveSeconds
			}
			b.ReportMetric(float64(processed)/active, "jobs/s")
		})
	}
}

func benchID() string {
	var r [4]byte
	_, _ = rand.Read(r[:])
	return "bench-" + hex.EncodeToString(r[:])
}

// benchTopic creates a fresh topic (createTopic takes a *testing.T).
func benchTopic(b *testing.B, tgt Target) string {
	b.Helper()
	topic := benchID()
	client := &kafka.Client{Addr: kafka.TCP(tgt.Brokers...), Timeout: 30 * time.Second}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	resp, err := client.CreateTopics(ctx, &kafka.CreateTopicsRequest{Topics: []kafka.TopicConfig{{
		Topic: topic, NumPartitions: benchPartitions, ReplicationFactor: 1,
	}}})
	if err != nil || resp.Errors[topic] != nil {
		b.Fatalf("creating topic %s: %v %v", topic, err, resp)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		md, err := client.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{topic}})
		if err == nil && len(md.Topics) == 1 && md.Topics[0].Error == nil && len(md.Topics[0].Partitions) == benchPartitions {
			ready := true
			for _, p := range md.Topics[0].Partitions {
				ready = ready && p.Leader.ID >= 0
			}
			if ready {
				return topic
			}
		}
		if time.Now().After(deadline) {
			b.Fatalf("topic %s not ready: %v", topic, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
