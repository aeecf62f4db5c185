package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jobctl/jobctl/pkg/schedule"
)

// fakeSchedules keeps schedules in memory the way schedule.Store does.
type fakeSchedules struct {
	m   map[string]schedule.Schedule
	err error
}

func (f *fakeSchedules) List(context.Context) ([]schedule.Schedule, error) {
	if f.err != nil {
		return nil, f.err
	}
	out := []schedule.Schedule{}
	for _, sc := range f.m {
		out = append(out, sc)
	}
	return out, nil
}

func (f *fakeSchedules) Get(_ context.Context, name string) (schedule.Schedule, error) {
	sc, ok := f.m[name]
	if !ok {
		return sc, fmt.Errorf("schedule %q: %w", name, schedule.ErrNotFound)
	}
	return sc, nil
}

func (f *fakeSchedules) Put(_ context.Context, sc schedule.Schedule) (schedule.Schedule, error) {
	if err := sc.Validate(); err != nil {
		return sc, err
	}
	f.m[sc.Name] = sc
	return sc, nil
}

func (f *fakeSchedules) Delete(ctx context.Context, name string) error {
	if _, err := f.Get(ctx, name); err != nil {
		return err
	}
	delete(f.m, name)
	return nil
}

func (f *fakeSchedules) SetPaused(ctx context.Context, name string, paused bool) (schedule.Schedule, error) {
	sc, err := f.Get(ctx, name)
	if err != nil {
		return sc, err
	}
	sc.Paused = paused
	f.m[name] = sc
	return sc, nil
}

func TestSchedulesAPI(t *testing.T) {
	now := time.Date(2026, 5, 1, 12, 0, 30, 0, time.UTC)
	fs := &fakeSchedules{m: map[string]schedule.Schedule{}}
	f := newFixture(t, func(o *Options) { o.Schedules = fs; o.Now = func() time.Time { return now }; o.Token = "t" })
	auth := []string{"Authorization", "Bearer t"}

	resp, body := f.do(t, "POST", "/schedules", `{"name": "a", "cron": "*/5 * * * *", "payload": {"k": 1}}`)
	if resp.StatusCode != 401 {
		t.Fatalf("POST without the token: %d %s", resp.StatusCode, body)
	}
	resp, body = f.do(t, "POST", "/schedules", `{"name": "a", "cron": "*/5 * * * *", "payload": {"k": 1}}`, auth...)
	var got schedule.Listed
	if resp.StatusCode != 200 || json.Unmarshal(body, &got) != nil || !got.NextRun.Equal(time.Date(2026, 5, 1, 12, 5, 0, 0, time.UTC)) || got.CatchUp != schedule.CatchUpOne {
		t.Fatalf("POST /schedules: %d %s", resp.StatusCode, body)
	}
	for _, c := range []struct {
		method, path, body string
		code               int
		want               string
	}{
		{"POST", "/schedules", `{"name": "b", "cron": "bad"}`, 400, "bad cron spec"},
		{"POST", "/schedules", `{"name": "b", "cron": "* * * * *"} {}`, 400, "more than one JSON value"},
		{"POST", "/schedules", `[]`, 400, "invalid schedule"},
		{"GET", "/schedules/b", "", 404, "no such schedule"},
		{"DELETE", "/schedules/b", "", 404, "no such schedule"},
		{"POST", "/schedules/b/resume", "", 404, "no such schedule"},
		{"PUT", "/schedules/a", "", 405, "not allowed"},
	} {
		resp, body := f.do(t, c.method, c.path, c.body, auth...)
		var e apiError
		if resp.StatusCode != c.code || json.Unmarshal(body, &e) != nil || !strings.Contains(e.Error, c.want) {
			t.Errorf("%s %s %s: %d %s, want %d naming %q", c.method, c.path, c.body, resp.StatusCode, body, c.code, c.want)
		}
	}
	resp, body = f.do(t, "POST", "/schedules/a/pause", "", auth...)
	got = schedule.Listed{}
	if resp.StatusCode != 200 || json.Unmarshal(body, &got) != nil || !got.Paused || !got.NextRun.IsZero() {
		t.Fatalf("pause: %d %s", resp.StatusCode, body)
	}
	fs.err = errors.New("broker down")
	resp, body = f.do(t, "GET", "/schedules", "")
	if resp.StatusCode != 503 || !strings.Contains(string(body), "broker down") {
		t.Errorf("GET /schedules with the topic unreadable: %d %s", resp.StatusCode, body)
	}

	bare := newFixture(t, nil)
	resp, body = bare.do(t, "GET", "/schedules", "")
	if resp.StatusCode != 503 || !strings.Contains(string(body), "does not serve schedules") {
		t.Errorf("without Schedules: %d %s", resp.StatusCode, body)
	}
}
