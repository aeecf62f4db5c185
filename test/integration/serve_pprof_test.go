package integration

import (
	"bytes"
	"io"
	"net"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestServeMetricsAddrServesProfiles starts serve with --metrics-addr and
// fetches /debug/pprof/, a heap profile and /metrics from that second
// listener, as a user profiling serve would.
func TestServeMetricsAddrServesProfiles(t *testing.T) {
	forEachBroker(t, func(t *testing.T, tgt Target) {
		topic := createTopic(t, tgt, 2)
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		ln.Close()
		c := jobctlProcess(t, tgt, nil, "serve", "--topic", topic, "--addr", "127.0.0.1:0", "--metrics-addr", addr)
		var stderr bytes.Buffer
		c.Stderr = &stderr
		if err := c.Start(); err != nil {
			t.Fatalf("starting jobctl serve: %v", err)
		}
		done := make(chan error, 1)
		go func() { done <- c.Wait() }()
		defer func() {
			_ = c.Process.Signal(syscall.SIGTERM)
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("serve exited with %v after SIGTERM:\n%s", err, stderr.String())
				}
			case <-time.After(30 * time.Second):
				_ = c.Process.Kill()
				t.Errorf("serve did not stop within 30s of SIGTERM")
			}
		}()

		get := func(path string) (int, string) {
			resp, err := httpClient.Get("http://" + addr + path)
			if err != nil {
				return 0, err.Error()
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			return resp.StatusCode, string(b)
		}
		var code int
		var body string
		for deadline := time.Now().Add(60 * time.Second); ; {
			if code, body = get("/debug/pprof/"); code == http.StatusOK {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("GET /debug/pprof/ on --metrics-addr %s: %d %s; serve's log:\n%s", addr, code, body, stderr.String())
			}
			time.Sleep(100 * time.Millisecond)
		}
		for _, want := range []string{"heap", "goroutine", "profile"} {
			if !strings.Contains(body, want) {
				t.Errorf("/debug/pprof/ does not list %q:\n%s", want, body)
			}
		}
		if code, body := get("/debug/pprof/heap?debug=1"); code != http.StatusOK || !strings.Contains(body, "heap profile") {
			t.Errorf("GET /debug/pprof/heap?debug=1: %d\n%.300s", code, body)
		}
		if code, body := get("/metrics"); code != http.StatusOK || !strings.Contains(body, "jobctl_jobs_produced_total") && !strings.Contains(body, "go_goroutines") {
			t.Errorf("GET /metrics: %d\n%.300s", code, body)
		}
	})
}
