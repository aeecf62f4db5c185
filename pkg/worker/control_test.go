package worker

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jobctl/jobctl/pkg/control"
	"github.com/jobctl/jobctl/pkg/handler"
	"github.com/jobctl/jobctl/pkg/job"
	"github.com/jobctl/jobctl/pkg/kafkaconn"
)

// controlRig runs the pool and attempts without Kafka: outcomes arrive on
// out; the control state is fed by hand.
type controlRig struct {
	w       *Worker
	p       *partition
	out     chan *outcome
	started sync.Map // job id -> true once its handler ran
	ran     atomic.Int64
}

func newControlRig(t *testing.T) *controlRig {
	t.Helper()
	rig := &controlRig{out: make(chan *outcome, 16)}
	h := handler.HandlerFunc(func(ctx context.Context, ev job.Event) error {
		rig.started.Store(ev.JobID.String(), true)
		rig.ran.Add(1)
		if ev.Type == "block" {
			<-ctx.Done()
			return ctx.Err()
		}
		return nil
	})
	w, err := New(&kafkaconn.Conn{Brokers: []string{"127.0.0.1:1"}}, Config{Topic: "t", Group: "g", Concurrency: 2, RunningAfter: -1}, h, Options{})
	if err != nil {
		t.Fatal(err)
	}
	w.handlerCtx, w.writeCtx = context.Background(), context.Background()
	w.pool = newJobPool(16)
	rig.w, rig.p = w, w.newPartition(0, -1)
	go func() {
		for o := range rig.p.results {
			rig.out <- o
		}
	}()
	ctx, stop := context.WithCancel(context.Background())
	var slots sync.WaitGroup
	for n := range 2 {
		slots.Go(func() { w.slot(ctx, n) })
	}
	t.Cleanup(func() { stop(); slots.Wait(); close(rig.p.results) })
	return rig
}

func (rig *controlRig) submit(t *testing.T, id, typ string, run int) {
	t.Helper()
	jid, err := job.ParseID(id)
	if err != nil {
		t.Fatal(err)
	}
	ev := job.Event{JobID: jid, Status: job.StatusNew, Type: typ, Run: run}
	if err := rig.w.pool.submit(context.Background(), &task{p: rig.p, key: id, event: ev}); err != nil {
		t.Fatal(err)
	}
}

func (rig *controlRig) next(t *testing.T) *outcome {
	t.Helper()
	select {
	case o := <-rig.out:
		return o
	case <-time.After(5 * time.Second):
		t.Fatal("no outcome within 5s")
		return nil
	}
}

func (rig *controlRig) apply(r control.Record) { rig.w.control.Apply(r) }

func TestCancelledJobNeverStarts(t *testing.T) {
	rig := newControlRig(t)
	rig.apply(control.Record{Kind: control.KindCancel, JobID: job.NumericID(1), Run: 0})
	rig.submit(t, "1", "", 0)
	o := rig.next(t)
	if o.event.Status != job.StatusCancelled || !o.notStarted || o.event.Attempt != 1 || o.event.Group != "g" {
		t.Fatalf("outcome %+v, want CANCELED attempt 1 for group g, not started", o.event)
	}
	if _, ran := rig.started.Load("1"); ran {
		t.Fatal("a cancelled job's handler ran")
	}
	// Run 1 (a retry) is not covered by the cancel of run 0.
	rig.submit(t, "1", "", 1)
	if o := rig.next(t); o.event.Status != job.StatusDone || o.event.Run != 1 {
		t.Fatalf("run 1: %+v, want DONE", o.event)
	}
}

func TestCancelledRetryIsNotReleasedIntoAnAttempt(t *testing.T) {
	rig := newControlRig(t)
	rig.apply(control.Record{Kind: control.KindCancel, JobID: job.NumericID(9), Run: 0})
	// A retry released by the delay topic: attempt 1 was made, for group g.
	jid := job.NumericID(9)
	ev := job.Event{JobID: jid, Status: job.StatusNew, Attempt: 1, Group: "g"}
	if err := rig.w.pool.submit(context.Background(), &task{p: rig.p, key: "9", event: ev}); err != nil {
		t.Fatal(err)
	}
	o := rig.next(t)
	if o.event.Status != job.StatusCancelled || o.event.Attempt != 2 || !o.notStarted || o.retry != nil {
		t.Fatalf("released retry of a cancelled run: %+v, want CANCELED at attempt 2 without running", o.event)
	}
	if rig.ran.Load() != 0 {
		t.Fatal("the handler ran")
	}
}

func TestCancelStopsARunningJob(t *testing.T) {
	rig := newControlRig(t)
	rig.submit(t, "2", "block", 0)
	deadline := time.Now().Add(5 * time.Second)
	for rig.ran.Load() == 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	rig.apply(control.Record{Kind: control.KindCancel, JobID: job.NumericID(2), Run: 0})
	o := rig.next(t)
	if o.event.Status != job.StatusCancelled || o.notStarted || o.retry != nil || o.letter != nil {
		t.Fatalf("outcome %+v (retry %v, letter %v), want CANCELED after running, no retry, no dead letter", o.event, o.retry, o.letter)
	}
}

func TestPausedGroupStartsNothing(t *testing.T) {
	rig := newControlRig(t)
	rig.apply(control.Record{Kind: control.KindPause, Group: "other"})
	if rig.w.paused.Load() {
		t.Fatal("another group's pause paused this worker")
	}
	rig.apply(control.Record{Kind: control.KindPause, Group: "g"})
	for _, id := range []string{"3", "4", "5"} {
		rig.submit(t, id, "", 0)
	}
	time.Sleep(300 * time.Millisecond)
	if n := rig.ran.Load(); n != 0 {
		t.Fatalf("%d jobs started while paused", n)
	}
	rig.apply(control.Record{Kind: control.KindResume, Group: "g"})
	for range 3 {
		if o := rig.next(t); o.event.Status != job.StatusDone {
			t.Fatalf("after resume: %+v", o.event)
		}
	}
}

// TestRunningAttemptsReachedByCancelAndPartitionLoss: an attempt's context
// is not registered with its partition's; a cancel by job id and the end
// of the partition's handler context still end it.
func TestRunningAttemptsReachedByCancelAndPartitionLoss(t *testing.T) {
	started := make(chan string, 2)
	h := handler.HandlerFunc(func(ctx context.Context, j job.Event) error {
		started <- j.JobID.String()
		<-ctx.Done()
		return context.Cause(ctx)
	})
	w, err := New(&kafkaconn.Conn{Brokers: []string{"127.0.0.1:1"}}, Config{Topic: "t", Group: "g", Concurrency: 2}, h, Options{})
	if err != nil {
		t.Fatal(err)
	}
	w.handlerCtx, w.writeCtx = context.Background(), context.Background()
	w.pool = newJobPool(8)
	lost := w.newPartition(0, -1)
	kept := w.newPartition(1, -1)
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	for n := range 2 {
		go w.slot(ctx, n)
	}
	submit := func(p *partition, id int64) {
		ev := job.Event{JobID: job.NumericID(id), Status: job.StatusNew, Type: "t"}
		if err := w.pool.submit(ctx, &task{p: p, offset: id, key: ev.JobID.String(), event: ev}); err != nil {
			t.Fatal(err)
		}
	}
	submit(lost, 1)
	submit(kept, 2)
	<-started
	<-started
	lost.cancelHandler() // the partition is lost: its running job must stop
	if !w.attempts.cancel("2", 0) {
		t.Fatal("cancel did not find job 2's running attempt")
	}
	select {
	case o := <-kept.results:
		if o.event.Status != job.StatusCancelled {
			t.Errorf("cancelled job: %s, want CANCELED", o.event.Status)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the cancelled attempt did not end")
	}
	deadline := time.Now().Add(10 * time.Second)
	for w.stats.interrupted.Load() != 1 {
		if time.Now().After(deadline) {
			t.Fatal("the lost partition's attempt did not end")
		}
		time.Sleep(5 * time.Millisecond)
	}
	select {
	case o := <-lost.results:
		t.Errorf("a lost partition's interrupted job was recorded: %+v", o.event)
	default:
	}
}
