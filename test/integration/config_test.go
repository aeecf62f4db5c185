package integration

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

type shownKey struct {
	Key    string `json:"key"`
	Value  any    `json:"value"`
	Source string `json:"source"`
	Env    string `json:"env"`
}

// runBinary runs the built jobctl in dir with exactly env (plus PATH/HOME).
func runBinary(t *testing.T, dir string, env []string, args ...string) result {
	t.Helper()
	c := exec.Command(jobctlBin, args...)
	c.Dir = dir
	c.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + dir, "XDG_CONFIG_HOME=" + filepath.Join(dir, "xdg")}, env...)
	var out, errOut strings.Builder
	c.Stdout, c.Stderr = &out, &errOut
	err := c.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("running jobctl: %v", err)
	}
	return result{Stdout: out.String(), Stderr: errOut.String(), Code: code}
}

func showConfig(t *testing.T, dir string, env []string, args ...string) map[string]shownKey {
	t.Helper()
	r := runBinary(t, dir, env, append(args, "config", "show", "-o", "json")...)
	if r.Code != 0 {
		t.Fatalf("config show: %s", r)
	}
	var keys []shownKey
	if err := json.Unmarshal([]byte(r.Stdout), &keys); err != nil {
		t.Fatalf("config show -o json is not JSON: %v\n%s", err, r.Stdout)
	}
	out := map[string]shownKey{}
	for _, k := range keys {
		out[k.Key] = k
	}
	return out
}

func TestConfigPrecedence(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "jobctl.yaml")
	if err := os.WriteFile(file, []byte("topic: from-file\ngroup:\n  id: file-group\ntimeout: 5s\nconsume:\n  concurrency: 7\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	// ./jobctl.yaml is found without --config.
	got := showConfig(t, dir, []string{"JOBCTL_TIMEOUT=9s"}, "--group", "flag-group")
	want := map[string][2]string{
		"topic":               {"from-file", "file jobctl.yaml"},
		"group.id":            {"flag-group", "flag"},
		"timeout":             {"9s", "env"},
		"consume.concurrency": {"7", "file jobctl.yaml"},
		"client_id":           {"jobctl", "default"},
	}
	for key, w := range want {
		k := got[key]
		if formatAny(k.Value) != w[0] || k.Source != w[1] {
			t.Errorf("%s = %v from %q, want %s from %q", key, k.Value, k.Source, w[0], w[1])
		}
	}
	if got["group.id"].Env != "JOBCTL_GROUP_ID" {
		t.Errorf("group.id env var = %q", got["group.id"].Env)
	}

	// --config beats ./jobctl.yaml; env beats the file; flags beat env.
	other := filepath.Join(dir, "other.yaml")
	os.WriteFile(other, []byte("topic: other-file\nbrokers: [a:1, b:2]\n"), 0o600)
	got = showConfig(t, dir, []string{"JOBCTL_TOPIC=env-topic"}, "--config", other)
	if got["topic"].Value != "env-topic" || got["topic"].Source != "env" {
		t.Errorf("env should beat file: %+v", got["topic"])
	}
	if formatAny(got["brokers"].Value) != "a:1,b:2" {
		t.Errorf("brokers list from file: %+v", got["brokers"])
	}
	got = showConfig(t, dir, []string{"JOBCTL_TOPIC=env-topic", "JOBCTL_BROKERS=x:1, y:2"}, "--config", other, "--topic", "flag-topic")
	if got["topic"].Value != "flag-topic" || got["topic"].Source != "flag" {
		t.Errorf("flag should beat env: %+v", got["topic"])
	}
	if formatAny(got["brokers"].Value) != "x:1,y:2" || got["brokers"].Source != "env" {
		t.Errorf("comma list from env: %+v", got["brokers"])
	}

	// The user config dir is the last place looked at.
	xdg := t.TempDir()
	os.MkdirAll(filepath.Join(xdg, "jobctl"), 0o755)
	os.WriteFile(filepath.Join(xdg, "jobctl", "config.yaml"), []byte("topic: from-xdg\n"), 0o600)
	got = showConfig(t, t.TempDir(), []string{"XDG_CONFIG_HOME=" + xdg})
	if got["topic"].Value != "from-xdg" {
		t.Errorf("user config dir file not read: %+v", got["topic"])
	}
	// Secrets are never printed.
	got = showConfig(t, dir, []string{"JOBCTL_SASL_PASSWORD=hunter2"})
	if got["sasl.password"].Value != "***" {
		t.Errorf("password shown: %+v", got["sasl.password"])
	}
}

func formatAny(v any) string {
	switch x := v.(type) {
	case []any:
		parts := make([]string, len(x))
		for i, p := range x {
			parts[i] = formatAny(p)
		}
		return strings.Join(parts, ",")
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	case string:
		return x
	}
	b, _ := json.Marshal(v)
	return string(b)
}

func TestConfigErrorsNameKeyAndSource(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte("topic: [unclosed\n"), 0o600)
	typo := filepath.Join(dir, "typo.yaml")
	os.WriteFile(typo, []byte("topik: x\n"), 0o600)
	numDur := filepath.Join(dir, "num.yaml")
	os.WriteFile(numDur, []byte("timeout: 30\n"), 0o600)
	cases := []struct {
		name string
		env  []string
		args []string
		want []string
	}{
		{"malformed file", nil, []string{"--config", bad}, []string{"reading config file", "bad.yaml"}},
		{"unknown key in file", nil, []string{"--config", typo}, []string{"unknown key topik in " + typo + " (did you mean topic?)"}},
		{"missing file", nil, []string{"--config", filepath.Join(dir, "nope.yaml")}, []string{"nope.yaml", "no such file"}},
		{"duration without unit in file", nil, []string{"--config", numDur}, []string{`"timeout"`, "num.yaml", "unit"}},
		{"bad duration in env", []string{"JOBCTL_TIMEOUT=soon"}, nil, []string{`"timeout"`, "env JOBCTL_TIMEOUT", `"soon" is not a duration`}},
		{"bad duration flag", nil, []string{"--delay", "soon"}, []string{"--delay", "invalid argument"}},
		{"empty broker list", []string{"JOBCTL_BROKERS= , "}, nil, []string{`"brokers"`, "env JOBCTL_BROKERS", "empty"}},
		{"broker without port", nil, []string{"--brokers", "localhost"}, []string{`"brokers"`, "flag", "host:port"}},
		{"bad int in env", []string{"JOBCTL_CONSUME_CONCURRENCY=many"}, nil, []string{`"consume.concurrency"`, "whole number"}},
		{"negative timeout", []string{"JOBCTL_TIMEOUT=-1s"}, nil, []string{`"timeout"`, "negative"}},
		{"bad output format", nil, []string{"-o", "yaml"}, []string{"output format", "yaml"}},
		{"unknown flag", nil, []string{"--nope"}, []string{"unknown flag: --nope"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			// produce validates the whole configuration before connecting.
			r := runBinary(t, dir, c.env, append(c.args, "produce", "--count", "1")...)
			if r.Code != 2 {
				t.Fatalf("want exit 2 (usage), got %s", r)
			}
			for _, w := range c.want {
				if !strings.Contains(r.Stderr, w) {
					t.Errorf("stderr does not mention %q:\n%s", w, r.Stderr)
				}
			}
		})
	}
}

// TestBrokerFlagBeatsEnv proves precedence with a real connection: the
// environment names a broker that does not exist, the flag the target.
func TestBrokerFlagBeatsEnv(t *testing.T) {
	forEachBroker(t, func(t *testing.T, tgt Target) {
		topic := createTopic(t, tgt, 1)
		c := jobctlProcess(t, tgt, []string{"JOBCTL_BROKERS=127.0.0.1:1", "JOBCTL_TOPIC=" + topic},
			"--brokers", strings.Join(tgt.Brokers, ","), "produce", "--count", "3")
		out, err := c.CombinedOutput()
		if err != nil {
			t.Fatalf("produce with --brokers over a bad JOBCTL_BROKERS: %v\n%s", err, out)
		}
		if n := len(readTopic(t, tgt, topic)); n != 3 {
			t.Fatalf("want 3 records, got %d", n)
		}
	})
}

// TestExampleConfigDocumentsEveryKey keeps configs/jobctl.example.yaml
// true: it loads without error, sets every key, and names each env var.
func TestExampleConfigDocumentsEveryKey(t *testing.T) {
	example, err := filepath.Abs("../../configs/jobctl.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	text, err := os.ReadFile(example)
	if err != nil {
		t.Fatal(err)
	}
	got := showConfig(t, t.TempDir(), nil, "--config", example)
	for key, k := range got {
		if !strings.HasPrefix(k.Source, "file ") {
			t.Errorf("key %s is not set in the example config (source %q)", key, k.Source)
		}
		if !strings.Contains(string(text), "env "+k.Env+"\n") {
			t.Errorf("the example config does not name %s for key %s", k.Env, key)
		}
	}
}

// config show runs on a file with unknown keys and marks them (with the
// key meant, a misspelt secret masked), found as ./jobctl.yaml too; every
// other command refuses the file, exit 2, naming key, file and suggestion.
func TestConfigShowUnknownKey(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "jobctl.yaml")
	os.WriteFile(file, []byte("topik: jobs\nsasl.passwrd: hunter2\nproduce:\n  rate: 5\n"), 0o600)
	for _, args := range [][]string{{"--config", file}, nil} {
		r := runBinary(t, dir, nil, append(args, "config", "show", "-o", "json")...)
		if r.Code != 0 {
			t.Fatalf("config show with unknown keys: %s", r)
		}
		var keys []struct {
			shownKey
			Unknown    bool   `json:"unknown"`
			DidYouMean string `json:"did_you_mean"`
		}
		if err := json.Unmarshal([]byte(r.Stdout), &keys); err != nil {
			t.Fatalf("config show -o json: %v\n%s", err, r)
		}
		marked := map[string]string{}
		for _, k := range keys {
			if k.Unknown {
				marked[k.Key] = k.DidYouMean
				if k.Key == "sasl.passwrd" && k.Value != "***" {
					t.Errorf("misspelt password shown as %v", k.Value)
				}
			}
			if k.Key == "produce.rate" && (k.Value != 5.0 || !strings.HasPrefix(k.Source, "file ")) {
				t.Errorf("known key beside unknown ones: %+v", k)
			}
		}
		if len(marked) != 2 || marked["topik"] != "topic" || marked["sasl.passwrd"] != "sasl.password" {
			t.Fatalf("unknown keys marked %v: %s", marked, r)
		}
		if !strings.Contains(r.Stderr, "unknown key topik in") || !strings.Contains(r.Stderr, "(did you mean topic?)") {
			t.Fatalf("no warning on stderr: %s", r)
		}
		table := runBinary(t, dir, nil, append(args, "config", "show")...)
		if table.Code != 0 || !regexp.MustCompile(`(?m)^topik +jobs +file .*UNKNOWN KEY, did you mean topic\?`).MatchString(table.Stdout) {
			t.Fatalf("table does not mark topik: %s", table)
		}
		other := runBinary(t, dir, nil, append(args, "produce", "--count", "1")...)
		if other.Code != 2 || !strings.Contains(other.Stderr, "unknown key topik in ") || !strings.Contains(other.Stderr, "jobctl.yaml (did you mean topic?)") {
			t.Fatalf("produce with the same file: %s", other)
		}
	}
}
