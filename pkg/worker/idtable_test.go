package worker

import (
	"math/rand/v2"
	"testing"
)

// TestIDTableMatchesAMap runs random puts and deletes, with the churn
// seenJobs makes and with clustered keys, against a Go map.
func TestIDTableMatchesAMap(t *testing.T) {
	for _, keys := range []struct {
		name string
		gen  func(r *rand.Rand) int64
	}{
		{"random", func(r *rand.Rand) int64 { return r.Int64N(5000) - 2500 }},
		{"sequential", func(r *rand.Rand) int64 { return 1_000_000_000_000_000 + r.Int64N(3000) }},
		{"colliding", func(r *rand.Rand) int64 { return r.Int64N(200) << 40 }},
	} {
		t.Run(keys.name, func(t *testing.T) {
			r := rand.New(rand.NewPCG(1, 2))
			var tab idTable
			ref := map[int64]seenEntry{}
			for op := range 200_000 {
				k := keys.gen(r)
				switch r.IntN(3) {
				case 0, 1:
					e := seenEntry{pos: attemptPos{run: r.Int32N(3), attempt: r.Int32N(5)}, offset: int64(op), terminal: r.IntN(2) == 0}
					tab.put(k, e)
					ref[k] = e
				case 2:
					off := int64(op)
					if e, ok := ref[k]; ok && r.IntN(4) > 0 {
						off = e.offset // mostly a delete of the latest sighting
					}
					tab.deleteAt(k, off)
					if e, ok := ref[k]; ok && e.offset == off {
						delete(ref, k)
					}
				}
				if op%997 == 0 {
					for k, want := range ref {
						if got, ok := tab.get(k); !ok || got != want {
							t.Fatalf("op %d: key %d = %+v %v, want %+v", op, k, got, ok, want)
						}
					}
				}
				if tab.len() != len(ref) {
					t.Fatalf("op %d: %d entries, want %d", op, tab.len(), len(ref))
				}
				if _, ok := tab.get(k); ok != func() bool { _, in := ref[k]; return in }() {
					t.Fatalf("op %d: key %d present %v", op, k, ok)
				}
			}
		})
	}
}

func BenchmarkSeenJobsChurn(b *testing.B) {
	s := newSeenJobs(DefaultDedupWindow)
	base := int64(1_700_000_000_000_000)
	b.ReportAllocs()
	for i := range b.N {
		k := jobKey{n: base + int64(i)*7919}
		pos := attemptPos{run: 0, attempt: 1}
		if s.runs(k, pos) {
			s.note(k, pos, int64(2*i))
		}
		s.terminal(k, pos, int64(2*i+1), true)
	}
}
