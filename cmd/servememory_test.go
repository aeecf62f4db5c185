package cmd

import (
	"context"
	"log/slog"
	"runtime"
	"runtime/debug"
	"testing"
	"time"
)

func TestMemoryLimitFor(t *testing.T) {
	const mib = 1 << 20
	for _, c := range []struct {
		name           string
		live, overhead uint64
		want           int64
	}{
		// A big view: a quarter of it is left for garbage.
		{"2 M jobs", 320 * mib, 16 * mib, (320 + 16 + 80) * mib},
		// A small view keeps at least the minimum headroom.
		{"small view", 8 * mib, 4 * mib, (8 + 4 + 32) * mib},
		{"nothing read yet", 0, 0, 32 * mib},
	} {
		if got := memoryLimitFor(c.live, c.overhead); got != c.want {
			t.Errorf("%s: memoryLimitFor(%d, %d) = %d, want %d", c.name, c.live, c.overhead, got, c.want)
		}
	}
}

func TestUserTunedGC(t *testing.T) {
	env := func(kv map[string]string) func(string) string { return func(k string) string { return kv[k] } }
	if userTunedGC(env(nil)) {
		t.Error("no GOGC/GOMEMLIMIT counted as tuned")
	}
	if !userTunedGC(env(map[string]string{"GOGC": "50"})) || !userTunedGC(env(map[string]string{"GOMEMLIMIT": "1GiB"})) {
		t.Error("GOGC or GOMEMLIMIT in the environment not respected")
	}
}

func TestRuntimeMemoryReadsTheHeap(t *testing.T) {
	keep := make([]byte, 8<<20)
	debug.FreeOSMemory() // a GC, so the live heap is measured
	live, overhead := runtimeMemory()
	if live < 8<<20 {
		t.Errorf("live heap %d bytes with an 8 MiB slice alive", live)
	}
	if overhead == 0 {
		t.Error("no runtime overhead measured (stacks at least)")
	}
	runtime.KeepAlive(keep)
}

// limitMemoryToView sets a limit once the view is ready and restores the
// previous one when it returns; with GOGC set it leaves the GC alone.
func TestLimitMemoryToView(t *testing.T) {
	t.Setenv("GOGC", "")
	t.Setenv("GOMEMLIMIT", "")
	before := debug.SetMemoryLimit(-1)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		limitMemoryToView(ctx, func() bool { return true }, slog.New(slog.DiscardHandler))
	}()
	deadline := time.Now().Add(10 * time.Second)
	for debug.SetMemoryLimit(-1) == before {
		if time.Now().After(deadline) {
			t.Fatal("no memory limit set within 10s of the view being ready")
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	<-done
	if got := debug.SetMemoryLimit(-1); got != before {
		t.Errorf("limit after return = %d, want the previous %d", got, before)
	}

	t.Setenv("GOGC", "200")
	ctx2, cancel2 := context.WithCancel(context.Background())
	cancel2()
	limitMemoryToView(ctx2, func() bool { return true }, slog.New(slog.DiscardHandler))
	if got := debug.SetMemoryLimit(-1); got != before {
		t.Errorf("with GOGC set the limit changed to %d", got)
	}
}
