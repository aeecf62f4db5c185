package view

import (
	"math"
	"time"

	"github.com/jobctl/jobctl/pkg/job"
)

// Run durations per job type, for the console's duration chart.
//
// A duration is the time from an attempt's start to the event that ends
// that attempt (DONE, FAILED, DEAD or CANCELED), by the events' own
// times, so a restarted view replaying the topic draws the same chart.
// The start is the ending event's started_at, which workers write; for
// events without one (older workers, other producers) it is the RUNNING
// event of the same job, group, run and attempt, which workers write only
// for attempts still running after a second, so such short attempts have
// no duration.
//
// Memory is bounded whatever the traffic: per type and 30 s bucket one
// log-scale histogram of durationBins counters, at most maxDurationTypes
// types (later ones count under "other"), and only the buckets of the
// last ThroughputWindow.

// DurationBucketSeconds is the width of one bucket of Durations.
const DurationBucketSeconds = 30

const (
	durationBuckets = int64(ThroughputWindow / (DurationBucketSeconds * time.Second))
	// maxDurationTypes bounds the types with their own histograms.
	maxDurationTypes = 32
	// OtherDurationType names the durations of types beyond the first
	// maxDurationTypes.
	OtherDurationType = "other"
	// Histogram bins: bin 0 holds durations under 1 ms, bin i >= 1 those
	// in [growth^(i-1), growth^i) ms; the last bin holds everything
	// longer (growth^(durationBins-2) ms is over 3 days). A 10% bin width
	// bounds the percentile error to about 5%.
	durationBins   = 170
	durationGrowth = 1.1
)

// Durations are run durations per job type over the last
// ThroughputWindow, in BucketSeconds buckets; the last bucket ends at End.
type Durations struct {
	End           time.Time       `json:"end"`
	BucketSeconds int             `json:"bucket_seconds"`
	Types         []TypeDurations `json:"types"`
}

// TypeDurations are the durations of one job type: totals over the whole
// window and one DurationBucket per bucket, oldest first.
type TypeDurations struct {
	Type    string           `json:"type"`
	Count   int              `json:"count"`
	P50Ms   float64          `json:"p50_ms"`
	P99Ms   float64          `json:"p99_ms"`
	Buckets []DurationBucket `json:"buckets"`
}

// DurationBucket holds the durations of attempts that ended in one bucket.
type DurationBucket struct {
	Count int     `json:"count"`
	P50Ms float64 `json:"p50_ms"`
	P99Ms float64 `json:"p99_ms"`
}

type durationHist [durationBins]uint32

type durationSlot struct {
	bucket int64           // Unix time / DurationBucketSeconds this slot holds
	hists  []*durationHist // by type index; nil: no durations of that type
}

type durationWindow struct {
	typeIdx map[string]int
	types   []string
	slots   [durationBuckets]durationSlot
}

func durationBin(d time.Duration) int {
	ms := float64(d) / float64(time.Millisecond)
	if ms < 1 {
		return 0
	}
	b := 1 + int(math.Log(ms)/math.Log(durationGrowth))
	return min(b, durationBins-1)
}

// binValueMs is the value a bin stands for: the geometric middle of its
// range (0.5 ms for bin 0).
func binValueMs(b int) float64 {
	if b == 0 {
		return 0.5
	}
	return math.Pow(durationGrowth, float64(b)-0.5)
}

func (w *durationWindow) typeIndex(typ string) int {
	if w.typeIdx == nil {
		w.typeIdx = make(map[string]int)
	}
	if i, ok := w.typeIdx[typ]; ok {
		return i
	}
	if len(w.types) < maxDurationTypes {
		w.types = append(w.types, typ)
		w.typeIdx[typ] = len(w.types) - 1
		return len(w.types) - 1
	}
	// "other" is the one type past the cap (or shares the slot of a type
	// really named so).
	i, ok := w.typeIdx[OtherDurationType]
	if !ok {
		w.types = append(w.types, OtherDurationType)
		i = len(w.types) - 1
		w.typeIdx[OtherDurationType] = i
	}
	return i
}

// add records a duration of an attempt of type typ that ended at endNano.
func (w *durationWindow) add(typ string, d time.Duration, endNano, nowSec int64) {
	if endNano == 0 || d < 0 {
		return
	}
	s := endNano / int64(time.Second)
	if s > nowSec {
		s = nowSec // a producer's clock ahead of ours
	}
	bucket := s / DurationBucketSeconds
	if bucket <= nowSec/DurationBucketSeconds-durationBuckets {
		return
	}
	slot := &w.slots[bucket%durationBuckets]
	if slot.bucket != bucket {
		slot.bucket = bucket
		for i := range slot.hists {
			slot.hists[i] = nil
		}
	}
	ti := w.typeIndex(typ)
	if ti >= len(slot.hists) {
		slot.hists = append(slot.hists, make([]*durationHist, ti+1-len(slot.hists))...)
	}
	if slot.hists[ti] == nil {
		slot.hists[ti] = new(durationHist)
	}
	slot.hists[ti][durationBin(d)]++
}

// summary is the count and percentiles of a histogram.
func (h *durationHist) summary() (count int, p50, p99 float64) {
	for _, n := range h {
		count += int(n)
	}
	if count == 0 {
		return 0, 0, 0
	}
	return count, h.quantile(count, 0.50), h.quantile(count, 0.99)
}

func (h *durationHist) quantile(count int, q float64) float64 {
	rank := int(math.Ceil(q * float64(count)))
	rank = max(rank, 1)
	seen := 0
	for b, n := range h {
		seen += int(n)
		if seen >= rank {
			return math.Round(binValueMs(b)*1000) / 1000
		}
	}
	return binValueMs(durationBins - 1)
}

// Durations returns the run durations per type of the last
// ThroughputWindow (see durations.go), types in the order first seen.
func (v *View) Durations() Durations {
	v.mu.RLock()
	defer v.mu.RUnlock()
	nowSec := v.now().Unix()
	last := nowSec / DurationBucketSeconds
	d := Durations{
		End:           time.Unix((last+1)*DurationBucketSeconds, 0).UTC(),
		BucketSeconds: DurationBucketSeconds,
		Types:         []TypeDurations{},
	}
	w := &v.durations
	for ti, typ := range w.types {
		td := TypeDurations{Type: typ, Buckets: make([]DurationBucket, durationBuckets)}
		var total durationHist
		for k := int64(0); k < durationBuckets; k++ {
			bucket := last - durationBuckets + 1 + k
			slot := &w.slots[bucket%durationBuckets]
			if bucket < 0 || slot.bucket != bucket || ti >= len(slot.hists) || slot.hists[ti] == nil {
				continue
			}
			h := slot.hists[ti]
			b := &td.Buckets[k]
			b.Count, b.P50Ms, b.P99Ms = h.summary()
			for i, n := range h {
				total[i] += n
			}
		}
		td.Count, td.P50Ms, td.P99Ms = total.summary()
		if td.Count > 0 {
			d.Types = append(d.Types, td)
		}
	}
	return d
}

// endsAttempt reports whether status ends an attempt.
func endsAttempt(st job.Status) bool {
	switch st {
	case job.StatusDone, job.StatusFailed, job.StatusDead, job.StatusCancelled:
		return true
	}
	return false
}

// recordFinishLocked feeds an event that ends an attempt into the
// duration histograms and the group rates. e is the job's entry with the
// event already in its history; it is called once per distinct event.
func (v *View) recordFinishLocked(e *entry, ev job.Event, at int64) {
	if !endsAttempt(ev.Status) {
		return
	}
	nowSec := v.applyNowLocked()
	if ev.Group != "" {
		v.groupRates.add(v.groupIndex(ev.Group), at, nowSec)
	}
	if at == 0 {
		return
	}
	started, ok := unixNano(ev.StartedAt), !ev.StartedAt.IsZero()
	if !ok {
		started, ok = v.runningAtLocked(e, ev.Group, int32(ev.Run), int32(ev.Attempt))
	}
	if ok && started <= at {
		v.durations.add(v.typOf(e), time.Duration(at-started), at, nowSec)
	}
}
