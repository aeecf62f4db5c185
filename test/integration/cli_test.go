package integration

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestHelpTeaches(t *testing.T) {
	root := runBinary(t, t.TempDir(), nil, "--help")
	if root.Code != 0 {
		t.Fatal(root)
	}
	for _, cmd := range []string{"produce", "consume", "serve", "topic", "broker", "config", "jobs", "version", "completion"} {
		if !strings.Contains(root.Stdout, "\n  "+cmd+" ") {
			t.Errorf("jobctl --help does not list %s", cmd)
		}
	}
	for _, env := range []string{"JOBCTL_BROKERS", "JOBCTL_TOPIC", "JOBCTL_GROUP_ID", "JOBCTL_TIMEOUT", "Exit codes"} {
		if !strings.Contains(root.Stdout, env) {
			t.Errorf("jobctl --help does not mention %s", env)
		}
	}
	for _, path := range [][]string{
		{"produce"}, {"consume"}, {"serve"}, {"broker"}, {"config", "show"},
		{"topic", "create"}, {"topic", "alter"}, {"topic", "describe"}, {"topic", "list"},
		{"jobs", "list"}, {"jobs", "get"},
	} {
		r := runBinary(t, t.TempDir(), nil, append(path, "--help")...)
		if r.Code != 0 {
			t.Errorf("%v --help: %s", path, r)
			continue
		}
		// Global flags, with their env vars, show on every command.
		for _, want := range []string{"Usage:", "Examples:", "JOBCTL_BROKERS"} {
			if !strings.Contains(r.Stdout, want) {
				t.Errorf("jobctl %s --help lacks %q", strings.Join(path, " "), want)
			}
		}
	}
}

func TestCompletionAndVersion(t *testing.T) {
	for _, shell := range []string{"bash", "zsh", "fish"} {
		r := runBinary(t, t.TempDir(), nil, "completion", shell)
		if r.Code != 0 || !strings.Contains(r.Stdout, "jobctl") {
			t.Errorf("completion %s: %s", shell, r)
		}
	}
	r := runBinary(t, t.TempDir(), nil, "version", "-o", "json")
	var v struct {
		Version   string `json:"version"`
		Commit    string `json:"commit"`
		GoVersion string `json:"go_version"`
	}
	if err := json.Unmarshal([]byte(r.Stdout), &v); err != nil || v.Version == "" || !strings.HasPrefix(v.GoVersion, "go") {
		t.Fatalf("version -o json: %v %s", err, r)
	}
	if r := runBinary(t, t.TempDir(), nil, "nosuchcommand"); r.Code != 2 {
		t.Errorf("unknown command: want exit 2, got %s", r)
	}
}
