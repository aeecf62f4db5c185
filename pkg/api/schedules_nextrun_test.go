package api

import (
	"strings"
	"testing"
	"time"

	"github.com/jobctl/jobctl/pkg/schedule"
)

// TestSchedulesNextRun: GET /schedules and GET /schedules/{name} carry
// next_run (RFC 3339, in UTC as the cron's zone gives it), absent for a
// paused schedule.
func TestSchedulesNextRun(t *testing.T) {
	now := time.Date(2026, 11, 26, 6, 1, 0, 0, time.UTC)
	fs := &fakeSchedules{m: map[string]schedule.Schedule{
		"every5": {Name: "every5", Cron: "*/5 * * * *", CatchUp: schedule.CatchUpOne},
		"off":    {Name: "off", Cron: "*/5 * * * *", CatchUp: schedule.CatchUpOne, Paused: true},
	}}
	f := newFixture(t, func(o *Options) { o.Schedules = fs; o.Now = func() time.Time { return now } })
	_, body := f.do(t, "GET", "/schedules/every5", "")
	if !strings.Contains(string(body), `"next_run":"2026-11-26T06:05:00Z"`) {
		t.Errorf("GET /schedules/every5: %s", body)
	}
	_, body = f.do(t, "GET", "/schedules/off", "")
	if strings.Contains(string(body), "next_run") {
		t.Errorf("GET /schedules/off has a next run: %s", body)
	}
	_, body = f.do(t, "GET", "/schedules", "")
	if strings.Count(string(body), `"next_run":"2026-11-26T06:05:00Z"`) != 1 || strings.Count(string(body), "next_run") != 1 {
		t.Errorf("GET /schedules: %s", body)
	}
}
