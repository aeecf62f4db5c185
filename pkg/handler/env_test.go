package handler

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/jobctl/jobctl/pkg/job"
)

// childEnv runs e for j and returns the environment the program saw.
func childEnv(t *testing.T, e Exec, j job.Event) map[string]string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "env")
	e.Command = []string{"/usr/bin/env -0 > " + out}
	if err := e.Handle(context.Background(), j); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{}
	for _, kv := range strings.Split(strings.TrimRight(string(raw), "\x00"), "\x00") {
		name, value, _ := strings.Cut(kv, "=")
		env[name] = value
	}
	return env
}

func TestExecEnvironmentIsAllowListed(t *testing.T) {
	t.Setenv("JOBCTL_API_TOKEN", "api-secret")
	t.Setenv("JOBCTL_SASL_PASSWORD", "sasl-secret")
	t.Setenv("JOBCTL_BROKERS", "127.0.0.1:9092")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "aws-secret")
	t.Setenv("PATH", "/usr/local/bin:/usr/bin:/bin")
	t.Setenv("HOME", "/home/jobs")
	t.Setenv("LANG", "C.UTF-8")
	t.Setenv("LC_TIME", "en_GB.UTF-8")
	t.Setenv("TZ", "UTC")
	t.Setenv("PASSED_THROUGH", "yes")
	t.Setenv("NOT_LISTED", "no")

	j := job.Event{JobID: job.NumericID(77), Status: job.StatusNew, Type: "mail", Attempt: 3, Run: 1}
	env := childEnv(t, Exec{
		Env:   []string{"PASSED_THROUGH", "SET_HERE=a=b", "JOBCTL_BROKERS", "UNSET_IN_PARENT"},
		Group: "billing",
	}, j)

	for _, name := range []string{"JOBCTL_API_TOKEN", "JOBCTL_SASL_PASSWORD", "AWS_SECRET_ACCESS_KEY", "NOT_LISTED", "UNSET_IN_PARENT"} {
		if v, ok := env[name]; ok {
			t.Errorf("the job program sees %s=%q", name, v)
		}
	}
	for _, v := range env {
		if strings.Contains(v, "secret") {
			t.Errorf("a secret reached the job program: %q", v)
		}
	}
	want := map[string]string{
		"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": "/home/jobs", "LANG": "C.UTF-8", "LC_TIME": "en_GB.UTF-8", "TZ": "UTC",
		"PASSED_THROUGH": "yes", "SET_HERE": "a=b", "JOBCTL_BROKERS": "127.0.0.1:9092",
		"JOB_ID": "77", "JOB_TYPE": "mail", "JOB_ATTEMPT": "3", "JOB_RUN": "1", "JOB_GROUP": "billing",
	}
	for name, v := range want {
		if env[name] != v {
			t.Errorf("%s = %q, want %q", name, env[name], v)
		}
	}
	// The shell may add a few of its own (PWD, SHLVL, _); nothing else.
	for name := range env {
		if _, ok := want[name]; !ok && !slices.Contains([]string{"PWD", "SHLVL", "_", "USER", "LOGNAME", "SHELL", "TMPDIR", "TERM", "OLDPWD"}, name) && !strings.HasPrefix(name, "LC_") {
			t.Errorf("unexpected variable %s=%q", name, env[name])
		}
	}
}

func TestExecJobGroupFromEvent(t *testing.T) {
	j := job.Event{JobID: job.NumericID(1), Status: job.StatusNew, Group: "audit"}
	if env := childEnv(t, Exec{Group: "billing"}, j); env["JOB_GROUP"] != "audit" {
		t.Errorf("JOB_GROUP = %q, want the event's group audit", env["JOB_GROUP"])
	}
	j.Group = ""
	if env := childEnv(t, Exec{}, j); env["JOB_GROUP"] != "" || env["JOB_RUN"] != "0" {
		t.Errorf("no group anywhere: JOB_GROUP = %q, JOB_RUN = %q", env["JOB_GROUP"], env["JOB_RUN"])
	}
	// A user entry cannot fake the job's identity.
	if env := childEnv(t, Exec{Env: []string{"JOB_ID=forged"}}, j); env["JOB_ID"] != "1" {
		t.Errorf("JOB_ID = %q, want 1", env["JOB_ID"])
	}
}
