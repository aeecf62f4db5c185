package view

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"
)

// TestHistoryEncoding checks the varint history against a plain slice
// model: random events (times in any order and of any size, names by
// index and inline, errors of any length), appended under a limit, decode
// to the model's last `limit` events.
func TestHistoryEncoding(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	randRef := func() strRef {
		switch r.IntN(3) {
		case 0:
			return strRef{}
		case 1:
			return strRef{idx: int32(1 + r.IntN(70_000))}
		}
		return strRef{idx: -1, name: strings.Repeat("n", r.IntN(300))}
	}
	for round := range 300 {
		limit := 1 + r.IntN(25)
		var b []byte
		var model []hist
		for range r.IntN(60) {
			h := hist{
				at:      []int64{0, r.Int64(), -r.Int64(), math.MaxInt64, math.MinInt64, 1_764_000_000_000_000_000 + r.Int64N(1e12)}[r.IntN(6)],
				run:     int32(r.Uint32()),
				attempt: int32(r.IntN(1000)),
				status:  uint8(r.IntN(7)),
				group:   randRef(),
				worker:  randRef(),
			}
			if r.IntN(3) == 0 {
				h.err = []byte(strings.Repeat("e", r.IntN(5000)))
			}
			b = appendEvent(b, &h, limit)
			model = append(model, h)
			if len(model) > limit {
				model = model[1:]
			}
		}
		rd := histReader{b: b}
		var got hist
		i := 0
		for rd.next(&got) {
			if i >= len(model) || !got.equal(&model[i]) {
				t.Fatalf("round %d (limit %d): event %d decodes as %+v, want %+v", round, limit, i, got, model[min(i, len(model)-1)])
			}
			i++
		}
		if i != len(model) || histCount(b) != len(model) {
			t.Fatalf("round %d: %d events decoded, want %d", round, i, len(model))
		}
	}
}
