package cmd

import (
	"context"
	"log/slog"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"time"
)

// serve holds the whole job view on the Go heap, and the view only grows
// (~140 B of heap per job). With the default GOGC=100 the GC lets the
// heap grow to twice the live set before it collects the garbage that
// tail traffic and requests make, so RSS drifted from ~185 B/job after
// catch-up to ~290 B/job under continued traffic. A soft memory limit
// just above the live heap keeps RSS near the view's live size: the GC
// runs earlier only when the heap would grow past it, and the runtime
// returns freed pages to the OS to stay under it. GOGC stays at its
// default, so a small view (where the limit is far away) behaves as
// before. The limit is re-derived every few seconds as the view grows.
//
// An explicit GOGC or GOMEMLIMIT in the environment wins: then serve
// leaves the GC alone.

// Memory-limit tuning of serve (see above).
const (
	// memLimitHeadroomDiv: the limit leaves live/memLimitHeadroomDiv for
	// garbage (25%). Measured with 500 k jobs produced and consumed while
	// serve ran at 1.5 M jobs: an eighth held 162 B/job but cost 25% more
	// CPU than a quarter (183 B/job); GOGC=100 alone ended at 285 B/job.
	memLimitHeadroomDiv = 4
	// memLimitMinHeadroom keeps small views from collecting constantly.
	memLimitMinHeadroom = 32 << 20
	// memLimitInterval is how often the limit follows the live heap.
	memLimitInterval = 2 * time.Second
)

// memoryLimitFor is the soft memory limit for a live heap of live bytes
// plus overhead bytes of the runtime's other memory (stacks, GC
// metadata, buffers), which the limit also counts.
func memoryLimitFor(live, overhead uint64) int64 {
	return int64(live + overhead + max(live/memLimitHeadroomDiv, memLimitMinHeadroom))
}

// userTunedGC reports whether the environment sets the GC's own knobs,
// which serve must then respect.
func userTunedGC(getenv func(string) string) bool {
	return getenv("GOGC") != "" || getenv("GOMEMLIMIT") != ""
}

// runtimeMemory reads the live heap after the last GC and the runtime's
// memory besides heap spans (what the memory limit counts on top).
func runtimeMemory() (live, overhead uint64) {
	s := []metrics.Sample{
		{Name: "/gc/heap/live:bytes"},
		{Name: "/memory/classes/total:bytes"},
		{Name: "/memory/classes/heap/released:bytes"},
		{Name: "/memory/classes/heap/objects:bytes"},
		{Name: "/memory/classes/heap/unused:bytes"},
		{Name: "/memory/classes/heap/free:bytes"},
	}
	metrics.Read(s)
	v := func(i int) uint64 {
		if s[i].Value.Kind() != metrics.KindUint64 {
			return 0
		}
		return s[i].Value.Uint64()
	}
	live = v(0)
	heap := v(2) + v(3) + v(4) + v(5)
	if total := v(1); total > heap {
		overhead = total - heap
	}
	return live, overhead
}

// limitMemoryToView keeps serve's soft memory limit just above the live
// heap once the view has caught up (ready reports it), until ctx ends;
// it restores the previous limit on return. It does nothing when the
// user tuned the GC in the environment.
func limitMemoryToView(ctx context.Context, ready func() bool, log *slog.Logger) {
	if userTunedGC(os.Getenv) {
		log.Info("GOGC or GOMEMLIMIT is set: serve leaves the GC as configured")
		return
	}
	tick := time.NewTicker(memLimitInterval)
	defer tick.Stop()
	for !ready() {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
	// The rebuild leaves kafka-go's pools full: it copies every record
	// batch of a fetch into its own 64 KiB page up front, so a topic of
	// small batches (POST /jobs writes one per request or few) filled
	// pools with gigabytes of pages (heap in use 3-4 GiB, RSS 630 MiB at
	// ready on a 540 k-job topic). Pooled objects live through two GCs:
	// collect twice, so the limit is derived from the view, not the pools.
	runtime.GC()
	debug.FreeOSMemory()
	prev := debug.SetMemoryLimit(-1)
	defer debug.SetMemoryLimit(prev)
	var last int64
	for {
		live, overhead := runtimeMemory()
		if limit := memoryLimitFor(live, overhead); limit != last {
			debug.SetMemoryLimit(limit)
			if last == 0 {
				log.Debug("serve's soft memory limit follows the view", "limit_bytes", limit, "live_heap_bytes", live)
			}
			last = limit
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}
