package api

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jobctl/jobctl/pkg/job"
	"github.com/jobctl/jobctl/pkg/metrics"
	"github.com/jobctl/jobctl/pkg/view"
)

// store is a real view fed by Apply, with readiness under test control.
type store struct {
	*view.View
	ready atomic.Bool
}

func (s *store) Ready() bool { return s.ready.Load() }

func (s *store) Progress() view.Progress {
	p := s.View.Progress()
	p.CaughtUp, p.BrokerReachable = s.ready.Load(), s.ready.Load()
	return p
}

// enqueuer stands in for the topic: it records events and, like the real
// round trip, lets the view read them back.
type enqueuer struct {
	v     *view.View
	delay time.Duration
	fail  atomic.Bool

	mu     sync.Mutex
	events []job.Event
}

func (e *enqueuer) Append(ctx context.Context, events ...job.Event) error {
	time.Sleep(e.delay)
	if e.fail.Load() {
		return errors.New("kafka: not enough in-sync replicas")
	}
	e.mu.Lock()
	e.events = append(e.events, events...)
	e.mu.Unlock()
	for _, ev := range events {
		e.v.Apply(ev, view.Record{})
	}
	return nil
}

func (e *enqueuer) count() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.events)
}

type fixture struct {
	srv   *Server
	http  *httptest.Server
	store *store
	enq   *enqueuer
	m     *metrics.Metrics
}

func newFixture(t *testing.T, mod func(*Options)) *fixture {
	t.Helper()
	v := view.New(view.Options{})
	st := &store{View: v}
	st.ready.Store(true)
	enq := &enqueuer{v: v}
	m := metrics.New()
	opts := Options{Store: st, Enqueuer: enq, Metrics: m, WriteTimeout: 5 * time.Second, Heartbeat: 50 * time.Millisecond}
	if mod != nil {
		mod(&opts)
	}
	srv := New(opts)
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(func() {
		srv.CloseStreams()
		hs.Close()
	})
	return &fixture{srv: srv, http: hs, store: st, enq: enq, m: m}
}

func (f *fixture) do(t *testing.T, method, path, body string, hdr ...string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, f.http.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		if hdr[i+1] == "" {
			req.Header.Del(hdr[i])
		} else {
			req.Header.Set(hdr[i], hdr[i+1])
		}
	}
	resp, err := f.http.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

// wantError checks an error answer: status code and a JSON {"error"}.
func wantError(t *testing.T, resp *http.Response, body []byte, code int) {
	t.Helper()
	if resp.StatusCode != code {
		t.Fatalf("status %d, want %d; body %s", resp.StatusCode, code, body)
	}
	var e struct {
		Error string `json:"error"`
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("Content-Type %q on error %s", ct, body)
	}
	if err := json.Unmarshal(body, &e); err != nil || e.Error == "" {
		t.Fatalf("error body %s is not {\"error\": ...}", body)
	}
}

func TestOpenAPIDescribesEveryRoute(t *testing.T) {
	var doc struct {
		OpenAPI string                                `json:"openapi"`
		Paths   map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(openAPIDoc, &doc); err != nil {
		t.Fatalf("openapi.json: %v", err)
	}
	if !strings.HasPrefix(doc.OpenAPI, "3.") {
		t.Fatalf("openapi version %q", doc.OpenAPI)
	}
	registered := map[string]bool{}
	for _, r := range New(Options{Store: &store{View: view.New(view.Options{})}}).routes {
		path := strings.ReplaceAll(r.path, "{$}", "")
		if path == "" {
			path = "/"
		}
		key := strings.ToLower(r.method) + " " + path
		registered[key] = true
		if _, ok := doc.Paths[path][strings.ToLower(r.method)]; !ok {
			t.Errorf("route %s %s is not in openapi.json", r.method, r.path)
		}
	}
	methods := []string{"get", "put", "post", "delete", "options", "head", "patch", "trace"}
	for path, ops := range doc.Paths {
		for m := range ops {
			if !slices.Contains(methods, m) {
				continue // parameters, summary, ...
			}
			if !registered[m+" "+path] {
				t.Errorf("openapi.json documents %s %s, which is not a route", strings.ToUpper(m), path)
			}
		}
	}
}

func TestPostJob(t *testing.T) {
	f := newFixture(t, func(o *Options) { o.MaxBodyBytes = 256 })
	f.store.Apply(job.Event{JobID: job.NumericID(1), Status: job.StatusNew}, view.Record{})

	cases := []struct {
		name, body, ctype string
		code              int
	}{
		{"malformed JSON", `{"job_id": 12`, "application/json", 400},
		{"not an object", `[1,2]`, "application/json", 400},
		{"unknown field", `{"jobid": 12}`, "application/json", 400},
		{"empty body", ``, "application/json", 400},
		{"status DONE", `{"job_id": 2, "status": "DONE"}`, "application/json", 422},
		{"unknown status", `{"job_id": 2, "status": "PAUSED"}`, "application/json", 422},
		{"worker field", `{"job_id": 2, "worker": "me"}`, "application/json", 422},
		{"reserved id", `{"job_id": "events"}`, "application/json", 422},
		{"too large", `{"job_id": 2, "payload": "` + strings.Repeat("x", 300) + `"}`, "application/json", 413},
		{"text/plain", `{"job_id": 2, "status": "NEW"}`, "text/plain", 415},
		{"no content type", `{"job_id": 2, "status": "NEW"}`, "", 415},
		{"existing id", `{"job_id": 1, "status": "NEW"}`, "application/json", 409},
		{"existing id as string", `{"job_id": "1"}`, "application/json", 409},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			resp, body := f.do(t, "POST", "/jobs", c.body, "Content-Type", c.ctype)
			wantError(t, resp, body, c.code)
		})
	}
	if n := f.enq.count(); n != 0 {
		t.Fatalf("rejected requests wrote %d events", n)
	}

	// The seed's payload: the numeric id comes back as a number.
	resp, body := f.do(t, "POST", "/jobs", `{"job_id": 1234, "status": "NEW"}`)
	if resp.StatusCode != 202 || resp.Header.Get("Location") != "/jobs/1234" {
		t.Fatalf("seed POST: %d %v %s", resp.StatusCode, resp.Header, body)
	}
	if !regexp.MustCompile(`^\{"job_id":1234,"status":"NEW",`).Match(body) {
		t.Fatalf("seed POST echoed %s", body)
	}
	// A richer job without id gets a unique, time-ordered one.
	resp, body = f.do(t, "POST", "/jobs", `{"type": "resize", "payload": {"w": [1, 2]}}`, "Content-Type", "application/json; charset=utf-8")
	var got job.Event
	if err := json.Unmarshal(body, &got); err != nil || resp.StatusCode != 202 {
		t.Fatalf("rich POST: %d %s", resp.StatusCode, body)
	}
	if got.JobID.Numeric() || got.Type != "resize" || string(got.Payload) != `{"w":[1,2]}` || got.CreatedAt.IsZero() {
		t.Fatalf("rich POST answered %+v", got)
	}
	if resp.Header.Get("Location") != "/jobs/"+got.JobID.String() {
		t.Fatalf("Location %q", resp.Header.Get("Location"))
	}
	if n := f.enq.count(); n != 2 {
		t.Fatalf("%d events written, want 2", n)
	}
	resp, body = f.do(t, "GET", "/jobs/"+got.JobID.String(), "")
	if resp.StatusCode != 200 || !strings.Contains(string(body), `"history":[{"status":"NEW"`) {
		t.Fatalf("GET after POST: %d %s", resp.StatusCode, body)
	}
}

func TestConcurrentPostsOfOneIDOnlyOneWins(t *testing.T) {
	f := newFixture(t, nil)
	f.enq.delay = 20 * time.Millisecond
	const n = 16
	codes := make(chan int, n)
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, _ := f.do(t, "POST", "/jobs", `{"job_id": "same"}`)
			codes <- resp.StatusCode
		}()
	}
	wg.Wait()
	close(codes)
	count := map[int]int{}
	for c := range codes {
		count[c]++
	}
	if count[202] != 1 || count[409] != n-1 {
		t.Fatalf("answers %v, want one 202 and %d 409", count, n-1)
	}
	if f.enq.count() != 1 {
		t.Fatalf("%d writes, want 1", f.enq.count())
	}
}

func TestPostWhenKafkaFails(t *testing.T) {
	f := newFixture(t, nil)
	f.enq.fail.Store(true)
	resp, body := f.do(t, "POST", "/jobs", `{"job_id": 5}`)
	wantError(t, resp, body, 503)
	// The id was released: a retry succeeds.
	f.enq.fail.Store(false)
	if resp, body := f.do(t, "POST", "/jobs", `{"job_id": 5}`); resp.StatusCode != 202 {
		t.Fatalf("retry: %d %s", resp.StatusCode, body)
	}
}

// TestPostBeforeCaughtUp: until the view has read the whole topic a POST
// cannot know whether its job_id exists, so it is refused with a retry.
func TestPostBeforeCaughtUp(t *testing.T) {
	f := newFixture(t, nil)
	f.store.ready.Store(false)
	resp, body := f.do(t, "POST", "/jobs", `{"job_id": 6}`)
	wantError(t, resp, body, 503)
	if resp.Header.Get("Retry-After") == "" {
		t.Error("a 503 before catch-up should say when to retry")
	}
	if n := f.enq.count(); n != 0 {
		t.Fatalf("a refused POST wrote %d events", n)
	}
	f.store.ready.Store(true)
	if resp, body := f.do(t, "POST", "/jobs", `{"job_id": 6}`); resp.StatusCode != 202 {
		t.Fatalf("after catch-up: %d %s", resp.StatusCode, body)
	}
}

func TestListJobsPagesByLink(t *testing.T) {
	f := newFixture(t, nil)
	for i := range 25 {
		f.store.Apply(job.Event{JobID: job.NumericID(int64(i)), Status: job.StatusNew, Type: []string{"a", "b"}[i%2]}, view.Record{})
	}
	f.store.Apply(job.Event{JobID: job.NumericID(3), Status: job.StatusDone, Attempt: 1}, view.Record{})
	next := "/jobs?limit=7"
	var ids []string
	pages := 0
	linkRe := regexp.MustCompile(`^<([^>]+)>; rel="next"$`)
	for next != "" {
		resp, body := f.do(t, "GET", next, "")
		if resp.StatusCode != 200 {
			t.Fatalf("GET %s: %d %s", next, resp.StatusCode, body)
		}
		var page []view.Job
		if err := json.Unmarshal(body, &page); err != nil {
			t.Fatal(err)
		}
		for _, j := range page {
			ids = append(ids, j.ID.String())
			if j.History != nil {
				t.Fatal("list includes history")
			}
		}
		pages++
		next = ""
		if l := resp.Header.Get("Link"); l != "" {
			m := linkRe.FindStringSubmatch(l)
			if m == nil {
				t.Fatalf("Link %q", l)
			}
			next = m[1]
		}
	}
	if len(ids) != 25 || pages != 4 || ids[0] != "0" || ids[24] != "24" {
		t.Fatalf("walked %d pages, ids %v", pages, ids)
	}
	for _, c := range []struct {
		q    string
		want int
	}{{"?status=DONE", 1}, {"?status=new", 24}, {"?type=a", 13}, {"?type=b&status=DONE", 1}, {"?limit=1000", 25}, {"?after=20", 4}} {
		_, body := f.do(t, "GET", "/jobs"+c.q, "")
		var page []view.Job
		_ = json.Unmarshal(body, &page)
		if len(page) != c.want {
			t.Errorf("GET /jobs%s: %d jobs, want %d", c.q, len(page), c.want)
		}
	}
	_, body := f.do(t, "GET", "/jobs?order=desc&limit=2", "")
	if !strings.HasPrefix(string(body), `[{"job_id":24,`) {
		t.Fatalf("desc: %s", body)
	}
	for _, bad := range []string{"?limit=0", "?limit=1001", "?limit=x", "?status=PAUSED", "?order=up", "?after=a/b"} {
		resp, body := f.do(t, "GET", "/jobs"+bad, "")
		wantError(t, resp, body, 400)
	}
	// An empty result is an empty array, not null.
	if _, body := f.do(t, "GET", "/jobs?type=none", ""); strings.TrimSpace(string(body)) != "[]" {
		t.Fatalf("empty list: %s", body)
	}
}

func TestGetUnknownJobAndRoutes(t *testing.T) {
	f := newFixture(t, nil)
	resp, body := f.do(t, "GET", "/jobs/nope", "")
	wantError(t, resp, body, 404)
	resp, body = f.do(t, "GET", "/no/such/thing", "")
	wantError(t, resp, body, 404)
	resp, body = f.do(t, "DELETE", "/jobs", "")
	wantError(t, resp, body, 405)
	if allow := resp.Header.Get("Allow"); !strings.Contains(allow, "POST") {
		t.Fatalf("Allow %q", allow)
	}
}

func TestToken(t *testing.T) {
	for _, reads := range []bool{false, true} {
		t.Run(fmt.Sprintf("token_reads=%v", reads), func(t *testing.T) {
			f := newFixture(t, func(o *Options) { o.Token, o.TokenReads = "s3cret", reads })
			resp, body := f.do(t, "POST", "/jobs", `{"job_id": 1}`)
			wantError(t, resp, body, 401)
			if resp.Header.Get("WWW-Authenticate") == "" {
				t.Fatal("401 without WWW-Authenticate")
			}
			resp, body = f.do(t, "POST", "/jobs", `{"job_id": 1}`, "Authorization", "Bearer wrong")
			wantError(t, resp, body, 401)
			resp, body = f.do(t, "POST", "/jobs", `{"job_id": 1}`, "Authorization", "Basic s3cret")
			wantError(t, resp, body, 401)
			if f.enq.count() != 0 {
				t.Fatal("an unauthorized POST was written")
			}
			if resp, body := f.do(t, "POST", "/jobs", `{"job_id": 1}`, "Authorization", "Bearer s3cret"); resp.StatusCode != 202 {
				t.Fatalf("authorized POST: %d %s", resp.StatusCode, body)
			}
			for _, path := range []string{"/jobs", "/jobs/1", "/stats", "/metrics"} {
				resp, body := f.do(t, "GET", path, "")
				if reads {
					wantError(t, resp, body, 401)
				} else if resp.StatusCode != 200 {
					t.Fatalf("GET %s without token: %d", path, resp.StatusCode)
				}
				if resp, _ := f.do(t, "GET", path, "", "Authorization", "Bearer s3cret"); resp.StatusCode != 200 {
					t.Fatalf("GET %s with token: %d", path, resp.StatusCode)
				}
			}
			for _, path := range []string{"/", "/healthz", "/readyz", "/openapi.json"} {
				if resp, _ := f.do(t, "GET", path, ""); resp.StatusCode != 200 {
					t.Fatalf("open route %s: %d", path, resp.StatusCode)
				}
			}
		})
	}
}

func TestCORS(t *testing.T) {
	off := newFixture(t, nil)
	resp, _ := off.do(t, "GET", "/jobs", "", "Origin", "https://evil.example")
	for k := range resp.Header {
		if strings.HasPrefix(k, "Access-Control-") {
			t.Fatalf("CORS header %s without api.cors_origins", k)
		}
	}
	resp, _ = off.do(t, "OPTIONS", "/jobs", "", "Origin", "https://evil.example", "Access-Control-Request-Method", "POST")
	if resp.Header.Get("Access-Control-Allow-Origin") != "" || resp.StatusCode < 400 {
		t.Fatalf("preflight without CORS: %d %v", resp.StatusCode, resp.Header)
	}

	on := newFixture(t, func(o *Options) { o.CORSOrigins = []string{"https://app.example"} })
	resp, _ = on.do(t, "OPTIONS", "/jobs", "", "Origin", "https://app.example", "Access-Control-Request-Method", "POST", "Access-Control-Request-Headers", "content-type,authorization")
	if resp.StatusCode != 204 || resp.Header.Get("Access-Control-Allow-Origin") != "https://app.example" ||
		!strings.Contains(resp.Header.Get("Access-Control-Allow-Methods"), "POST") ||
		!strings.Contains(resp.Header.Get("Access-Control-Allow-Headers"), "Authorization") {
		t.Fatalf("preflight: %d %v", resp.StatusCode, resp.Header)
	}
	resp, _ = on.do(t, "GET", "/jobs", "", "Origin", "https://app.example")
	if resp.Header.Get("Access-Control-Allow-Origin") != "https://app.example" || !strings.Contains(resp.Header.Get("Access-Control-Expose-Headers"), "Link") {
		t.Fatalf("allowed GET: %v", resp.Header)
	}
	resp, body := on.do(t, "OPTIONS", "/jobs", "", "Origin", "https://evil.example", "Access-Control-Request-Method", "POST")
	wantError(t, resp, body, 403)
	resp, _ = on.do(t, "GET", "/jobs", "", "Origin", "https://evil.example")
	if resp.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Fatal("a foreign origin got CORS headers")
	}
}

func TestEventsStream(t *testing.T) {
	f := newFixture(t, nil)
	req, _ := http.NewRequest("GET", f.http.URL+"/jobs/events", nil)
	resp, err := f.http.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("Content-Type %q", ct)
	}
	lines := make(chan string, 100)
	go func() {
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	waitLine := func(pred func(string) bool) string {
		t.Helper()
		deadline := time.After(10 * time.Second)
		for {
			select {
			case l, ok := <-lines:
				if !ok {
					t.Fatal("stream ended")
				}
				if pred(l) {
					return l
				}
			case <-deadline:
				t.Fatal("timed out waiting for a stream line")
			}
		}
	}
	waitLine(func(l string) bool { return l == ": connected" })
	// Wait until the handler has subscribed before changing a job.
	for f.store.Subscribers() == 0 {
		time.Sleep(time.Millisecond)
	}
	f.store.Apply(job.Event{JobID: job.NumericID(42), Status: job.StatusNew}, view.Record{})
	f.store.Apply(job.Event{JobID: job.NumericID(42), Status: job.StatusDone, Attempt: 1}, view.Record{})
	waitLine(func(l string) bool { return l == "event: job" })
	waitLine(func(l string) bool { return strings.HasPrefix(l, `data: {"job_id":42,"status":"NEW"`) })
	waitLine(func(l string) bool { return strings.HasPrefix(l, `data: {"job_id":42,"status":"DONE"`) })
	waitLine(func(l string) bool { return l == ": heartbeat" })

	// Shutdown closes the stream.
	f.srv.CloseStreams()
	for range lines {
	}
	for f.store.Subscribers() != 0 {
		time.Sleep(time.Millisecond)
	}
}

func TestReadyz(t *testing.T) {
	f := newFixture(t, nil)
	f.store.ready.Store(false)
	resp, body := f.do(t, "GET", "/readyz", "")
	wantError(t, resp, body, 503)
	f.store.ready.Store(true)
	if resp, body := f.do(t, "GET", "/readyz", ""); resp.StatusCode != 200 {
		t.Fatalf("ready: %d %s", resp.StatusCode, body)
	}
	if resp, _ := f.do(t, "GET", "/healthz", ""); resp.StatusCode != 200 {
		t.Fatal("healthz")
	}
}

type fixedLag struct{ calls atomic.Int32 }

func (l *fixedLag) GroupLag(context.Context) ([]GroupLag, error) {
	l.calls.Add(1)
	lag := int64(3)
	return []GroupLag{{Group: "workers", Lag: 3, Partitions: []PartitionLag{{Partition: 0, Committed: 7, EndOffset: 10, Lag: &lag}}}}, nil
}

func TestStatsAndMetrics(t *testing.T) {
	lag := &fixedLag{}
	f := newFixture(t, func(o *Options) { o.Lag = lag })
	f.store.Apply(job.Event{JobID: job.NumericID(1), Status: job.StatusNew, UpdatedAt: time.Now()}, view.Record{})
	f.store.Apply(job.Event{JobID: job.NumericID(1), Status: job.StatusDone, Attempt: 1, UpdatedAt: time.Now()}, view.Record{})
	f.store.Apply(job.Event{JobID: job.NumericID(2), Status: job.StatusNew, UpdatedAt: time.Now()}, view.Record{})
	resp, body := f.do(t, "GET", "/stats", "")
	var st Stats
	if err := json.Unmarshal(body, &st); err != nil || resp.StatusCode != 200 {
		t.Fatalf("stats: %d %s", resp.StatusCode, body)
	}
	if st.Jobs.Total != 2 || st.Jobs.ByStatus[job.StatusDone] != 1 || len(st.Throughput.Done) != 600 ||
		len(st.Lag.Groups) != 1 || *st.Lag.Groups[0].Partitions[0].Lag != 3 {
		t.Fatalf("stats = %+v", st)
	}
	f.do(t, "GET", "/stats", "")
	if lag.calls.Load() != 1 {
		t.Fatalf("lag read %d times within its cache TTL", lag.calls.Load())
	}
	_, body = f.do(t, "GET", "/metrics", "")
	for _, want := range []string{`jobctl_jobs{status="DONE"} 1`, `jobctl_jobs{status="NEW"} 1`, `jobctl_consumer_lag{group="workers",partition="0"} 3`, `jobctl_http_request_duration_seconds_count{code="200",method="GET",route="/stats"} 2`} {
		if !strings.Contains(string(body), want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}

func TestDashboard(t *testing.T) {
	f := newFixture(t, nil)
	resp, body := f.do(t, "GET", "/", "")
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") || resp.Header.Get("Content-Security-Policy") == "" {
		t.Fatalf("dashboard: %d %v", resp.StatusCode, resp.Header)
	}
	// Self-contained: nothing is loaded from elsewhere.
	if regexp.MustCompile(`(?i)(src|href)=["']?(https?:)?//`).Match(body) {
		t.Fatal("the dashboard loads something from another origin")
	}
}

func TestReservationsAreSweptOnceTheViewHasTheJob(t *testing.T) {
	v := view.New(view.Options{})
	r := newReservations(&store{View: v})
	for i := range minSweep - 1 {
		id := fmt.Sprint(i)
		if !r.reserve(id) {
			t.Fatal("fresh id refused")
		}
		v.Apply(job.Event{JobID: job.NumericID(int64(i)), Status: job.StatusNew}, view.Record{})
	}
	if r.reserve("5") {
		t.Fatal("a reserved id was reserved twice")
	}
	r.reserve("new") // reaching minSweep sweeps the ids the view has
	if len(r.ids) != 1 {
		t.Fatalf("%d reservations left after the sweep, want 1", len(r.ids))
	}
	if r.reserve("5") {
		t.Fatal("an id the view has was reserved")
	}
}
