package api

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"sync"
	"testing"

	"github.com/jobctl/jobctl/pkg/control"
	"github.com/jobctl/jobctl/pkg/job"
	"github.com/jobctl/jobctl/pkg/view"
)

// fakeControl applies control's status rules without Kafka.
type fakeControl struct {
	mu      sync.Mutex
	calls   []string
	paused  []string
	failing bool
}

func (c *fakeControl) note(s string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.failing {
		return errors.New("kafka: leader not available")
	}
	c.calls = append(c.calls, s)
	return nil
}

func (c *fakeControl) Cancel(_ context.Context, j view.Job) error {
	if !control.Cancellable(j.Status) {
		return control.ErrConflict
	}
	return c.note("cancel " + j.ID.String())
}

func (c *fakeControl) Retry(_ context.Context, j view.Job) (job.Event, error) {
	if !control.Retryable(j.Status) {
		return job.Event{}, control.ErrConflict
	}
	return job.Event{JobID: j.ID, Status: job.StatusNew, Run: j.Run + 1}, c.note("retry " + j.ID.String())
}

func (c *fakeControl) Pause(_ context.Context, g string) error {
	c.paused = append(c.paused, g)
	return c.note("pause " + g)
}

func (c *fakeControl) Resume(_ context.Context, g string) error { return c.note("resume " + g) }

func (c *fakeControl) PausedGroups() []string { return c.paused }

func TestControlRoutes(t *testing.T) {
	ctl := &fakeControl{}
	f := newFixture(t, func(o *Options) { o.Control, o.Paused, o.Token = ctl, ctl, "s3cret" })
	auth := []string{"Authorization", "Bearer s3cret"}
	f.store.Apply(job.Event{JobID: job.NumericID(1), Status: job.StatusNew}, view.Record{})
	f.store.Apply(job.Event{JobID: job.NumericID(2), Status: job.StatusDone, Attempt: 1}, view.Record{})
	f.store.Apply(job.Event{JobID: job.NumericID(3), Status: job.StatusDead, Attempt: 3, Run: 2}, view.Record{})

	for _, path := range []string{"/jobs/1/cancel", "/jobs/3/retry", "/groups/g/pause", "/groups/g/resume"} {
		resp, body := f.do(t, "POST", path, "")
		wantError(t, resp, body, 401)
	}
	resp, body := f.do(t, "POST", "/jobs/404/cancel", "", auth...)
	wantError(t, resp, body, 404)
	resp, body = f.do(t, "POST", "/jobs/2/cancel", "", auth...)
	wantError(t, resp, body, 409)
	resp, body = f.do(t, "POST", "/jobs/1/retry", "", auth...)
	wantError(t, resp, body, 409)

	if resp, body := f.do(t, "POST", "/jobs/1/cancel", "", auth...); resp.StatusCode != 202 {
		t.Fatalf("cancel: %d %s", resp.StatusCode, body)
	}
	resp, body = f.do(t, "POST", "/jobs/3/retry", "", auth...)
	var ans controlAnswer
	if resp.StatusCode != 202 || json.Unmarshal(body, &ans) != nil || ans.Run != 3 || ans.Action != "retry" {
		t.Fatalf("retry: %d %s", resp.StatusCode, body)
	}
	for _, verb := range []string{"pause", "resume"} {
		if resp, body := f.do(t, "POST", "/groups/billing/"+verb, "", auth...); resp.StatusCode != 202 {
			t.Fatalf("%s: %d %s", verb, resp.StatusCode, body)
		}
	}
	if want := []string{"cancel 1", "retry 3", "pause billing", "resume billing"}; !slices.Equal(ctl.calls, want) {
		t.Errorf("calls %v, want %v", ctl.calls, want)
	}
	resp, body = f.do(t, "GET", "/stats", "")
	var st Stats
	if resp.StatusCode != 200 || json.Unmarshal(body, &st) != nil || !slices.Equal(st.PausedGroups, []string{"billing"}) {
		t.Errorf("stats: %d %s", resp.StatusCode, body)
	}

	ctl.failing = true
	resp, body = f.do(t, "POST", "/groups/billing/pause", "", auth...)
	wantError(t, resp, body, 503)
}

func TestControlRoutesWithoutControl(t *testing.T) {
	f := newFixture(t, nil)
	f.store.Apply(job.Event{JobID: job.NumericID(1), Status: job.StatusNew}, view.Record{})
	resp, body := f.do(t, "POST", "/jobs/1/cancel", "")
	wantError(t, resp, body, 503)
	resp, body = f.do(t, "GET", "/stats", "")
	var st struct {
		PausedGroups []string `json:"paused_groups"`
	}
	if json.Unmarshal(body, &st) != nil || st.PausedGroups == nil || len(st.PausedGroups) != 0 {
		t.Errorf("stats without control: %s", body)
	}
}
