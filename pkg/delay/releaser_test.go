package delay

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
)

// generous bounds only: the test machine is shared and noisy.
const maxLate = 5 * time.Second

func schedule(t *testing.T, w *Writer, items ...Item) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := w.Schedule(ctx, items...); err != nil {
		t.Fatal(err)
	}
}

func ids(items []Item) []string {
	out := make([]string, len(items))
	for i, it := range items {
		out[i] = it.Event.JobID.String()
	}
	return out
}

func TestReleaseOnTime(t *testing.T) {
	forEachBroker(t, func(t *testing.T, e *env) {
		e.createTopics(t, 3, nil)
		got := e.collect(t, 3)
		e.startReleaser(t, ReleaserConfig{}, nil)
		w := e.writer(t, nil)
		now := time.Now()
		items := []Item{
			{DueAt: now.Add(200 * time.Millisecond), Partition: 2, Event: newEvent(t, "a-200ms")},
			{DueAt: now.Add(1500 * time.Millisecond), Partition: 0, Event: newEvent(t, "b-1500ms")},
			{DueAt: now.Add(3 * time.Second), Partition: 1, Event: newEvent(t, "c-3s")},
			{DueAt: now.Add(7 * time.Second), Partition: 2, Event: newEvent(t, "d-7s")},
		}
		schedule(t, w, items...)
		checkReleased(t, got.wait(t, 7*time.Second+maxLate, ids(items)...), items, maxLate)

		hist := e.delayHistory(t)
		for i, wantTier := range []int{0, 1, 1, 2} {
			id := items[i].Event.JobID.String()
			h := hist[id]
			if len(h) == 0 || h[0].tier != wantTier {
				t.Errorf("job %s first written to %v, want tier %d", id, h, wantTier)
				continue
			}
			tiers := make([]int, len(h))
			for j, r := range h {
				tiers[j] = r.tier
			}
			t.Logf("job %s went through tiers %v", id, tiers)
			if last := tiers[len(tiers)-1]; last > 1 {
				t.Errorf("job %s: released from tier %d, a hop down is missing", id, last)
			}
		}
	})
}

// A job due in 40 s hops down the tiers: 30 s, then 5 s, then 1 s (a few
// times), then 0. Tier durations are shrunk tenfold through the test hook
// (the releaser's and writer's own copy) so it takes 4 s.
func TestHopsThroughTiers(t *testing.T) {
	tiers := make([]time.Duration, len(Tiers))
	for i, d := range Tiers {
		tiers[i] = d / 10
	}
	forEachBroker(t, func(t *testing.T, e *env) {
		e.createTopics(t, 1, nil)
		got := e.collect(t, 1)
		var rescheduled atomic.Int64
		e.startReleaser(t, ReleaserConfig{Rescheduled: func(int) { rescheduled.Add(1) }}, tiers)
		w := e.writer(t, tiers)
		items := []Item{{DueAt: time.Now().Add(4 * time.Second), Partition: 0, Event: newEvent(t, "hop-40s-scaled")}}
		schedule(t, w, items...)
		checkReleased(t, got.wait(t, 4*time.Second+maxLate, ids(items)...), items, maxLate)

		h := e.delayHistory(t)[items[0].Event.JobID.String()]
		seq := make([]int, len(h))
		for i, r := range h {
			seq[i] = r.tier
		}
		t.Logf("tiers visited: %v (%d reschedules)", seq, rescheduled.Load())
		if len(seq) < 3 || seq[0] != 3 || seq[1] != 2 {
			t.Fatalf("tiers visited %v, want 3 (3 s), then 2 (0.5 s), then lower ones", seq)
		}
		for i := 1; i < len(seq); i++ {
			if seq[i] > seq[i-1] {
				t.Fatalf("tiers visited %v: went up", seq)
			}
		}
		for i, r := range h[1:] {
			// Each hop is written when the previous record woke, not before.
			if r.at.Before(h[i].wake.Add(-time.Millisecond)) {
				t.Errorf("hop %d written at %v, before the previous record woke at %v", i+1, r.at, h[i].wake)
			}
		}
	})
}

// A releaser stopped while its tiers wait, and a new one started, lose
// nothing: every wait is in Kafka.
func TestRestartMidWait(t *testing.T) {
	forEachBroker(t, func(t *testing.T, e *env) {
		e.createTopics(t, 2, nil)
		got := e.collect(t, 2)
		w := e.writer(t, nil)
		now := time.Now()
		items := []Item{
			{DueAt: now.Add(700 * time.Millisecond), Partition: 0, Event: newEvent(t, "r-0.7s")},
			{DueAt: now.Add(1500 * time.Millisecond), Partition: 1, Event: newEvent(t, "r-1.5s")},
			{DueAt: now.Add(2500 * time.Millisecond), Partition: 0, Event: newEvent(t, "r-2.5s")},
			{DueAt: now.Add(5500 * time.Millisecond), Partition: 1, Event: newEvent(t, "r-5.5s")},
		}
		schedule(t, w, items...)
		var assigned atomic.Bool
		stop := e.startReleaser(t, ReleaserConfig{Assigned: func(p []int) { assigned.Store(len(p) > 0) }}, nil)
		for !assigned.Load() {
			time.Sleep(10 * time.Millisecond)
		}
		time.Sleep(300 * time.Millisecond) // heads are waiting now
		stop()
		t.Logf("first releaser stopped %v after scheduling", time.Since(now).Round(time.Millisecond))
		e.startReleaser(t, ReleaserConfig{}, nil)
		checkReleased(t, got.wait(t, 5500*time.Millisecond+maxLate, ids(items)...), items, maxLate+3*time.Second)
	})
}

// Two releasers split the tiers between them and release everything.
func TestTwoReleasersShareTiers(t *testing.T) {
	tiers := []time.Duration{0, 100 * time.Millisecond, 200 * time.Millisecond, 300 * time.Millisecond,
		400 * time.Millisecond, 500 * time.Millisecond, 600 * time.Millisecond}
	forEachBroker(t, func(t *testing.T, e *env) {
		e.createTopics(t, 2, nil)
		got := e.collect(t, 2)
		var mu sync.Mutex
		owned := map[string][]int{}
		// Work done: releases and reschedules (records of the upper tiers
		// mostly wake a little before due and move down to tier 0).
		var worked [2]atomic.Int64
		for i, name := range []string{"A", "B"} {
			e.startReleaser(t, ReleaserConfig{
				Assigned:    func(p []int) { t.Logf("%s assigned %v", name, p); mu.Lock(); owned[name] = p; mu.Unlock() },
				Released:    func(time.Duration) { worked[i].Add(1) },
				Rescheduled: func(int) { worked[i].Add(1) },
			}, tiers)
		}
		deadline := time.Now().Add(30 * time.Second)
		for {
			mu.Lock()
			a, b := owned["A"], owned["B"]
			mu.Unlock()
			if len(a) > 0 && len(b) > 0 && len(a)+len(b) == len(tiers) {
				t.Logf("A owns %v, B owns %v", a, b)
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("the releasers did not split the tiers: A %v, B %v", a, b)
			}
			time.Sleep(20 * time.Millisecond)
		}
		w := e.writer(t, tiers)
		now := time.Now()
		var items []Item
		for i := range 14 {
			items = append(items, Item{DueAt: now.Add(time.Duration(i+1) * 50 * time.Millisecond), Partition: i % 2, Event: newEvent(t, fmt.Sprintf("s-%d", i))})
		}
		schedule(t, w, items...)
		checkReleased(t, got.wait(t, time.Second+maxLate, ids(items)...), items, maxLate)
		t.Logf("A handled %d records, B handled %d", worked[0].Load(), worked[1].Load())
		if worked[0].Load() == 0 || worked[1].Load() == 0 {
			t.Errorf("one releaser handled nothing: A %d, B %d", worked[0].Load(), worked[1].Load())
		}
	})
}

// A record the job topic refuses for good (too large for it) and a record
// that is not a delayed job are skipped; the tier goes on releasing.
func TestPermanentErrorDoesNotWedge(t *testing.T) {
	forEachBroker(t, func(t *testing.T, e *env) {
		e.createTopics(t, 1, map[string]string{"max.message.bytes": "2048"})
		got := e.collect(t, 1)
		var mu sync.Mutex
		var dropped []string
		e.startReleaser(t, ReleaserConfig{Dropped: func(err error) { mu.Lock(); dropped = append(dropped, err.Error()); mu.Unlock() }}, nil)

		// Garbage at the head of tier 0.
		raw := &kafka.Writer{Addr: kafka.TCP(e.tgt.brokers...), Topic: Topic(e.jobTopic), Balancer: toPartition{}, RequiredAcks: kafka.RequireAll, BatchTimeout: time.Millisecond}
		defer raw.Close()
		if err := raw.WriteMessages(context.Background(), kafka.Message{Key: []byte("junk"), Value: []byte("not json")}); err != nil {
			t.Fatal(err)
		}
		w := e.writer(t, nil)
		due := time.Now().Add(300 * time.Millisecond)
		big := newEvent(t, "big")
		big.Payload = []byte(`{"pad":"` + strings.Repeat("x", 4000) + `"}`)
		small := newEvent(t, "small")
		later := newEvent(t, "later")
		// big and small are released in one write: Kafka fails the whole
		// batch, the releaser must find the culprit.
		items := []Item{{DueAt: due, Partition: 0, Event: big}, {DueAt: due, Partition: 0, Event: small}, {DueAt: due.Add(500 * time.Millisecond), Partition: 0, Event: later}}
		schedule(t, w, items...)
		res := got.wait(t, 800*time.Millisecond+maxLate+5*time.Second, "small", "later")
		checkReleased(t, res, items[1:], maxLate+5*time.Second)
		time.Sleep(200 * time.Millisecond)
		if n := len(got.wait(t, 0)["big"]); n != 0 {
			t.Errorf("the too-large job was released %d times", n)
		}
		mu.Lock()
		defer mu.Unlock()
		t.Logf("dropped: %q", dropped)
		if len(dropped) != 2 {
			t.Fatalf("dropped %d records, want 2 (the garbage and the too-large job)", len(dropped))
		}
	})
}
