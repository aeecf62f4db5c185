package control

import (
	"slices"
	"sync"
)

// State is what the control topic says now: cancelled runs per job and
// paused groups. Lookups take a read lock and one map access; they are on
// every job's path.
type State struct {
	mu        sync.RWMutex
	cancelled map[string]int // job id -> highest cancelled run
	paused    map[string]bool
}

func newState() *State {
	return &State{cancelled: map[string]int{}, paused: map[string]bool{}}
}

// Apply merges one record; the latest record per key wins.
func (s *State) Apply(r Record) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch r.Kind {
	case KindCancel:
		s.cancelled[r.JobID.String()] = r.Run
	case KindPause:
		s.paused[r.Group] = true
	case KindResume:
		delete(s.paused, r.Group)
	}
}

// Cancelled reports whether run of job id is cancelled: a cancel of run r
// covers runs 0..r, not the run a later retry starts.
func (s *State) Cancelled(id string, run int) bool {
	s.mu.RLock()
	r, ok := s.cancelled[id]
	s.mu.RUnlock()
	return ok && run <= r
}

// Paused reports whether group is paused.
func (s *State) Paused(group string) bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.paused[group]
}

// PausedGroups lists the paused groups, sorted.
func (s *State) PausedGroups() []string {
	s.mu.RLock()
	out := make([]string, 0, len(s.paused))
	for g := range s.paused {
		out = append(out, g)
	}
	s.mu.RUnlock()
	slices.Sort(out)
	return out
}
