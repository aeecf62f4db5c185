package api

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jobctl/jobctl/pkg/deadletter"
	"github.com/jobctl/jobctl/pkg/job"
)

// fakeDeadLetters records what the API asked for.
type fakeDeadLetters struct {
	mu       sync.Mutex
	filters  []deadletter.Filter
	replays  []deadletter.ReplayRequest
	entries  []deadletter.Entry
	listErr  error
	replayed deadletter.ReplayResult
}

func (f *fakeDeadLetters) List(_ context.Context, flt deadletter.Filter) ([]deadletter.Entry, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.filters = append(f.filters, flt)
	if f.listErr != nil {
		return nil, f.listErr
	}
	out := f.entries
	if flt.Limit > 0 && len(out) > flt.Limit {
		out = out[:flt.Limit]
	}
	return out, nil
}

func (f *fakeDeadLetters) Replay(_ context.Context, req deadletter.ReplayRequest) (deadletter.ReplayResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.replays = append(f.replays, req)
	return f.replayed, nil
}

func TestDeadLettersList(t *testing.T) {
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	id, _ := job.ParseID("7")
	dl := &fakeDeadLetters{entries: []deadletter.Entry{
		{Letter: deadletter.Letter{Kind: deadletter.KindJob, JobID: id, Type: "resize"}},
		{Letter: deadletter.Letter{Kind: deadletter.KindJob, JobID: id, Type: "resize", Run: 1}},
	}}
	f := newFixture(t, func(o *Options) { o.DeadLetters = dl; o.Now = func() time.Time { return now } })
	resp, body := f.do(t, "GET", "/dlq?type=resize&error=boom&since=1h&group=g&kind=JOB&limit=1", "")
	if resp.StatusCode != 200 {
		t.Fatalf("GET /dlq: %d %s", resp.StatusCode, body)
	}
	var got struct {
		DeadLetters []map[string]any `json:"dead_letters"`
		More        bool             `json:"more"`
	}
	if err := json.Unmarshal(body, &got); err != nil || len(got.DeadLetters) != 1 || !got.More {
		t.Fatalf("body %s: %v", body, err)
	}
	flt := dl.filters[0]
	if flt.Type != "resize" || flt.ErrorContains != "boom" || flt.Group != "g" || flt.Kind != deadletter.KindJob || !flt.Since.Equal(now.Add(-time.Hour)) || flt.Limit != 2 {
		t.Fatalf("filter %+v", flt)
	}
	for _, bad := range []string{"?kind=replayed", "?since=yesterday", "?limit=0", "?limit=x", "?since=1h&until=2h"} {
		resp, body := f.do(t, "GET", "/dlq"+bad, "")
		wantError(t, resp, body, 400)
	}
	dl.listErr = deadletter.ErrTopicNotFound
	resp, body = f.do(t, "GET", "/dlq", "")
	if resp.StatusCode != 200 || !strings.Contains(string(body), `"dead_letters":[]`) {
		t.Fatalf("missing topic: %d %s", resp.StatusCode, body)
	}

	// Without a DeadLetters the routes exist but are unavailable.
	f = newFixture(t, nil)
	resp, body = f.do(t, "GET", "/dlq", "")
	wantError(t, resp, body, 503)
}

func TestDeadLettersReplayRequest(t *testing.T) {
	dl := &fakeDeadLetters{}
	f := newFixture(t, func(o *Options) { o.DeadLetters = dl; o.Token = "s3cret" })
	auth := []string{"Authorization", "Bearer s3cret"}
	resp, body := f.do(t, "POST", "/dlq/replay", `{"ids": [1]}`)
	wantError(t, resp, body, 401)

	for body, want := range map[string]string{
		`{}`:                          "give job ids, or all",
		`{"ids": [1], "all": true}`:   "not both",
		`{"idz": [1]}`:                `unknown field \"idz\"`,
		`{"id": [1]}`:                 "neither an integer nor a string",
		`{"id": 1}`:                   "give job ids, or all",
		`{"ids": [1.5]}`:              "job_id",
		`{"all": true, "kind": "x"}`:  "kind",
		`{"all": true, "since": "x"}`: "since",
		`{"all": true, "limit": -1}`:  "limit",
		`[1]`:                         "invalid replay request",
		`{"all": true} {"all": true}`: "more than one",
	} {
		resp, got := f.do(t, "POST", "/dlq/replay", body, auth...)
		wantError(t, resp, got, 400)
		if !strings.Contains(string(got), want) {
			t.Errorf("body %s: error %s, want it to name %q", body, got, want)
		}
	}
	if len(dl.replays) != 0 {
		t.Fatal("a bad request reached Replay")
	}
	resp, body = f.do(t, "POST", "/dlq/replay", `{"ids": [1, "x"], "dry_run": true, "type": "t", "limit": 3}`, auth...)
	if resp.StatusCode != 200 {
		t.Fatalf("replay: %d %s", resp.StatusCode, body)
	}
	req := dl.replays[0]
	if len(req.IDs) != 2 || req.IDs[1].String() != "x" || !req.DryRun || req.Filter.Type != "t" || req.Filter.Limit != 3 || req.All {
		t.Fatalf("request %+v", req)
	}
}
