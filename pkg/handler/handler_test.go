package handler

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jobctl/jobctl/pkg/job"
)

func testJob(payload string) job.Event {
	return job.Event{JobID: job.NumericID(1234), Status: job.StatusNew, Type: "email", Attempt: 2, Payload: json.RawMessage(payload)}
}

func TestHandlerFunc(t *testing.T) {
	var got job.ID
	h := HandlerFunc(func(_ context.Context, j job.Event) error { got = j.JobID; return nil })
	if err := h.Handle(context.Background(), testJob("")); err != nil || got.String() != "1234" {
		t.Fatalf("HandlerFunc: err %v, saw job %q", err, got)
	}
}

func TestSleep(t *testing.T) {
	ctx := context.Background()
	if err := (Sleep{}).Handle(ctx, testJob("")); err != nil {
		t.Fatalf("zero Sleep: %v", err)
	}
	if err := (Sleep{FailRate: 1}).Handle(ctx, testJob("")); !errors.Is(err, ErrSimulated) {
		t.Fatalf("FailRate 1: err = %v, want ErrSimulated", err)
	}
	start := time.Now()
	if err := (Sleep{Duration: 20 * time.Millisecond, Jitter: 10 * time.Millisecond}).Handle(ctx, testJob("")); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < 20*time.Millisecond {
		t.Fatalf("Sleep 20ms returned after %s", d)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := (Sleep{Duration: time.Hour}).Handle(cctx, testJob("")); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled Sleep: err = %v, want context.Canceled", err)
	}
}

func TestExecSuccessSeesPayloadAndEnv(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "out")
	script := `cat > "` + out + `.stdin"; printf '%s|%s|%s' "$JOB_ID" "$JOB_TYPE" "$JOB_ATTEMPT" > "` + out + `.env"; echo noise >&2`
	if err := (Exec{Command: []string{script}}).Handle(context.Background(), testJob(`{"to":"a@b.c"}`)); err != nil {
		t.Fatalf("exit 0 should be success: %v", err)
	}
	stdin, _ := os.ReadFile(out + ".stdin")
	env, _ := os.ReadFile(out + ".env")
	if string(stdin) != `{"to":"a@b.c"}` {
		t.Errorf("stdin = %q, want the job payload", stdin)
	}
	if string(env) != "1234|email|2" {
		t.Errorf("JOB_ID|JOB_TYPE|JOB_ATTEMPT = %q, want 1234|email|2", env)
	}
}

func TestExecArgvIsNotAShellLine(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "argv")
	// Two elements: run directly, so "$HOME" reaches the program literally.
	err := (Exec{Command: []string{"/bin/sh", "-c", `printf '%s' "$0" > ` + out, "$HOME"}}).Handle(context.Background(), testJob(""))
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(out); string(got) != "$HOME" {
		t.Fatalf("argv[0] of the script = %q, want the literal $HOME", got)
	}
}

func TestExecFailureCarriesStderrTail(t *testing.T) {
	err := (Exec{Command: []string{`echo "first line" >&2; echo "disk full" >&2; exit 3`}}).Handle(context.Background(), testJob(""))
	if err == nil {
		t.Fatal("exit 3 should fail")
	}
	if !strings.Contains(err.Error(), "exit status 3") || !strings.Contains(err.Error(), "disk full") {
		t.Fatalf("error %q should name the exit status and the stderr", err)
	}
	// Much stderr: only the last ~2KB, ending with the last line.
	err = (Exec{Command: []string{`i=0; while [ $i -lt 500 ]; do echo "line $i of noise" >&2; i=$((i+1)); done; echo "the real reason" >&2; exit 1`}}).Handle(context.Background(), testJob(""))
	if err == nil {
		t.Fatal("exit 1 should fail")
	}
	msg := err.Error()
	if !strings.HasSuffix(msg, "the real reason") || strings.Contains(msg, "line 0 of") || len(msg) > stderrTailBytes+100 {
		t.Fatalf("error should be the stderr tail (<= ~2KB, ending in the last line); got %d bytes ending %q", len(msg), msg[max(0, len(msg)-60):])
	}
	if err := (Exec{Command: []string{"/nonexistent/program", "x"}}).Handle(context.Background(), testJob("")); err == nil {
		t.Fatal("a missing program should fail the job")
	}
}

func TestExecTimeoutKillsProcessGroup(t *testing.T) {
	dir := t.TempDir()
	pids := filepath.Join(dir, "pids")
	// The child starts a grandchild and waits; both must die at the timeout.
	script := `sleep 100 & echo $! > ` + pids + `.grandchild; echo $$ > ` + pids + `.child; wait`
	start := time.Now()
	err := (Exec{Command: []string{script}, Timeout: 500 * time.Millisecond}).Handle(context.Background(), testJob(""))
	if err == nil || !strings.Contains(err.Error(), "timed out") {
		t.Fatalf("err = %v, want a timeout", err)
	}
	if d := time.Since(start); d > 30*time.Second {
		t.Fatalf("timeout took %s: the handler waited for the grandchild", d)
	}
	for _, name := range []string{"child", "grandchild"} {
		pid := readPid(t, pids+"."+name)
		waitGone(t, name, pid)
	}
}

func TestExecContextCancelKillsGroup(t *testing.T) {
	dir := t.TempDir()
	pidFile := filepath.Join(dir, "pid")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- (Exec{Command: []string{`sleep 100 & echo $! > ` + pidFile + `; wait`}}).Handle(ctx, testJob(""))
	}()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if b, err := os.ReadFile(pidFile); err == nil && strings.HasSuffix(string(b), "\n") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the command never started")
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled (shutdown is not a job failure)", err)
	}
	waitGone(t, "grandchild", readPid(t, pidFile))
}

func readPid(t *testing.T, path string) int {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("reading %s: %v", path, err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return pid
}

// waitGone waits until pid no longer runs (gone, or a zombie awaiting its
// reaper, which is dead for our purposes).
func waitGone(t *testing.T, name string, pid int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if syscall.Kill(pid, 0) != nil {
			return
		}
		if stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat"); err == nil {
			if f := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:])); len(f) > 0 && f[0] == "Z" {
				return
			}
		}
		if time.Now().After(deadline) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
			t.Fatalf("%s (pid %d) still runs after the job ended", name, pid)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
