package view

// intIndex finds jobs by integer id. It replaced a map[int64]*entry, which
// cost ~39 bytes a job at 1 M jobs (a 16-byte slot plus the table's
// headroom) — a fifth of the view. Here a slot is the 4-byte number of
// the job's entry in the slab (entrySlab.at), and the key is read from
// the entry itself: open addressing, linear probing, at most 3/4 full.
type intIndex struct {
	slots []uint32 // 0: empty; else 1 + the entry's slab number
	n     int
	shift uint // 64 - log2(len(slots))
}

func (x *intIndex) home(num int64) int {
	// Fibonacci hashing spreads the sequential ids producers use.
	return int((uint64(num) * 0x9E3779B97F4A7C15) >> x.shift)
}

// get returns the entry with id num, or nil.
func (x *intIndex) get(s *entrySlab, num int64) *entry {
	if x.n == 0 {
		return nil
	}
	mask := len(x.slots) - 1
	for i := x.home(num); ; i = (i + 1) & mask {
		k := x.slots[i]
		if k == 0 {
			return nil
		}
		if e := s.at(k - 1); e.num == num {
			return e
		}
	}
}

// put adds the entry with slab number k, whose id num is not there yet.
func (x *intIndex) put(s *entrySlab, num int64, k uint32) {
	if (x.n+1)*4 > len(x.slots)*3 {
		x.grow(s)
	}
	mask := len(x.slots) - 1
	i := x.home(num)
	for x.slots[i] != 0 {
		i = (i + 1) & mask
	}
	x.slots[i] = k + 1
	x.n++
}

func (x *intIndex) grow(s *entrySlab) {
	size, shift := 1024, uint(64-10)
	if len(x.slots) > 0 {
		size, shift = 2*len(x.slots), x.shift-1
	}
	old := x.slots
	x.slots, x.shift = make([]uint32, size), shift
	mask := size - 1
	for _, k := range old {
		if k == 0 {
			continue
		}
		i := x.home(s.at(k - 1).num)
		for x.slots[i] != 0 {
			i = (i + 1) & mask
		}
		x.slots[i] = k
	}
}
