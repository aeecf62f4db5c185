package view

import (
	"testing"
	"time"

	"github.com/jobctl/jobctl/pkg/job"
	"github.com/jobctl/jobctl/pkg/ledger"
	"github.com/segmentio/kafka-go"
)

// mockRecords are the records `jobctl produce` and `jobctl consume` write
// for n mock jobs: a NEW (type "mock", no payload, created and updated
// times) and a DONE from group job-workers, as kafka.Messages in partition
// order over parts partitions.
func mockRecords(tb testing.TB, n, parts int) [][]kafka.Message {
	out := make([][]kafka.Message, parts)
	base := int64(4_503_599_627_370_496) // ids near 2^52, 16 digits like produce's
	at := time.Date(2026, 11, 26, 5, 0, 0, 0, time.UTC)
	for i := range n {
		jid := job.NumericID(base + int64(i))
		created := at.Add(time.Duration(i) * time.Microsecond)
		p := i % parts
		m, err := ledger.Message(job.Event{JobID: jid, Status: job.StatusNew, Type: "mock", CreatedAt: created, UpdatedAt: created})
		if err != nil {
			tb.Fatal(err)
		}
		m.Partition, m.Offset, m.Time = p, int64(len(out[p])), created
		out[p] = append(out[p], m)
		done := created.Add(20 * time.Second)
		m, err = ledger.Message(job.Event{JobID: jid, Status: job.StatusDone, Type: "mock", CreatedAt: created, UpdatedAt: done, Attempt: 1, Worker: "vm-18820-" + string(rune('0'+i%8)), Group: "job-workers"})
		if err != nil {
			tb.Fatal(err)
		}
		m.Partition, m.Offset, m.Time = p, int64(len(out[p])), done
		out[p] = append(out[p], m)
	}
	return out
}

// BenchmarkRebuild decodes and applies the records of 100,000 mock jobs
// (200,000 events) the way Run does; events/s is the rebuild rate without
// the broker.
//
//	go test ./pkg/view -run '^$' -bench Rebuild -cpuprofile /tmp/cpu.out
func BenchmarkRebuild(b *testing.B) {
	const jobs = 100_000
	recs := mockRecords(b, jobs, 6)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		v := New(Options{})
		for _, part := range recs {
			v.applyMessages(part)
		}
		if v.Len() != jobs {
			b.Fatalf("%d jobs, want %d", v.Len(), jobs)
		}
	}
	b.ReportMetric(float64(2*jobs*b.N)/b.Elapsed().Seconds(), "events/s")
}
