package api

import (
	"encoding/json"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/jobctl/jobctl/pkg/job"
	"github.com/jobctl/jobctl/pkg/view"
)

func TestListJobsSinceUntil(t *testing.T) {
	f := newFixture(t, nil)
	base := time.Date(2026, 11, 26, 6, 0, 0, 0, time.UTC)
	for i := range 5 {
		f.store.Apply(job.Event{JobID: job.NumericID(int64(i + 1)), Status: job.StatusNew, UpdatedAt: base.Add(time.Duration(i) * time.Minute)}, view.Record{})
	}
	ids := func(path string) []string {
		t.Helper()
		resp, body := f.do(t, "GET", path, "")
		if resp.StatusCode != 200 {
			t.Fatalf("GET %s: %d %s", path, resp.StatusCode, body)
		}
		var jobs []struct {
			JobID job.ID `json:"job_id"`
		}
		if err := json.Unmarshal(body, &jobs); err != nil {
			t.Fatal(err)
		}
		out := []string{}
		for _, j := range jobs {
			out = append(out, j.JobID.String())
		}
		return out
	}
	at := func(min int) string {
		return url.QueryEscape(base.Add(time.Duration(min) * time.Minute).Format(time.RFC3339))
	}
	for _, c := range []struct {
		query string
		want  string
	}{
		{"since=" + at(1), "[2 3 4 5]"},
		{"until=" + at(2), "[1 2]"},
		{"since=" + at(1) + "&until=" + at(3), "[2 3]"},
		{"since=" + at(1) + "&until=" + at(3) + "&order=desc", "[3 2]"},
		{"since=" + url.QueryEscape("2026-11-26T07:01:30+01:00"), "[3 4 5]"},
		{"since=" + at(10), "[]"},
	} {
		if got := ids("/jobs?" + c.query); "["+strings.Join(got, " ")+"]" != c.want {
			t.Errorf("GET /jobs?%s = %v, want %s", c.query, got, c.want)
		}
	}
	// Pages keep the range.
	resp, _ := f.do(t, "GET", "/jobs?limit=1&since="+at(3), "")
	if link := resp.Header.Get("Link"); link != `</jobs?after=4&limit=1&since=`+at(3)+`>; rel="next"` {
		t.Errorf("Link %q does not keep since", link)
	}
	for query, want := range map[string]string{
		"since=yesterday":                    `since "yesterday": want an RFC 3339 time such as 2026-11-26T06:00:00Z`,
		"until=2026-11-26":                   `until "2026-11-26": want an RFC 3339 time such as 2026-11-26T06:00:00Z`,
		"since=" + at(3) + "&until=" + at(3): "since 2026-11-26T06:03:00Z is not before until 2026-11-26T06:03:00Z",
	} {
		resp, body := f.do(t, "GET", "/jobs?"+query, "")
		wantError(t, resp, body, 400)
		var e apiError
		_ = json.Unmarshal(body, &e)
		if e.Error != want {
			t.Errorf("GET /jobs?%s: error %q, want %q", query, e.Error, want)
		}
	}
}
