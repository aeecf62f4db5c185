package bench

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"io"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jobctl/jobctl/pkg/handler"
	"github.com/jobctl/jobctl/pkg/job"
	"github.com/jobctl/jobctl/pkg/kafkaconn"
	"github.com/jobctl/jobctl/pkg/ledger"
	"github.com/jobctl/jobctl/pkg/producer"
	"github.com/jobctl/jobctl/pkg/worker"
	"github.com/segmentio/kafka-go"
)

// benchJobType is the type of every bench job: the mock type `jobctl
// produce` uses, so records have the size users get.
const benchJobType = "mock"

// processIdleTimeout stops a worker that has seen no job this long: a
// safety net only, the run stops the workers once every job is handled.
const processIdleTimeout = 30 * time.Second

// shutdownGrace is the workers' grace period; the bench handler returns
// at once, so it is never waited out.
const shutdownGrace = 30 * time.Second

// produce appends count NEW jobs with ids base.. to topic the way `jobctl
// produce` does: the bulk path of pkg/producer over a ledger writer.
func produce(ctx context.Context, conn *kafkaconn.Conn, topic string, base int64, count int, opts Options) (Throughput, error) {
	w := ledger.NewWriter(conn, topic)
	defer w.Close()
	popts := producer.Options{Total: count, Logger: opts.Logger}
	if opts.Progress != nil {
		popts.ProgressEvery = opts.ProgressEvery
		popts.Progress = func(p producer.Progress) {
			opts.Progress(Progress{Phase: PhaseProduce, Done: p.Sent, Total: count, Elapsed: p.Elapsed})
		}
	}
	sum, err := producer.Run(ctx, w, &seqSource{next: base, end: base + int64(count)}, popts)
	if err != nil {
		return Throughput{}, fmt.Errorf("producing %d jobs to %s: %w", count, topic, err)
	}
	if err := ctx.Err(); err != nil {
		return Throughput{}, err
	}
	elapsed := time.Duration(sum.ElapsedSec * float64(time.Second))
	report(opts, Progress{Phase: PhaseProduce, Done: sum.Sent, Total: count, Elapsed: elapsed, Final: true})
	if !sum.OK() || sum.Sent != count {
		return Throughput{}, fmt.Errorf("produced %d of %d jobs to %s (%d failed; the log says why)", sum.Sent, count, topic, sum.Failed)
	}
	return throughput(sum.Sent, elapsed), nil
}

// process runs cfg.Workers workers over topic with a handler that does
// nothing, until every job base..base+Count has been handled, then stops
// them (they finish, write and commit what they hold) and computes the
// rate from the first job handled to the last DONE acknowledged.
func process(ctx context.Context, s *scratch, topic string, base int64, cfg Config, opts Options) (Processed, error) {
	group := s.group(topic)
	client := s.conn.Client()
	defer closeIdle(client)
	newEnd, err := endOffsets(ctx, client, topic, cfg.Partitions)
	if err != nil {
		return Processed{}, err
	}

	handled := newJobSet(base, cfg.Count)
	var executions atomic.Int64
	// firstCall[i] is when worker i first ran a job (unix nanos): a NEW
	// job fetched a moment before.
	firstCall := make([]atomic.Int64, cfg.Workers)
	runCtx, stopWorkers := context.WithCancel(ctx)
	defer stopWorkers()
	type outcome struct {
		i   int
		sum worker.Summary
		err error
	}
	outcomes := make(chan outcome, cfg.Workers)
	started := 0
	var startErr error
	for i := range cfg.Workers {
		h := promptHandler(func(_ context.Context, e job.Event) error {
			if firstCall[i].Load() == 0 {
				firstCall[i].CompareAndSwap(0, time.Now().UnixNano())
			}
			executions.Add(1)
			handled.add(e.JobID)
			return nil
		})
		w, err := worker.New(s.conn, worker.Config{
			Topic: topic, Group: group, Concurrency: cfg.Concurrency,
			Grace: shutdownGrace, IdleTimeout: processIdleTimeout, ProcessedLog: "",
		}, h, worker.Options{Logger: opts.Logger})
		if err != nil {
			startErr = fmt.Errorf("starting worker %d: %w", i, err)
			break
		}
		started++
		go func() {
			sum, err := w.Run(runCtx)
			outcomes <- outcome{i, sum, err}
		}()
	}
	if startErr != nil {
		stopWorkers()
	}

	stopProgress := reportEvery(opts, func() Progress {
		return Progress{Phase: PhaseProcess, Done: handled.count(), Total: cfg.Count, Elapsed: sinceFirst(firstCall)}
	})
	sums := make([]worker.Summary, cfg.Workers)
	var allHandled time.Time
	var runErr error
	allDone := handled.done
	for running := started; running > 0; {
		select {
		case <-allDone:
			allHandled = time.Now()
			allDone = nil
			stopWorkers() // graceful: the last DONEs are written and committed
		case o := <-outcomes:
			running--
			sums[o.i] = o.sum
			if o.err != nil && runCtx.Err() == nil && runErr == nil {
				runErr = fmt.Errorf("worker %d: %w", o.i, o.err)
				stopWorkers()
			}
		}
	}
	stopProgress()
	switch {
	case ctx.Err() != nil:
		return Processed{}, ctx.Err()
	case startErr != nil:
		return Processed{}, startErr
	case runErr != nil:
		return Processed{}, runErr
	case allHandled.IsZero():
		return Processed{}, fmt.Errorf("the workers stopped after %d of %d jobs (no new job for %s)", handled.count(), cfg.Count, processIdleTimeout)
	}

	// From the first job handled by any worker to the last DONE any
	// worker had acknowledged (its ActiveSeconds run from its own first
	// job); at least until the last handler call.
	var start int64
	end := allHandled
	for i, sum := range sums {
		first := firstCall[i].Load()
		if first == 0 {
			continue
		}
		if start == 0 || first < start {
			start = first
		}
		if e := time.Unix(0, first).Add(time.Duration(sum.ActiveSeconds * float64(time.Second))); e.After(end) {
			end = e
		}
	}
	res := Processed{
		Throughput: throughput(cfg.Count, end.Sub(time.Unix(0, start))),
		Executions: int(executions.Load()),
	}
	res.Committed, err = committedPast(ctx, client, group, topic, newEnd)
	if err != nil {
		return res, err
	}
	return res, nil
}

func sinceFirst(firstCall []atomic.Int64) time.Duration {
	var first int64
	for i := range firstCall {
		if f := firstCall[i].Load(); f != 0 && (first == 0 || f < first) {
			first = f
		}
	}
	if first == 0 {
		return 0
	}
	return time.Since(time.Unix(0, first))
}

// endOffsets returns each partition's end offset.
func endOffsets(ctx context.Context, client *kafka.Client, topic string, partitions int) ([]int64, error) {
	reqs := make([]kafka.OffsetRequest, partitions)
	for p := range partitions {
		reqs[p] = kafka.LastOffsetOf(p)
	}
	resp, err := client.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{topic: reqs}})
	if err != nil {
		return nil, fmt.Errorf("reading end offsets of %s: %w", topic, err)
	}
	ends := make([]int64, partitions)
	for _, po := range resp.Topics[topic] {
		if po.Error != nil {
			return nil, fmt.Errorf("reading end offset of %s/%d: %w", topic, po.Partition, po.Error)
		}
		if po.Partition >= 0 && po.Partition < partitions {
			ends[po.Partition] = po.LastOffset
		}
	}
	return ends, nil
}

// committedPast reports whether group's committed offset of every
// partition of topic is at least want[p].
func committedPast(ctx context.Context, client *kafka.Client, group, topic string, want []int64) (bool, error) {
	parts := make([]int, len(want))
	for p := range parts {
		parts[p] = p
	}
	resp, err := client.OffsetFetch(ctx, &kafka.OffsetFetchRequest{GroupID: group, Topics: map[string][]int{topic: parts}})
	if err != nil {
		return false, fmt.Errorf("reading committed offsets of group %s: %w", group, err)
	}
	if resp.Error != nil {
		return false, fmt.Errorf("reading committed offsets of group %s: %w", group, resp.Error)
	}
	got := map[int]int64{}
	for _, p := range resp.Topics[topic] {
		if p.Error != nil {
			return false, fmt.Errorf("reading committed offset of %s/%d: %w", topic, p.Partition, p.Error)
		}
		got[p.Partition] = p.CommittedOffset
	}
	for p, w := range want {
		if got[p] < w {
			return false, nil
		}
	}
	return true, nil
}

// seqSource yields NEW mock jobs with consecutive numeric ids, so the
// bench can tell which of them were handled with a bitmap.
type seqSource struct{ next, end int64 }

func (s *seqSource) Next(context.Context) (job.Event, error) {
	if s.next >= s.end {
		return job.Event{}, io.EOF
	}
	e := job.Event{JobID: job.NumericID(s.next), Status: job.StatusNew, Type: benchJobType}
	s.next++
	return e, nil
}

// randomBase returns the first of n consecutive job ids: random, so runs
// never share ids, and below 2^53 like `produce`'s mock ids.
func randomBase(n int) int64 {
	var b [8]byte
	_, _ = rand.Read(b[:])
	span := uint64(1<<53-1) - uint64(n) - 2_000_000
	return 1_000_000 + int64(binary.BigEndian.Uint64(b[:])%span)
}

// jobSet records which of the jobs base..base+n have been seen; done is
// closed when all have.
type jobSet struct {
	base  int64
	bits  []atomic.Uint64
	n     int
	seen  atomic.Int64
	done  chan struct{}
	close sync.Once
}

func newJobSet(base int64, n int) *jobSet {
	return &jobSet{base: base, n: n, bits: make([]atomic.Uint64, (n+63)/64), done: make(chan struct{})}
}

// add marks id seen; ids outside the set are ignored.
func (s *jobSet) add(id job.ID) {
	v, err := strconv.ParseInt(id.String(), 10, 64)
	if err != nil {
		return
	}
	i := v - s.base
	if i < 0 || i >= int64(s.n) {
		return
	}
	word, bit := &s.bits[i/64], uint64(1)<<(i%64)
	for {
		old := word.Load()
		if old&bit != 0 {
			return
		}
		if word.CompareAndSwap(old, old|bit) {
			break
		}
	}
	if s.seen.Add(1) == int64(s.n) {
		s.close.Do(func() { close(s.done) })
	}
}

func (s *jobSet) count() int { return int(s.seen.Load()) }

// promptHandler is the bench's no-op handler. It returns at once, and
// says so (ReturnsPromptly, like handler.Sleep of `consume --sleep 0s`),
// so the worker runs it on the slot's goroutine as it runs consume's:
// the processed rate is the one users get from a no-op job.
type promptHandler func(ctx context.Context, e job.Event) error

var _ handler.Handler = promptHandler(nil)

func (h promptHandler) Handle(ctx context.Context, e job.Event) error { return h(ctx, e) }

func (promptHandler) ReturnsPromptly(string) bool { return true }
