package worker

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/jobctl/jobctl/pkg/handler"
	"github.com/jobctl/jobctl/pkg/job"
	"github.com/jobctl/jobctl/pkg/kafkaconn"
)

// BenchmarkPoolAndAttempt measures the runtime's own cost per job between
// fetch and recorder, with a handler that does nothing: pool hand-off,
// time limit (consume's default of 5 minutes), RUNNING timer, the
// handler call and the outcome. "func" is a HandlerFunc (run in a
// goroutine of its own that the slot may abandon), "sleep0" consume's
// `--sleep 0s` (handler.Sleep, run on the slot's goroutine).
func BenchmarkPoolAndAttempt(b *testing.B) {
	b.Run("func", func(b *testing.B) {
		benchmarkPoolAndAttempt(b, handler.HandlerFunc(func(context.Context, job.Event) error { return nil }))
	})
	b.Run("sleep0", func(b *testing.B) { benchmarkPoolAndAttempt(b, handler.Sleep{}) })
}

func benchmarkPoolAndAttempt(b *testing.B, noop handler.Handler) {
	w, err := New(&kafkaconn.Conn{Brokers: []string{"127.0.0.1:1"}}, Config{Topic: "t", Group: "g", Concurrency: 8, Policy: Policy{Timeout: 5 * time.Minute}}, noop, Options{})
	if err != nil {
		b.Fatal(err)
	}
	w.handlerCtx, w.writeCtx = context.Background(), context.Background()
	w.pool = newJobPool(64)
	p := w.newPartition(0, -1)
	var drained sync.WaitGroup
	drained.Go(func() {
		for range p.results {
		}
	})
	ctx, stop := context.WithCancel(context.Background())
	var slots sync.WaitGroup
	for n := range 8 {
		slots.Go(func() { w.slot(ctx, n) })
	}
	ev := job.Event{JobID: job.NumericID(1), Status: job.StatusNew, Type: "mock"}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		ev.JobID = job.NumericID(int64(i))
		if err := w.pool.submit(ctx, &task{p: p, offset: int64(i), key: ev.JobID.String(), event: ev}); err != nil {
			b.Fatal(err)
		}
	}
	for w.pool.queued() > 0 || w.running.Load() > 0 {
	}
	b.StopTimer()
	stop()
	slots.Wait()
	close(p.results)
	drained.Wait()
}
