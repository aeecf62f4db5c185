package cmd

import (
	"bytes"
	"context"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jobctl/jobctl/pkg/config"
	"github.com/spf13/cobra"
)

// isolateConfig keeps a developer's JOBCTL_* variables and config files
// out of these tests.
func isolateConfig(t *testing.T) {
	t.Helper()
	for _, kv := range os.Environ() {
		if name, _, _ := strings.Cut(kv, "="); strings.HasPrefix(name, "JOBCTL_") {
			t.Setenv(name, "")
			os.Unsetenv(name)
		}
	}
	t.Setenv("XDG_CONFIG_HOME", t.TempDir())
	t.Chdir(t.TempDir())
}

func TestConsumeBadFlagValuesExit2(t *testing.T) {
	isolateConfig(t)
	cases := []struct {
		args []string
		key  string
	}{
		{[]string{"--concurrency", "0"}, "consume.concurrency"},
		{[]string{"-c", "-3"}, "consume.concurrency"},
		{[]string{"--grace", "-1s"}, "consume.grace"},
		{[]string{"--commit-interval", "0s"}, "consume.commit_interval"},
		{[]string{"--max-attempts", "0"}, "consume.max_attempts"},
		{[]string{"--metrics-addr", "nohostport"}, "consume.metrics_addr"},
		{[]string{"--handler", "teleport"}, "handler.name"},
		{[]string{"--sleep", "-5ms"}, "handler.sleep.duration"},
		{[]string{"--sleep-jitter", "-5ms"}, "handler.sleep.jitter"},
		{[]string{"--fail-rate", "1.5"}, "handler.sleep.fail_rate"},
		{[]string{"--handler", "exec"}, "handler.exec.command"},
		{[]string{"--job-timeout", "-1s"}, "consume.job_timeout"},
		{[]string{"--retry-backoff", "0s"}, "consume.retry_backoff"},
		{[]string{"--retry-backoff", "2m", "--retry-backoff-max", "1m"}, "consume.retry_backoff_max"},
		{[]string{"--type-policy", "email:timeout=nope"}, "consume.type_policies"},
		{[]string{"--type-policy", "email"}, "consume.type_policies"},
		{[]string{"--dedup-window", "-1"}, "consume.dedup_window"},
		{[]string{"--session-timeout", "1s"}, "consume.session_timeout"},
		{[]string{"--timeout", "-1s"}, "timeout"},
		{[]string{"--group", " "}, "group.id"},
		{[]string{"--concurrency", "many"}, "concurrency"},
		{[]string{"--sleep", "5"}, "sleep"},
		{[]string{"extra-arg"}, "unknown command"},
	}
	for _, c := range cases {
		var out, errOut bytes.Buffer
		args := append([]string{"consume", "--brokers", "127.0.0.1:1"}, c.args...)
		code := Execute(context.Background(), args, IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut})
		if code != ExitUsage {
			t.Errorf("jobctl %s: exit %d, want %d\n%s", strings.Join(args, " "), code, ExitUsage, errOut.String())
			continue
		}
		if !strings.Contains(errOut.String(), c.key) {
			t.Errorf("jobctl %s: error should name %q:\n%s", strings.Join(args, " "), c.key, errOut.String())
		}
	}
}

func TestConsumeBadEnvValueExit2(t *testing.T) {
	isolateConfig(t)
	t.Setenv("JOBCTL_CONSUME_CONCURRENCY", "0")
	var errOut bytes.Buffer
	code := Execute(context.Background(), []string{"consume", "--brokers", "127.0.0.1:1"}, IOStreams{In: strings.NewReader(""), Out: &bytes.Buffer{}, ErrOut: &errOut})
	if code != ExitUsage || !strings.Contains(errOut.String(), "JOBCTL_CONSUME_CONCURRENCY") {
		t.Fatalf("exit %d, want 2 naming the variable:\n%s", code, errOut.String())
	}
}

// loadConsumeConfig parses args like `jobctl consume ARGS` and returns the
// configuration the command would run with, without running it.
func loadConsumeConfig(t *testing.T, args ...string) *config.Config {
	t.Helper()
	app := &App{IO: IOStreams{In: strings.NewReader(""), Out: &bytes.Buffer{}, ErrOut: &bytes.Buffer{}}}
	root := NewRootCmd(app)
	var got *config.Config
	consume, _, err := root.Find([]string{"consume"})
	if err != nil {
		t.Fatal(err)
	}
	consume.RunE = func(*cobra.Command, []string) error { got = app.Config(); return nil }
	root.SetArgs(append([]string{"consume", "--brokers", "127.0.0.1:1"}, args...))
	root.SetOut(&bytes.Buffer{})
	root.SetErr(&bytes.Buffer{})
	if err := root.ExecuteContext(context.Background()); err != nil {
		t.Fatalf("consume %v: %v", args, err)
	}
	return got
}

func TestConsumeFlagsReachConfig(t *testing.T) {
	isolateConfig(t)
	cfg := loadConsumeConfig(t, "-g", "G", "-c", "7", "--grace", "3s", "--processed-log", "p.log",
		"--commit-interval", "250ms", "--max-attempts", "3", "--metrics-addr", "127.0.0.1:0",
		"--handler", "sleep", "--sleep", "5ms", "--sleep-jitter", "2ms", "--fail-rate", "0.25",
		"--job-timeout", "9s", "--retry-backoff", "2s", "--retry-backoff-max", "1m",
		"--type-policy", "email:timeout=30s,max_attempts=10", "--type-policy", "sms:retry_backoff=5s",
		"--dedup-window", "500", "--instance-id", "w-1", "--session-timeout", "20s", "--timeout", "0")
	checks := []struct {
		name      string
		got, want any
	}{
		{"group.id", cfg.Group.ID, "G"},
		{"consume.concurrency", cfg.Consume.Concurrency, 7},
		{"consume.grace", cfg.Consume.Grace, 3 * time.Second},
		{"consume.processed_log", cfg.Consume.ProcessedLog, "p.log"},
		{"consume.commit_interval", cfg.Consume.CommitInterval, 250 * time.Millisecond},
		{"consume.max_attempts", cfg.Consume.MaxAttempts, 3},
		{"consume.metrics_addr", cfg.Consume.MetricsAddr, "127.0.0.1:0"},
		{"handler.name", cfg.Handler.Name, "sleep"},
		{"handler.sleep.duration", cfg.Handler.Sleep.Duration, 5 * time.Millisecond},
		{"handler.sleep.jitter", cfg.Handler.Sleep.Jitter, 2 * time.Millisecond},
		{"handler.sleep.fail_rate", cfg.Handler.Sleep.FailRate, 0.25},
		{"consume.job_timeout", cfg.Consume.JobTimeout, 9 * time.Second},
		{"consume.retry_backoff", cfg.Consume.RetryBackoff, 2 * time.Second},
		{"consume.retry_backoff_max", cfg.Consume.RetryBackoffMax, time.Minute},
		{"consume.type_policies", strings.Join(cfg.Consume.TypePolicies, " "), "email:timeout=30s,max_attempts=10 sms:retry_backoff=5s"},
		{"consume.dedup_window", cfg.Consume.DedupWindow, 500},
		{"consume.instance_id", cfg.Consume.InstanceID, "w-1"},
		{"consume.session_timeout", cfg.Consume.SessionTimeout, 20 * time.Second},
		{"timeout", cfg.Timeout, time.Duration(0)},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
}

func TestConsumeExecCommandFlag(t *testing.T) {
	isolateConfig(t)
	// One value: a shell line, commas and quotes intact.
	line := `./notify.sh --to "a,b" 'x y'`
	cfg := loadConsumeConfig(t, "--handler", "exec", "--exec-command", line)
	if !slices.Equal(cfg.Handler.Exec.Command, []string{line}) {
		t.Errorf("one --exec-command: command = %q, want [%q]", cfg.Handler.Exec.Command, line)
	}
	// Repeated: the argv.
	cfg = loadConsumeConfig(t, "--handler", "exec", "--exec-command", "python3", "--exec-command", "work.py", "--exec-command", "a,b")
	if want := []string{"python3", "work.py", "a,b"}; !slices.Equal(cfg.Handler.Exec.Command, want) {
		t.Errorf("repeated --exec-command: command = %q, want %q", cfg.Handler.Exec.Command, want)
	}
	// From the environment, comma separated.
	t.Setenv("JOBCTL_HANDLER_EXEC_COMMAND", "python3,work.py")
	cfg = loadConsumeConfig(t, "--handler", "exec")
	if want := []string{"python3", "work.py"}; !slices.Equal(cfg.Handler.Exec.Command, want) {
		t.Errorf("env command = %q, want %q", cfg.Handler.Exec.Command, want)
	}
}

func TestConsumeHelpTeaches(t *testing.T) {
	isolateConfig(t)
	var out bytes.Buffer
	code := Execute(context.Background(), []string{"consume", "--help"}, IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &out})
	if code != 0 {
		t.Fatalf("consume --help: exit %d", code)
	}
	for _, want := range []string{"--group", "--concurrency", "--grace", "--exec-command", "JOBCTL_CONSUME_CONCURRENCY", "Examples:", "at-least-once", "--type-policy", "dlq", "--instance-id"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("consume --help lacks %q", want)
		}
	}
}
