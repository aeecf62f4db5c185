package bench

import (
	"context"
	"fmt"
	"math"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jobctl/jobctl/pkg/job"
	"github.com/jobctl/jobctl/pkg/ledger"
	"github.com/jobctl/jobctl/pkg/producer"
	"github.com/jobctl/jobctl/pkg/worker"
	"github.com/segmentio/kafka-go"
)

const (
	// warmUpRate paces the jobs sent until every partition has a worker
	// that answers; warmUpLimit gives up on that.
	warmUpRate  = 100
	warmUpLimit = time.Minute
	// settle is how long the measured rate runs before measuring starts,
	// so the backlog of the group join is gone; longer with several
	// workers, whose later joins rebalance the group.
	settleOne  = time.Second
	settleMany = 3 * time.Second
	// doneWait is how long after the last measured job its DONE may take.
	doneWait = 10 * time.Second
	// maxInFlight bounds produce calls waiting for their acknowledgement.
	maxInFlight = 4096
)

// measureLatency runs workers on topic, sends jobs one produce call each
// at cfg.LatencyRate, and times each from the start of its produce call to
// its DONE event being fetched by a reader of the topic.
func measureLatency(ctx context.Context, s *scratch, topic string, cfg Config, opts Options) (Latency, error) {
	group := s.group(topic)
	settle := settleOne
	if cfg.Workers > 1 {
		settle = settleMany
	}
	measured := max(1, int(cfg.LatencyRate*cfg.LatencyDuration.Seconds()))
	capacity := warmUpRate*int(warmUpLimit/time.Second) + int(cfg.LatencyRate*settle.Seconds()) + measured + 1
	t := newTimings(randomBase(capacity), capacity, cfg.Partitions)

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var bg sync.WaitGroup
	defer bg.Wait() // after cancel: workers and readers stop
	defer cancel()

	noop := promptHandler(func(context.Context, job.Event) error { return nil })
	workerErrs := make(chan error, cfg.Workers)
	for i := range cfg.Workers {
		w, err := worker.New(s.conn, worker.Config{
			Topic: topic, Group: group, Concurrency: cfg.Concurrency, Grace: shutdownGrace, ProcessedLog: "",
		}, noop, worker.Options{Logger: opts.Logger})
		if err != nil {
			return Latency{}, fmt.Errorf("starting worker %d: %w", i, err)
		}
		bg.Go(func() {
			if _, err := w.Run(ctx); err != nil && ctx.Err() == nil {
				workerErrs <- fmt.Errorf("worker %d: %w", i, err)
			}
		})
	}
	for p := range cfg.Partitions {
		r := kafka.NewReader(kafka.ReaderConfig{
			Brokers: s.conn.Brokers, Dialer: s.conn.Dialer(), Topic: topic, Partition: p,
			MinBytes: 1, MaxBytes: 1 << 20, MaxWait: 500 * time.Millisecond,
		})
		bg.Go(func() {
			defer r.Close()
			t.readDone(ctx, r, p)
		})
	}

	// The latency path of the product: one event per produce call, as
	// POST /jobs writes (serve's writer: sent at once, coalesced while a
	// write is in flight).
	lw := ledger.NewWriter(s.conn, topic)
	defer lw.Close()
	w := producer.NewCoalescer(lw, producer.CoalescerOptions{})
	defer w.Close()
	var sends sync.WaitGroup
	defer sends.Wait()
	inFlight := make(chan struct{}, maxInFlight)
	send := func(seq int) {
		inFlight <- struct{}{}
		sends.Add(1)
		now := time.Now()
		t.sent[seq].Store(now.UnixNano())
		go func() {
			defer sends.Done()
			defer func() { <-inFlight }()
			e := job.Event{JobID: job.NumericID(t.base + int64(seq)), Status: job.StatusNew, Type: benchJobType, CreatedAt: now}
			err := w.Append(ctx, e)
			if err != nil {
				if ctx.Err() == nil {
					opts.Logger.Warn("latency job not sent", "job_id", e.JobID.String(), "err", err)
				}
				return
			}
			t.acked[seq].Store(time.Now().UnixNano())
		}()
	}
	check := func() error {
		select {
		case err := <-workerErrs:
			return err
		default:
			return ctx.Err()
		}
	}

	// Warm up until every partition has returned a DONE, then run at the
	// measured rate for a while before measuring.
	lim := newPacer(warmUpRate)
	seq := 0
	warmStart := time.Now()
	stopWarm := reportEvery(opts, func() Progress {
		return Progress{Phase: PhaseWarmUp, Done: t.partitionsAnswered(), Total: cfg.Partitions, Elapsed: time.Since(warmStart)}
	})
	for !t.allPartitionsAnswered() {
		if err := check(); err != nil {
			stopWarm()
			return Latency{}, err
		}
		if time.Since(warmStart) > warmUpLimit {
			stopWarm()
			return Latency{}, fmt.Errorf("latency warm-up: DONE events came from %d of %d partitions within %s", t.partitionsAnswered(), cfg.Partitions, warmUpLimit)
		}
		if err := lim.Wait(ctx); err != nil {
			stopWarm()
			return Latency{}, err
		}
		send(seq)
		seq++
	}
	stopWarm()
	lim = newPacer(cfg.LatencyRate)
	for settleEnd := time.Now().Add(settle); time.Now().Before(settleEnd); seq++ {
		if err := lim.Wait(ctx); err != nil {
			return Latency{}, err
		}
		send(seq)
	}

	from := seq
	measureStart := time.Now()
	stopMeasure := reportEvery(opts, func() Progress {
		return Progress{Phase: PhaseLatency, Done: t.doneCount(from, from+measured), Total: measured, Elapsed: time.Since(measureStart)}
	})
	for ; seq < from+measured; seq++ {
		if err := check(); err != nil {
			stopMeasure()
			return Latency{}, err
		}
		if err := lim.Wait(ctx); err != nil {
			stopMeasure()
			return Latency{}, err
		}
		send(seq)
	}
	deadline := time.Now().Add(doneWait)
	for t.doneCount(from, from+measured) < measured && time.Now().Before(deadline) {
		if err := check(); err != nil {
			stopMeasure()
			return Latency{}, err
		}
		time.Sleep(10 * time.Millisecond)
	}
	stopMeasure()
	return t.latency(from, from+measured), nil
}

// timings holds, per job sequence number, when its produce call started
// and when its DONE was fetched (unix nanos; 0 = not yet).
type timings struct {
	base     int64
	sent     []atomic.Int64
	done     []atomic.Int64
	doneSent []atomic.Int64 // the DONE record's timestamp
	acked    []atomic.Int64 // when the NEW's produce call returned
	answered []atomic.Bool  // per partition: a DONE came from it
}

func newTimings(base int64, n, partitions int) *timings {
	return &timings{base: base, sent: make([]atomic.Int64, n), done: make([]atomic.Int64, n), doneSent: make([]atomic.Int64, n), acked: make([]atomic.Int64, n), answered: make([]atomic.Bool, partitions)}
}

// readDone fetches partition p's records until ctx ends and stamps the
// jobs whose DONE event it sees.
func (t *timings) readDone(ctx context.Context, r *kafka.Reader, p int) {
	for {
		m, err := r.FetchMessage(ctx)
		if err != nil {
			return // ctx ended, or the reader was closed
		}
		now := time.Now().UnixNano()
		if ledger.ReadHeaders(m).Status != job.StatusDone {
			continue
		}
		v, err := strconv.ParseInt(string(m.Key), 10, 64)
		if err != nil {
			continue
		}
		if seq := v - t.base; seq >= 0 && seq < int64(len(t.done)) {
			if t.done[seq].CompareAndSwap(0, now) {
				t.doneSent[seq].Store(m.Time.UnixNano())
			}
			t.answered[p].Store(true)
		}
	}
}

func (t *timings) partitionsAnswered() int {
	n := 0
	for i := range t.answered {
		if t.answered[i].Load() {
			n++
		}
	}
	return n
}

func (t *timings) allPartitionsAnswered() bool { return t.partitionsAnswered() == len(t.answered) }

func (t *timings) doneCount(from, to int) int {
	n := 0
	for i := from; i < to; i++ {
		if t.done[i].Load() != 0 {
			n++
		}
	}
	return n
}

// latency summarizes jobs from..to-1.
func (t *timings) latency(from, to int) Latency {
	ds := make([]time.Duration, 0, to-from)
	sentDs := make([]time.Duration, 0, to-from)
	ackDs := make([]time.Duration, 0, to-from)
	lost := 0
	for i := from; i < to; i++ {
		sent, done := t.sent[i].Load(), t.done[i].Load()
		if sent == 0 || done == 0 {
			lost++
			continue
		}
		ds = append(ds, time.Duration(done-sent))
		if a := t.acked[i].Load(); a > 0 {
			ackDs = append(ackDs, time.Duration(a-sent))
		}
		if ts := t.doneSent[i].Load(); ts > 0 {
			sentDs = append(sentDs, time.Duration(ts-sent))
		}
	}
	slices.Sort(ds)
	slices.Sort(sentDs)
	slices.Sort(ackDs)
	return Latency{
		Jobs: len(ds), Lost: lost,
		P50Ms: ms(percentile(ds, 0.50)), P90Ms: ms(percentile(ds, 0.90)),
		P99Ms: ms(percentile(ds, 0.99)), MaxMs: ms(percentile(ds, 1)),
		NewAckedP50Ms: ms(percentile(ackDs, 0.50)), NewAckedP99Ms: ms(percentile(ackDs, 0.99)),
		DoneSentP50Ms: ms(percentile(sentDs, 0.50)), DoneSentP99Ms: ms(percentile(sentDs, 0.99)),
	}
}

// percentile is the nearest-rank q-quantile of sorted ds (0 when empty).
func percentile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(math.Ceil(q * float64(len(sorted))))
	return sorted[min(max(rank, 1), len(sorted))-1]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// pacer releases one send per interval on a fixed schedule (start +
// i*interval), not interval after the previous send: a send that was
// late does not delay the ones after it, so a slow moment shows up in
// the latencies instead of lowering the rate (coordinated omission).
type pacer struct {
	start    time.Time
	interval time.Duration
	n        int64
}

func newPacer(perSecond float64) *pacer {
	return &pacer{start: time.Now(), interval: time.Duration(float64(time.Second) / perSecond)}
}

// Wait blocks until the next send is due, or ctx ends.
func (p *pacer) Wait(ctx context.Context) error {
	due := p.start.Add(time.Duration(p.n) * p.interval)
	p.n++
	wait := time.Until(due)
	if wait <= 0 {
		return ctx.Err()
	}
	timer := time.NewTimer(wait)
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-timer.C:
		return nil
	}
}
