package worker

import "math/bits"

// idTable maps integer job ids to their seenEntry: an open-addressing hash
// table with linear probing and backward-shift deletion.
//
// seenJobs inserts an id for every job and deletes one for every job that
// leaves its window, so its table is always full of churn. In a Go map,
// deletions from full groups leave tombstones that a lookup of an absent
// id (every new job is one) must probe past: with 100,000 ids per
// partition, map lookups were ~14% of a no-op job's CPU, mostly probing.
// Backward-shift deletion leaves no tombstones, so a lookup stops at the
// first empty slot, and the load stays under 5/8.
type idTable struct {
	slots []idSlot // a power of two of them
	shift uint     // 64 - log2(len(slots)), for Fibonacci hashing
	n     int
}

// idSlot is one entry; offset -1 marks an empty slot (offsets are >= 0).
type idSlot struct {
	key   int64
	entry seenEntry
}

const idTableMinSlots = 1024

func (t *idTable) init(slots int) {
	t.slots = make([]idSlot, slots)
	for i := range t.slots {
		t.slots[i].entry.offset = -1
	}
	t.shift = uint(64 - bits.TrailingZeros(uint(slots)))
	t.n = 0
}

// home is the slot a key hashes to.
func (t *idTable) home(key int64) int {
	return int((uint64(key) * 0x9E3779B97F4A7C15) >> t.shift)
}

// find returns the slot of key, or -1.
func (t *idTable) find(key int64) int {
	if t.n == 0 {
		return -1
	}
	mask := len(t.slots) - 1
	for i := t.home(key); ; i = (i + 1) & mask {
		s := &t.slots[i]
		if s.entry.offset < 0 {
			return -1
		}
		if s.key == key {
			return i
		}
	}
}

func (t *idTable) get(key int64) (seenEntry, bool) {
	if i := t.find(key); i >= 0 {
		return t.slots[i].entry, true
	}
	return seenEntry{}, false
}

// put sets the entry of key; e.offset must be >= 0.
func (t *idTable) put(key int64, e seenEntry) {
	if t.slots == nil {
		t.init(idTableMinSlots)
	}
	if (t.n+1)*8 > len(t.slots)*5 {
		t.grow()
	}
	mask := len(t.slots) - 1
	for i := t.home(key); ; i = (i + 1) & mask {
		s := &t.slots[i]
		if s.entry.offset < 0 {
			s.key, s.entry = key, e
			t.n++
			return
		}
		if s.key == key {
			s.entry = e
			return
		}
	}
}

func (t *idTable) grow() {
	old := t.slots
	t.init(2 * len(old))
	for i := range old {
		if old[i].entry.offset >= 0 {
			t.put(old[i].key, old[i].entry)
		}
	}
}

// deleteAt removes key if its entry's offset is offset (the sighting
// being forgotten is still its latest).
func (t *idTable) deleteAt(key int64, offset int64) {
	i := t.find(key)
	if i < 0 || t.slots[i].entry.offset != offset {
		return
	}
	t.n--
	mask := len(t.slots) - 1
	// Backward shift: move later entries of the probe run into the hole
	// unless their home lies cyclically in (hole, j].
	for j := (i + 1) & mask; t.slots[j].entry.offset >= 0; j = (j + 1) & mask {
		h := t.home(t.slots[j].key)
		if (j > i && (h <= i || h > j)) || (j < i && h <= i && h > j) {
			t.slots[i] = t.slots[j]
			i = j
		}
	}
	t.slots[i] = idSlot{entry: seenEntry{offset: -1}}
}

func (t *idTable) len() int { return t.n }
