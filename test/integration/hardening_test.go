package integration

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

// doHost sends one request to serve with the Host header set to host.
func (p *serveProc) doHost(t *testing.T, host, method, path, body string) (*http.Response, []byte) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, p.URL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Host = host
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s (Host %s): %v", method, path, host, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

// TestServeRefusesForeignHosts: on its default loopback address serve
// answers no request for a host it does not serve (DNS rebinding: a page
// on evil.example whose name now resolves to 127.0.0.1), writes nothing
// for it, and api.allowed_hosts lets a chosen name in.
func TestServeRefusesForeignHosts(t *testing.T) {
	forEachBroker(t, func(t *testing.T, tgt Target) {
		topic := createTopic(t, tgt, 1)
		s := startServe(t, tgt, topic)
		s.waitReady(t)
		port := s.URL[strings.LastIndex(s.URL, ":")+1:]

		for _, host := range []string{"evil.example", "evil.example:" + port, "192.0.2.1:" + port} {
			resp, body := s.doHost(t, host, "GET", "/jobs", "")
			wantJSONError(t, "GET /jobs with Host "+host, resp, body, http.StatusMisdirectedRequest)
			if !strings.Contains(string(body), host) || !strings.Contains(string(body), "api.allowed_hosts") {
				t.Errorf("the refusal should name the host %s and api.allowed_hosts: %s", host, body)
			}
			resp, body = s.doHost(t, host, "POST", "/jobs", `{"job_id": "rebound"}`)
			wantJSONError(t, "POST /jobs with Host "+host, resp, body, http.StatusMisdirectedRequest)
		}
		if n := len(readTopic(t, tgt, topic)); n != 0 {
			t.Fatalf("refused POSTs wrote %d records", n)
		}
		if resp, _ := s.doHost(t, "evil.example", "GET", "/healthz", ""); resp.StatusCode != 200 {
			t.Errorf("/healthz stays open to probes: %d", resp.StatusCode)
		}

		for i, host := range []string{"localhost:" + port, "127.0.0.1:" + port} {
			id := []string{"via-localhost", "via-ip"}[i]
			if resp, body := s.doHost(t, host, "POST", "/jobs", `{"job_id": "`+id+`"}`); resp.StatusCode != 202 {
				t.Fatalf("POST with Host %s: %d %s", host, resp.StatusCode, body)
			}
			if resp, body := s.doHost(t, host, "GET", "/jobs", ""); resp.StatusCode != 200 {
				t.Fatalf("GET with Host %s: %d %s", host, resp.StatusCode, body)
			}
		}
		if n := len(readTopic(t, tgt, topic)); n != 2 {
			t.Fatalf("want the 2 allowed POSTs on the topic, got %d records", n)
		}

		allowed := startServe(t, tgt, topic, "JOBCTL_API_ALLOWED_HOSTS=jobs.example")
		allowed.waitReady(t)
		if resp, body := allowed.doHost(t, "jobs.example", "POST", "/jobs", `{"job_id": "via-allowed"}`); resp.StatusCode != 202 {
			t.Fatalf("POST with an api.allowed_hosts name: %d %s", resp.StatusCode, body)
		}
		resp, body := allowed.doHost(t, "evil.example", "GET", "/jobs", "")
		wantJSONError(t, "GET /jobs with an unlisted host", resp, body, http.StatusMisdirectedRequest)
		if n := len(readTopic(t, tgt, topic)); n != 3 {
			t.Fatalf("want 3 records, got %d", n)
		}
	})
}

// producer is a running `jobctl produce -f -` with its stdin open.
type producerProc struct {
	cmd            *exec.Cmd
	stdin          io.WriteCloser
	stdout, stderr bytes.Buffer
	done           chan error
}

func startStdinProducer(t *testing.T, tgt Target, args ...string) *producerProc {
	t.Helper()
	p := &producerProc{done: make(chan error, 1)}
	p.cmd = jobctlProcess(t, tgt, nil, append([]string{"produce", "-f", "-"}, args...)...)
	p.cmd.Stdout, p.cmd.Stderr = &p.stdout, &p.stderr
	var err error
	if p.stdin, err = p.cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.done <- p.cmd.Wait() }()
	t.Cleanup(func() {
		_ = p.cmd.Process.Kill()
		p.stdin.Close()
	})
	return p
}

// interrupt sends SIGINT and returns the exit code, failing if the
// process is still running a few seconds later (stdin stays open).
func (p *producerProc) interrupt(t *testing.T) int {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-p.done:
		var ee *exec.ExitError
		if err == nil {
			return 0
		}
		if !errors.As(err, &ee) {
			t.Fatal(err)
		}
		return ee.ExitCode()
	case <-time.After(10 * time.Second):
		t.Fatalf("produce -f - did not exit within 10s of SIGINT while its stdin was open\nstdout: %s\nstderr: %s", &p.stdout, &p.stderr)
	}
	return -1
}

// TestProduceStdinInterrupted: Ctrl-C ends `produce -f -` while it waits
// on an open stdin: exit 130, one summary saying "interrupted", and the
// jobs it had read are sent.
func TestProduceStdinInterrupted(t *testing.T) {
	forEachBroker(t, func(t *testing.T, tgt Target) {
		topic := createTopic(t, tgt, 1)
		// --rate sends each job before waiting for the next one's slot,
		// so the topic shows when produce has read both lines and is
		// blocked reading a third.
		p := startStdinProducer(t, tgt, "--topic", topic, "--rate", "5")
		if _, err := io.WriteString(p.stdin, "{\"job_id\": \"int-1\"}\n{\"job_id\": \"int-2\"}\n"); err != nil {
			t.Fatal(err)
		}
		eventually(t, 60*time.Second, "both jobs on the topic", func() bool { return len(readTopic(t, tgt, topic)) == 2 })
		time.Sleep(300 * time.Millisecond) // past the next rate slot: blocked on stdin

		code := p.interrupt(t)
		out := p.stdout.String() + p.stderr.String()
		if code != 130 {
			t.Fatalf("exit code %d after SIGINT, want 130\n%s", code, out)
		}
		if strings.Contains(out, "context canceled") {
			t.Errorf("the output speaks of \"context canceled\":\n%s", out)
		}
		if n := strings.Count(p.stdout.String(), "sent "); n != 1 || !strings.Contains(p.stdout.String(), "sent 2 jobs") || !strings.Contains(p.stdout.String(), "interrupted") {
			t.Errorf("want one summary of 2 sent jobs saying interrupted, got %d:\n%s", n, out)
		}
	})
	t.Run("before any input", func(t *testing.T) {
		tgt := targets[0]
		topic := createTopic(t, tgt, 1)
		p := startStdinProducer(t, tgt, "--topic", topic)
		time.Sleep(2 * time.Second)
		code := p.interrupt(t)
		out := p.stdout.String() + p.stderr.String()
		if code != 130 || strings.Contains(out, "context canceled") {
			t.Fatalf("exit %d, want 130 and no \"context canceled\":\n%s", code, out)
		}
	})
}
