package apiclient

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jobctl/jobctl/pkg/job"
	"github.com/jobctl/jobctl/pkg/schedule"
	"github.com/jobctl/jobctl/pkg/view"
)

// fakeJobs answers GET /jobs over ids 1..n like the server: limit,
// after, a Link rel=next header when more match.
func fakeJobs(t *testing.T, n int, token string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if got := r.Header.Get("Authorization"); got != "Bearer "+token {
			w.WriteHeader(http.StatusUnauthorized)
			fmt.Fprint(w, `{"error":"this endpoint needs the API token"}`)
			return
		}
		limit, _ := strconv.Atoi(r.URL.Query().Get("limit"))
		if limit < 1 || limit > MaxPage {
			w.WriteHeader(http.StatusBadRequest)
			fmt.Fprintf(w, `{"error":"limit %q"}`, r.URL.Query().Get("limit"))
			return
		}
		after, _ := strconv.Atoi(r.URL.Query().Get("after"))
		var out []string
		last := after
		for id := after + 1; id <= n && len(out) < limit; id++ {
			out = append(out, fmt.Sprintf(`{"job_id":%d,"status":"NEW","attempt":0,"partition":0,"events":1}`, id))
			last = id
		}
		if last < n {
			w.Header().Set("Link", fmt.Sprintf(`</jobs?after=%d&limit=%d>; rel="next"`, last, limit))
		}
		fmt.Fprint(w, "["+strings.Join(out, ",")+"]")
	})
}

func TestListJobsPages(t *testing.T) {
	srv := httptest.NewServer(fakeJobs(t, 2500, "tok"))
	defer srv.Close()
	c, err := New(Options{URL: srv.URL + "/", Token: "tok"})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, tc := range []struct {
		limit     int
		after     string
		wantN     int
		wantFirst int64
		wantMore  bool
	}{
		{limit: 0, wantN: 2500, wantFirst: 1},
		{limit: 10, wantN: 10, wantFirst: 1, wantMore: true},
		{limit: 1500, wantN: 1500, wantFirst: 1, wantMore: true},
		{limit: 2500, wantN: 2500, wantFirst: 1},
		{limit: 5, after: "2497", wantN: 3, wantFirst: 2498},
	} {
		jobs, more, err := c.ListJobs(ctx, view.Query{Limit: tc.limit, After: tc.after})
		if err != nil {
			t.Fatalf("limit %d: %v", tc.limit, err)
		}
		if len(jobs) != tc.wantN || more != tc.wantMore || jobs[0].ID != job.NumericID(tc.wantFirst) {
			t.Errorf("limit %d after %q: %d jobs (first %v), more %v; want %d from %d, more %v", tc.limit, tc.after, len(jobs), jobs[0].ID, more, tc.wantN, tc.wantFirst, tc.wantMore)
		}
		for i := 1; i < len(jobs); i++ {
			if jobs[i].ID.String() != strconv.FormatInt(tc.wantFirst+int64(i), 10) {
				t.Fatalf("limit %d: job %d is %s", tc.limit, i, jobs[i].ID)
			}
		}
	}
	bad, _ := New(Options{URL: srv.URL, Token: "wrong"})
	_, _, err = bad.ListJobs(ctx, view.Query{Limit: 1})
	var se *StatusError
	if !errors.As(err, &se) || se.Code != http.StatusUnauthorized || !strings.Contains(se.Message, "API token") {
		t.Errorf("wrong token: %v, want a 401 StatusError with the server's message", err)
	}
}

// TestLoadingIsRetried: a 503 "loading" answer is waited out (reported
// through OnLoading), not taken as the answer.
func TestLoadingIsRetried(t *testing.T) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) <= 2 {
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprint(w, `{"error":"the job view is still loading: read 5 of 10 records","loading":true,"progress":{"partitions":[{"partition":0,"next_offset":5,"end_offset_at_start":10}]}}`)
			return
		}
		fmt.Fprint(w, `{"job_id":7,"status":"DONE","attempt":1,"partition":0,"events":2}`)
	}))
	defer srv.Close()
	var reads []string
	c, _ := New(Options{URL: srv.URL, OnLoading: func(read, total int64) { reads = append(reads, fmt.Sprintf("%d/%d", read, total)) }})
	j, ok, err := c.GetJob(context.Background(), "7")
	if err != nil || !ok || j.Status != job.StatusDone {
		t.Fatalf("GetJob after loading: %v %v %+v", err, ok, j)
	}
	if len(reads) != 2 || reads[0] != "5/10" {
		t.Errorf("OnLoading calls %v, want two of 5/10", reads)
	}
	// A context that ends while loading ends the wait with an error
	// naming the server.
	calls.Store(-100)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, _, err := c.GetJob(ctx, "7"); err == nil || !strings.Contains(err.Error(), srv.URL) {
		t.Errorf("GetJob while loading past the deadline: %v", err)
	}
}

func TestNotFoundAndEscaping(t *testing.T) {
	var paths []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		paths = append(paths, r.URL.EscapedPath())
		w.WriteHeader(http.StatusNotFound)
		fmt.Fprint(w, `{"error":"not found"}`)
	}))
	defer srv.Close()
	c, _ := New(Options{URL: srv.URL})
	if _, ok, err := c.GetJob(context.Background(), "schedule:a b:1"); ok || err != nil {
		t.Errorf("unknown job: ok %v err %v, want not ok and no error", ok, err)
	}
	if _, err := c.GetSchedule(context.Background(), "x/y"); !errors.Is(err, schedule.ErrNotFound) {
		t.Errorf("unknown schedule: %v, want schedule.ErrNotFound", err)
	}
	want := []string{"/jobs/schedule:a%20b:1", "/schedules/x%2Fy"}
	if strings.Join(paths, " ") != strings.Join(want, " ") {
		t.Errorf("paths %v, want %v", paths, want)
	}
	if _, err := New(Options{URL: "localhost:8080"}); err == nil {
		t.Error("a URL without a scheme was accepted")
	}
}

// TestInProcess: a handler served in-process answers like one over the
// network, Host and all.
func TestInProcess(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Host != "localhost" || r.URL.Path != "/groups/a b" {
			w.WriteHeader(http.StatusMisdirectedRequest)
			fmt.Fprintf(w, `{"error":"host %q path %q"}`, r.Host, r.URL.Path)
			return
		}
		fmt.Fprint(w, `{"group":"a b","state":"Stable","paused":true,"members":[{"member_id":"m","partitions":[0,1]}],"pending":{"0":2},"pending_total":2}`)
	})
	c, err := New(Options{URL: "http://localhost", HTTPClient: InProcess(h)})
	if err != nil {
		t.Fatal(err)
	}
	g, ok, err := c.GetGroup(context.Background(), "a b")
	if err != nil || !ok || !g.Paused || g.PendingTotal != 2 || len(g.Members) != 1 || len(g.Members[0].Partitions) != 2 {
		t.Fatalf("GetGroup in-process: %v %v %+v", err, ok, g)
	}
}
