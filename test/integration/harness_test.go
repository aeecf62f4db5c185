// Package integration is jobctl's one integration suite. Every test runs
// against every broker target: the embedded kfake broker (always) and the
// external cluster named by JOBCTL_TEST_BROKERS (real Apache Kafka in CI).
package integration

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jobctl/jobctl/cmd"
	"github.com/jobctl/jobctl/pkg/embedded"
	"github.com/segmentio/kafka-go"
)

// Target is one broker the suite runs against.
type Target struct {
	Name    string // "embedded" or "kafka"
	Brokers []string
	// Real is true for Apache Kafka, whose behaviour is the truth where
	// the embedded broker differs.
	Real bool
}

var (
	targets   []Target
	jobctlBin string // built once for tests that need a real process
)

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	// The suite controls jobctl's configuration itself: a developer's
	// JOBCTL_* variables or ./jobctl.yaml must not leak into it.
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(name, "JOBCTL_") && !strings.HasPrefix(name, "JOBCTL_TEST_") {
			os.Unsetenv(name)
		}
	}
	os.Setenv("XDG_CONFIG_HOME", os.TempDir()+"/jobctl-test-no-config")

	b, err := embedded.Start(embedded.Options{Addr: "127.0.0.1:0"})
	if err != nil {
		fmt.Fprintln(os.Stderr, "starting embedded broker:", err)
		return 1
	}
	defer b.Close()
	targets = append(targets, Target{Name: "embedded", Brokers: []string{b.Addr()}})

	if ext := os.Getenv("JOBCTL_TEST_BROKERS"); ext != "" {
		targets = append(targets, Target{Name: "kafka", Brokers: strings.Split(ext, ","), Real: true})
		fmt.Printf("integration: targets embedded (%s) and kafka (%s)\n", b.Addr(), ext)
	} else if os.Getenv("CI") == "true" {
		fmt.Fprintln(os.Stderr, "integration: JOBCTL_TEST_BROKERS is not set, and in CI the real Kafka target is mandatory")
		return 1
	} else {
		fmt.Printf("integration: SKIPPING the real Kafka target (JOBCTL_TEST_BROKERS not set); running on embedded (%s) only\n", b.Addr())
	}

	dir, err := os.MkdirTemp("", "jobctl-bin")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	jobctlBin = filepath.Join(dir, "jobctl")
	build := exec.Command("go", "build", "-race", "-o", jobctlBin, "github.com/jobctl/jobctl")
	build.Stdout, build.Stderr = os.Stdout, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building jobctl:", err)
		return 1
	}
	return m.Run()
}

// forEachBroker runs fn as a subtest against every target.
func forEachBroker(t *testing.T, fn func(t *testing.T, tgt Target)) {
	t.Helper()
	for _, tgt := range targets {
		t.Run(tgt.Name, func(t *testing.T) {
			fn(t, tgt)
		})
	}
}

// uniqueName returns a topic or group name no other test uses.
func uniqueName(t *testing.T, prefix string) string {
	t.Helper()
	var b [4]byte
	_, _ = rand.Read(b[:])
	name := strings.NewReplacer("/", "-", " ", "-", "#", "-").Replace(t.Name())
	if len(name) > 60 {
		name = name[len(name)-60:]
	}
	return prefix + "-" + name + "-" + hex.EncodeToString(b[:])
}

// createTopic creates a fresh topic with n partitions on tgt, not through
// jobctl, so tests of other commands do not depend on `topic create`.
func createTopic(t *testing.T, tgt Target, partitions int) string {
	t.Helper()
	topic := uniqueName(t, "t")
	client := &kafka.Client{Addr: kafka.TCP(tgt.Brokers...), Timeout: 30 * time.Second}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	resp, err := client.CreateTopics(ctx, &kafka.CreateTopicsRequest{Topics: []kafka.TopicConfig{{
		Topic: topic, NumPartitions: partitions, ReplicationFactor: 1,
	}}})
	if err != nil {
		t.Fatalf("creating topic %s: %v", topic, err)
	}
	if err := resp.Errors[topic]; err != nil {
		t.Fatalf("creating topic %s: %v", topic, err)
	}
	waitForTopic(t, tgt, topic, partitions)
	return topic
}

// waitForTopic waits until every broker's metadata shows topic with n
// partitions with leaders: real Kafka creates topics asynchronously.
func waitForTopic(t *testing.T, tgt Target, topic string, n int) {
	t.Helper()
	client := &kafka.Client{Addr: kafka.TCP(tgt.Brokers...), Timeout: 10 * time.Second}
	deadline := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		md, err := client.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{topic}})
		cancel()
		if err == nil && len(md.Topics) == 1 && md.Topics[0].Error == nil && len(md.Topics[0].Partitions) == n {
			ready := true
			for _, p := range md.Topics[0].Partitions {
				if p.Leader.ID < 0 || p.Error != nil {
					ready = false
				}
			}
			if ready {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("topic %s did not get %d partitions with leaders within 30s (last error %v)", topic, n, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// result is what one jobctl run printed and how it ended.
type result struct {
	Stdout, Stderr string
	Code           int
}

func (r result) String() string {
	return fmt.Sprintf("exit %d\nstdout:\n%s\nstderr:\n%s", r.Code, r.Stdout, r.Stderr)
}

// jobctl runs the jobctl command tree in-process against tgt with args;
// --brokers is set to the target unless args set it.
func jobctl(t *testing.T, tgt Target, args ...string) result {
	t.Helper()
	return jobctlIn(t, tgt, "", args...)
}

// jobctlIn is jobctl with stdin.
func jobctlIn(t *testing.T, tgt Target, stdin string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var out, errOut bytes.Buffer
	full := append([]string{"--brokers", strings.Join(tgt.Brokers, ",")}, args...)
	code := cmd.Execute(ctx, full, cmd.IOStreams{In: strings.NewReader(stdin), Out: &out, ErrOut: &errOut})
	return result{Stdout: out.String(), Stderr: errOut.String(), Code: code}
}

// mustJobctl is jobctl that fails the test on a non-zero exit.
func mustJobctl(t *testing.T, tgt Target, args ...string) result {
	t.Helper()
	r := jobctl(t, tgt, args...)
	if r.Code != 0 {
		t.Fatalf("jobctl %s: %s", strings.Join(args, " "), r)
	}
	return r
}

// jobctlProcess prepares the built binary as a child process with the
// target's brokers in its environment (JOBCTL_BROKERS) and env added.
func jobctlProcess(t *testing.T, tgt Target, env []string, args ...string) *exec.Cmd {
	t.Helper()
	c := exec.Command(jobctlBin, args...)
	c.Env = append(os.Environ(), "JOBCTL_BROKERS="+strings.Join(tgt.Brokers, ","))
	c.Env = append(c.Env, env...)
	c.Dir = t.TempDir()
	return c
}

// readTopic reads every record of topic, from the start of each partition
// to its current end offset.
func readTopic(t *testing.T, tgt Target, topic string) []kafka.Message {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	client := &kafka.Client{Addr: kafka.TCP(tgt.Brokers...), Timeout: 30 * time.Second}
	md, err := client.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{topic}})
	if err != nil || len(md.Topics) != 1 || md.Topics[0].Error != nil {
		t.Fatalf("metadata of %s: %v %+v", topic, err, md)
	}
	var out []kafka.Message
	for _, p := range md.Topics[0].Partitions {
		lo, err := client.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{
			topic: {kafka.LastOffsetOf(p.ID)},
		}})
		if err != nil {
			t.Fatalf("end offset of %s/%d: %v", topic, p.ID, err)
		}
		end := lo.Topics[topic][0].LastOffset
		if end == 0 {
			continue
		}
		r := kafka.NewReader(kafka.ReaderConfig{Brokers: tgt.Brokers, Topic: topic, Partition: p.ID, MaxWait: 200 * time.Millisecond})
		for {
			m, err := r.FetchMessage(ctx)
			if err != nil {
				r.Close()
				t.Fatalf("reading %s/%d: %v", topic, p.ID, err)
			}
			out = append(out, m)
			if m.Offset+1 >= end {
				break
			}
		}
		r.Close()
	}
	return out
}

// startForFirstLine starts the jobctl binary with args and returns it with
// the first line it prints (long-running commands print their address).
func startForFirstLine(t *testing.T, args ...string) (*exec.Cmd, string) {
	t.Helper()
	return startForFirstLineEnv(t, nil, args...)
}

// startForFirstLineEnv is startForFirstLine with env added to the
// environment.
func startForFirstLineEnv(t *testing.T, env []string, args ...string) (*exec.Cmd, string) {
	t.Helper()
	c := exec.Command(jobctlBin, args...)
	c.Dir = t.TempDir()
	c.Env = append(os.Environ(), env...)
	c.Stderr = os.Stderr
	out, err := c.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Process.Kill(); c.Wait() })
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		t.Fatalf("reading the first line of jobctl %v: %v", args, err)
	}
	return c, line
}

// stopWithSIGINT interrupts c as Ctrl-C would and requires a clean exit.
func stopWithSIGINT(t *testing.T, c *exec.Cmd) {
	t.Helper()
	c.Process.Signal(syscall.SIGINT)
	done := make(chan error, 1)
	go func() { done <- c.Wait() }()
	select {
	case err := <-done:
		// 130: interrupted, and stopped cleanly (anything else is not).
		var exit *exec.ExitError
		if !errors.As(err, &exit) || exit.ExitCode() != 130 {
			t.Fatalf("jobctl %v did not exit with 130 after SIGINT: %v", c.Args[1:], err)
		}
	case <-time.After(60 * time.Second): // hang guard, not a timing assertion
		t.Fatalf("jobctl %v did not stop after SIGINT", c.Args[1:])
	}
}
