package api

import (
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestHostPolicy(t *testing.T) {
	cases := []struct {
		listen  string
		allowed []string
		host    string
		ok      bool
	}{
		{"127.0.0.1:8080", nil, "localhost:8080", true},
		{"127.0.0.1:8080", nil, "localhost", true},
		{"127.0.0.1:8080", nil, "LOCALHOST:9", true},
		{"127.0.0.1:8080", nil, "127.0.0.1:8080", true},
		{"127.0.0.1:8080", nil, "[::1]:8080", true},
		{"127.0.0.1:8080", nil, "evil.example", false},
		{"127.0.0.1:8080", nil, "evil.example:8080", false},
		{"127.0.0.1:8080", nil, "localhost.evil.example", false},
		{"127.0.0.1:8080", nil, "", false},
		{"127.0.0.1:8080", nil, "192.168.1.5:8080", false},
		{"127.0.0.2:8080", nil, "127.0.0.2:8080", true},
		{"127.0.0.2:8080", nil, "127.0.0.2:9090", false},
		{"localhost:8080", nil, "evil.example", false},
		{"", nil, "evil.example", false},
		{"", nil, "127.0.0.1:1234", true},
		{"0.0.0.0:8080", nil, "evil.example", true},
		{"[::]:8080", nil, "anything.example:1", true},
		{"0.0.0.0:8080", []string{"jobs.example"}, "evil.example", false},
		{"0.0.0.0:8080", []string{"jobs.example"}, "jobs.example:8080", true},
		{"0.0.0.0:8080", []string{"jobs.example"}, "JOBS.example.", true},
		{"0.0.0.0:8080", []string{"jobs.example"}, "localhost:8080", true},
		{"0.0.0.0:8080", []string{"jobs.example:443"}, "jobs.example:443", true},
		{"0.0.0.0:8080", []string{"jobs.example:443"}, "jobs.example:8080", false},
		{"0.0.0.0:8080", []string{"[fd00::1]:8080"}, "[fd00::1]:8080", true},
		{"127.0.0.1:8080", []string{"jobs.example"}, "jobs.example:8080", true},
		{"127.0.0.1:8080", []string{"jobs.example"}, "evil.example:8080", false},
		{"127.0.0.1:8080", []string{"*"}, "evil.example:8080", true},
	}
	for _, c := range cases {
		if got := newHostPolicy(c.listen, c.allowed).allowed(c.host); got != c.ok {
			t.Errorf("listen %s, allowed %q: Host %q allowed = %v, want %v", c.listen, c.allowed, c.host, got, c.ok)
		}
	}
}

// doHost is fixture.do with a chosen Host header.
func (f *fixture) doHost(t *testing.T, host, method, path, body string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, f.http.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Host = host
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := f.http.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

func TestForeignHostRefused(t *testing.T) {
	f := newFixture(t, func(o *Options) { o.ListenAddr = "127.0.0.1:8080" })
	for _, m := range []struct{ method, path, body string }{
		{"GET", "/jobs", ""},
		{"GET", "/jobs/1", ""},
		{"GET", "/stats", ""},
		{"GET", "/", ""},
		{"GET", "/jobs/events", ""},
		{"POST", "/jobs", `{"job_id": "rebound"}`},
	} {
		resp, body := f.doHost(t, "evil.example", m.method, m.path, m.body)
		wantError(t, resp, body, http.StatusMisdirectedRequest)
		if !strings.Contains(string(body), `evil.example`) || !strings.Contains(string(body), "api.allowed_hosts") {
			t.Errorf("%s %s: the error should name the host and the key: %s", m.method, m.path, body)
		}
	}
	if n := f.enq.count(); n != 0 {
		t.Fatalf("a refused POST wrote %d events", n)
	}
	if resp, _ := f.doHost(t, "evil.example", "GET", "/healthz", ""); resp.StatusCode != 200 {
		t.Fatalf("/healthz with any host: %d", resp.StatusCode)
	}
	for _, host := range []string{"localhost:8080", "127.0.0.1:8080", "[::1]:8080"} {
		if resp, body := f.doHost(t, host, "POST", "/jobs", `{}`); resp.StatusCode != 202 {
			t.Fatalf("Host %s: %d %s", host, resp.StatusCode, body)
		}
	}

	open := newFixture(t, func(o *Options) { o.ListenAddr = "127.0.0.1:8080"; o.AllowedHosts = []string{"jobs.example"} })
	if resp, body := open.doHost(t, "jobs.example:8080", "POST", "/jobs", `{}`); resp.StatusCode != 202 {
		t.Fatalf("an allowed host: %d %s", resp.StatusCode, body)
	}
	resp, body := open.doHost(t, "evil.example", "GET", "/jobs", "")
	wantError(t, resp, body, http.StatusMisdirectedRequest)
}

func TestInflightBodyBytesBounded(t *testing.T) {
	f := newFixture(t, func(o *Options) { o.MaxInflightBytes = 100; o.MaxBodyBytes = 1000 })
	f.enq.delay = 500 * time.Millisecond
	body := `{"payload": "` + strings.Repeat("x", 60) + `"}`
	var wg sync.WaitGroup
	codes := make(chan int, 2)
	var retryAfter string
	var mu sync.Mutex
	for range 2 {
		wg.Go(func() {
			resp, _ := f.do(t, "POST", "/jobs", body)
			codes <- resp.StatusCode
			if resp.StatusCode == 503 {
				mu.Lock()
				retryAfter = resp.Header.Get("Retry-After")
				mu.Unlock()
			}
		})
		time.Sleep(100 * time.Millisecond)
	}
	wg.Wait()
	close(codes)
	got := map[int]int{}
	for c := range codes {
		got[c]++
	}
	if got[202] != 1 || got[503] != 1 || retryAfter == "" {
		t.Fatalf("two 73-byte bodies against a 100-byte budget: codes %v, Retry-After %q; want one 202 and one 503 with Retry-After", got, retryAfter)
	}
	// The budget is given back.
	if resp, b := f.do(t, "POST", "/jobs", body); resp.StatusCode != 202 {
		t.Fatalf("after the first finished: %d %s", resp.StatusCode, b)
	}
	// A declared length over max_body_bytes is refused before reading.
	resp, b := f.do(t, "POST", "/jobs", `{"payload": "`+strings.Repeat("x", 2000)+`"}`)
	wantError(t, resp, b, 413)
}

func TestClientRequestLimit(t *testing.T) {
	f := newFixture(t, func(o *Options) { o.MaxClientRequests = 2 })
	f.enq.delay = 500 * time.Millisecond
	var wg sync.WaitGroup
	codes := make(chan *http.Response, 3)
	for i := range 3 {
		wg.Go(func() {
			resp, _ := f.do(t, "POST", "/jobs", `{"job_id": "c`+string(rune('0'+i))+`"}`)
			codes <- resp
		})
	}
	time.Sleep(200 * time.Millisecond)
	// Probes are never limited.
	if resp, _ := f.do(t, "GET", "/healthz", ""); resp.StatusCode != 200 {
		t.Fatalf("/healthz while the client is at its limit: %d", resp.StatusCode)
	}
	wg.Wait()
	close(codes)
	got := map[int]int{}
	for resp := range codes {
		got[resp.StatusCode]++
		if resp.StatusCode == 429 && resp.Header.Get("Retry-After") == "" {
			t.Error("429 without Retry-After")
		}
	}
	if got[202] != 2 || got[429] != 1 {
		t.Fatalf("3 concurrent POSTs with a limit of 2: %v", got)
	}
}

func TestSSEClientsBounded(t *testing.T) {
	f := newFixture(t, func(o *Options) { o.MaxSSEClients = 2; o.MaxClientRequests = 1 })
	var open []*http.Response
	defer func() {
		for _, r := range open {
			r.Body.Close()
		}
	}()
	for i := range 2 {
		resp, err := f.http.Client().Get(f.http.URL + "/jobs/events")
		if err != nil {
			t.Fatal(err)
		}
		open = append(open, resp)
		// Streams do not count against the per-client limit of 1.
		if resp.StatusCode != 200 {
			t.Fatalf("stream %d: %d", i, resp.StatusCode)
		}
	}
	resp, body := f.do(t, "GET", "/jobs/events", "")
	wantError(t, resp, body, 503)
	if resp.Header.Get("Retry-After") == "" {
		t.Error("503 without Retry-After")
	}
	if resp, body := f.do(t, "GET", "/jobs", ""); resp.StatusCode != 200 {
		t.Fatalf("GET /jobs beside the streams: %d %s", resp.StatusCode, body)
	}
	open[0].Body.Close()
	open = open[1:]
	deadline := time.Now().Add(5 * time.Second)
	for {
		req, _ := http.NewRequest("GET", f.http.URL+"/jobs/events", nil)
		resp, err := f.http.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode == 200 {
			open = append(open, resp)
			break
		}
		resp.Body.Close()
		if time.Now().After(deadline) {
			t.Fatal("a closed stream's slot was not given back")
		}
		time.Sleep(50 * time.Millisecond)
	}
}
