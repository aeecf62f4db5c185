package handler

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jobctl/jobctl/pkg/job"
)

// stderrTailBytes is how much of a failed command's stderr becomes the
// job's error: the end, where programs print the reason they died.
const stderrTailBytes = 2048

// pipeGrace bounds how long a finished command's leftover children may
// hold its stderr open before the handler stops waiting for them.
const pipeGrace = 2 * time.Second

// Exec runs a program per job. The job's JSON payload is its standard
// input; JOB_ID, JOB_TYPE and JOB_ATTEMPT are in its environment. Exit
// status 0 is DONE; anything else is FAILED with the tail of its stderr as
// the error.
//
// Each run gets its own process group, and on timeout or shutdown the
// whole group is killed: a shell script's children die with it instead of
// living on as orphans that still hold the job's resources.
type Exec struct {
	// Command is the program and its arguments. A single element is a
	// shell command line, run with /bin/sh -c, so a flag value like
	// "./process.sh --verbose" works as typed.
	Command []string
	// Timeout limits one run; 0 means no limit.
	Timeout time.Duration
}

var _ Handler = Exec{}

// Handle runs the command for j.
func (e Exec) Handle(ctx context.Context, j job.Event) error {
	if len(e.Command) == 0 {
		return errors.New("exec handler: no command configured")
	}
	runCtx := ctx
	if e.Timeout > 0 {
		var cancel context.CancelFunc
		runCtx, cancel = context.WithTimeout(ctx, e.Timeout)
		defer cancel()
	}
	argv := e.Command
	if len(argv) == 1 {
		argv = []string{"/bin/sh", "-c", argv[0]}
	}
	cmd := exec.CommandContext(runCtx, argv[0], argv[1:]...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return killGroup(cmd.Process.Pid) }
	cmd.WaitDelay = pipeGrace
	cmd.Stdin = bytes.NewReader(j.Payload)
	cmd.Env = append(os.Environ(),
		"JOB_ID="+j.JobID.String(),
		"JOB_TYPE="+j.Type,
		"JOB_ATTEMPT="+strconv.Itoa(j.Attempt),
	)
	stderr := &tailBuffer{max: stderrTailBytes}
	cmd.Stderr = stderr // stdout stays nil: /dev/null, no pipe to drain

	err := cmd.Run()
	if errors.Is(err, exec.ErrWaitDelay) && cmd.ProcessState != nil {
		// The command exited but something it started still holds its
		// stderr, so the group still exists and its id cannot have been
		// reused: end the stragglers.
		_ = killGroup(cmd.Process.Pid)
		if cmd.ProcessState.Success() {
			err = nil
		}
	}
	switch {
	case err == nil:
		return nil
	case ctx.Err() != nil:
		return ctx.Err()
	case runCtx.Err() != nil:
		return fmt.Errorf("timed out after %s, process group killed%s", e.Timeout, stderr.suffix())
	}
	var exitErr *exec.ExitError
	if errors.As(err, &exitErr) {
		return fmt.Errorf("%s%s", exitErr.ProcessState.String(), stderr.suffix())
	}
	return fmt.Errorf("running %s: %w", argv[0], err)
}

func killGroup(pid int) error {
	err := syscall.Kill(-pid, syscall.SIGKILL)
	if errors.Is(err, syscall.ESRCH) {
		return os.ErrProcessDone
	}
	return err
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	mu        sync.Mutex
	max       int
	buf       []byte
	truncated bool
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if over := len(t.buf) - t.max; over > 0 {
		t.buf = append(t.buf[:0], t.buf[over:]...)
		t.truncated = true
	}
	return len(p), nil
}

// suffix is ": <stderr tail>" for an error message, or "" when stderr was
// empty.
func (t *tailBuffer) suffix() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := strings.TrimSpace(strings.ToValidUTF8(string(t.buf), "\uFFFD"))
	if s == "" {
		return ""
	}
	if t.truncated {
		s = "..." + s
	}
	return ": " + s
}
