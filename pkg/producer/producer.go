// Package producer emits NEW job events onto the ledger: mock jobs, or
// jobs read as JSON lines. A job counts as sent only once all in-sync
// replicas acknowledged it; every failure is reported per job.
package producer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jobctl/jobctl/pkg/job"
	"github.com/jobctl/jobctl/pkg/metrics"
	"github.com/segmentio/kafka-go"
)

// Enqueuer appends NEW events; pkg/ledger's Writer is one. On partial
// failure it returns a kafka.WriteErrors with one entry per event. Run
// reuses the events' slice once Append has returned, unless Append ended
// on its context's error: an Append must not keep it past its end.
type Enqueuer interface {
	Append(ctx context.Context, events ...job.Event) error
}

// DefaultBatchSize is Options.BatchSize's default. Each write is one
// produce request per partition leader, so bigger writes mean fewer
// requests for jobctl and the broker: at 3 M mock jobs on a single-node
// Kafka, 10,000 took ~0.9 us of jobctl CPU per job against ~1.2 us
// with 1,000 (medians of 3 alternating runs).
const DefaultBatchSize = 10_000

// MaxBatchPayloadBytes ends a write early once its jobs' payloads add up
// to this much (the ledger writer splits a partition's share into 1 MiB
// batches in any case).
const MaxBatchPayloadBytes = 8 << 20

// pendingWait is how long a batch waits for the next input line before
// it is sent without it.
const pendingWait = time.Millisecond

// OnError says what a bad input line does.
type OnError string

const (
	// Skip reports the line and goes on; the run still ends in failure.
	Skip OnError = "skip"
	// Stop reports the line and sends nothing read after it.
	Stop OnError = "stop"
)

// Options tunes a run.
type Options struct {
	// Rate is jobs per second; 0 sends as fast as possible.
	Rate float64
	// OnError is Skip or Stop (the default).
	OnError OnError
	// RunAt, or else Delay after a job is read, is when jobs that do not
	// say themselves (run_at) are to run; zero = as soon as possible.
	RunAt time.Time
	Delay time.Duration
	// BatchSize is the most jobs one write carries (default
	// DefaultBatchSize); a write also ends once its jobs' payloads reach
	// MaxBatchPayloadBytes, so big payloads do not pile up in memory.
	BatchSize int
	// Senders is how many writes are in flight at once (default 4).
	Senders int
	// Total is the number of jobs expected, for progress; 0 if unknown.
	Total int
	// Progress, if set, is called about every ProgressEvery and at the end.
	Progress      func(Progress)
	ProgressEvery time.Duration
	// FlushTimeout bounds sending what was already read once ctx is
	// cancelled (default 30s): an interrupted run still delivers or
	// reports every job it read.
	FlushTimeout time.Duration
	Logger       *slog.Logger
	Metrics      *metrics.Metrics
}

// Progress is a snapshot of a run.
type Progress struct {
	Sent, Failed, BadLines, Total int
	Elapsed                       time.Duration
}

// Summary is the outcome of a run.
type Summary struct {
	Sent          int     `json:"sent"`
	Failed        int     `json:"failed"`
	BadLines      int     `json:"bad_lines"`
	ElapsedSec    float64 `json:"elapsed_seconds"`
	JobsPerSecond float64 `json:"jobs_per_second"`
	// Stopped is the reason the run ended early, if it did.
	Stopped string `json:"stopped,omitempty"`
}

// OK reports whether every job was read and sent.
func (s Summary) OK() bool { return s.Failed == 0 && s.BadLines == 0 && s.Stopped == "" }

// Run produces every job from src onto w.
func Run(ctx context.Context, w Enqueuer, src Source, opts Options) (Summary, error) {
	if opts.BatchSize <= 0 {
		opts.BatchSize = DefaultBatchSize
	}
	if opts.Senders <= 0 {
		opts.Senders = 4
	}
	if opts.OnError == "" {
		opts.OnError = Stop
	}
	if opts.FlushTimeout <= 0 {
		opts.FlushTimeout = 30 * time.Second
	}
	if opts.ProgressEvery <= 0 {
		opts.ProgressEvery = 200 * time.Millisecond
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	r := &run{opts: opts, w: w, start: time.Now(), free: make(chan []job.Event, opts.Senders+2)}

	// Writes outlive ctx by FlushTimeout so that jobs already read are
	// delivered (or reported) rather than abandoned mid-retry.
	sendCtx, cancelSend := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelSend()
	go func() {
		select {
		case <-ctx.Done():
			t := time.NewTimer(opts.FlushTimeout)
			defer t.Stop()
			select {
			case <-t.C:
				cancelSend()
			case <-sendCtx.Done():
			}
		case <-sendCtx.Done():
		}
	}()

	batches := make(chan []job.Event, opts.Senders)
	var senders sync.WaitGroup
	for i := 0; i < opts.Senders; i++ {
		senders.Add(1)
		go func() {
			defer senders.Done()
			for b := range batches {
				if r.send(sendCtx, b) {
					r.recycle(b)
				}
			}
		}()
	}
	stopProgress := r.reportProgress()

	readErr := r.read(ctx, src, batches)
	close(batches)
	senders.Wait()
	stopProgress()

	s := r.summary()
	switch {
	case readErr != nil && ctx.Err() != nil && errors.Is(readErr, ctx.Err()):
		// Not "context canceled": the user stopped it.
		s.Stopped = "interrupted"
	case readErr != nil:
		s.Stopped = readErr.Error()
	}
	var lineErr *LineError
	if readErr != nil && !errors.As(readErr, &lineErr) && !errors.Is(readErr, context.Canceled) {
		return s, readErr
	}
	return s, nil
}

type run struct {
	opts  Options
	w     Enqueuer
	start time.Time

	sent, failed, skipped atomic.Int64

	// free holds sent batches for reuse: growing a batch of events (a few
	// hundred bytes each) from nothing to BatchSize was half of read's CPU.
	free chan []job.Event
}

// newBatch returns an empty batch with room for BatchSize events.
func (r *run) newBatch() []job.Event {
	select {
	case b := <-r.free:
		return b
	default:
		return make([]job.Event, 0, r.opts.BatchSize)
	}
}

// recycle hands a sent batch back to read. Its events are cleared: a
// batch in the free list keeps no payload alive.
func (r *run) recycle(b []job.Event) {
	if cap(b) != r.opts.BatchSize {
		return
	}
	clear(b)
	select {
	case r.free <- b[:0]:
	default:
	}
}

// read pulls jobs from src into batches, pacing them at opts.Rate.
func (r *run) read(ctx context.Context, src Source, batches chan<- []job.Event) error {
	batch := r.newBatch()
	payloadBytes := 0
	flush := func() {
		if len(batch) > 0 {
			batches <- batch
			batch, payloadBytes = r.newBatch(), 0
		}
	}
	defer flush()
	var interval time.Duration
	if r.opts.Rate > 0 {
		interval = time.Duration(float64(time.Second) / r.opts.Rate)
	}
	for n := 0; ; {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		// What was read goes out before a read that may block (a pipe
		// with nothing more to say yet): a job must not wait for later
		// input to fill its batch.
		if p, ok := src.(pendingSource); ok && len(batch) > 0 && !p.Pending(pendingWait) {
			flush()
		}
		// The job is read before waiting for its slot: waiting first would
		// add a whole interval after the last job, only to find the end.
		e, err := src.Next(ctx)
		if errors.Is(err, io.EOF) {
			return nil
		}
		var lineErr *LineError
		if errors.As(err, &lineErr) {
			r.skipped.Add(1)
			r.opts.Logger.Error("bad input line", "line", lineErr.Line, "error", lineErr.Err, "on_error", string(r.opts.OnError))
			if r.opts.OnError == Stop {
				return lineErr
			}
			continue
		}
		if err != nil {
			return err
		}
		paced := false
		if interval > 0 {
			due := r.start.Add(time.Duration(n) * interval)
			if wait := time.Until(due); wait > 0 {
				flush() // send what is ready before waiting for the next slot
				t := time.NewTimer(wait)
				select {
				case <-ctx.Done():
					t.Stop()
					return ctx.Err()
				case <-t.C:
				}
				paced = true
			}
		}
		n++
		now := time.Now()
		stamp(&e, now)
		if e.RunAt.IsZero() {
			switch {
			case !r.opts.RunAt.IsZero():
				e.RunAt = r.opts.RunAt.UTC()
			case r.opts.Delay > 0:
				e.RunAt = now.Add(r.opts.Delay).UTC()
			}
		}
		batch = append(batch, e)
		payloadBytes += len(e.Payload)
		// A job that waited for its slot goes out in it, not after the
		// next read, which may block (stdin).
		if paced || len(batch) >= r.opts.BatchSize || payloadBytes >= MaxBatchPayloadBytes {
			flush()
		}
	}
}

// send writes batch and counts the outcome. It reports whether the write
// is over, so that batch may be reused: an Append cut short by its
// context may still be reading the events (a Coalescer's queued write).
func (r *run) send(ctx context.Context, batch []job.Event) (over bool) {
	err := r.w.Append(ctx, batch...)
	if err == nil {
		r.count(len(batch), 0)
		return true
	}
	var perJob kafka.WriteErrors
	if !errors.As(err, &perJob) || len(perJob) != len(batch) {
		for _, e := range batch {
			r.opts.Logger.Error("job not sent", "job_id", e.JobID.String(), "error", err)
		}
		r.count(0, len(batch))
		return ctx.Err() == nil && !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded)
	}
	failed := 0
	for i, jerr := range perJob {
		if jerr != nil {
			failed++
			r.opts.Logger.Error("job not sent", "job_id", batch[i].JobID.String(), "error", jerr)
		}
	}
	r.count(len(batch)-failed, failed)
	return true
}

func (r *run) count(sent, failed int) {
	r.sent.Add(int64(sent))
	r.failed.Add(int64(failed))
	if m := r.opts.Metrics; m != nil {
		m.JobsProduced.WithLabelValues("ok").Add(float64(sent))
		m.JobsProduced.WithLabelValues("failed").Add(float64(failed))
	}
}

func (r *run) progress() Progress {
	return Progress{
		Sent: int(r.sent.Load()), Failed: int(r.failed.Load()), BadLines: int(r.skipped.Load()),
		Total: r.opts.Total, Elapsed: time.Since(r.start),
	}
}

func (r *run) reportProgress() (stop func()) {
	if r.opts.Progress == nil {
		return func() {}
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(r.opts.ProgressEvery)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				r.opts.Progress(r.progress())
			}
		}
	}()
	return func() {
		close(done)
		wg.Wait()
		r.opts.Progress(r.progress())
	}
}

func (r *run) summary() Summary {
	p := r.progress()
	s := Summary{Sent: p.Sent, Failed: p.Failed, BadLines: p.BadLines, ElapsedSec: p.Elapsed.Seconds()}
	if p.Elapsed > 0 {
		s.JobsPerSecond = float64(p.Sent) / p.Elapsed.Seconds()
	}
	return s
}

// String is the one-line human summary.
func (s Summary) String() string {
	msg := fmt.Sprintf("sent %d jobs, %d failed, %d bad input lines in %.2fs (%s jobs/s)", s.Sent, s.Failed, s.BadLines, s.ElapsedSec, FormatRate(s.JobsPerSecond))
	if s.Stopped != "" {
		msg += "; stopped early: " + s.Stopped
	}
	return msg
}

// FormatRate writes a rate in jobs per second with the digits that matter:
// whole numbers for fast runs, but never "0" for a slow one (--rate 0.5).
func FormatRate(r float64) string {
	switch {
	case r >= 100 || r == 0:
		return strconv.FormatFloat(r, 'f', 0, 64)
	case r >= 10:
		return strconv.FormatFloat(r, 'f', 1, 64)
	case r >= 0.01:
		return strconv.FormatFloat(r, 'f', 2, 64)
	}
	return strconv.FormatFloat(r, 'g', 2, 64)
}
