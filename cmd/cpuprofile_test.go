package cmd

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jobctl/jobctl/pkg/embedded"
	"github.com/segmentio/kafka-go"
)

// isProfile reports whether path holds a pprof profile (gzipped protobuf).
func isProfile(t *testing.T, path string) bool {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("reading the profile: %v", err)
	}
	return len(b) > 2 && b[0] == 0x1f && b[1] == 0x8b
}

func TestProduceCPUProfile(t *testing.T) {
	b, err := embedded.Start(embedded.Options{Addr: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	client := &kafka.Client{Addr: kafka.TCP(b.Addr())}
	if _, err := client.CreateTopics(ctx, &kafka.CreateTopicsRequest{Topics: []kafka.TopicConfig{{Topic: "prof", NumPartitions: 2, ReplicationFactor: 1}}}); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "produce.pprof")
	var out, errOut bytes.Buffer
	code := Execute(ctx, []string{"--brokers", b.Addr(), "--topic", "prof", "produce", "--count", "2000", "--cpuprofile", path},
		IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut})
	if code != 0 || !strings.Contains(out.String(), "sent 2000 jobs") {
		t.Fatalf("exit %d, stdout %q, stderr %q", code, out.String(), errOut.String())
	}
	if !isProfile(t, path) {
		t.Fatal("--cpuprofile wrote no profile")
	}
}

func TestBenchCPUProfile(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a bench on the embedded broker")
	}
	path := filepath.Join(t.TempDir(), "bench.pprof")
	var out, errOut bytes.Buffer
	code := Execute(context.Background(), []string{"bench", "--embedded", "--count", "500", "--partitions", "2", "--latency-duration", "0", "--cpuprofile", path},
		IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut})
	if code != 0 || !strings.Contains(out.String(), "produce") {
		t.Fatalf("exit %d, stdout %q, stderr %q", code, out.String(), errOut.String())
	}
	if !isProfile(t, path) {
		t.Fatal("--cpuprofile wrote no profile")
	}
}

// A profile that cannot be written is a usage error, before anything runs.
func TestCPUProfileBadPath(t *testing.T) {
	var out, errOut bytes.Buffer
	code := Execute(context.Background(), []string{"--brokers", "127.0.0.1:1", "produce", "--count", "1", "--cpuprofile", filepath.Join(t.TempDir(), "no", "such", "dir", "p")},
		IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut})
	if code != ExitUsage || !strings.Contains(errOut.String(), "--cpuprofile") {
		t.Fatalf("exit %d, stderr %q", code, errOut.String())
	}
}
