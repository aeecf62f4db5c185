package worker

import (
	"context"
	"hash/fnv"
	"sync"
)

// KeyDispatcher runs tasks on a fixed set of goroutines, choosing the
// goroutine by hash(key) % n. Tasks with the same key therefore never run
// at the same time and run in the order they were submitted, while tasks
// with different keys run in parallel: a partition's parallelism is not
// capped at one, and a topic with few partitions still keeps every
// goroutine busy.
type KeyDispatcher[T any] struct {
	queues []chan T
	wg     sync.WaitGroup
}

// NewKeyDispatcher starts n goroutines, each with a queue of depth tasks,
// calling run(i, task) for every task of goroutine i.
func NewKeyDispatcher[T any](n, depth int, run func(i int, task T)) *KeyDispatcher[T] {
	d := &KeyDispatcher[T]{queues: make([]chan T, n)}
	for i := range d.queues {
		q := make(chan T, depth)
		d.queues[i] = q
		d.wg.Go(func() {
			for task := range q {
				run(i, task)
			}
		})
	}
	return d
}

// Slot is the goroutine that runs tasks with key.
func (d *KeyDispatcher[T]) Slot(key []byte) int {
	h := fnv.New32a()
	_, _ = h.Write(key)
	return int(h.Sum32() % uint32(len(d.queues)))
}

// Submit queues task for the goroutine of key, waiting while that queue
// is full. It fails only when ctx ends first.
func (d *KeyDispatcher[T]) Submit(ctx context.Context, key []byte, task T) error {
	select {
	case d.queues[d.Slot(key)] <- task:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Close stops accepting tasks and waits until every queued task has been
// run. No Submit may be in progress or follow.
func (d *KeyDispatcher[T]) Close() {
	for _, q := range d.queues {
		close(q)
	}
	d.wg.Wait()
}
