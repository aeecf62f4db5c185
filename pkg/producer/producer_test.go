package producer

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jobctl/jobctl/pkg/job"
	"github.com/segmentio/kafka-go"
)

// fakeEnqueuer records what it is sent and fails the jobs fail says.
type fakeEnqueuer struct {
	mu   sync.Mutex
	got  []job.Event
	fail func(job.Event) error
}

func (f *fakeEnqueuer) Append(_ context.Context, events ...job.Event) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	var errs kafka.WriteErrors
	failed := false
	for _, e := range events {
		var err error
		if f.fail != nil {
			err = f.fail(e)
		}
		errs = append(errs, err)
		if err != nil {
			failed = true
			continue
		}
		f.got = append(f.got, e)
	}
	if failed {
		return errs
	}
	return nil
}

func TestMockSourceIDsAreUniqueAndSafeForJavaScript(t *testing.T) {
	src := NewMockSource(1000, "t", nil)
	seen := map[string]bool{}
	for {
		e, err := src.Next(context.Background())
		if errors.Is(err, io.EOF) {
			break
		}
		if !e.JobID.Numeric() || seen[e.JobID.String()] || len(e.JobID.String()) > 16 {
			t.Fatalf("bad id %s", e.JobID)
		}
		seen[e.JobID.String()] = true
	}
	if len(seen) != 1000 {
		t.Fatalf("got %d jobs", len(seen))
	}
}

func TestRunCountsPerJobFailures(t *testing.T) {
	enq := &fakeEnqueuer{fail: func(e job.Event) error {
		if strings.HasSuffix(e.JobID.String(), "7") {
			return errors.New("broker said no")
		}
		return nil
	}}
	s, err := Run(context.Background(), enq, NewMockSource(100, "t", nil), Options{BatchSize: 16})
	if err != nil {
		t.Fatal(err)
	}
	if s.Sent+s.Failed != 100 || s.Failed != 10 || len(enq.got) != s.Sent || s.OK() {
		t.Fatalf("summary %+v, sent to the enqueuer %d", s, len(enq.got))
	}
	for _, e := range enq.got {
		if e.CreatedAt.IsZero() || e.UpdatedAt.IsZero() {
			t.Fatalf("job %s sent without timestamps", e.JobID)
		}
	}
}

func TestRunBadLines(t *testing.T) {
	input := "{\"job_id\": 1, \"status\": \"NEW\"}\n\nnope\n{\"job_id\": 2}\n" + strings.Repeat("x", maxLineBytes+10) + "\n{\"job_id\": 3, \"status\": \"NEW\"}"
	t.Run("skip", func(t *testing.T) {
		enq := &fakeEnqueuer{}
		s, err := Run(context.Background(), enq, NewLineSource(strings.NewReader(input)), Options{OnError: Skip})
		if err != nil {
			t.Fatal(err)
		}
		// Lines 1, 4 and 6 are jobs (a missing status means NEW); 3 and
		// the over-long line 5 are reported, and reading goes on.
		if s.Sent != 3 || s.BadLines != 2 || s.OK() {
			t.Fatalf("summary %+v", s)
		}
	})
	t.Run("stop", func(t *testing.T) {
		enq := &fakeEnqueuer{}
		s, err := Run(context.Background(), enq, NewLineSource(strings.NewReader(input)), Options{OnError: Stop})
		if err != nil {
			t.Fatal(err)
		}
		if s.Sent != 1 || s.BadLines != 1 || !strings.Contains(s.Stopped, "line 3") {
			t.Fatalf("summary %+v", s)
		}
	})
}

func TestRunDeliversWhatWasReadWhenCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	enq := &fakeEnqueuer{}
	src := &cancellingSource{inner: NewMockSource(1_000_000, "t", nil), after: 50, cancel: cancel}
	s, err := Run(ctx, enq, src, Options{BatchSize: 1000})
	if err != nil {
		t.Fatal(err)
	}
	// Every job read before the cancel was delivered, none was dropped.
	if s.Sent != src.n || len(enq.got) != src.n || s.Stopped == "" {
		t.Fatalf("read %d, summary %+v, delivered %d", src.n, s, len(enq.got))
	}
}

type cancellingSource struct {
	inner  Source
	after  int
	n      int
	cancel func()
}

func (c *cancellingSource) Next(ctx context.Context) (job.Event, error) {
	if c.n == c.after {
		c.cancel()
	}
	c.n++
	return c.inner.Next(ctx)
}

// Batches are reused once their write is over: every job still arrives
// exactly once, with its own id, whatever the senders' interleaving.
func TestRunReusesBatchesWithoutMixingJobs(t *testing.T) {
	enq := &fakeEnqueuer{}
	const n = 5000
	s, err := Run(context.Background(), enq, NewMockSource(n, "t", nil), Options{BatchSize: 7, Senders: 4})
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, e := range enq.got {
		if seen[e.JobID.String()] || e.Status != job.StatusNew || e.CreatedAt.IsZero() {
			t.Fatalf("job %s sent twice or garbled: %+v", e.JobID, e)
		}
		seen[e.JobID.String()] = true
	}
	if s.Sent != n || len(seen) != n {
		t.Fatalf("summary %+v, %d distinct jobs delivered", s, len(seen))
	}
}

// An Append cut short by its context may still hold the batch (a
// Coalescer's queued write), so that batch is not reused.
func TestRunKeepsBatchesOfCancelledWrites(t *testing.T) {
	r := &run{opts: Options{BatchSize: 2, Logger: slog.New(slog.DiscardHandler)}, w: cancelledEnqueuer{}, free: make(chan []job.Event, 2)}
	b := r.newBatch()
	b = append(b, job.Event{JobID: job.NumericID(1), Status: job.StatusNew})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if r.send(ctx, b) {
		t.Fatal("a write cut short by its context was reported over")
	}
	r.w = &fakeEnqueuer{}
	if !r.send(context.Background(), b) {
		t.Fatal("a finished write was not reported over")
	}
	r.recycle(b)
	if got := r.newBatch(); cap(got) != 2 || len(got) != 0 {
		t.Fatalf("recycled batch len %d cap %d", len(got), cap(got))
	}
}

type cancelledEnqueuer struct{}

func (cancelledEnqueuer) Append(ctx context.Context, _ ...job.Event) error { return ctx.Err() }

// sizesEnqueuer records how many events each write carried.
type sizesEnqueuer struct {
	mu    sync.Mutex
	sizes []int
}

func (s *sizesEnqueuer) Append(_ context.Context, events ...job.Event) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sizes = append(s.sizes, len(events))
	return nil
}

// Writes end at BatchSize jobs, or earlier once their payloads add up to
// MaxBatchPayloadBytes.
func TestRunBoundsBatchesByCountAndPayload(t *testing.T) {
	enq := &sizesEnqueuer{}
	if _, err := Run(context.Background(), enq, NewMockSource(DefaultBatchSize+5, "t", nil), Options{Senders: 1}); err != nil {
		t.Fatal(err)
	}
	if len(enq.sizes) != 2 || enq.sizes[0] != DefaultBatchSize {
		t.Fatalf("write sizes %v, want %d then 5", enq.sizes, DefaultBatchSize)
	}
	enq = &sizesEnqueuer{}
	payload := []byte(`"` + strings.Repeat("x", 1<<20) + `"`)
	if _, err := Run(context.Background(), enq, NewMockSource(20, "t", payload), Options{Senders: 1}); err != nil {
		t.Fatal(err)
	}
	total := 0
	for _, n := range enq.sizes {
		if n*len(payload) > MaxBatchPayloadBytes+len(payload) {
			t.Fatalf("a write of %d 1 MiB payloads (sizes %v)", n, enq.sizes)
		}
		total += n
	}
	if total != 20 || len(enq.sizes) < 3 {
		t.Fatalf("write sizes %v", enq.sizes)
	}
}

// Jobs read from a pipe that has nothing more to say yet are sent, not
// held until later input fills their batch.
func TestRunSendsWhatWasReadBeforeWaitingForInput(t *testing.T) {
	pr, pw := io.Pipe()
	enq := &fakeEnqueuer{}
	done := make(chan Summary, 1)
	go func() {
		s, _ := Run(context.Background(), enq, NewLineSource(pr), Options{})
		done <- s
	}()
	if _, err := io.WriteString(pw, "{\"job_id\": 1}\n{\"job_id\": 2}\n{\"job_id\": 3}\n"); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		enq.mu.Lock()
		n := len(enq.got)
		enq.mu.Unlock()
		if n == 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of 3 jobs sent while the input stayed open", n)
		}
		time.Sleep(10 * time.Millisecond)
	}
	pw.Close()
	if s := <-done; s.Sent != 3 || !s.OK() {
		t.Fatalf("summary %+v", s)
	}
}
