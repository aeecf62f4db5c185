package api

import (
	"net/http"
	"sync/atomic"
	"testing"

	"github.com/jobctl/jobctl/pkg/view"
)

// caughtUpStore says it has caught up through a closed channel, as
// *view.View does once it has read the topic, and counts Progress calls.
type caughtUpStore struct {
	*store
	done      chan struct{}
	progesses atomic.Int64
}

func (s *caughtUpStore) CaughtUp() <-chan struct{} { return s.done }

func (s *caughtUpStore) Progress() view.Progress {
	s.progesses.Add(1)
	return s.store.Progress()
}

// Once the store signals it has caught up, POST /jobs no longer asks for
// its Progress (the view's read lock and an allocation per request);
// before that it does, and answers 503 while the view is loading.
func TestPostJobCaughtUpWithoutProgress(t *testing.T) {
	var cs *caughtUpStore
	f := newFixture(t, func(o *Options) {
		cs = &caughtUpStore{store: o.Store.(*store), done: make(chan struct{})}
		o.Store = cs
	})
	f.store.ready.Store(false)
	resp, body := f.do(t, "POST", "/jobs", `{"job_id": 1, "status": "NEW"}`)
	wantError(t, resp, body, http.StatusServiceUnavailable)
	if cs.progesses.Load() == 0 {
		t.Fatal("a store that has not signalled caught up was not asked for its Progress")
	}

	f.store.ready.Store(true)
	close(cs.done)
	before := cs.progesses.Load()
	for id := range 3 {
		resp, body := f.do(t, "POST", "/jobs", `{"job_id": `+string(rune('2'+id))+`, "status": "NEW"}`)
		if resp.StatusCode != http.StatusAccepted {
			t.Fatalf("POST after catch-up: %d %s", resp.StatusCode, body)
		}
	}
	if n := cs.progesses.Load() - before; n != 0 {
		t.Errorf("POST /jobs asked for Progress %d times after the store signalled caught up", n)
	}
	if f.enq.count() != 3 {
		t.Errorf("%d jobs written, want 3", f.enq.count())
	}
}

// BenchmarkPostJobCaughtUp is BenchmarkPostJob with a store that
// signals it has caught up, as serve's view does: next to
// BenchmarkPostJob it shows what asking Progress per POST cost.
//
//	go test ./pkg/api -run '^$' -bench 'BenchmarkPostJob' -benchmem
func BenchmarkPostJobCaughtUp(b *testing.B) {
	st := &store{View: view.New(view.Options{})}
	st.ready.Store(true)
	cs := &caughtUpStore{store: st, done: make(chan struct{})}
	close(cs.done)
	benchmarkPostJob(b, cs)
}
