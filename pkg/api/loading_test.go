package api

import (
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jobctl/jobctl/pkg/job"
	"github.com/jobctl/jobctl/pkg/view"
)

// progressStore is a view whose progress the test sets.
type progressStore struct {
	*store
	mu       sync.Mutex
	progress view.Progress
}

func (s *progressStore) set(p view.Progress) {
	s.mu.Lock()
	s.progress = p
	s.mu.Unlock()
	s.ready.Store(p.CaughtUp && p.BrokerReachable)
}

// newProgressFixture is a fixture whose store reports st.progress.
func newProgressFixture(t *testing.T, topic string, mods ...func(*Options)) (*fixture, *progressStore) {
	st := &progressStore{}
	f := newFixture(t, func(o *Options) {
		st.store = o.Store.(*store)
		o.Store, o.Topic = st, topic
		for _, mod := range mods {
			mod(o)
		}
	})
	return f, st
}

func (s *progressStore) Progress() view.Progress {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.progress
}

func TestHealthzNamesTopicAndVersion(t *testing.T) {
	f := newFixture(t, func(o *Options) { o.Topic, o.Version = "job-status", "1.2.3" })
	resp, body := f.do(t, "GET", "/healthz", "")
	if resp.StatusCode != 200 || strings.TrimSpace(string(body)) != `{"status":"ok","topic":"job-status","version":"1.2.3"}` {
		t.Fatalf("/healthz: %d %s", resp.StatusCode, body)
	}
}

// TestLoadingAnswers503: until the view has read the whole topic, the
// reads whose answer depends on all of it say so (503, Retry-After,
// progress); a job already read is served; once caught up all is 200.
func TestLoadingAnswers503(t *testing.T) {
	f, st := newProgressFixture(t, "job-status")
	loading := view.Progress{Started: true, BrokerReachable: true, Partitions: []view.PartitionProgress{
		{Partition: 0, NextOffset: 4946, EndOffsetAtStart: 10000},
		{Partition: 1, NextOffset: 10000, EndOffsetAtStart: 10000, CaughtUp: true},
	}}
	st.set(loading)
	f.store.Apply(job.Event{JobID: job.NumericID(1), Status: job.StatusNew, UpdatedAt: time.Now()}, view.Record{})

	for _, path := range []string{"/jobs", "/jobs?status=DONE", "/jobs/2", "/stats"} {
		resp, body := f.do(t, "GET", path, "")
		wantError(t, resp, body, 503)
		if resp.Header.Get("Retry-After") != "1" {
			t.Errorf("GET %s: Retry-After %q, want 1", path, resp.Header.Get("Retry-After"))
		}
		var ans struct {
			Error    string        `json:"error"`
			Loading  bool          `json:"loading"`
			Progress view.Progress `json:"progress"`
		}
		if err := json.Unmarshal(body, &ans); err != nil || !ans.Loading || len(ans.Progress.Partitions) != 2 ||
			ans.Error != "the job view is still loading: read 14946 of 20000 records" {
			t.Errorf("GET %s while loading: %s", path, body)
		}
	}
	// A bad parameter is still a 400, loading or not.
	if resp, body := f.do(t, "GET", "/jobs?limit=0", ""); resp.StatusCode != 400 {
		t.Errorf("GET /jobs?limit=0 while loading: %d %s", resp.StatusCode, body)
	}
	// A job the view has read is there, loading or not.
	if resp, body := f.do(t, "GET", "/jobs/1", ""); resp.StatusCode != 200 {
		t.Errorf("GET /jobs/1 while loading: %d %s", resp.StatusCode, body)
	}
	for _, path := range []string{"/healthz", "/openapi.json"} {
		if resp, body := f.do(t, "GET", path, ""); resp.StatusCode != 200 {
			t.Errorf("GET %s while loading: %d %s", path, resp.StatusCode, body)
		}
	}
	if resp, body := f.do(t, "GET", "/readyz", ""); resp.StatusCode != 503 {
		t.Errorf("GET /readyz while loading: %d %s", resp.StatusCode, body)
	}

	loading.CaughtUp = true
	st.set(loading)
	for _, path := range []string{"/jobs", "/stats"} {
		if resp, body := f.do(t, "GET", path, ""); resp.StatusCode != 200 {
			t.Errorf("GET %s once caught up: %d %s", path, resp.StatusCode, body)
		}
	}
	resp, body := f.do(t, "GET", "/jobs/2", "")
	wantError(t, resp, body, 404)
}

// TestPostToMissingTopic: a topic the broker says does not exist is a
// 404 naming it and the fix, not a "retry shortly"; nothing is written.
func TestPostToMissingTopic(t *testing.T) {
	f, st := newProgressFixture(t, "nope")
	st.set(view.Progress{BrokerReachable: true, LastError: `topic "nope": topic does not exist (create it with 'jobctl topic create --topic nope --partitions N')`})
	resp, body := f.do(t, "POST", "/jobs", `{"job_id": 7}`)
	wantError(t, resp, body, 404)
	if want := "{\"error\":\"topic \\\"nope\\\" does not exist: create it with `jobctl topic create`\"}"; strings.TrimSpace(string(body)) != want {
		t.Fatalf("POST to a missing topic: %s, want %s", body, want)
	}
	// An unreachable broker is different: retrying may help.
	st.set(view.Progress{LastError: "dial tcp 127.0.0.1:1: connection refused"})
	resp, body = f.do(t, "POST", "/jobs", `{"job_id": 7}`)
	wantError(t, resp, body, 503)
	if f.enq.count() != 0 {
		t.Fatalf("refused POSTs wrote %d events", f.enq.count())
	}
}

// TestControlOfUnknownJobWhileLoading: cancel and retry of a job the
// view has not read are 503 loading, not 404, until it has caught up.
func TestControlOfUnknownJobWhileLoading(t *testing.T) {
	f, st := newProgressFixture(t, "job-status", func(o *Options) { o.Control = &fakeControl{} })
	loading := view.Progress{Started: true, BrokerReachable: true, Partitions: []view.PartitionProgress{{Partition: 0, NextOffset: 1, EndOffsetAtStart: 2}}}
	st.set(loading)
	for _, action := range []string{"cancel", "retry"} {
		resp, body := f.do(t, "POST", "/jobs/9/"+action, "")
		wantError(t, resp, body, 503)
	}
	loading.CaughtUp = true
	st.set(loading)
	for _, action := range []string{"cancel", "retry"} {
		resp, body := f.do(t, "POST", "/jobs/9/"+action, "")
		wantError(t, resp, body, 404)
	}
}
