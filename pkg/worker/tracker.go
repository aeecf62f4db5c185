package worker

import "sync"

// OffsetTracker follows the records of each assigned partition from fetch
// to completion and says which offset is safe to commit: the first record
// not yet completed (the contiguous low-water mark), so a commit never
// skips a job that is still running. Jobs finish out of order (different
// keys run in parallel), so a job at offset 7 finishing before the one at
// 5 does not let the commit pass 5. The mark only moves forward:
// kafka-go would happily commit a smaller offset and rewind the group.
//
// Offsets need not be contiguous (compaction and transaction markers
// leave gaps); the tracker only relies on a partition's records being
// fetched in increasing offset order.
type OffsetTracker struct {
	mu    sync.Mutex
	parts map[int]*partitionOffsets
}

type partitionOffsets struct {
	pending   []int64        // fetched and not completed, ascending; pending[head:] is live
	head      int            //
	done      map[int64]bool // completed offsets still in pending
	last      int64          // last fetched offset, -1 before the first
	next      int64          // offset to resume from when nothing is pending, -1 if unknown
	committed int64          // last committed (or assigned) offset, -1 if none
}

// NewOffsetTracker returns an empty tracker.
func NewOffsetTracker() *OffsetTracker {
	return &OffsetTracker{parts: map[int]*partitionOffsets{}}
}

// Assign starts tracking partition, whose group offset is committed (the
// next record to process), or negative when the group has none yet.
func (t *OffsetTracker) Assign(partition int, committed int64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if committed < 0 {
		committed = -1
	}
	t.parts[partition] = &partitionOffsets{done: map[int64]bool{}, last: -1, next: committed, committed: committed}
}

// Fetched records that the record at offset was fetched. It returns false
// for a record at or below one already fetched (a redelivery), which the
// caller must skip.
func (t *OffsetTracker) Fetched(partition int, offset int64) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	p := t.parts[partition]
	if p == nil || offset <= p.last || offset < p.committed {
		return false
	}
	p.last = offset
	p.pending = append(p.pending, offset)
	return true
}

// Completed records that the records at offsets need no more work:
// their jobs' events are written, or they were not jobs to run.
func (t *OffsetTracker) Completed(partition int, offsets ...int64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	p := t.parts[partition]
	if p == nil {
		return
	}
	for _, offset := range offsets {
		p.complete(offset)
	}
}

func (p *partitionOffsets) complete(offset int64) {
	if p.head == len(p.pending) || offset < p.pending[p.head] || offset > p.last {
		return // not pending: completed twice, or never fetched
	}
	if offset == p.pending[p.head] {
		p.head++ // in order, the usual case: no map write
	} else {
		p.done[offset] = true
	}
	for len(p.done) > 0 && p.head < len(p.pending) && p.done[p.pending[p.head]] {
		delete(p.done, p.pending[p.head])
		p.head++
	}
	if p.head == len(p.pending) {
		p.pending, p.head = p.pending[:0], 0
		p.next = p.last + 1
	} else if p.head > 1024 && p.head > len(p.pending)/2 {
		p.pending = append(p.pending[:0], p.pending[p.head:]...)
		p.head = 0
	}
}

// lowWater is the offset a commit may name for p, or -1 when nothing is
// known yet.
func (p *partitionOffsets) lowWater() int64 {
	if p.head < len(p.pending) {
		return p.pending[p.head]
	}
	return p.next
}

// Committable returns, per partition, the low-water mark where it is
// ahead of the last commit: exactly what the next commit should send.
func (t *OffsetTracker) Committable() map[int]int64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := map[int]int64{}
	for id, p := range t.parts {
		if lw := p.lowWater(); lw >= 0 && lw > p.committed {
			out[id] = lw
		}
	}
	return out
}

// MarkCommitted records a successful commit of offsets. A value below
// what is already recorded is ignored: the mark never moves backwards.
func (t *OffsetTracker) MarkCommitted(offsets map[int]int64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for id, off := range offsets {
		if p := t.parts[id]; p != nil && off > p.committed {
			p.committed = off
		}
	}
}

// Committed returns the last committed offset of each partition (-1 for
// none).
func (t *OffsetTracker) Committed() map[int]int64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make(map[int]int64, len(t.parts))
	for id, p := range t.parts {
		out[id] = p.committed
	}
	return out
}

// Pending returns how many fetched records of partition are not completed.
func (t *OffsetTracker) Pending(partition int) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	if p := t.parts[partition]; p != nil {
		return len(p.pending) - p.head
	}
	return 0
}

// DoneAbove reports whether records of partition above its low-water mark
// are already completed: a commit at the mark would leave finished jobs
// behind it.
func (t *OffsetTracker) DoneAbove(partition int) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	p := t.parts[partition]
	return p != nil && len(p.done) > 0
}

// LowWater returns the offset a commit of partition would name now, or -1
// when nothing is known.
func (t *OffsetTracker) LowWater(partition int) int64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	if p := t.parts[partition]; p != nil {
		return p.lowWater()
	}
	return -1
}
