package integration

import (
	"os/exec"
	"strings"
	"testing"
)

// startBrokerProcess runs `jobctl broker` on a free port and returns its
// address once it prints it.
func startBrokerProcess(t *testing.T, dataDir string) (*exec.Cmd, string) {
	t.Helper()
	c, line := startForFirstLine(t, "broker", "--addr", "127.0.0.1:0", "--data-dir", dataDir)
	// "embedded broker listening on 127.0.0.1:PORT (Ctrl-C to stop)"
	fields := strings.Fields(line)
	if len(fields) < 5 {
		t.Fatalf("unexpected first line %q", line)
	}
	return c, fields[4]
}

// TestEmbeddedBrokerKeepsDataAcrossRestarts runs `jobctl broker` as a user
// would: its records survive a Ctrl-C and a restart on another port.
func TestEmbeddedBrokerKeepsDataAcrossRestarts(t *testing.T) {
	dir := t.TempDir()
	c, addr := startBrokerProcess(t, dir)
	tgt := Target{Name: "broker-process", Brokers: []string{addr}}
	topic := createTopic(t, tgt, 2)
	mustJobctl(t, tgt, "-t", topic, "produce", "--count", "25")
	if n := len(readTopic(t, tgt, topic)); n != 25 {
		t.Fatalf("before restart: %d records", n)
	}
	stopWithSIGINT(t, c)

	_, addr2 := startBrokerProcess(t, dir)
	tgt2 := Target{Name: "broker-process", Brokers: []string{addr2}}
	msgs := readTopic(t, tgt2, topic)
	if len(msgs) != 25 {
		t.Fatalf("after restart: want 25 records, got %d", len(msgs))
	}
	mustJobctl(t, tgt2, "-t", topic, "produce", "--count", "5")
	if n := len(readTopic(t, tgt2, topic)); n != 30 {
		t.Fatalf("after restart and 5 more: %d records", n)
	}
}
