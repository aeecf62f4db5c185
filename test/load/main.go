// Command load is a small HTTP load generator for `jobctl serve`: from a
// second process it sends GET /jobs/{id} and POST /jobs at a running
// server for a fixed time with N concurrent clients, and reports per
// endpoint the requests per second, latency percentiles and errors.
//
// Before measuring it submits -seed jobs and waits until the view has
// read them back, so every GET asks for a job that exists (a 404 would
// be an error). An error is a transport failure or an unexpected status
// (GET: not 200; POST: not 202). The exit status is 1 when there were
// errors.
//
//	go run ./test/load -url http://127.0.0.1:8080 -duration 10s -concurrency 16
//	go run ./test/load -url http://127.0.0.1:8080 -post-ratio 0.5 -json
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"time"
)

type config struct {
	url         string
	duration    time.Duration
	concurrency int
	postRatio   float64
	seed        int
	token       string
	jsonOut     bool
}

// Result is the report of one run; -json prints it.
type Result struct {
	URL         string              `json:"url"`
	Duration    float64             `json:"duration_seconds"`
	Concurrency int                 `json:"concurrency"`
	Endpoints   map[string]Endpoint `json:"endpoints"`
	Errors      int                 `json:"errors"`
}

// Endpoint is what one endpoint did.
type Endpoint struct {
	Requests     int      `json:"requests"`
	PerSecond    float64  `json:"requests_per_second"`
	P50ms        float64  `json:"p50_ms"`
	P90ms        float64  `json:"p90_ms"`
	P99ms        float64  `json:"p99_ms"`
	MaxMs        float64  `json:"max_ms"`
	Errors       int      `json:"errors"`
	ErrorSamples []string `json:"error_samples,omitempty"`
}

func main() {
	var c config
	flag.StringVar(&c.url, "url", "http://127.0.0.1:8080", "base URL of jobctl serve")
	flag.DurationVar(&c.duration, "duration", 10*time.Second, "how long to send requests")
	flag.IntVar(&c.concurrency, "concurrency", 16, "concurrent clients")
	flag.Float64Var(&c.postRatio, "post-ratio", 0.2, "fraction of requests that are POST /jobs (the rest GET /jobs/{id})")
	flag.IntVar(&c.seed, "seed", 200, "jobs submitted before measuring, for the GETs to ask for")
	flag.StringVar(&c.token, "token", os.Getenv("JOBCTL_API_TOKEN"), "bearer token (default $JOBCTL_API_TOKEN)")
	flag.BoolVar(&c.jsonOut, "json", false, "print the result as JSON")
	flag.Parse()
	if c.concurrency < 1 || c.duration <= 0 || c.postRatio < 0 || c.postRatio > 1 || c.seed < 1 {
		fmt.Fprintln(os.Stderr, "load: -concurrency and -seed must be >= 1, -duration > 0, -post-ratio in [0,1]")
		os.Exit(2)
	}
	res, err := run(context.Background(), c)
	if err != nil {
		fmt.Fprintln(os.Stderr, "load:", err)
		os.Exit(1)
	}
	if c.jsonOut {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(res)
	} else {
		printResult(res)
	}
	if res.Errors > 0 {
		os.Exit(1)
	}
}

type client struct {
	http  *http.Client
	base  string
	token string
	// runID keeps job ids of different runs against one topic apart.
	runID string
}

func (cl *client) do(method, path string, body []byte) (int, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, cl.base+path, rd)
	if err != nil {
		return 0, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if cl.token != "" {
		req.Header.Set("Authorization", "Bearer "+cl.token)
	}
	resp, err := cl.http.Do(req)
	if err != nil {
		return 0, err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, nil
}

func (cl *client) post(n int64) (int, error) {
	body := fmt.Sprintf(`{"job_id": "load-%s-%d", "status": "NEW", "type": "load", "payload": {"n": %d}}`, cl.runID, n, n)
	return cl.do("POST", "/jobs", []byte(body))
}

func run(ctx context.Context, c config) (*Result, error) {
	cl := &client{
		http: &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
			MaxIdleConns: c.concurrency * 2, MaxIdleConnsPerHost: c.concurrency * 2, IdleConnTimeout: time.Minute,
		}},
		base:  strings.TrimRight(c.url, "/"),
		token: c.token,
		runID: fmt.Sprintf("%x", time.Now().UnixNano()),
	}
	// Seed jobs, then wait until the view has the last one.
	ids := make([]string, c.seed)
	for i := range c.seed {
		code, err := cl.post(int64(i))
		if err != nil || code != http.StatusAccepted {
			return nil, fmt.Errorf("seeding job %d: status %d, %v", i, code, err)
		}
		ids[i] = fmt.Sprintf("load-%s-%d", cl.runID, i)
	}
	deadline := time.Now().Add(60 * time.Second)
	for _, id := range ids {
		for {
			code, err := cl.do("GET", "/jobs/"+id, nil)
			if err == nil && code == http.StatusOK {
				break
			}
			if time.Now().After(deadline) {
				return nil, fmt.Errorf("seeded job %s not in the view after 60s (last status %d, %v)", id, code, err)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}

	type sample struct {
		post bool
		d    time.Duration
		err  error
	}
	var (
		mu      sync.Mutex
		samples []sample
		next    = int64(c.seed)
	)
	nextID := func() int64 {
		mu.Lock()
		defer mu.Unlock()
		next++
		return next
	}
	ctx, cancel := context.WithTimeout(ctx, c.duration)
	defer cancel()
	start := time.Now()
	var wg sync.WaitGroup
	for w := range c.concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(w), uint64(start.UnixNano())))
			var local []sample
			for ctx.Err() == nil {
				post := r.Float64() < c.postRatio
				t0 := time.Now()
				var code int
				var err error
				if post {
					code, err = cl.post(nextID())
					if err == nil && code != http.StatusAccepted {
						err = fmt.Errorf("POST /jobs: status %d", code)
					}
				} else {
					id := ids[r.IntN(len(ids))]
					code, err = cl.do("GET", "/jobs/"+id, nil)
					if err == nil && code != http.StatusOK {
						err = fmt.Errorf("GET /jobs/%s: status %d", id, code)
					}
				}
				local = append(local, sample{post: post, d: time.Since(t0), err: err})
			}
			mu.Lock()
			samples = append(samples, local...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)

	res := &Result{URL: c.url, Duration: elapsed.Seconds(), Concurrency: c.concurrency, Endpoints: map[string]Endpoint{}}
	for _, name := range []string{"GET /jobs/{id}", "POST /jobs"} {
		post := name == "POST /jobs"
		var lat []time.Duration
		ep := Endpoint{}
		for _, s := range samples {
			if s.post != post {
				continue
			}
			ep.Requests++
			if s.err != nil {
				ep.Errors++
				if len(ep.ErrorSamples) < 5 {
					ep.ErrorSamples = append(ep.ErrorSamples, s.err.Error())
				}
				continue
			}
			lat = append(lat, s.d)
		}
		slices.Sort(lat)
		pct := func(p float64) float64 {
			if len(lat) == 0 {
				return 0
			}
			return float64(lat[min(len(lat)-1, int(p*float64(len(lat))))].Microseconds()) / 1000
		}
		ep.PerSecond = float64(ep.Requests) / elapsed.Seconds()
		ep.P50ms, ep.P90ms, ep.P99ms = pct(0.50), pct(0.90), pct(0.99)
		if len(lat) > 0 {
			ep.MaxMs = float64(lat[len(lat)-1].Microseconds()) / 1000
		}
		res.Errors += ep.Errors
		res.Endpoints[name] = ep
	}
	return res, nil
}

func printResult(r *Result) {
	fmt.Printf("%s: %d clients for %.1fs\n", r.URL, r.Concurrency, r.Duration)
	fmt.Printf("%-16s %9s %10s %9s %9s %9s %9s %7s\n", "ENDPOINT", "REQUESTS", "REQ/S", "P50 ms", "P90 ms", "P99 ms", "MAX ms", "ERRORS")
	for _, name := range []string{"GET /jobs/{id}", "POST /jobs"} {
		e := r.Endpoints[name]
		fmt.Printf("%-16s %9d %10.0f %9.2f %9.2f %9.2f %9.2f %7d\n", name, e.Requests, e.PerSecond, e.P50ms, e.P90ms, e.P99ms, e.MaxMs, e.Errors)
		for _, s := range e.ErrorSamples {
			fmt.Printf("  error: %s\n", s)
		}
	}
}
