package integration

import (
	"bytes"
	"context"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jobctl/jobctl/cmd"
	"github.com/jobctl/jobctl/pkg/deadletter"
	"github.com/jobctl/jobctl/pkg/job"
)

// writeCLIConfig writes a config file for the CLI and returns its path.
func writeCLIConfig(t *testing.T, body string) string {
	t.Helper()
	file := filepath.Join(t.TempDir(), "jobctl.yaml")
	if err := os.WriteFile(file, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return file
}

// jobctlTTY runs jobctl in-process as on a terminal (stderr a TTY).
func jobctlTTY(t *testing.T, tgt Target, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var out, errOut bytes.Buffer
	full := append([]string{"--brokers", strings.Join(tgt.Brokers, ",")}, args...)
	code := cmd.Execute(ctx, full, cmd.IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut, ErrTTY: true})
	return result{Stdout: out.String(), Stderr: errOut.String(), Code: code}
}

// TestCLIReadsThroughServer: the read commands print exactly the same
// through a running serve (server.url, or found at api.addr) as from the
// topic; a configured server that does not answer is an error naming it;
// a serve of another topic is not trusted.
func TestCLIReadsThroughServer(t *testing.T) {
	forEachBroker(t, func(t *testing.T, tgt Target) {
		topic := createTopic(t, tgt, 2)
		w := ledgerWriter(t, tgt, topic)
		ctx := context.Background()
		now := time.Now().UTC().Truncate(time.Millisecond)
		for i := 1; i <= 5; i++ {
			typ := "even"
			if i%2 == 1 {
				typ = "odd"
			}
			if err := w.AppendTo(ctx, i%2, job.Event{JobID: job.NumericID(int64(i)), Status: job.StatusNew, Type: typ, Payload: []byte(`{"n": 1}`), CreatedAt: now, UpdatedAt: now}); err != nil {
				t.Fatal(err)
			}
		}
		if err := w.AppendTo(ctx, 0, job.Event{JobID: job.NumericID(2), Status: job.StatusDone, Attempt: 1, Worker: "w-7", Group: "g1", UpdatedAt: now.Add(time.Second)}); err != nil {
			t.Fatal(err)
		}
		if err := w.AppendTo(ctx, 1, job.Event{JobID: job.NumericID(3), Status: job.StatusDead, Attempt: 2, Worker: "w-8", Group: "g1", Error: "boom", UpdatedAt: now.Add(2 * time.Second)}); err != nil {
			t.Fatal(err)
		}
		createDLQ(t, tgt, topic, 1)
		writeLetters(t, tgt, topic, deadletter.Letter{Kind: deadletter.KindJob, JobID: job.NumericID(3), Group: "g1", Run: 1, Type: "odd",
			Payload: []byte(`{"n":1}`), Attempts: 2, Errors: []job.AttemptError{{Attempt: 1, Error: "boom"}, {Attempt: 2, Error: "boom"}},
			Origin: deadletter.Origin{Topic: topic, Partition: 1, Offset: 1}, DeadAt: now.Add(2 * time.Second)})
		mustJobctl(t, tgt, "-t", topic, "schedule", "create", "nightly", "--cron", "0 2 * * *", "--type", "report", "--payload", `{"a": 1}`)

		mustJobctl(t, tgt, "-t", topic, "group", "pause", "g2")

		const token = "cli-s3cret"
		p := startServe(t, tgt, topic, "JOBCTL_API_TOKEN="+token, "JOBCTL_API_TOKEN_READS=true")
		p.waitReady(t, "Authorization", "Bearer "+token)
		u, err := url.Parse(p.URL)
		if err != nil {
			t.Fatal(err)
		}
		configured := writeCLIConfig(t, "server:\n  url: "+p.URL+"\n  token: "+token+"\n")
		// The server reads the control topic beside the job topic.
		eventually(t, 30*time.Second, "serve to see group g2 paused", func() bool {
			r := jobctl(t, tgt, "--config", configured, "-t", topic, "group", "get", "g2", "-o", "json")
			return r.Code == 0 && strings.Contains(r.Stdout, `"paused": true`)
		})

		for _, args := range [][]string{
			{"jobs", "list"},
			{"jobs", "list", "-o", "json"},
			{"jobs", "list", "--limit", "2"},
			{"jobs", "list", "--limit", "0", "--desc", "-o", "json"},
			{"jobs", "list", "--status", "done"},
			{"jobs", "list", "--group", "g1", "-o", "json"},
			{"jobs", "list", "--after", "2", "--limit", "2"},
			{"jobs", "list", "--since", now.Add(time.Second).Format(time.RFC3339Nano)},
			{"jobs", "list", "--since", "1h", "--until", now.Add(2 * time.Second).Format(time.RFC3339Nano), "-o", "json"},
			{"jobs", "get", "2"},
			{"jobs", "get", "3", "-o", "json"},
			{"jobs", "get", "99"},
			{"dlq", "list"},
			{"dlq", "list", "-o", "json"},
			{"dlq", "list", "--type", "odd", "--since", "1h", "-o", "json"},
			{"schedule", "list"},
			{"schedule", "list", "-o", "json"},
			{"schedule", "get", "nightly"},
			{"schedule", "get", "nightly", "-o", "json"},
			{"schedule", "get", "nope"},
			{"group", "list"},
			{"group", "list", "-o", "json"},
			{"group", "get", "g1"},
			{"group", "get", "g2", "-o", "json"},
			{"group", "get", "nope"},
		} {
			base := []string{"--config", configured, "-t", topic}
			viaServer := jobctl(t, tgt, append(base, args...)...)
			viaTopic := jobctl(t, tgt, append(append(base, args...), "--no-server")...)
			if viaServer.Code != viaTopic.Code || viaServer.Stdout != viaTopic.Stdout || viaServer.Stderr != viaTopic.Stderr {
				t.Errorf("jobctl %s differs through the server and from the topic:\nserver: %s\ntopic: %s", strings.Join(args, " "), viaServer, viaTopic)
			}
			if !strings.Contains(strings.Join(args, " "), "99") && !strings.Contains(strings.Join(args, " "), "nope") && viaServer.Code != 0 {
				t.Errorf("jobctl %s: %s", strings.Join(args, " "), viaServer)
			}
			if args[0] == "group" && args[1] == "list" && (!strings.Contains(viaServer.Stdout, "g1") || !strings.Contains(viaServer.Stdout, "g2")) {
				t.Errorf("jobctl %s: %s", strings.Join(args, " "), viaServer)
			}
			if viaServer.Stderr != "" && !strings.Contains(viaServer.Stderr, "shown, more match") && viaServer.Code == 0 {
				t.Errorf("jobctl %s logged before its output (read commands log warnings only): %q", strings.Join(args, " "), viaServer.Stderr)
			}
		}
		r := mustJobctl(t, tgt, "--config", configured, "-t", topic, "jobs", "list", "--since", now.Add(time.Second).Format(time.RFC3339Nano))
		if lines := strings.Split(strings.TrimSpace(r.Stdout), "\n"); len(lines) != 3 || !strings.Contains(lines[1], "DONE") || !strings.Contains(lines[2], "DEAD") {
			t.Errorf("jobs list --since: want jobs 2 and 3 (updated since then), got:\n%s", r.Stdout)
		}
		// The answers above did come from the server: -v says so, and a
		// terminal gets a note (never with -o json).
		r = mustJobctl(t, tgt, "--config", configured, "-t", topic, "-v", "jobs", "get", "2")
		if !strings.Contains(r.Stderr, "asking the jobctl server") || !strings.Contains(r.Stderr, p.URL) {
			t.Errorf("jobs get -v does not say it asked %s: %s", p.URL, r.Stderr)
		}
		if r := jobctlTTY(t, tgt, "--config", configured, "-t", topic, "jobs", "list"); r.Code != 0 || !strings.Contains(r.Stderr, "from the jobctl server at "+p.URL) {
			t.Errorf("jobs list on a terminal does not note the server: %s", r)
		}
		if r := jobctlTTY(t, tgt, "--config", configured, "-t", topic, "jobs", "list", "-o", "json"); r.Code != 0 || r.Stderr != "" {
			t.Errorf("jobs list -o json on a terminal wrote to stderr: %s", r)
		}
		// Without a server, a terminal sees the progress of the read, and
		// the line is cleared before the output.
		if r := jobctlTTY(t, tgt, "-t", topic, "jobs", "get", "2", "--no-server"); r.Code != 0 || !strings.Contains(r.Stderr, "reading topic "+topic+" for job 2") || !strings.HasSuffix(r.Stderr, "\r\033[K") {
			t.Errorf("jobs get --no-server on a terminal shows no progress: %q", r.Stderr)
		}

		// Found at api.addr without server.url: used when it serves this
		// topic, ignored (the topic is read) when it serves another.
		probed := writeCLIConfig(t, "api:\n  addr: "+u.Host+"\n  token: "+token+"\n")
		r = mustJobctl(t, tgt, "--config", probed, "-t", topic, "-v", "jobs", "list", "-o", "json")
		if !strings.Contains(r.Stderr, "asking the jobctl server") {
			t.Errorf("jobs list did not ask the serve at api.addr %s: %s", u.Host, r.Stderr)
		}
		want := r.Stdout
		// Its reads need the token: without it, the topic is read.
		noToken := writeCLIConfig(t, "api:\n  addr: "+u.Host+"\n")
		r = mustJobctl(t, tgt, "--config", noToken, "-t", topic, "-v", "jobs", "list", "-o", "json")
		if strings.Contains(r.Stderr, "asking the jobctl server") || r.Stdout != want {
			t.Errorf("jobs list without the token of the serve at api.addr did not read the topic: %s", r)
		}
		other := createTopic(t, tgt, 1)
		r = mustJobctl(t, tgt, "--config", probed, "-t", other, "-v", "jobs", "list", "-o", "json")
		if strings.Contains(r.Stderr, "asking the jobctl server") || strings.TrimSpace(r.Stdout) != "[]" {
			t.Errorf("jobs list of topic %s trusted the serve of %s: %s", other, topic, r)
		}

		// retry finds the job through the server too, and still writes
		// to Kafka itself.
		r = mustJobctl(t, tgt, "--config", configured, "-t", topic, "-v", "jobs", "retry", "3")
		if !strings.Contains(r.Stdout, "job 3: retrying as run") || !strings.Contains(r.Stderr, "asking the jobctl server") {
			t.Errorf("jobs retry 3 through the server: %s", r)
		}
		wantExit(t, jobctl(t, tgt, "--config", configured, "-t", topic, "jobs", "cancel", "99"), 1, `job "99" not found`)

		// A configured server that refuses or is gone is an error naming
		// it, not a silent replay.
		wrongToken := writeCLIConfig(t, "server:\n  url: "+p.URL+"\n  token: wrong\n")
		wantExit(t, jobctl(t, tgt, "--config", wrongToken, "-t", topic, "jobs", "list"), 1, p.URL, "401")
		p.stop(t)
		r = jobctl(t, tgt, "--config", configured, "-t", topic, "jobs", "get", "2")
		wantExit(t, r, 1, "cannot reach the jobctl server at "+p.URL, "server.url", "--no-server")
		mustJobctl(t, tgt, "--config", configured, "-t", topic, "jobs", "get", "2", "--no-server")
	})
}

// TestCLIBrokerUnreachable: with no broker at the address, commands say
// so and what to do, without the Kafka client's internals.
func TestCLIBrokerUnreachable(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	topic := uniqueName(t, "unreachable")
	for _, args := range [][]string{
		{"jobs", "list", "--no-server"},
		{"jobs", "get", "1", "--no-server"},
		{"dlq", "list", "--no-server"},
		{"schedule", "list", "--no-server"},
		{"topic", "list"},
		{"produce", "--count", "1"},
	} {
		r := runBinary(t, t.TempDir(), nil, append([]string{"--brokers", addr, "-t", topic}, args...)...)
		wantExit(t, r, 1, "cannot reach a Kafka broker at "+addr, "connection refused", "jobctl broker", "--brokers")
		for _, internal := range []string{"kafka.(", "dial tcp", "context canceled", "context deadline exceeded"} {
			if strings.Contains(r.Stderr, internal) {
				t.Errorf("jobctl %s shows %q: %s", strings.Join(args, " "), internal, r.Stderr)
			}
		}
	}
	// A bad number in a flag is explained without strconv's internals.
	r := runBinary(t, t.TempDir(), nil, "produce", "--rate", "fast")
	wantExit(t, r, 2, `"fast" is not a number`)
	if strings.Contains(r.Stderr, "strconv") {
		t.Errorf("produce --rate fast shows strconv: %s", r.Stderr)
	}
}

// TestCLIFlagsWhereTheyApply: --group and --timeout exist only on the
// commands that use them; --version prints what 'version' prints.
func TestCLIFlagsWhereTheyApply(t *testing.T) {
	dir := t.TempDir()
	wantExit(t, runBinary(t, dir, nil, "jobs", "list", "--timeout", "1s"), 2, "unknown flag: --timeout")
	wantExit(t, runBinary(t, dir, nil, "topic", "list", "--group", "g"), 2, "unknown flag: --group")
	for _, path := range [][]string{{"consume"}, {"config", "show"}} {
		r := runBinary(t, dir, nil, append(path, "--help")...)
		for _, want := range []string{"--group", "--timeout", "JOBCTL_GROUP_ID", "JOBCTL_TIMEOUT"} {
			if !strings.Contains(r.Stdout, want) {
				t.Errorf("jobctl %s --help lacks %s", strings.Join(path, " "), want)
			}
		}
	}
	if r := runBinary(t, dir, nil, "dev", "--help"); !strings.Contains(r.Stdout, "--group") {
		t.Errorf("dev --help lacks --group")
	}
	if r := runBinary(t, dir, nil, "produce", "--help"); strings.Contains(r.Stdout, "--group") || strings.Contains(r.Stdout, "--timeout") {
		t.Errorf("produce --help offers --group or --timeout:\n%s", r.Stdout)
	}
	// The group still comes from the environment for every command.
	got := showConfig(t, dir, []string{"JOBCTL_GROUP_ID=env-group"})
	if g := got["group.id"]; formatAny(g.Value) != "env-group" || g.Source != "env" {
		t.Errorf("group.id = %v from %s, want env-group from env", g.Value, g.Source)
	}

	version := runBinary(t, dir, nil, "version")
	flag := runBinary(t, dir, nil, "--version")
	if version.Code != 0 || flag.Code != 0 || version.Stdout != flag.Stdout {
		t.Fatalf("--version and version differ:\n%s\n%s", flag, version)
	}
	for _, want := range []string{"jobctl version: ", "\ncommit: ", "\ngo: ", "\nplatform: "} {
		if !strings.Contains(version.Stdout, want) {
			t.Errorf("version lacks %q:\n%s", want, version.Stdout)
		}
	}
	if strings.Contains(version.Stdout, "jobctl dev") {
		t.Errorf("version reads like the dev subcommand:\n%s", version.Stdout)
	}
}
