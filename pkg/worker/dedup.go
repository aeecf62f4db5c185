package worker

// attemptPos is how far a group got with a job: the run and the attempt
// it started last. Positions compare run first, then attempt.
type attemptPos struct{ run, attempt int32 }

func (a attemptPos) after(b attemptPos) bool {
	if a.run != b.run {
		return a.run > b.run
	}
	return a.attempt > b.attempt
}

// jobKey is a job id as seenJobs keeps it: an integer id (the usual
// case: produce's, the seed's) as its int64, any other id as its text.
// Integer keys keep the maps free of pointers: with 100,000 ids per
// partition, string keys were ~12% of a no-op job's CPU (hashing, and
// the garbage collector scanning every key).
type jobKey struct {
	n       int64
	text    string // the id, when it is not a canonical integer
	textual bool
}

// keyOf returns the key of id text b. Only canonical integer text (no
// sign but '-', no leading zeros, in range) becomes an integer key, so
// two different texts never share one.
func keyOf(b []byte) jobKey {
	if n, ok := parseCanonicalInt(b); ok {
		return jobKey{n: n}
	}
	return jobKey{text: string(b), textual: true}
}

// keyOfString is keyOf for a string.
func keyOfString(s string) jobKey {
	if n, ok := parseCanonicalInt(s); ok {
		return jobKey{n: n}
	}
	return jobKey{text: s, textual: true}
}

func parseCanonicalInt[T string | []byte](b T) (int64, bool) {
	neg := len(b) > 0 && b[0] == '-'
	digits := b
	if neg {
		digits = b[1:]
	}
	if len(digits) == 0 || len(digits) > 19 || (digits[0] == '0' && (len(digits) > 1 || neg)) {
		return 0, false
	}
	var u uint64
	for i := 0; i < len(digits); i++ {
		c := digits[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		u = u*10 + uint64(c-'0') // 19 digits cannot overflow a uint64
	}
	switch {
	case !neg && u <= 1<<63-1:
		return int64(u), true
	case neg && u <= 1<<63:
		return int64(-u), true
	}
	return 0, false
}

// seenJobs remembers, for one partition, the furthest attempt the group
// started or recorded per job id, so a NEW the group has already acted on
// (a job sent twice, a POST retried after a 503, a retry released twice
// after a crash, a replay replayed) is not run again.
//
// It forgets ids whose last sighting is more than window records behind
// the newest one: the memory is bounded by the window, and so is the
// protection (see docs/runtime.md, "Duplicate detection").
type seenJobs struct {
	window int64
	byInt  idTable
	byText map[string]seenEntry
	// Sightings in offset order, for forgetting: integer and text ids
	// apart, so the integer side holds no pointers either.
	fifo     []intSeenAt
	head     int
	textFifo []textSeenAt
	textHead int
}

type seenEntry struct {
	pos    attemptPos
	offset int64 // of the last sighting
	// For the terminal event of pos, if one was seen: whether it was this
	// process's (a second one from the other side means a re-execution).
	terminal, mine bool
}

type intSeenAt struct{ n, offset int64 }

type textSeenAt struct {
	key    string
	offset int64
}

func newSeenJobs(window int) *seenJobs {
	return &seenJobs{window: int64(window), byText: make(map[string]seenEntry)}
}

// enabled reports whether duplicate detection is on.
func (s *seenJobs) enabled() bool { return s.window > 0 }

func (s *seenJobs) get(k jobKey) (seenEntry, bool) {
	if k.textual {
		e, ok := s.byText[k.text]
		return e, ok
	}
	return s.byInt.get(k.n)
}

// set stores e for k; sighted says e is a new sighting at e.offset (the
// id ages from it), not an update of the current one.
func (s *seenJobs) set(k jobKey, e seenEntry, sighted bool) {
	if k.textual {
		s.byText[k.text] = e
		if sighted {
			s.textFifo = append(s.textFifo, textSeenAt{key: k.text, offset: e.offset})
		}
	} else {
		s.byInt.put(k.n, e)
		if sighted {
			s.fifo = append(s.fifo, intSeenAt{n: k.n, offset: e.offset})
		}
	}
	if sighted {
		s.forget(e.offset - s.window)
	}
}

// note records that the group reached pos for key at offset. A sighting
// that adds nothing (the group's own events of an attempt it already
// noted) changes nothing, not even when the id is forgotten: ids age
// from the NEW that started their latest attempt.
func (s *seenJobs) note(key jobKey, pos attemptPos, offset int64) {
	if !s.enabled() {
		return
	}
	if cur, ok := s.get(key); ok && !pos.after(cur.pos) {
		return
	}
	s.set(key, seenEntry{pos: pos, offset: offset}, true)
}

// terminal records the terminal event of pos for key (mine: written by
// this process) and reports whether another terminal event of the same
// attempt, from the other side, was seen before: a re-execution.
func (s *seenJobs) terminal(key jobKey, pos attemptPos, offset int64, mine bool) bool {
	if !s.enabled() {
		return false
	}
	cur, ok := s.get(key)
	switch {
	case !ok || pos.after(cur.pos):
		s.set(key, seenEntry{pos: pos, offset: offset, terminal: true, mine: mine}, true)
		return false
	case cur.pos != pos:
		return false // an older attempt's event
	case !cur.terminal:
		cur.terminal, cur.mine = true, mine
		s.set(key, cur, false)
		return false
	case cur.mine != mine:
		cur.mine = true // count each re-execution once
		s.set(key, cur, false)
		return true
	}
	return false
}

// runs reports whether a NEW asking for pos is new work for the group.
func (s *seenJobs) runs(key jobKey, pos attemptPos) bool {
	cur, ok := s.get(key)
	return !ok || pos.after(cur.pos)
}

// size returns how many ids are remembered.
func (s *seenJobs) size() int { return s.byInt.len() + len(s.byText) }

// forget drops ids last seen below offset.
func (s *seenJobs) forget(below int64) {
	for s.head < len(s.fifo) && s.fifo[s.head].offset < below {
		old := s.fifo[s.head]
		s.byInt.deleteAt(old.n, old.offset)
		s.head++
	}
	if s.head > 4096 && s.head > len(s.fifo)/2 {
		s.fifo = append(s.fifo[:0], s.fifo[s.head:]...)
		s.head = 0
	}
	for s.textHead < len(s.textFifo) && s.textFifo[s.textHead].offset < below {
		old := s.textFifo[s.textHead]
		if e, ok := s.byText[old.key]; ok && e.offset == old.offset {
			delete(s.byText, old.key)
		}
		s.textFifo[s.textHead] = textSeenAt{}
		s.textHead++
	}
	if s.textHead > 4096 && s.textHead > len(s.textFifo)/2 {
		s.textFifo = append(s.textFifo[:0], s.textFifo[s.textHead:]...)
		s.textHead = 0
	}
}
