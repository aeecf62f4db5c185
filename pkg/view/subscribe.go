package view

// Change is one change of a job's current state.
type Change struct {
	// Seq numbers the view's changes; it grows by one per change, so a gap
	// the subscriber did not hear of cannot go unnoticed.
	Seq uint64
	// Job is the job's new state, without history.
	Job Job
	// Missed counts the changes dropped just before this one because the
	// subscriber's buffer was full. A subscriber that missed changes
	// should re-read what it shows (GET /jobs) instead of trusting its
	// incremental state.
	Missed uint64
}

// Subscription receives the view's changes on C until Close.
type Subscription struct {
	// C delivers changes; it is closed by Close.
	C <-chan Change

	c      chan Change
	v      *View
	missed uint64 // guarded by v.mu
}

// DefaultSubscriberBuffer is the buffer Subscribe uses when given <= 0.
const DefaultSubscriberBuffer = 256

// Subscribe returns a subscription to every later change of a job's
// current state. Delivery never blocks the view: when the buffer is full
// the change is dropped and the next one delivered says how many were
// missed.
func (v *View) Subscribe(buffer int) *Subscription {
	if buffer <= 0 {
		buffer = DefaultSubscriberBuffer
	}
	c := make(chan Change, buffer)
	s := &Subscription{C: c, c: c, v: v}
	v.mu.Lock()
	v.subs[s] = struct{}{}
	v.mu.Unlock()
	return s
}

// Close ends the subscription and closes C. It is safe to call twice.
func (s *Subscription) Close() {
	s.v.mu.Lock()
	defer s.v.mu.Unlock()
	if _, ok := s.v.subs[s]; ok {
		delete(s.v.subs, s)
		close(s.c)
	}
}

// Subscribers is the number of open subscriptions.
func (v *View) Subscribers() int {
	v.mu.RLock()
	defer v.mu.RUnlock()
	return len(v.subs)
}

// notifyLocked offers e's new state to every subscriber; v.mu is held,
// so Close cannot close a channel under a send.
func (v *View) notifyLocked(e *entry) {
	if len(v.subs) == 0 {
		return
	}
	ch := Change{Seq: v.seq, Job: v.toJob(e, false)}
	for s := range v.subs {
		ch.Missed = s.missed
		select {
		case s.c <- ch:
			s.missed = 0
		default:
			s.missed++
		}
	}
}
