package worker

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestKeyDispatcherSameKeySerializedInOrder(t *testing.T) {
	type item struct {
		key string
		seq int
	}
	var (
		mu      sync.Mutex
		got     = map[string][]int{}
		running = map[string]int{}
		overlap atomic.Bool
	)
	d := NewKeyDispatcher(8, 4, func(_ int, it item) {
		mu.Lock()
		running[it.key]++
		if running[it.key] > 1 {
			overlap.Store(true)
		}
		mu.Unlock()
		time.Sleep(50 * time.Microsecond)
		mu.Lock()
		running[it.key]--
		got[it.key] = append(got[it.key], it.seq)
		mu.Unlock()
	})
	const keys, per = 20, 100
	var wg sync.WaitGroup
	// One submitter per key keeps that key's submission order defined.
	for k := range keys {
		key := fmt.Sprintf("job-%d", k)
		wg.Go(func() {
			for s := range per {
				if err := d.Submit(context.Background(), []byte(key), item{key, s}); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	d.Close()
	if overlap.Load() {
		t.Error("two tasks with the same key ran at the same time")
	}
	for k := range keys {
		key := fmt.Sprintf("job-%d", k)
		seqs := got[key]
		if len(seqs) != per {
			t.Fatalf("key %s: %d tasks ran, want %d", key, len(seqs), per)
		}
		for i, s := range seqs {
			if s != i {
				t.Fatalf("key %s ran out of order: %v", key, seqs)
			}
		}
	}
}

func TestKeyDispatcherDifferentKeysRunInParallel(t *testing.T) {
	const n = 4
	release := make(chan struct{})
	var running atomic.Int32
	all := make(chan struct{})
	// Each task blocks until all n run at once: run one after another,
	// they would never get there and the timeout below would fire.
	d := NewKeyDispatcher(n, 1, func(_ int, _ struct{}) {
		if running.Add(1) == n {
			close(all)
		}
		<-release
	})
	// n keys that land on n different goroutines.
	bySlot := map[int]string{}
	for i := 0; len(bySlot) < n; i++ {
		k := fmt.Sprintf("k%d", i)
		if _, ok := bySlot[d.Slot([]byte(k))]; !ok {
			bySlot[d.Slot([]byte(k))] = k
		}
	}
	for _, k := range bySlot {
		if err := d.Submit(context.Background(), []byte(k), struct{}{}); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case <-all:
	case <-time.After(10 * time.Second):
		t.Fatalf("only %d of %d tasks with different keys ran concurrently", running.Load(), n)
	}
	close(release)
	d.Close()
}

func TestKeyDispatcherSubmitHonoursContext(t *testing.T) {
	block := make(chan struct{})
	d := NewKeyDispatcher(1, 1, func(_ int, _ int) { <-block })
	ctx, cancel := context.WithCancel(context.Background())
	_ = d.Submit(ctx, []byte("a"), 1) // runs and blocks
	_ = d.Submit(ctx, []byte("a"), 2) // fills the queue, or runs
	errc := make(chan error, 1)
	go func() {
		var err error
		for err == nil {
			err = d.Submit(ctx, []byte("a"), 3)
		}
		errc <- err
	}()
	cancel()
	select {
	case err := <-errc:
		if err == nil {
			t.Fatal("Submit on a full queue returned nil after cancel")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Submit on a full queue did not return after its context was cancelled")
	}
	close(block)
	d.Close()
}
