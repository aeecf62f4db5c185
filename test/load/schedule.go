package main

import (
	"context"
	"math"
	"slices"
	"sync/atomic"
	"time"
)

// openSchedule hands out the send times of an open-loop run: request i is
// due at start + i/rate, whatever happened to the requests before it. A
// worker takes the next ticket, sleeps until its due time (or not at all
// when it is already late) and measures the latency from the due time, so
// a stall of the server counts against every request that should have
// been sent during it, not only the one that was in flight (no
// coordinated omission, as in wrk2).
type openSchedule struct {
	start time.Time
	rate  int64 // requests per second, > 0
	total int64 // requests in the run
	next  atomic.Int64
}

func newOpenSchedule(start time.Time, rate int, d time.Duration) *openSchedule {
	total := int64(math.Round(float64(rate) * d.Seconds()))
	return &openSchedule{start: start, rate: int64(rate), total: max(total, 1)}
}

// due is when request i is meant to be sent. It is computed from i, not
// accumulated, so rounding does not drift over a long run.
func (s *openSchedule) due(i int64) time.Time {
	return s.start.Add(time.Duration(i * int64(time.Second) / s.rate))
}

// take returns the next request's number and due time; ok is false once
// every request of the run has been handed out.
func (s *openSchedule) take() (i int64, due time.Time, ok bool) {
	i = s.next.Add(1) - 1
	if i >= s.total {
		return i, time.Time{}, false
	}
	return i, s.due(i), true
}

// waitUntil sleeps until t (returns at once when t has passed) or ctx
// ends; it reports whether t was reached.
func waitUntil(ctx context.Context, t time.Time) bool {
	d := time.Until(t)
	if d <= 0 {
		return ctx.Err() == nil
	}
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-tm.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// percentile is the nearest-rank percentile (p in [0,1]) of sorted: the
// smallest value that at least p of the samples do not exceed. 0 for no
// samples.
func percentile(sorted []time.Duration, p float64) time.Duration {
	n := len(sorted)
	if n == 0 {
		return 0
	}
	k := int(math.Ceil(p * float64(n)))
	return sorted[min(max(k, 1), n)-1]
}

// latencySummary is the percentiles of one endpoint's latencies.
type latencySummary struct {
	P50, P90, P99, P999, Max time.Duration
}

// summarize sorts lat in place and returns its percentiles.
func summarize(lat []time.Duration) latencySummary {
	slices.Sort(lat)
	var s latencySummary
	if len(lat) == 0 {
		return s
	}
	s.P50, s.P90, s.P99, s.P999 = percentile(lat, 0.50), percentile(lat, 0.90), percentile(lat, 0.99), percentile(lat, 0.999)
	s.Max = lat[len(lat)-1]
	return s
}

// isPost decides whether request i of a run is a POST: a fixed share of
// ratio, spread evenly (not randomly) so short runs have exactly the
// asked mix, and ratio 0 and 1 give only GETs and only POSTs.
func isPost(i int64, ratio float64) bool {
	if ratio <= 0 {
		return false
	}
	if ratio >= 1 {
		return true
	}
	return math.Floor(float64(i+1)*ratio) > math.Floor(float64(i)*ratio)
}
