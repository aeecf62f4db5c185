package worker

import (
	"maps"
	"math/rand/v2"
	"testing"
)

func TestOffsetTrackerOutOfOrderCompletion(t *testing.T) {
	tr := NewOffsetTracker()
	tr.Assign(0, 5)
	for off := int64(5); off <= 9; off++ {
		if !tr.Fetched(0, off) {
			t.Fatalf("Fetched(%d) = false", off)
		}
	}
	if got := tr.Committable(); len(got) != 0 {
		t.Fatalf("nothing completed, Committable = %v", got)
	}
	// 7 finishes first: the commit must not pass 5.
	tr.Completed(0, 7)
	if got := tr.Committable(); len(got) != 0 {
		t.Fatalf("7 done, 5 running: Committable = %v, want nothing", got)
	}
	tr.Completed(0, 5)
	if got := tr.Committable(); !maps.Equal(got, map[int]int64{0: 6}) {
		t.Fatalf("5 and 7 done: Committable = %v, want 0:6", got)
	}
	tr.Completed(0, 6)
	if got := tr.Committable(); !maps.Equal(got, map[int]int64{0: 8}) {
		t.Fatalf("5-7 done: Committable = %v, want 0:8 (8 still running)", got)
	}
	tr.Completed(0, 9)
	tr.Completed(0, 8)
	if got := tr.Committable(); !maps.Equal(got, map[int]int64{0: 10}) {
		t.Fatalf("all done: Committable = %v, want 0:10", got)
	}
}

func TestOffsetTrackerNeverBackwards(t *testing.T) {
	tr := NewOffsetTracker()
	tr.Assign(0, 100)
	tr.Fetched(0, 100)
	tr.Completed(0, 100)
	tr.MarkCommitted(map[int]int64{0: 101})
	tr.MarkCommitted(map[int]int64{0: 50}) // a late, stale commit result
	if got := tr.Committed()[0]; got != 101 {
		t.Fatalf("Committed = %d after marking 50 over 101, want 101", got)
	}
	if got := tr.Committable(); len(got) != 0 {
		t.Fatalf("Committable = %v, want nothing (already committed)", got)
	}
	// A redelivery of an old offset is refused and changes nothing.
	if tr.Fetched(0, 100) || tr.Fetched(0, 42) {
		t.Fatal("Fetched accepted an offset at or below the last fetched/committed one")
	}
	tr.Completed(0, 42) // never fetched: ignored
	if got := tr.Committable(); len(got) != 0 {
		t.Fatalf("Committable = %v after a stray completion, want nothing", got)
	}
}

func TestOffsetTrackerGapsAndSkippedRecords(t *testing.T) {
	tr := NewOffsetTracker()
	tr.Assign(3, -1) // no committed offset yet
	if got := tr.Committable(); len(got) != 0 {
		t.Fatalf("nothing fetched: Committable = %v", got)
	}
	// Offsets with gaps (compaction, transaction markers).
	for _, off := range []int64{10, 12, 15} {
		tr.Fetched(3, off)
	}
	tr.Completed(3, 10)
	tr.Completed(3, 15)
	if got := tr.Committable(); !maps.Equal(got, map[int]int64{3: 12}) {
		t.Fatalf("Committable = %v, want 3:12", got)
	}
	tr.Completed(3, 12)
	if got := tr.Committable(); !maps.Equal(got, map[int]int64{3: 16}) {
		t.Fatalf("Committable = %v, want 3:16 (one past the last record)", got)
	}
	tr.MarkCommitted(map[int]int64{3: 16})
	if got := tr.Pending(3); got != 0 {
		t.Fatalf("Pending = %d, want 0", got)
	}
}

// TestOffsetTrackerRandomOrder checks the invariant on many random
// completion orders: the committable offset is always the smallest
// unfinished offset (or one past the last), and never decreases.
func TestOffsetTrackerRandomOrder(t *testing.T) {
	for round := range 50 {
		tr := NewOffsetTracker()
		tr.Assign(0, 0)
		const n = 3000
		for off := range int64(n) {
			tr.Fetched(0, off)
		}
		order := rand.Perm(n)
		done := make([]bool, n)
		var last, committed int64 = -1, 0
		for i, o := range order {
			tr.Completed(0, int64(o))
			done[o] = true
			want := int64(n)
			for k := range n {
				if !done[k] {
					want = int64(k)
					break
				}
			}
			got, ok := tr.Committable()[0]
			if want == 0 {
				if ok {
					t.Fatalf("round %d step %d: Committable %d with offset 0 unfinished", round, i, got)
				}
				continue
			}
			if !ok {
				// Nothing to commit: only right when want is committed.
				if want != committed {
					t.Fatalf("round %d step %d: Committable empty, want %d (committed %d)", round, i, want, committed)
				}
				continue
			}
			if got != want {
				t.Fatalf("round %d step %d: Committable = %d, want %d", round, i, got, want)
			}
			if got < last {
				t.Fatalf("round %d step %d: committable went backwards %d -> %d", round, i, last, got)
			}
			last = got
			if i%7 == 0 {
				tr.MarkCommitted(map[int]int64{0: got})
				committed = got
			}
		}
	}
}
