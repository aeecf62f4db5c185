package config

import (
	"strings"
	"testing"
	"time"
)

func TestParseRoutes(t *testing.T) {
	got, err := ParseRoutes([]string{"email=exec:./send-mail.sh --to a,b", "resize = exec: python3 resize.py", "report=sleep:2s", "*=default", "pdf=sleep"})
	if err != nil {
		t.Fatal(err)
	}
	want := []Route{
		{Type: "email", Handler: "exec", Command: "./send-mail.sh --to a,b"},
		{Type: "resize", Handler: "exec", Command: "python3 resize.py"},
		{Type: "report", Handler: "sleep", Sleep: 2 * time.Second, SleepSet: true},
		{Type: "*", Handler: "default"},
		{Type: "pdf", Handler: "sleep"},
	}
	if len(got) != len(want) {
		t.Fatalf("got %+v", got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("route %d = %+v, want %+v", i, got[i], want[i])
		}
	}
	if r, err := ParseRoutes(nil); err != nil || len(r) != 0 {
		t.Errorf("no routes: %v %v", r, err)
	}
}

func TestParseRoutesErrorsNameTheSpec(t *testing.T) {
	for spec, want := range map[string]string{
		"email":             "want TYPE=exec:COMMAND",
		"=exec:x":           "want TYPE=exec:COMMAND",
		"email=exec":        "exec needs a command",
		"email=exec:  ":     "exec needs a command",
		"email=run:./x":     `unknown handler "run"`,
		"report=sleep:soon": "not a duration",
		"report=sleep:-1s":  "not a duration",
	} {
		_, err := ParseRoutes([]string{spec})
		if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), spec) {
			t.Errorf("%q: err = %v, want one naming the spec and %q", spec, err, want)
		}
	}
	if _, err := ParseRoutes([]string{"a=sleep", "a=exec:x"}); err == nil || !strings.Contains(err.Error(), `type "a" has two routes`) {
		t.Errorf("duplicate type: err = %v", err)
	}
}
