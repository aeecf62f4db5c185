package integration

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jobctl/jobctl/pkg/job"
	"github.com/jobctl/jobctl/pkg/kafkaconn"
	"github.com/jobctl/jobctl/pkg/ledger"
	"github.com/segmentio/kafka-go"
)

// serveProc is a `jobctl serve` child process on a free loopback port.
type serveProc struct {
	URL    string
	cmd    *exec.Cmd
	mu     sync.Mutex
	stderr bytes.Buffer
	done   chan error
	once   sync.Once
}

// startServe starts `jobctl serve` for topic and returns once it logged
// its URL; it is stopped (SIGTERM, then checked for exit 0) at cleanup.
func startServe(t *testing.T, tgt Target, topic string, env ...string) *serveProc {
	t.Helper()
	c := jobctlProcess(t, tgt, append([]string{"JOBCTL_LOG_FORMAT=json"}, env...), "serve", "--topic", topic, "--addr", "127.0.0.1:0")
	pr, pw := io.Pipe()
	c.Stderr = pw
	p := &serveProc{cmd: c, done: make(chan error, 1)}
	if err := c.Start(); err != nil {
		t.Fatalf("starting jobctl serve: %v", err)
	}
	go func() {
		p.done <- c.Wait()
		pw.Close()
	}()
	urlc := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			line := sc.Text()
			p.mu.Lock()
			p.stderr.WriteString(line + "\n")
			p.mu.Unlock()
			var rec struct {
				Msg string `json:"msg"`
				URL string `json:"url"`
			}
			if json.Unmarshal([]byte(line), &rec) == nil && rec.URL != "" {
				select {
				case urlc <- rec.URL:
				default:
				}
			}
		}
		_, _ = io.Copy(io.Discard, pr)
	}()
	t.Cleanup(func() { p.stop(t) })
	select {
	case p.URL = <-urlc:
	case <-time.After(60 * time.Second):
		t.Fatalf("jobctl serve logged no URL within 60s; stderr:\n%s", p.log())
	}
	return p
}

func (p *serveProc) log() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stderr.String()
}

// stop sends SIGTERM and checks serve shuts down cleanly.
func (p *serveProc) stop(t *testing.T) {
	t.Helper()
	p.once.Do(func() {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case err := <-p.done:
			if err != nil {
				t.Errorf("jobctl serve exited with %v after SIGTERM; stderr:\n%s", err, p.log())
			}
		case <-time.After(30 * time.Second):
			_ = p.cmd.Process.Kill()
			t.Errorf("jobctl serve did not stop within 30s of SIGTERM; stderr:\n%s", p.log())
		}
	})
}

var httpClient = &http.Client{Timeout: 30 * time.Second}

// do sends one request; hdr is name, value pairs.
func (p *serveProc) do(t *testing.T, method, path, body string, hdr ...string) (*http.Response, []byte) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, p.URL+path, rd)
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
	resp, err := httpClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

// wantJSONError checks an error answer: its code and a JSON {"error"}.
func wantJSONError(t *testing.T, what string, resp *http.Response, body []byte, code int) {
	t.Helper()
	var e struct {
		Error string `json:"error"`
	}
	if resp.StatusCode != code || json.Unmarshal(body, &e) != nil || e.Error == "" {
		t.Fatalf("%s: got %d %s, want %d with a JSON error", what, resp.StatusCode, body, code)
	}
}

// waitReady polls /readyz until it answers 200.
func (p *serveProc) waitReady(t *testing.T, hdr ...string) {
	t.Helper()
	eventually(t, 60*time.Second, "serve to become ready", func() bool {
		resp, _ := p.do(t, "GET", "/readyz", "", hdr...)
		return resp.StatusCode == 200
	})
}

// apiJob is a job as the API returns it.
type apiJob struct {
	JobID     json.RawMessage `json:"job_id"`
	Status    string          `json:"status"`
	Type      string          `json:"type"`
	Attempt   int             `json:"attempt"`
	Worker    string          `json:"worker"`
	Events    int             `json:"events"`
	Partition int             `json:"partition"`
	History   []struct {
		Status string `json:"status"`
	} `json:"history"`
}

func (j apiJob) id() string { return strings.Trim(string(j.JobID), `"`) }

var linkNext = regexp.MustCompile(`^<([^>]+)>; rel="next"$`)

// allJobs walks GET path and its Link pages; it returns the jobs and the
// number of pages.
func (p *serveProc) allJobs(t *testing.T, path string, hdr ...string) ([]apiJob, int) {
	t.Helper()
	var all []apiJob
	pages := 0
	for path != "" {
		resp, body := p.do(t, "GET", path, "", hdr...)
		if resp.StatusCode != 200 {
			t.Fatalf("GET %s: %d %s", path, resp.StatusCode, body)
		}
		var page []apiJob
		if err := json.Unmarshal(body, &page); err != nil {
			t.Fatalf("GET %s: %v: %s", path, err, body)
		}
		all = append(all, page...)
		pages++
		path = ""
		if m := linkNext.FindStringSubmatch(resp.Header.Get("Link")); m != nil {
			path = m[1]
		}
	}
	return all, pages
}

func (p *serveProc) getJob(t *testing.T, id string, hdr ...string) (apiJob, int) {
	t.Helper()
	resp, body := p.do(t, "GET", "/jobs/"+id, "", hdr...)
	var j apiJob
	if resp.StatusCode == 200 {
		if err := json.Unmarshal(body, &j); err != nil {
			t.Fatal(err)
		}
	}
	return j, resp.StatusCode
}

// sseStream is an open GET /jobs/events.
type sseStream struct {
	lines chan string
	resp  *http.Response
}

func (p *serveProc) openEvents(t *testing.T, hdr ...string) *sseStream {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "GET", p.URL+"/jobs/events", nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		cancel()
		t.Fatalf("GET /jobs/events: %v", err)
	}
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		cancel()
		t.Fatalf("GET /jobs/events: %d %v", resp.StatusCode, resp.Header)
	}
	s := &sseStream{lines: make(chan string, 4096), resp: resp}
	go func() {
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			select {
			case s.lines <- sc.Text():
			default: // the test stopped reading
			}
		}
		close(s.lines)
	}()
	t.Cleanup(func() { cancel(); resp.Body.Close() })
	// The first line proves the handler subscribed.
	s.waitFor(t, "the stream to open", func(l string) bool { return l == ": connected" })
	return s
}

func (s *sseStream) waitFor(t *testing.T, what string, pred func(string) bool) string {
	t.Helper()
	deadline := time.After(90 * time.Second)
	for {
		select {
		case l, ok := <-s.lines:
			if !ok {
				t.Fatalf("event stream ended while waiting for %s", what)
			}
			if pred(l) {
				return l
			}
		case <-deadline:
			t.Fatalf("timed out waiting for %s on the event stream", what)
		}
	}
}

func eventually(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// endOffsets returns the end offset of every partition of topic.
func endOffsets(t *testing.T, tgt Target, topic string, partitions int) map[int]int64 {
	t.Helper()
	client := &kafka.Client{Addr: kafka.TCP(tgt.Brokers...), Timeout: 30 * time.Second}
	reqs := make([]kafka.OffsetRequest, partitions)
	for p := range partitions {
		reqs[p] = kafka.LastOffsetOf(p)
	}
	resp, err := client.ListOffsets(context.Background(), &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{topic: reqs}})
	if err != nil {
		t.Fatalf("listing offsets of %s: %v", topic, err)
	}
	out := map[int]int64{}
	for _, po := range resp.Topics[topic] {
		if po.Error != nil {
			t.Fatalf("listing offsets of %s/%d: %v", topic, po.Partition, po.Error)
		}
		out[po.Partition] = po.LastOffset
	}
	return out
}

// ledgerWriter writes job events the way jobctl does.
func ledgerWriter(t *testing.T, tgt Target, topic string) *ledger.Writer {
	t.Helper()
	w := ledger.NewWriter(&kafkaconn.Conn{Brokers: tgt.Brokers, ClientID: "jobctl-test"}, topic)
	t.Cleanup(func() { w.Close() })
	return w
}

// startConsumer runs `jobctl consume` (the real worker) on topic until
// the test ends.
func startConsumer(t *testing.T, tgt Target, topic, group string) {
	t.Helper()
	c := jobctlProcess(t, tgt, nil, "consume", "--topic", topic, "-g", group, "--timeout", "0", "--sleep", "5ms", "--processed-log", "", "--commit-interval", "200ms")
	var stderr bytes.Buffer
	c.Stderr = &stderr
	if err := c.Start(); err != nil {
		t.Fatalf("starting jobctl consume: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- c.Wait() }()
	t.Cleanup(func() {
		_ = c.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			_ = c.Process.Kill()
			t.Errorf("jobctl consume did not stop; stderr:\n%s", stderr.String())
		}
	})
}

type statsBody struct {
	Jobs struct {
		Total    int            `json:"total"`
		ByStatus map[string]int `json:"by_status"`
	} `json:"jobs"`
	View struct {
		CaughtUp       bool `json:"caught_up"`
		InvalidRecords int  `json:"invalid_records"`
	} `json:"view"`
	Throughput struct {
		Done []int `json:"done"`
	} `json:"throughput"`
	Lag struct {
		Groups []struct {
			Group      string `json:"group"`
			Lag        int64  `json:"lag"`
			Partitions []struct {
				Partition int    `json:"partition"`
				Lag       *int64 `json:"lag"`
			} `json:"partitions"`
		} `json:"groups"`
		Error string `json:"error"`
	} `json:"lag"`
}

func (p *serveProc) stats(t *testing.T, hdr ...string) statsBody {
	t.Helper()
	resp, body := p.do(t, "GET", "/stats", "", hdr...)
	var s statsBody
	if resp.StatusCode != 200 || json.Unmarshal(body, &s) != nil {
		t.Fatalf("GET /stats: %d %s", resp.StatusCode, body)
	}
	return s
}

// TestServeAPI drives every endpoint of one server: listing with Link
// pages, the error answers (none of which writes to the topic), a job
// submitted over HTTP reaching DONE through a real worker while the event
// stream reports it, stats with lag, metrics, and garbage on the topic.
func TestServeAPI(t *testing.T) {
	forEachBroker(t, func(t *testing.T, tgt Target) {
		const partitions = 3
		topic := createTopic(t, tgt, partitions)
		mustJobctl(t, tgt, "produce", "--topic", topic, "--count", "12")
		// A record that is not a job: counted and skipped.
		raw := &kafka.Writer{Addr: kafka.TCP(tgt.Brokers...), Topic: topic, RequiredAcks: kafka.RequireAll, BatchTimeout: time.Millisecond}
		if err := raw.WriteMessages(context.Background(), kafka.Message{Key: []byte("junk"), Value: []byte("not a job")}); err != nil {
			t.Fatal(err)
		}
		raw.Close()

		s := startServe(t, tgt, topic)
		s.waitReady(t)

		jobs, pages := s.allJobs(t, "/jobs?limit=5")
		if len(jobs) != 12 || pages != 3 {
			t.Fatalf("walked %d jobs in %d pages, want 12 in 3", len(jobs), pages)
		}
		seen := map[string]bool{}
		for _, j := range jobs {
			if seen[j.id()] || j.Status != "NEW" {
				t.Fatalf("job %s listed twice or not NEW: %+v", j.id(), j)
			}
			seen[j.id()] = true
		}
		if st := s.stats(t); st.View.InvalidRecords != 1 || st.Jobs.Total != 12 {
			t.Fatalf("stats: %d invalid records, %d jobs; want 1 and 12", st.View.InvalidRecords, st.Jobs.Total)
		}

		// Every rejected request: nothing reaches the topic.
		before := endOffsets(t, tgt, topic, partitions)
		existing := jobs[0].id()
		rejects := []struct {
			what, method, path, body string
			hdr                      []string
			code                     int
		}{
			{"malformed JSON", "POST", "/jobs", `{"job_id": 1`, nil, 400},
			{"unknown field", "POST", "/jobs", `{"jobid": 1}`, nil, 400},
			{"body over api.max_body_bytes", "POST", "/jobs", `{"payload": "` + strings.Repeat("x", 1<<20) + `"}`, nil, 413},
			{"text/plain", "POST", "/jobs", `{"job_id": 77}`, []string{"Content-Type", "text/plain"}, 415},
			{"status DONE", "POST", "/jobs", `{"job_id": 77, "status": "DONE"}`, nil, 422},
			{"existing job", "POST", "/jobs", `{"job_id": ` + existing + `, "status": "NEW"}`, nil, 409},
			{"unknown job", "GET", "/jobs/does-not-exist", "", nil, 404},
			{"bad limit", "GET", "/jobs?limit=5000", "", nil, 400},
			{"unknown route", "GET", "/nope", "", nil, 404},
			{"wrong method", "DELETE", "/jobs", "", nil, 405},
		}
		for _, r := range rejects {
			resp, body := s.do(t, r.method, r.path, r.body, r.hdr...)
			wantJSONError(t, r.what, resp, body, r.code)
		}
		if after := endOffsets(t, tgt, topic, partitions); fmt.Sprint(after) != fmt.Sprint(before) {
			t.Fatalf("rejected requests moved the end offsets: %v -> %v", before, after)
		}

		// No CORS unless configured.
		resp, _ := s.do(t, "GET", "/jobs", "", "Origin", "http://elsewhere.example")
		if resp.Header.Get("Access-Control-Allow-Origin") != "" {
			t.Fatal("CORS header without api.cors_origins")
		}

		// A job submitted over HTTP reaches DONE through a real worker,
		// and the event stream reports it.
		events := s.openEvents(t)
		seedID := strconv.FormatInt(time.Now().UnixNano()%1e12, 10)
		resp, body := s.do(t, "POST", "/jobs", `{"job_id": `+seedID+`, "status": "NEW"}`)
		if resp.StatusCode != 202 || resp.Header.Get("Location") != "/jobs/"+seedID || !strings.HasPrefix(string(body), `{"job_id":`+seedID+`,"status":"NEW"`) {
			t.Fatalf("seed POST: %d %v %s", resp.StatusCode, resp.Header, body)
		}
		resp, body = s.do(t, "POST", "/jobs", `{"type": "it", "payload": {"n": 1}}`)
		var rich struct {
			JobID string `json:"job_id"`
		}
		if resp.StatusCode != 202 || json.Unmarshal(body, &rich) != nil || rich.JobID == "" {
			t.Fatalf("rich POST: %d %s", resp.StatusCode, body)
		}
		group := uniqueName(t, "g")
		startConsumer(t, tgt, topic, group)
		events.waitFor(t, "job "+seedID+" DONE", func(l string) bool {
			return strings.HasPrefix(l, `data: {"job_id":`+seedID+`,"status":"DONE"`)
		})
		j, code := s.getJob(t, seedID)
		if code != 200 || j.Status != "DONE" || len(j.History) < 2 || j.History[0].Status != "NEW" || j.Worker == "" {
			t.Fatalf("GET /jobs/%s: %d %+v", seedID, code, j)
		}
		eventually(t, 60*time.Second, "all 14 jobs DONE", func() bool {
			return s.stats(t).Jobs.ByStatus["DONE"] == 14
		})
		eventually(t, 60*time.Second, "the group's lag to reach 0 in /stats", func() bool {
			for _, g := range s.stats(t).Lag.Groups {
				if g.Group == group && g.Lag == 0 && len(g.Partitions) == partitions {
					return true
				}
			}
			return false
		})
		if st := s.stats(t); sum(st.Throughput.Done) != 14 {
			t.Fatalf("throughput counts %d DONE, want 14", sum(st.Throughput.Done))
		}
		if done, _ := s.allJobs(t, "/jobs?status=DONE&limit=1000"); len(done) != 14 {
			t.Fatalf("?status=DONE listed %d, want 14", len(done))
		}
		if typed, _ := s.allJobs(t, "/jobs?type=it"); len(typed) != 1 || typed[0].id() != rich.JobID {
			t.Fatalf("?type=it listed %+v", typed)
		}

		_, metricsText := s.do(t, "GET", "/metrics", "")
		for _, want := range []string{
			`jobctl_jobs{status="DONE"} 14`,
			`jobctl_invalid_records_total 1`,
			`jobctl_jobs_produced_total{result="ok"} 2`,
			`jobctl_view_events_total{status="DONE"}`,
			`jobctl_consumer_lag{group="` + group + `",partition="0"} 0`,
			`jobctl_http_request_duration_seconds_count{code="202",method="POST",route="/jobs"} 2`,
		} {
			if !strings.Contains(string(metricsText), want) {
				t.Errorf("/metrics lacks %s", want)
			}
		}
		for _, path := range []string{"/", "/openapi.json", "/healthz"} {
			if resp, _ := s.do(t, "GET", path, ""); resp.StatusCode != 200 {
				t.Errorf("GET %s: %d", path, resp.StatusCode)
			}
		}
	})
}

func sum(xs []int) int {
	n := 0
	for _, x := range xs {
		n += x
	}
	return n
}

// TestServeTokenCORSAndBodyLimit runs a server with api.token,
// api.token_reads, api.cors_origins and a small api.max_body_bytes.
func TestServeTokenCORSAndBodyLimit(t *testing.T) {
	forEachBroker(t, func(t *testing.T, tgt Target) {
		topic := createTopic(t, tgt, 1)
		s := startServe(t, tgt, topic,
			"JOBCTL_API_TOKEN=it-secret", "JOBCTL_API_TOKEN_READS=true",
			"JOBCTL_API_CORS_ORIGINS=http://app.example", "JOBCTL_API_MAX_BODY_BYTES=200")
		auth := []string{"Authorization", "Bearer it-secret"}
		s.waitReady(t) // /readyz needs no token
		if resp, _ := s.do(t, "GET", "/healthz", ""); resp.StatusCode != 200 {
			t.Fatal("/healthz needs no token")
		}

		before := endOffsets(t, tgt, topic, 1)
		for _, path := range []string{"/jobs", "/jobs/1", "/stats", "/metrics", "/jobs/events"} {
			resp, body := s.do(t, "GET", path, "")
			wantJSONError(t, "GET "+path+" without token", resp, body, 401)
		}
		resp, body := s.do(t, "POST", "/jobs", `{"job_id": 1}`)
		wantJSONError(t, "POST without token", resp, body, 401)
		resp, body = s.do(t, "POST", "/jobs", `{"job_id": 1}`, "Authorization", "Bearer wrong")
		wantJSONError(t, "POST with a wrong token", resp, body, 401)
		resp, body = s.do(t, "POST", "/jobs", `{"job_id": 1, "payload": "`+strings.Repeat("x", 300)+`"}`, auth...)
		wantJSONError(t, "POST over 200 bytes", resp, body, 413)
		if after := endOffsets(t, tgt, topic, 1); fmt.Sprint(after) != fmt.Sprint(before) {
			t.Fatalf("rejected requests moved the end offsets: %v -> %v", before, after)
		}

		events := s.openEvents(t, auth...)
		if resp, body := s.do(t, "POST", "/jobs", `{"job_id": 1}`, auth...); resp.StatusCode != 202 {
			t.Fatalf("POST with token: %d %s", resp.StatusCode, body)
		}
		events.waitFor(t, "job 1", func(l string) bool { return strings.HasPrefix(l, `data: {"job_id":1,`) })
		if j, code := s.getJob(t, "1", auth...); code != 200 || j.Status != "NEW" {
			t.Fatalf("GET /jobs/1 with token: %d %+v", code, j)
		}

		// CORS for the listed origin only.
		resp, _ = s.do(t, "OPTIONS", "/jobs", "", "Origin", "http://app.example", "Access-Control-Request-Method", "POST", "Access-Control-Request-Headers", "authorization,content-type")
		if resp.StatusCode != 204 || resp.Header.Get("Access-Control-Allow-Origin") != "http://app.example" || !strings.Contains(resp.Header.Get("Access-Control-Allow-Headers"), "Authorization") {
			t.Fatalf("preflight from the allowed origin: %d %v", resp.StatusCode, resp.Header)
		}
		resp, body = s.do(t, "OPTIONS", "/jobs", "", "Origin", "http://evil.example", "Access-Control-Request-Method", "POST")
		wantJSONError(t, "preflight from another origin", resp, body, 403)
		resp, _ = s.do(t, "GET", "/jobs", "", append([]string{"Origin", "http://app.example"}, auth...)...)
		if resp.StatusCode != 200 || resp.Header.Get("Access-Control-Allow-Origin") != "http://app.example" {
			t.Fatalf("GET from the allowed origin: %d %v", resp.StatusCode, resp.Header)
		}
		resp, _ = s.do(t, "GET", "/jobs", "", append([]string{"Origin", "http://evil.example"}, auth...)...)
		if resp.Header.Get("Access-Control-Allow-Origin") != "" {
			t.Fatal("another origin got CORS headers")
		}
	})
}

// TestServeLateNewAndRebuild writes NEW, DONE and then late NEWs for one
// job: the view keeps DONE, live and after a restart, and a restarted
// serve rebuilds exactly the same jobs.
func TestServeLateNewAndRebuild(t *testing.T) {
	forEachBroker(t, func(t *testing.T, tgt Target) {
		topic := createTopic(t, tgt, 2)
		w := ledgerWriter(t, tgt, topic)
		ctx := context.Background()
		base := time.Now().UTC().Add(-time.Minute)
		id := job.NumericID(4242)
		must := func(err error) {
			t.Helper()
			if err != nil {
				t.Fatal(err)
			}
		}
		must(w.AppendTo(ctx, 1,
			job.Event{JobID: id, Status: job.StatusNew, Type: "late", CreatedAt: base, UpdatedAt: base},
			job.Event{JobID: id, Status: job.StatusRunning, Attempt: 1, UpdatedAt: base.Add(time.Second), Worker: "w1"},
			job.Event{JobID: id, Status: job.StatusDone, Attempt: 1, UpdatedAt: base.Add(2 * time.Second), Worker: "w1"},
			job.Event{JobID: id, Status: job.StatusNew, Type: "late", CreatedAt: base, UpdatedAt: base.Add(3 * time.Second)},
		))
		for i := range 30 {
			must(w.Append(ctx, job.Event{JobID: job.NumericID(int64(i)), Status: job.StatusNew, CreatedAt: base, UpdatedAt: base}))
		}

		s := startServe(t, tgt, topic)
		s.waitReady(t)
		j, code := s.getJob(t, "4242")
		if code != 200 || j.Status != "DONE" || j.Attempt != 1 || j.Events != 4 {
			t.Fatalf("after replay: %d %+v, want DONE attempt 1 with 4 events", code, j)
		}
		// A late NEW arriving live does not regress it either.
		must(w.AppendTo(ctx, 1, job.Event{JobID: id, Status: job.StatusNew, Type: "late", CreatedAt: base, UpdatedAt: time.Now().UTC()}))
		eventually(t, 30*time.Second, "the live late NEW to be read", func() bool {
			j, _ := s.getJob(t, "4242")
			return j.Events == 5
		})
		if j, _ := s.getJob(t, "4242"); j.Status != "DONE" {
			t.Fatalf("a live late NEW regressed the job: %+v", j)
		}

		snapshot := func(p *serveProc) string {
			_, list := p.do(t, "GET", "/jobs?limit=1000", "")
			_, one := p.do(t, "GET", "/jobs/4242", "")
			return string(list) + "\n" + string(one)
		}
		first := snapshot(s)
		s.stop(t)

		again := startServe(t, tgt, topic)
		again.waitReady(t)
		if second := snapshot(again); second != first {
			t.Fatalf("a restarted serve rebuilt a different view:\nfirst:  %s\nsecond: %s", first, second)
		}
	})
}

// TestServeReadiness: /readyz is 503 while the broker cannot be reached,
// and once it turns 200 the view holds every job written before start.
func TestServeReadiness(t *testing.T) {
	t.Run("unreachable broker", func(t *testing.T) {
		s := startServe(t, Target{Brokers: []string{"127.0.0.1:1"}}, "job-status")
		for range 3 {
			resp, body := s.do(t, "GET", "/readyz", "")
			wantJSONError(t, "/readyz without a broker", resp, body, 503)
			time.Sleep(300 * time.Millisecond)
		}
		if resp, body := s.do(t, "GET", "/healthz", ""); resp.StatusCode != 200 || !strings.Contains(string(body), `"topic":"job-status"`) {
			t.Fatalf("/healthz: %d %s", resp.StatusCode, body)
		}
		// A view that never reached the broker has nothing to answer from.
		for _, path := range []string{"/jobs", "/stats", "/jobs/1"} {
			resp, body := s.do(t, "GET", path, "")
			wantLoading(t, "GET "+path+" without a broker", resp.StatusCode, resp.Header.Get("Retry-After"), body)
		}
	})
	forEachBroker(t, func(t *testing.T, tgt Target) {
		// Started before its topic exists, serve is not ready; it turns
		// ready once the topic is created, without a restart.
		late := uniqueName(t, "t")
		waiting := startServe(t, tgt, late)
		eventually(t, 30*time.Second, "/readyz to say the topic is missing", func() bool {
			resp, body := waiting.do(t, "GET", "/readyz", "")
			wantJSONError(t, "/readyz before the topic exists", resp, body, 503)
			return strings.Contains(string(body), "does not exist")
		})
		client := &kafka.Client{Addr: kafka.TCP(tgt.Brokers...), Timeout: 30 * time.Second}
		resp, err := client.CreateTopics(context.Background(), &kafka.CreateTopicsRequest{Topics: []kafka.TopicConfig{{Topic: late, NumPartitions: 2, ReplicationFactor: 1}}})
		if err == nil {
			err = resp.Errors[late]
		}
		if err != nil {
			t.Fatalf("creating topic %s: %v", late, err)
		}
		waiting.waitReady(t)

		// Ready means caught up: every job written before start is there.
		topic := createTopic(t, tgt, 4)
		mustJobctl(t, tgt, "produce", "--topic", topic, "--count", "2000")
		s := startServe(t, tgt, topic)
		s.waitReady(t)
		if st := s.stats(t); st.Jobs.Total != 2000 || !st.View.CaughtUp {
			t.Fatalf("ready with %d jobs (caught up %v), want all 2000", st.Jobs.Total, st.View.CaughtUp)
		}
	})
}

// TestJobsCLI covers `jobctl jobs list` and `jobctl jobs get`.
func TestJobsCLI(t *testing.T) {
	forEachBroker(t, func(t *testing.T, tgt Target) {
		topic := createTopic(t, tgt, 2)
		w := ledgerWriter(t, tgt, topic)
		ctx := context.Background()
		now := time.Now().UTC()
		for i := 1; i <= 5; i++ {
			typ := "even"
			if i%2 == 1 {
				typ = "odd"
			}
			if err := w.AppendTo(ctx, i%2, job.Event{JobID: job.NumericID(int64(i)), Status: job.StatusNew, Type: typ, CreatedAt: now, UpdatedAt: now}); err != nil {
				t.Fatal(err)
			}
		}
		if err := w.AppendTo(ctx, 0, job.Event{JobID: job.NumericID(2), Status: job.StatusDone, Attempt: 1, Worker: "w-7", UpdatedAt: now.Add(time.Second)}); err != nil {
			t.Fatal(err)
		}

		r := mustJobctl(t, tgt, "jobs", "list", "--topic", topic)
		lines := strings.Split(strings.TrimSpace(r.Stdout), "\n")
		if len(lines) != 6 || !strings.HasPrefix(lines[0], "JOB ID") || !strings.Contains(lines[2], "DONE") || !strings.Contains(lines[2], "w-7") {
			t.Fatalf("jobs list table:\n%s", r.Stdout)
		}
		var listed []apiJob
		r = mustJobctl(t, tgt, "jobs", "list", "--topic", topic, "-o", "json")
		if err := json.Unmarshal([]byte(r.Stdout), &listed); err != nil || len(listed) != 5 || listed[1].Status != "DONE" || listed[0].id() != "1" {
			t.Fatalf("jobs list -o json: %v\n%s", err, r.Stdout)
		}
		ids := func(args ...string) string {
			t.Helper()
			r := mustJobctl(t, tgt, append([]string{"jobs", "list", "--topic", topic, "-o", "json"}, args...)...)
			var js []apiJob
			if err := json.Unmarshal([]byte(r.Stdout), &js); err != nil {
				t.Fatalf("%v: %s", err, r.Stdout)
			}
			var out []string
			for _, j := range js {
				out = append(out, j.id())
			}
			return strings.Join(out, ",")
		}
		for _, c := range []struct {
			args []string
			want string
		}{
			{[]string{"--status", "done"}, "2"},
			{[]string{"--status", "NEW", "--type", "odd"}, "1,3,5"},
			{[]string{"--limit", "2"}, "1,2"},
			{[]string{"--after", "2", "--limit", "2"}, "3,4"},
			{[]string{"--desc", "--limit", "1"}, "5"},
			{[]string{"--limit", "0"}, "1,2,3,4,5"},
		} {
			if got := ids(c.args...); got != c.want {
				t.Errorf("jobs list %v = %s, want %s", c.args, got, c.want)
			}
		}
		r = mustJobctl(t, tgt, "jobs", "list", "--topic", topic, "--limit", "2")
		if !strings.Contains(r.Stderr, "--after 2") {
			t.Errorf("jobs list --limit 2 did not say how to get the next page; stderr: %s", r.Stderr)
		}

		r = mustJobctl(t, tgt, "jobs", "get", "2", "--topic", topic)
		for _, want := range []string{"Job ID:", "DONE", "even", "w-7", "STATUS", "NEW"} {
			if !strings.Contains(r.Stdout, want) {
				t.Errorf("jobs get table lacks %q:\n%s", want, r.Stdout)
			}
		}
		r = mustJobctl(t, tgt, "jobs", "get", "2", "--topic", topic, "-o", "json")
		var got apiJob
		if err := json.Unmarshal([]byte(r.Stdout), &got); err != nil || got.Status != "DONE" || len(got.History) != 2 || string(got.JobID) != "2" {
			t.Fatalf("jobs get -o json: %v\n%s", err, r.Stdout)
		}
		wantExit(t, jobctl(t, tgt, "jobs", "get", "99", "--topic", topic), 1, "not found")
		wantExit(t, jobctl(t, tgt, "jobs", "get", "a/b", "--topic", topic), 2)
		wantExit(t, jobctl(t, tgt, "jobs", "list", "--status", "PAUSED", "--topic", topic), 2, "--status")
		wantExit(t, jobctl(t, tgt, "jobs", "list", "--topic", uniqueName(t, "missing")), 1, "does not exist")
	})
}

// TestServeFindsNewPartitions: partitions added while serve runs are read
// without a restart.
func TestServeFindsNewPartitions(t *testing.T) {
	forEachBroker(t, func(t *testing.T, tgt Target) {
		topic := createTopic(t, tgt, 1)
		s := startServe(t, tgt, topic)
		s.waitReady(t)

		client := &kafka.Client{Addr: kafka.TCP(tgt.Brokers...), Timeout: 30 * time.Second}
		resp, err := client.CreatePartitions(context.Background(), &kafka.CreatePartitionsRequest{
			Topics: []kafka.TopicPartitionsConfig{{Name: topic, Count: 3}},
		})
		if err == nil {
			err = resp.Errors[topic]
		}
		if err != nil {
			t.Fatalf("adding partitions: %v", err)
		}
		waitForTopic(t, tgt, topic, 3)
		// A fresh writer, so its metadata knows the new partitions.
		w := ledgerWriter(t, tgt, topic)
		if err := w.AppendTo(context.Background(), 2, job.Event{JobID: job.NumericID(9), Status: job.StatusNew, UpdatedAt: time.Now()}); err != nil {
			t.Fatalf("writing to the new partition: %v", err)
		}
		eventually(t, 60*time.Second, "the job on the new partition to appear", func() bool {
			j, code := s.getJob(t, "9")
			return code == 200 && j.Partition == 2
		})
		if resp, _ := s.do(t, "GET", "/readyz", ""); resp.StatusCode != 200 {
			t.Fatalf("/readyz after growing the topic: %d", resp.StatusCode)
		}
	})
}
