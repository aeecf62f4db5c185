package handler

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/jobctl/jobctl/pkg/job"
)

func TestMuxRoutesByType(t *testing.T) {
	var ran []string
	named := func(name string) Handler {
		return HandlerFunc(func(context.Context, job.Event) error { ran = append(ran, name); return nil })
	}
	m := NewMux()
	m.Route("email", named("mail"))
	m.Route("resize", named("resize"))
	m.Route("echo", Exec{Command: []string{`printf '{"ok": true}'`}})
	ctx := context.Background()
	for _, typ := range []string{"resize", "email", "resize"} {
		if err := m.Handle(ctx, job.Event{JobID: job.NumericID(1), Type: typ}); err != nil {
			t.Fatal(err)
		}
	}
	if want := []string{"resize", "mail", "resize"}; len(ran) != 3 || ran[0] != want[0] || ran[1] != want[1] || ran[2] != want[2] {
		t.Fatalf("ran %v, want %v", ran, want)
	}
	res, err := m.HandleResult(ctx, job.Event{JobID: job.NumericID(2), Type: "echo"})
	if err != nil || string(res) != `{"ok":true}` {
		t.Fatalf("a routed exec: result %s, err %v", res, err)
	}
	if res, err := m.HandleResult(ctx, job.Event{JobID: job.NumericID(3), Type: "email"}); err != nil || res != nil {
		t.Fatalf("a plain handler has no result: %s, %v", res, err)
	}

	_, err = m.HandleResult(ctx, job.Event{JobID: job.NumericID(4), Type: "fax"})
	var nh NoHandlerError
	if !errors.Is(err, ErrNoHandler) || !errors.As(err, &nh) || nh.Type != "fax" || err.Error() != `no handler for job type "fax"` {
		t.Fatalf("unrouted type: err = %v", err)
	}
	if got := m.Types(); len(got) != 3 || got[0] != "echo" || got[2] != "resize" {
		t.Errorf("Types = %v", got)
	}

	m.Fallback(named("fallback"))
	if err := m.Handle(ctx, job.Event{JobID: job.NumericID(5), Type: "fax"}); err != nil || ran[len(ran)-1] != "fallback" {
		t.Fatalf("with a fallback: err %v, ran %v", err, ran)
	}
}

func TestResultJSONOrString(t *testing.T) {
	for _, c := range []struct{ out, want string }{
		{"", ""},
		{" \n", ""},
		{"{\"a\": [1, 2]}\n", `{"a":[1,2]}`},
		{"42", `42`},
		{`"quoted"`, `"quoted"`},
		{"hello <world>\n", `"hello \u003cworld\u003e"`},
		{"{not json", `"{not json"`},
		{"two\nlines\n", `"two\nlines"`},
		{"bad \xff byte", "\"bad \uFFFD byte\""},
	} {
		got := Result([]byte(c.out), int64(len(c.out)))
		if string(got) != c.want {
			t.Errorf("Result(%q) = %s, want %s", c.out, got, c.want)
		}
		if got != nil && !json.Valid(got) {
			t.Errorf("Result(%q) = %s is not JSON", c.out, got)
		}
	}
	// Cut JSON is a string with a note, never broken JSON.
	got := Result([]byte(`{"a":`), 100)
	var s string
	if err := json.Unmarshal(got, &s); err != nil || s != "{\"a\":\n[truncated: the first 5 of 100 bytes]" {
		t.Errorf("truncated: %s (%v)", got, err)
	}
	// Output that grows when escaped is cut to fit MaxResultBytes too.
	for _, out := range [][]byte{bytes.Repeat([]byte{1}, MaxResultBytes), bytes.Repeat([]byte("x"), MaxResultBytes), bytes.Repeat([]byte("é"), MaxResultBytes)} {
		for _, total := range []int64{int64(len(out)), 10 * int64(len(out))} {
			got := Result(out, total)
			if len(got) > MaxResultBytes || json.Unmarshal(got, &s) != nil || !strings.Contains(s, "[truncated: the first ") || len(s) < 1000 {
				t.Errorf("%d bytes of %q (of %d): result of %d bytes, %.80q", len(out), out[:2], total, len(got), s)
			}
		}
	}
	// A big JSON value is kept only if it fits.
	big := []byte(`["` + strings.Repeat("y", MaxResultBytes) + `"]`)
	if got := Result(big, int64(len(big))); len(got) > MaxResultBytes || got[0] != '"' {
		t.Errorf("oversized JSON: %d bytes %.20s", len(got), got)
	}
}

func TestExecResultIsStdoutCapped(t *testing.T) {
	ctx := context.Background()
	res, err := Exec{Command: []string{`cat; echo; echo ' {"seen": true}' >/dev/null`}}.HandleResult(ctx, testJob(`{"to":"a@b.c"}`))
	if err != nil || string(res) != `{"to":"a@b.c"}` {
		t.Fatalf("stdout echoing the payload: result %s, err %v", res, err)
	}
	res, err = Exec{Command: []string{`echo processed 3 files; echo warn >&2`}}.HandleResult(ctx, testJob(""))
	if err != nil || string(res) != `"processed 3 files"` {
		t.Fatalf("text stdout: result %s, err %v", res, err)
	}
	// 200 KiB of output: the first 64 KiB are kept, the job still succeeds.
	res, err = Exec{Command: []string{`head -c 204800 /dev/zero | tr '\0' x`}}.HandleResult(ctx, testJob(""))
	if err != nil {
		t.Fatalf("oversized stdout must not fail the job: %v", err)
	}
	var s string
	if err := json.Unmarshal(res, &s); err != nil {
		t.Fatal(err)
	}
	if len(res) > MaxResultBytes || len(s) < MaxResultBytes-200 || s[:10] != "xxxxxxxxxx" {
		t.Fatalf("truncated result is %d bytes (%d encoded)", len(s), len(res))
	}
	if want := fmt.Sprintf("\n[truncated: the first %d of 204800 bytes]", strings.Count(s, "x")); s[len(s)-len(want):] != want {
		t.Fatalf("truncated result ends %q", s[len(s)-60:])
	}
	// A failure has no result, and Handle still discards stdout.
	if res, err := (Exec{Command: []string{`echo out; exit 2`}}).HandleResult(ctx, testJob("")); err == nil || res != nil {
		t.Fatalf("failed command: result %s, err %v", res, err)
	}
	if err := (Exec{Command: []string{`echo out`}}).Handle(ctx, testJob("")); err != nil {
		t.Fatal(err)
	}
}

func TestMuxReturnsPromptlyAsItsRoute(t *testing.T) {
	m := NewMux()
	m.Route("sleep", Sleep{})
	m.Route("exec", Exec{Command: []string{"true"}})
	if !m.ReturnsPromptly("sleep") || m.ReturnsPromptly("exec") {
		t.Error("ReturnsPromptly does not follow the type's handler")
	}
	if !m.ReturnsPromptly("unrouted") {
		t.Error("a type without a handler fails at once: it returns promptly")
	}
	m.Fallback(HandlerFunc(func(context.Context, job.Event) error { return nil }))
	if m.ReturnsPromptly("unrouted") {
		t.Error("a HandlerFunc makes no promise, the fallback must not either")
	}
}
