package handler

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
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
// input. Exit status 0 is DONE; anything else is FAILED with the tail of
// its stderr as the error. Through HandleResult its standard output, up
// to MaxResultBytes, is the job's result (see Result); Handle discards it.
//
// The program does not inherit jobctl's environment, which holds secrets
// (JOBCTL_SASL_PASSWORD, JOBCTL_API_TOKEN, cloud credentials...): it gets
// only the variables in BaseEnv that are set, the entries of Env, and
// JOB_ID, JOB_TYPE, JOB_ATTEMPT, JOB_RUN and JOB_GROUP.
//
// Each run gets its own process group, and on timeout or shutdown the
// whole group is killed: a shell script's children die with it instead of
// living on as orphans that still hold the job's resources.
type Exec struct {
	// Command is the program and its arguments. A single element is a
	// shell command line, run with /bin/sh -c, so a flag value like
	// "./process.sh --verbose" works as typed.
	Command []string
	// Timeout limits one run; 0 means no limit. (The worker also ends the
	// context at consume.job_timeout.)
	Timeout time.Duration
	// Env is the handler.exec.env list: NAME passes the variable through
	// from jobctl's environment (when set), NAME=VALUE sets it. It is the
	// only way a JOBCTL_* variable reaches a job program.
	Env []string
	// Group is the consumer group running the jobs, for JOB_GROUP when the
	// event does not name one (optional).
	Group string
}

// BaseEnv are the variables passed through to job programs from jobctl's
// environment when set, LC_* included: what programs need to find tools,
// files and the user's locale, and nothing that is usually a secret.
var BaseEnv = []string{"PATH", "HOME", "USER", "LOGNAME", "SHELL", "LANG", "LC_*", "TZ", "TMPDIR", "TERM"}

// environ builds a job program's environment from parent (os.Environ()).
func (e Exec) environ(parent []string, j job.Event) []string {
	lookup := make(map[string]string, len(parent))
	var env []string
	for _, kv := range parent {
		name, _, ok := strings.Cut(kv, "=")
		if !ok {
			continue
		}
		lookup[name] = kv
		for _, allowed := range BaseEnv {
			if name == allowed || strings.HasSuffix(allowed, "*") && strings.HasPrefix(name, strings.TrimSuffix(allowed, "*")) {
				env = append(env, kv)
				break
			}
		}
	}
	for _, entry := range e.Env {
		if strings.Contains(entry, "=") {
			env = append(env, entry)
		} else if kv, ok := lookup[entry]; ok {
			env = append(env, kv)
		}
	}
	group := j.Group
	if group == "" {
		group = e.Group
	}
	// Last, so they win over a same-named entry above (exec keeps the
	// last of duplicates).
	return append(env,
		"JOB_ID="+j.JobID.String(),
		"JOB_TYPE="+j.Type,
		"JOB_ATTEMPT="+strconv.Itoa(j.Attempt),
		"JOB_RUN="+strconv.Itoa(j.Run),
		"JOB_GROUP="+group,
	)
}

var _ ResultHandler = Exec{}

// Handle runs the command for j; its stdout goes to /dev/null.
func (e Exec) Handle(ctx context.Context, j job.Event) error {
	return e.run(ctx, j, nil)
}

// HandleResult runs the command for j and returns its stdout as the
// result: JSON when it is JSON, else a JSON string; beyond MaxResultBytes
// it is cut, with a note, which never fails the job.
func (e Exec) HandleResult(ctx context.Context, j job.Event) (json.RawMessage, error) {
	out := &headBuffer{max: MaxResultBytes}
	if err := e.run(ctx, j, out); err != nil {
		return nil, err
	}
	return out.result(), nil
}

// run runs the command for j with stdout (nil: /dev/null).
func (e Exec) run(ctx context.Context, j job.Event, stdout io.Writer) error {
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
	cmd.Env = e.environ(os.Environ(), j)
	stderr := &tailBuffer{max: stderrTailBytes}
	cmd.Stderr = stderr
	if stdout != nil { // else /dev/null, no pipe to drain
		cmd.Stdout = stdout
	}

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
