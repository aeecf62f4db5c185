// Command load is a small HTTP load generator for `jobctl serve`: from a
// second process it sends GET /jobs/{id} and POST /jobs at a running
// server for a fixed time, and reports per endpoint the requests per
// second, latency percentiles (p50, p90, p99, p99.9, max) and errors.
//
// Two modes:
//   - closed loop (default): -concurrency clients each send a request as
//     soon as their previous one is answered. It finds the throughput, but
//     a stall delays the requests behind it without counting them, so its
//     tail latencies are optimistic.
//   - open loop (-rate N): N requests per second in total, due at fixed
//     times and spread over -concurrency workers; each latency is measured
//     from the request's due time, so a stall counts against every request
//     that should have been sent during it (no coordinated omission). Give
//     it enough workers to keep up (late_sends in the report says how many
//     requests went out over a millisecond late).
//
// -post-ratio 1 sends only POSTs, 0 only GETs.
//
// Before measuring it submits -seed jobs and waits until the view has
// read them back, so every GET asks for a job that exists (a 404 would
// be an error). An error is a transport failure or an unexpected status
// (GET: not 200; POST: not 202). The exit status is 1 when there were
// errors.
//
//	go run ./test/load -url http://127.0.0.1:8080 -duration 10s -concurrency 16
//	go run ./test/load -url http://127.0.0.1:8080 -post-ratio 0.5 -json
//	go run ./test/load -url http://127.0.0.1:8080 -rate 1000 -duration 30s -post-ratio 1
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
	"strings"
	"sync"
	"sync/atomic"
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
	// rate > 0 selects the open loop: requests per second in total.
	rate int
}

// Result is the report of one run; -json prints it.
type Result struct {
	URL         string  `json:"url"`
	Mode        string  `json:"mode"` // "closed" or "open"
	Rate        int     `json:"rate,omitempty"`
	Duration    float64 `json:"duration_seconds"`
	Concurrency int     `json:"concurrency"`
	// LateSends (open loop) is the requests sent over a millisecond after
	// their due time because every worker was busy: their wait is in
	// their latency, but many of them mean the generator, not only the
	// server, fell behind.
	LateSends int                 `json:"late_sends"`
	Endpoints map[string]Endpoint `json:"endpoints"`
	Errors    int                 `json:"errors"`
}

// Endpoint is what one endpoint did.
type Endpoint struct {
	Requests     int      `json:"requests"`
	PerSecond    float64  `json:"requests_per_second"`
	P50ms        float64  `json:"p50_ms"`
	P90ms        float64  `json:"p90_ms"`
	P99ms        float64  `json:"p99_ms"`
	P999ms       float64  `json:"p999_ms"`
	MaxMs        float64  `json:"max_ms"`
	Errors       int      `json:"errors"`
	ErrorSamples []string `json:"error_samples,omitempty"`
}

func main() {
	var c config
	flag.StringVar(&c.url, "url", "http://127.0.0.1:8080", "base URL of jobctl serve")
	flag.DurationVar(&c.duration, "duration", 10*time.Second, "how long to send requests")
	flag.IntVar(&c.concurrency, "concurrency", 16, "concurrent clients (closed loop) or workers the -rate is spread over (open loop)")
	flag.IntVar(&c.rate, "rate", 0, "open loop: send this many requests per second in total, latency measured from each request's due time (0 = closed loop)")
	flag.Float64Var(&c.postRatio, "post-ratio", 0.2, "fraction of requests that are POST /jobs (the rest GET /jobs/{id})")
	flag.IntVar(&c.seed, "seed", 200, "jobs submitted before measuring, for the GETs to ask for")
	flag.StringVar(&c.token, "token", os.Getenv("JOBCTL_API_TOKEN"), "bearer token (default $JOBCTL_API_TOKEN)")
	flag.BoolVar(&c.jsonOut, "json", false, "print the result as JSON")
	flag.Parse()
	if c.concurrency < 1 || c.duration <= 0 || c.postRatio < 0 || c.postRatio > 1 || c.seed < 1 || c.rate < 0 {
		fmt.Fprintln(os.Stderr, "load: -concurrency and -seed must be >= 1, -duration > 0, -rate >= 0, -post-ratio in [0,1]")
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
	// Seed jobs for the GETs, then wait until the view has read them all
	// (a POST-only run needs none).
	var ids []string
	if c.postRatio < 1 {
		var err error
		if ids, err = cl.seed(c.seed); err != nil {
			return nil, err
		}
	}
	var nextID atomic.Int64
	nextID.Store(int64(c.seed))
	// send makes one request; post or not, it reports what went wrong.
	send := func(post bool, r *rand.Rand) error {
		if post {
			code, err := cl.post(nextID.Add(1))
			if err == nil && code != http.StatusAccepted {
				err = fmt.Errorf("POST /jobs: status %d", code)
			}
			return err
		}
		id := ids[r.IntN(len(ids))]
		code, err := cl.do("GET", "/jobs/"+id, nil)
		if err == nil && code != http.StatusOK {
			err = fmt.Errorf("GET /jobs/%s: status %d", id, code)
		}
		return err
	}

	var (
		mu        sync.Mutex
		samples   []sample
		lateSends int
	)
	start := time.Now()
	var wg sync.WaitGroup
	if c.rate > 0 {
		sched := newOpenSchedule(start, c.rate, c.duration)
		for w := range c.concurrency {
			wg.Go(func() {
				r := rand.New(rand.NewPCG(uint64(w), uint64(start.UnixNano())))
				var local []sample
				late := 0
				for {
					i, due, ok := sched.take()
					if !ok || !waitUntil(ctx, due) {
						break
					}
					if time.Since(due) > time.Millisecond {
						late++
					}
					post := isPost(i, c.postRatio)
					err := send(post, r)
					local = append(local, sample{post: post, d: time.Since(due), err: err})
				}
				mu.Lock()
				samples = append(samples, local...)
				lateSends += late
				mu.Unlock()
			})
		}
	} else {
		ctx, cancel := context.WithTimeout(ctx, c.duration)
		defer cancel()
		for w := range c.concurrency {
			wg.Go(func() {
				r := rand.New(rand.NewPCG(uint64(w), uint64(start.UnixNano())))
				var local []sample
				for ctx.Err() == nil {
					post := r.Float64() < c.postRatio
					t0 := time.Now()
					err := send(post, r)
					local = append(local, sample{post: post, d: time.Since(t0), err: err})
				}
				mu.Lock()
				samples = append(samples, local...)
				mu.Unlock()
			})
		}
	}
	wg.Wait()
	elapsed := time.Since(start)

	res := &Result{URL: c.url, Mode: "closed", Duration: elapsed.Seconds(), Concurrency: c.concurrency, LateSends: lateSends, Endpoints: map[string]Endpoint{}}
	if c.rate > 0 {
		res.Mode, res.Rate = "open", c.rate
	}
	for _, name := range endpointNames {
		ep := summarizeEndpoint(samples, name == "POST /jobs", elapsed)
		res.Errors += ep.Errors
		res.Endpoints[name] = ep
	}
	return res, nil
}

var endpointNames = []string{"GET /jobs/{id}", "POST /jobs"}

type sample struct {
	post bool
	d    time.Duration
	err  error
}

// summarizeEndpoint is the report of the samples of one endpoint.
func summarizeEndpoint(samples []sample, post bool, elapsed time.Duration) Endpoint {
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
	sum := summarize(lat)
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	ep.PerSecond = float64(ep.Requests) / elapsed.Seconds()
	ep.P50ms, ep.P90ms, ep.P99ms, ep.P999ms, ep.MaxMs = ms(sum.P50), ms(sum.P90), ms(sum.P99), ms(sum.P999), ms(sum.Max)
	return ep
}

// seed submits n jobs and waits until the view has read every one back,
// so the GETs ask for jobs that exist.
func (cl *client) seed(n int) ([]string, error) {
	ids := make([]string, n)
	for i := range n {
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
	return ids, nil
}

func printResult(r *Result) {
	if r.Mode == "open" {
		fmt.Printf("%s: open loop, %d requests/s over %d workers for %.1fs, %d sent over 1 ms late\n", r.URL, r.Rate, r.Concurrency, r.Duration, r.LateSends)
	} else {
		fmt.Printf("%s: closed loop, %d clients for %.1fs\n", r.URL, r.Concurrency, r.Duration)
	}
	fmt.Printf("%-16s %9s %10s %9s %9s %9s %9s %9s %7s\n", "ENDPOINT", "REQUESTS", "REQ/S", "P50 ms", "P90 ms", "P99 ms", "P99.9 ms", "MAX ms", "ERRORS")
	for _, name := range endpointNames {
		e := r.Endpoints[name]
		fmt.Printf("%-16s %9d %10.0f %9.2f %9.2f %9.2f %9.2f %9.2f %7d\n", name, e.Requests, e.PerSecond, e.P50ms, e.P90ms, e.P99ms, e.P999ms, e.MaxMs, e.Errors)
		for _, s := range e.ErrorSamples {
			fmt.Printf("  error: %s\n", s)
		}
	}
}
