package integration

import (
	"bytes"
	"slices"
	"strings"
	"testing"
	"time"
)

// complete runs the binary's hidden __complete command, as a shell does on
// Tab, and returns the offered words. The last line of its output is the
// directive: every dynamic completion of jobctl says "no file completion"
// (4), job ids also "keep this order" (32: the newest first).
func complete(t *testing.T, tgt Target, env []string, args ...string) []string {
	t.Helper()
	c := jobctlProcess(t, tgt, env, append([]string{"__complete"}, args...)...)
	var out, errOut bytes.Buffer
	c.Stdout, c.Stderr = &out, &errOut
	if err := c.Run(); err != nil {
		t.Fatalf("jobctl __complete %v: %v\nstdout:\n%s\nstderr:\n%s", args, err, &out, &errOut)
	}
	lines := strings.Split(strings.TrimRight(out.String(), "\n"), "\n")
	if d := lines[len(lines)-1]; d != ":4" && d != ":36" {
		t.Fatalf("jobctl __complete %v: directive %q, want :4 or :36 (no files)\n%s", args, d, &out)
	}
	if strings.Contains(errOut.String(), "Error") {
		t.Fatalf("jobctl __complete %v printed an error:\n%s", args, &errOut)
	}
	return lines[:len(lines)-1]
}

// wantWords fails unless got contains every one of want.
func wantWords(t *testing.T, what string, got []string, want ...string) {
	t.Helper()
	for _, w := range want {
		if !slices.Contains(got, w) {
			t.Fatalf("%s: %q not offered; got %q", what, w, got)
		}
	}
}

// Topic names and consumer group ids complete from the broker, for the
// flags and the arguments that take them; a prefix narrows them; an
// unreachable broker or a broken config file completes nothing, quietly.
func TestCompletionTopicsAndGroups(t *testing.T) {
	forEachBroker(t, func(t *testing.T, tgt Target) {
		topic := createTopic(t, tgt, 1)
		group := uniqueName(t, "g")
		commitOffsetsAsAdmin(t, tgt, group, topic, map[int]int64{0: 0})
		prefix := topic[:len(topic)-3]

		got := complete(t, tgt, nil, "--topic", prefix)
		if len(got) != 1 || got[0] != topic {
			t.Fatalf("--topic %s: got %q, want only %s", prefix, got, topic)
		}
		wantWords(t, "-t on produce", complete(t, tgt, nil, "produce", "-t", ""), topic)
		for _, sub := range []string{"describe", "alter", "delete"} {
			wantWords(t, "topic "+sub, complete(t, tgt, nil, "topic", sub, prefix), topic)
		}
		if got := complete(t, tgt, nil, "topic", "describe", topic, ""); len(got) != 0 {
			t.Fatalf("topic describe takes one topic, but a second was offered: %q", got)
		}

		wantWords(t, "group pause", complete(t, tgt, nil, "group", "pause", group[:len(group)-3]), group)
		wantWords(t, "group resume", complete(t, tgt, nil, "group", "resume", ""), group)
		wantWords(t, "consume --group", complete(t, tgt, nil, "consume", "--group", group[:len(group)-3]), group)
		if got := complete(t, tgt, nil, "--topic", "no-such-prefix-"+prefix); len(got) != 0 {
			t.Fatalf("a prefix no topic has: got %q", got)
		}

		// Flags typed on the command line count (not only the environment),
		// and a broker that is not there gives no words and no error.
		if got := complete(t, tgt, nil, "--brokers", "127.0.0.1:1", "--topic", ""); len(got) != 0 {
			t.Fatalf("unreachable broker: got %q", got)
		}
		if got := complete(t, tgt, []string{"JOBCTL_TOPIC="}, "topic", "describe", prefix); len(got) != 0 {
			t.Fatalf("invalid configuration: got %q", got)
		}
	})
}

// Job ids complete from a running serve (server.url here), the newest
// first, without ids already given to cancel/retry; without a server,
// nothing (no replay of the topic on Tab).
func TestCompletionJobIDs(t *testing.T) {
	forEachBroker(t, func(t *testing.T, tgt Target) {
		topic := createTopic(t, tgt, 1)
		lines := "{\"job_id\": \"cmp-1\"}\n{\"job_id\": \"cmp-2\"}\n{\"job_id\": \"other-3\"}\n"
		if r := jobctlIn(t, tgt, lines, "-t", topic, "produce", "-f", "-"); r.Code != 0 {
			t.Fatalf("producing the jobs: %s", r)
		}
		srv := startServe(t, tgt, topic)
		env := []string{"JOBCTL_TOPIC=" + topic, "JOBCTL_SERVER_URL=" + srv.URL}

		var got []string
		eventually(t, 60*time.Second, "serve to offer the three jobs", func() bool {
			got = complete(t, tgt, env, "jobs", "get", "")
			return len(got) == 3
		})
		wantWords(t, "jobs get", got, "cmp-1", "cmp-2", "other-3")
		if got := complete(t, tgt, env, "jobs", "get", "cmp"); len(got) != 2 {
			t.Fatalf("jobs get cmp: got %q, want cmp-1 and cmp-2", got)
		}
		if got := complete(t, tgt, env, "jobs", "get", "cmp-1", ""); len(got) != 0 {
			t.Fatalf("jobs get takes one id, but more were offered: %q", got)
		}
		got = complete(t, tgt, env, "jobs", "cancel", "cmp-1", "cmp")
		if len(got) != 1 || got[0] != "cmp-2" {
			t.Fatalf("jobs cancel cmp-1 cmp: got %q, want only cmp-2", got)
		}
		wantWords(t, "jobs retry", complete(t, tgt, env, "jobs", "retry", ""), "cmp-1", "cmp-2", "other-3")

		// No server configured and none at api.addr: nothing, at once.
		noServer := []string{"JOBCTL_TOPIC=" + topic, "JOBCTL_API_ADDR=127.0.0.1:1"}
		if got := complete(t, tgt, noServer, "jobs", "get", ""); len(got) != 0 {
			t.Fatalf("without a server: got %q", got)
		}
	})
}
