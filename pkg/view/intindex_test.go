package view

import (
	"math"
	"math/rand/v2"
	"testing"
)

func TestIntIndex(t *testing.T) {
	var s entrySlab
	var x intIndex
	r := rand.New(rand.NewPCG(1, 2))
	want := map[int64]*entry{}
	add := func(num int64) {
		if _, dup := want[num]; dup {
			return
		}
		e, k := s.alloc()
		e.num = num
		x.put(&s, num, k)
		want[num] = e
	}
	for i := range 20_000 {
		add(int64(i))                    // sequential, as produce makes them
		add(r.Int64() - math.MaxInt64/2) // anywhere, negative too
		add(int64(i) << 32)              // same low bits
	}
	add(math.MinInt64)
	add(math.MaxInt64)
	if x.n != len(want) {
		t.Fatalf("index holds %d, want %d", x.n, len(want))
	}
	for num, e := range want {
		if got := x.get(&s, num); got != e {
			t.Fatalf("get(%d) = %p, want %p", num, got, e)
		}
	}
	for range 10_000 {
		num := r.Int64()
		if _, ok := want[num]; !ok && x.get(&s, num) != nil {
			t.Fatalf("get(%d) found an entry that was never added", num)
		}
	}
}
