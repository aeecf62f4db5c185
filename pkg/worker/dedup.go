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
	byKey  map[string]seenEntry
	fifo   []seenAt // sightings in offset order, for forgetting
	head   int
}

type seenEntry struct {
	pos    attemptPos
	offset int64 // of the last sighting
	// For the terminal event of pos, if one was seen: whether it was this
	// process's (a second one from the other side means a re-execution).
	terminal, mine bool
}

type seenAt struct {
	key    string
	offset int64
}

func newSeenJobs(window int) *seenJobs {
	return &seenJobs{window: int64(window), byKey: make(map[string]seenEntry)}
}

// enabled reports whether duplicate detection is on.
func (s *seenJobs) enabled() bool { return s.window > 0 }

// note records that the group reached pos for key at offset. A sighting
// that adds nothing (the group's own events of an attempt it already
// noted) changes nothing, not even when the id is forgotten: ids age
// from the NEW that started their latest attempt.
func (s *seenJobs) note(key string, pos attemptPos, offset int64) {
	if !s.enabled() {
		return
	}
	if cur, ok := s.byKey[key]; ok && !pos.after(cur.pos) {
		return
	}
	s.byKey[key] = seenEntry{pos: pos, offset: offset}
	s.fifo = append(s.fifo, seenAt{key: key, offset: offset})
	s.forget(offset - s.window)
}

// terminal records the terminal event of pos for key (mine: written by
// this process) and reports whether another terminal event of the same
// attempt, from the other side, was seen before: a re-execution.
func (s *seenJobs) terminal(key string, pos attemptPos, offset int64, mine bool) bool {
	if !s.enabled() {
		return false
	}
	cur, ok := s.byKey[key]
	switch {
	case !ok || pos.after(cur.pos):
		s.byKey[key] = seenEntry{pos: pos, offset: offset, terminal: true, mine: mine}
		s.fifo = append(s.fifo, seenAt{key: key, offset: offset})
		s.forget(offset - s.window)
		return false
	case cur.pos != pos:
		return false // an older attempt's event
	case !cur.terminal:
		cur.terminal, cur.mine = true, mine
		s.byKey[key] = cur
		return false
	case cur.mine != mine:
		cur.mine = true // count each re-execution once
		s.byKey[key] = cur
		return true
	}
	return false
}

// runs reports whether a NEW asking for pos is new work for the group.
func (s *seenJobs) runs(key string, pos attemptPos) bool {
	cur, ok := s.byKey[key]
	return !ok || pos.after(cur.pos)
}

// forget drops ids last seen below offset.
func (s *seenJobs) forget(below int64) {
	for s.head < len(s.fifo) && s.fifo[s.head].offset < below {
		old := s.fifo[s.head]
		if e, ok := s.byKey[old.key]; ok && e.offset == old.offset {
			delete(s.byKey, old.key)
		}
		s.head++
	}
	if s.head > 4096 && s.head > len(s.fifo)/2 {
		s.fifo = append(s.fifo[:0], s.fifo[s.head:]...)
		s.head = 0
	}
}
