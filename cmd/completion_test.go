package cmd

import (
	"bytes"
	"log/slog"
	"slices"
	"strings"
	"testing"
)

// Every command path that should complete its arguments exists and got
// its function (a renamed command would otherwise lose it silently), and
// --topic/--group complete wherever they are defined.
func TestRegisterCompletions(t *testing.T) {
	var out bytes.Buffer
	app := &App{IO: IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &out}, Logger: slog.New(slog.DiscardHandler)}
	root := NewRootCmd(app)
	for path := range argCompletions {
		c := findSubcommand(root, path)
		if c == nil {
			t.Errorf("no command %q to complete the arguments of", path)
			continue
		}
		if c.ValidArgsFunction == nil {
			t.Errorf("%q has no argument completion", path)
		}
	}
	for path, flag := range map[string]string{"produce": "topic", "topic describe": "topic", "consume": "group", "dev": "group"} {
		c := findSubcommand(root, path)
		if c == nil {
			t.Fatalf("no command %q", path)
		}
		if _, ok := c.GetFlagCompletionFunc(flag); !ok {
			t.Errorf("%s --%s does not complete", path, flag)
		}
	}
}

func TestWithPrefix(t *testing.T) {
	got := withPrefix([]string{"a1", "b1", "a2", "a3"}, "a", []string{"a2"})
	if !slices.Equal(got, []string{"a1", "a3"}) {
		t.Fatalf("withPrefix = %q", got)
	}
	if got := withPrefix(nil, "", nil); len(got) != 0 {
		t.Fatalf("withPrefix of nothing = %q", got)
	}
}
