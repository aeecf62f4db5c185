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

// note records that the group reached pos for key at offset.
func (s *seenJobs) note(key string, pos attemptPos, offset int64) {
	if !s.enabled() {
		return
	}
	cur, ok := s.byKey[key]
	if ok && cur.pos.after(pos) {
		pos = cur.pos
	}
	s.byKey[key] = seenEntry{pos: pos, offset: offset}
	s.fifo = append(s.fifo, seenAt{key: key, offset: offset})
	s.forget(offset - s.window)
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
