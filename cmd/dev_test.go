package cmd

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jobctl/jobctl/pkg/handler"
	"github.com/jobctl/jobctl/pkg/job"
	"github.com/jobctl/jobctl/pkg/producer"
	"github.com/spf13/pflag"
)

// dev runs a worker like consume does, so it takes every handler flag
// consume takes, with the same meaning and config key.
func TestDevTakesConsumesHandlerFlags(t *testing.T) {
	app := &App{}
	consume, dev := newConsumeCmd(app).Flags(), newDevCmd(app).Flags()
	shared := pflag.NewFlagSet("shared", pflag.ContinueOnError)
	addHandlerFlags(shared)
	n := 0
	shared.VisitAll(func(want *pflag.Flag) {
		n++
		for name, fs := range map[string]*pflag.FlagSet{"consume": consume, "dev": dev} {
			got := fs.Lookup(want.Name)
			if got == nil {
				t.Errorf("%s has no --%s", name, want.Name)
				continue
			}
			if got.Usage != want.Usage || got.Shorthand != want.Shorthand ||
				strings.Join(got.Annotations[keyAnnotation], ",") != strings.Join(want.Annotations[keyAnnotation], ",") {
				t.Errorf("%s --%s differs from the shared definition", name, want.Name)
			}
		}
	})
	for _, name := range []string{"handler", "route", "exec-command", "type-policy", "max-attempts", "concurrency"} {
		if shared.Lookup(name) == nil {
			t.Errorf("the shared handler flags lack --%s", name)
		}
	}
}

func TestPrepareDevDataDir(t *testing.T) {
	// Missing: created and marked.
	dir := filepath.Join(t.TempDir(), "x", "dev")
	if err := prepareDevDataDir(dir); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, devMarker)); err != nil {
		t.Fatalf("not marked: %v", err)
	}
	// Marked and not empty: ours.
	if err := os.WriteFile(filepath.Join(dir, "groups.log"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := prepareDevDataDir(dir); err != nil {
		t.Fatalf("a marked directory was refused: %v", err)
	}
	// Empty: marked.
	empty := t.TempDir()
	if err := prepareDevDataDir(empty); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(empty, devMarker)); err != nil {
		t.Fatalf("empty dir not marked: %v", err)
	}
	// Not empty, not marked: refused, as a usage error naming it.
	foreign := t.TempDir()
	if err := os.WriteFile(filepath.Join(foreign, "thesis.tex"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	err := prepareDevDataDir(foreign)
	var ue *usageError
	if !errors.As(err, &ue) || !strings.Contains(err.Error(), foreign) || !strings.Contains(err.Error(), devMarker) {
		t.Fatalf("want a usage error naming %s and %s, got %v", foreign, devMarker, err)
	}
	if _, err := os.Stat(filepath.Join(foreign, devMarker)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a refused directory was marked: %v", err)
	}
	// A file, not a directory.
	file := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := prepareDevDataDir(file); err == nil || !strings.Contains(err.Error(), file) {
		t.Fatalf("a file as data dir: want an error naming it, got %v", err)
	}
}

func TestDefaultDevDataDir(t *testing.T) {
	t.Setenv("XDG_DATA_HOME", "/srv/data")
	if d, err := defaultDevDataDir(); err != nil || d != "/srv/data/jobctl/dev" {
		t.Fatalf("with XDG_DATA_HOME: %q, %v", d, err)
	}
}

func TestDemoSourceAndHandler(t *testing.T) {
	counts := map[string]int{}
	src := &demoSource{mock: producer.NewMockSource(1000, demoOKType, nil)}
	for range 100 {
		ev, err := src.Next(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		counts[ev.Type]++
	}
	if counts[demoBrokenType] != 100/demoBrokenEvery || counts[demoFlakyType] != 100/demoFlakyEvery || counts[demoOKType] != 85 {
		t.Fatalf("demo job types over 100 jobs: %v", counts)
	}

	ran := 0
	h := demoHandler{next: handler.HandlerFunc(func(context.Context, job.Event) error { ran++; return nil })}
	for attempt := 1; attempt <= 5; attempt++ {
		err := h.Handle(context.Background(), job.Event{Type: demoBrokenType, Attempt: attempt})
		if err == nil {
			t.Errorf("broken job succeeded on attempt %d", attempt)
		}
		err = h.Handle(context.Background(), job.Event{Type: demoFlakyType, Attempt: attempt})
		if (err != nil) != (attempt <= demoFlakyFailures) {
			t.Errorf("flaky job attempt %d: error %v", attempt, err)
		}
	}
	if err := h.Handle(context.Background(), job.Event{Type: demoOKType, Attempt: 1}); err != nil || ran != 4 {
		t.Fatalf("the configured handler ran %d times (want 3 flaky successes + 1 demo), last error %v", ran, err)
	}
}
