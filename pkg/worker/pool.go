package worker

import (
	"context"
	"sync"

	"github.com/jobctl/jobctl/pkg/job"
)

// task is a NEW job fetched from a partition and not yet finished.
type task struct {
	p      *partition
	offset int64
	key    string
	event  job.Event // the NEW record
}

// jobPool hands fetched jobs to the worker slots. Jobs of one key (job
// id) run one after another, in fetch order; all others run in any free
// slot. A slow or hung job therefore occupies one slot and holds back
// only later jobs of its own id: there is no lane, queue or partition
// for it to block.
//
// The pool holds at most capacity fetched-but-not-started jobs across all
// partitions (fetchers wait in submit when it is full), so a revoked
// partition never has much to drop and memory stays bounded.
type jobPool struct {
	room  chan struct{} // one token per queued job
	ready chan *task    // jobs whose key is free, in fetch order

	mu      sync.Mutex
	claimed map[string][]*task // key -> jobs waiting behind the one that holds it
}

func newJobPool(capacity int) *jobPool {
	return &jobPool{
		room:    make(chan struct{}, capacity),
		ready:   make(chan *task, capacity),
		claimed: make(map[string][]*task),
	}
}

// submit queues t, waiting while the pool is full; it fails only when
// ctx ends first.
func (q *jobPool) submit(ctx context.Context, t *task) error {
	select {
	case q.room <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	q.mu.Lock()
	if waiting, held := q.claimed[t.key]; held {
		q.claimed[t.key] = append(waiting, t)
		q.mu.Unlock()
		return nil
	}
	q.claimed[t.key] = nil
	q.mu.Unlock()
	q.ready <- t // never blocks: ready has as many places as room has tokens
	return nil
}

// take returns the next job to start, or nil once ctx ends. Jobs of
// partitions that were revoked meanwhile are passed over (their offsets
// stay uncommitted, so the next owner runs them).
func (q *jobPool) take(ctx context.Context) *task {
	for {
		select {
		case <-ctx.Done():
			return nil
		case t := <-q.ready:
			<-q.room
			if t.p.stopped() {
				q.release(t)
				continue
			}
			return t
		}
	}
}

// release frees t's key: the next job waiting for it becomes ready.
func (q *jobPool) release(t *task) {
	q.mu.Lock()
	defer q.mu.Unlock()
	waiting := q.claimed[t.key]
	if len(waiting) == 0 {
		delete(q.claimed, t.key)
		return
	}
	next := waiting[0]
	if len(waiting) == 1 {
		q.claimed[t.key] = nil
	} else {
		q.claimed[t.key] = waiting[1:]
	}
	// next still holds its room token; hand it over to ready, which has
	// room for it by the same count.
	select {
	case q.ready <- next:
	default:
		// Cannot happen (see submit), but never block under the lock.
		go func() { q.ready <- next }()
	}
}

// queued returns how many jobs wait in the pool.
func (q *jobPool) queued() int { return len(q.room) }
