package main

import (
	"context"
	"sync"
	"testing"
	"time"
)

func TestOpenScheduleDueTimes(t *testing.T) {
	start := time.Unix(1000, 0)
	s := newOpenSchedule(start, 1000, 2*time.Second)
	if s.total != 2000 {
		t.Fatalf("total = %d, want 2000", s.total)
	}
	for _, c := range []struct {
		i    int64
		want time.Duration
	}{{0, 0}, {1, time.Millisecond}, {999, 999 * time.Millisecond}, {1000, time.Second}, {1999, 1999 * time.Millisecond}} {
		if got := s.due(c.i).Sub(start); got != c.want {
			t.Errorf("due(%d) = start+%v, want start+%v", c.i, got, c.want)
		}
	}
	// A rate that does not divide a second: no drift over a long run.
	s3 := newOpenSchedule(start, 3, time.Hour)
	if got := s3.due(3 * 3600).Sub(start); got != time.Hour {
		t.Errorf("rate 3: request 10800 due at start+%v, want start+1h", got)
	}
	if got := s3.due(1).Sub(start); got != 333333333*time.Nanosecond {
		t.Errorf("rate 3: request 1 due at start+%v, want start+333.333333ms", got)
	}
}

// Every ticket is handed out exactly once across concurrent workers, in
// due order, and none after the end.
func TestOpenScheduleTakeConcurrent(t *testing.T) {
	s := newOpenSchedule(time.Now(), 500, time.Second)
	var mu sync.Mutex
	seen := map[int64]bool{}
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			var last time.Time
			for {
				i, due, ok := s.take()
				if !ok {
					return
				}
				if due.Before(last) {
					t.Errorf("worker got ticket %d due %v before its previous one %v", i, due, last)
				}
				last = due
				mu.Lock()
				if seen[i] {
					t.Errorf("ticket %d handed out twice", i)
				}
				seen[i] = true
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if len(seen) != 500 {
		t.Fatalf("%d tickets handed out, want 500", len(seen))
	}
	if _, _, ok := s.take(); ok {
		t.Fatal("take after the end returned ok")
	}
}

func TestWaitUntil(t *testing.T) {
	if !waitUntil(context.Background(), time.Now().Add(-time.Second)) {
		t.Error("a past time was not reached at once")
	}
	t0 := time.Now()
	if !waitUntil(context.Background(), t0.Add(20*time.Millisecond)) {
		t.Error("a future time was not reached")
	}
	if time.Since(t0) < 20*time.Millisecond {
		t.Error("waitUntil returned before the time")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if waitUntil(ctx, time.Now().Add(time.Hour)) {
		t.Error("waitUntil reported the time reached after ctx ended")
	}
}

func TestPercentile(t *testing.T) {
	ms := func(v ...int) []time.Duration {
		out := make([]time.Duration, len(v))
		for i, x := range v {
			out[i] = time.Duration(x) * time.Millisecond
		}
		return out
	}
	hundred := make([]int, 100)
	for i := range hundred {
		hundred[i] = i + 1 // 1..100 ms
	}
	thousand := make([]int, 1000)
	for i := range thousand {
		thousand[i] = i + 1
	}
	for _, c := range []struct {
		name string
		lat  []time.Duration
		p    float64
		want time.Duration
	}{
		{"empty", nil, 0.5, 0},
		{"one", ms(7), 0.99, 7 * time.Millisecond},
		{"p50 of 1..100", ms(hundred...), 0.5, 50 * time.Millisecond},
		{"p90 of 1..100", ms(hundred...), 0.9, 90 * time.Millisecond},
		{"p99 of 1..100", ms(hundred...), 0.99, 99 * time.Millisecond},
		{"p99.9 of 1..100 is the max", ms(hundred...), 0.999, 100 * time.Millisecond},
		{"p99.9 of 1..1000", ms(thousand...), 0.999, 999 * time.Millisecond},
		{"p0 is the min", ms(3, 4, 5), 0, 3 * time.Millisecond},
		{"p100 is the max", ms(3, 4, 5), 1, 5 * time.Millisecond},
	} {
		if got := percentile(c.lat, c.p); got != c.want {
			t.Errorf("%s: percentile(%v) = %v, want %v", c.name, c.p, got, c.want)
		}
	}
}

func TestSummarizeSorts(t *testing.T) {
	s := summarize([]time.Duration{5, 1, 4, 2, 3})
	if s.P50 != 3 || s.Max != 5 || s.P90 != 5 {
		t.Errorf("summarize = %+v, want p50 3, p90 5, max 5", s)
	}
	if z := summarize(nil); z != (latencySummary{}) {
		t.Errorf("summarize(nil) = %+v, want zero", z)
	}
}

func TestIsPost(t *testing.T) {
	for _, c := range []struct {
		ratio float64
		n     int64
		want  int
	}{{0, 1000, 0}, {1, 1000, 1000}, {0.2, 1000, 200}, {0.5, 10, 5}, {0.3, 10, 3}} {
		got := 0
		for i := range c.n {
			if isPost(i, c.ratio) {
				got++
			}
		}
		if got != c.want {
			t.Errorf("ratio %v over %d requests: %d POSTs, want %d", c.ratio, c.n, got, c.want)
		}
	}
}

// A server stall counts against every request due during it: latencies
// are measured from the due time, so a request sent late is late.
func TestOpenLoopCountsStalls(t *testing.T) {
	start := time.Now()
	s := newOpenSchedule(start, 1000, 100*time.Millisecond)
	// One worker, a server that stalls 50 ms on the first request and
	// answers the rest at once: the requests due during the stall wait.
	var lat []time.Duration
	first := true
	for {
		_, due, ok := s.take()
		if !ok {
			break
		}
		waitUntil(context.Background(), due)
		if first {
			time.Sleep(50 * time.Millisecond)
			first = false
		}
		lat = append(lat, time.Since(due))
	}
	sum := summarize(lat)
	// About half the 100 requests were due during the stall; the p90
	// must show it (a closed-loop measurement would show one slow request).
	if sum.P90 < 10*time.Millisecond {
		t.Errorf("p90 = %v after a 50 ms stall at the start of a 100 ms run; the stall was not counted against queued requests", sum.P90)
	}
}
