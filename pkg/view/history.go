package view

import (
	"encoding/binary"
)

// A job's history is kept as one []byte of varint-encoded events instead
// of a slice of structs with three strings each: at 1,000,000 jobs with a
// NEW and a DONE each that was 144 bytes a job, this is about 24. An
// event is
//
//	status (1 byte)
//	at: zigzag varint, relative to the previous event's (to 0 for the first)
//	run, attempt: uvarint
//	took: uvarint microseconds since the attempt started, plus one (0:
//	unknown; only events that end an attempt carry a started_at)
//	group, worker: a string reference (see appendStrRef)
//	error: uvarint length, then its bytes
//
// Decoding a history is only needed for Get, for the duplicate check of
// each event applied to a known job and for the few other questions asked
// of past events; they are short (at most Options.HistoryLimit events).

// hist is one decoded history event. Group and worker are indexes into
// the view's group and string tables when they have one; err, and the
// names without index, point into the encoded history (valid until it
// changes).
type hist struct {
	at      int64
	run     int32
	attempt int32
	took    int64 // microseconds the attempt ran, +1 (0: unknown)
	status  uint8
	group   strRef
	worker  strRef
	err     []byte
}

// strRef is a reference to a name: an index into a table (idx >= 0) or,
// for names the table had no room for, the name itself.
type strRef struct {
	idx  int32 // -1: name in raw; 0: ""
	raw  []byte
	name string // set on references built from an event (not decoded)
}

func (r strRef) equal(o strRef) bool {
	if r.idx >= 0 || o.idx >= 0 {
		return r.idx == o.idx
	}
	return string(r.rawBytes()) == string(o.rawBytes())
}

func (r strRef) rawBytes() []byte {
	if r.raw != nil {
		return r.raw
	}
	return []byte(r.name)
}

func (h *hist) equal(o *hist) bool {
	return h.at == o.at && h.run == o.run && h.attempt == o.attempt && h.took == o.took && h.status == o.status &&
		h.group.equal(o.group) && h.worker.equal(o.worker) && string(h.err) == string(o.err)
}

// appendStrRef encodes r: uvarint 0 for "", 1 then the length and bytes
// of a name without index, idx+1 for an index.
func appendStrRef(b []byte, r strRef) []byte {
	if r.idx >= 0 {
		if r.idx == 0 {
			return append(b, 0)
		}
		return binary.AppendUvarint(b, uint64(r.idx)+1)
	}
	raw := r.rawBytes()
	b = append(b, 1)
	b = binary.AppendUvarint(b, uint64(len(raw)))
	return append(b, raw...)
}

func appendHist(b []byte, prevAt int64, h *hist) []byte {
	b = append(b, h.status)
	b = binary.AppendVarint(b, h.at-prevAt)
	b = binary.AppendUvarint(b, uint64(uint32(h.run)))
	b = binary.AppendUvarint(b, uint64(uint32(h.attempt)))
	b = binary.AppendUvarint(b, uint64(h.took))
	b = appendStrRef(b, h.group)
	b = appendStrRef(b, h.worker)
	b = binary.AppendUvarint(b, uint64(len(h.err)))
	return append(b, h.err...)
}

// histReader walks an encoded history.
type histReader struct {
	b    []byte
	i    int
	prev int64
}

func (r *histReader) uvarint() uint64 {
	v, n := binary.Uvarint(r.b[r.i:])
	r.i += n
	return v
}

func (r *histReader) strRef() strRef {
	k := r.uvarint()
	switch k {
	case 0:
		return strRef{}
	case 1:
		n := int(r.uvarint())
		s := strRef{idx: -1, raw: r.b[r.i : r.i+n : r.i+n]}
		r.i += n
		return s
	}
	return strRef{idx: int32(k - 1)}
}

// next decodes the next event into h; false at the end.
func (r *histReader) next(h *hist) bool {
	if r.i >= len(r.b) {
		return false
	}
	h.status = r.b[r.i]
	r.i++
	d, n := binary.Varint(r.b[r.i:])
	r.i += n
	h.at = r.prev + d
	r.prev = h.at
	h.run = int32(uint32(r.uvarint()))
	h.attempt = int32(uint32(r.uvarint()))
	h.took = int64(r.uvarint())
	h.group = r.strRef()
	h.worker = r.strRef()
	en := int(r.uvarint())
	h.err = nil
	if en > 0 {
		h.err = r.b[r.i : r.i+en : r.i+en]
	}
	r.i += en
	return true
}

// histCount is the number of events in an encoded history.
func histCount(b []byte) int {
	r := histReader{b: b}
	var h hist
	n := 0
	for r.next(&h) {
		n++
	}
	return n
}

// appendEvent adds h to the encoded history b, dropping the oldest event
// first when b already holds limit events.
func appendEvent(b []byte, h *hist, limit int) []byte {
	r := histReader{b: b}
	var x hist
	n, lastAt := 0, int64(0)
	for r.next(&x) {
		n++
		lastAt = x.at
	}
	if n >= limit {
		// Re-encode from the second event: its time was relative to the
		// first's.
		var rest []byte
		rr := histReader{b: b}
		rr.next(&x)
		prev := int64(0)
		for rr.next(&x) {
			rest = appendHist(rest, prev, &x)
			prev = x.at
		}
		b = append(b[:0], rest...)
		if limit <= 1 {
			b = b[:0]
			lastAt = 0
		}
	}
	if len(b) == 0 {
		lastAt = 0
	}
	if cap(b) == 0 {
		// Room for a NEW and the event that ends it: most jobs stop there.
		b = make([]byte, 0, 32)
	}
	return appendHist(b, lastAt, h)
}
