package view

import "time"

// ThroughputWindow is how far back the view keeps per-second counts.
const ThroughputWindow = 10 * time.Minute

const windowSeconds = int64(ThroughputWindow / time.Second)

const (
	rateNew = iota
	rateDone
	rateFailed
	numRates
)

// rateWindow counts events per second of event time over the last
// ThroughputWindow, in a ring indexed by Unix second. Counting by the
// events' own times (not arrival) means a restarted view that replays
// the topic draws the same chart.
type rateWindow struct {
	sec    [windowSeconds]int64
	counts [windowSeconds][numRates]uint32
}

func (r *rateWindow) add(kind int, atNano, nowSec int64) {
	if atNano == 0 {
		return
	}
	s := atNano / int64(time.Second)
	if s > nowSec {
		s = nowSec // a producer's clock ahead of ours
	}
	if s <= nowSec-windowSeconds {
		return
	}
	i := s % windowSeconds
	if r.sec[i] != s {
		r.sec[i] = s
		r.counts[i] = [numRates]uint32{}
	}
	r.counts[i][kind]++
}

// Throughput is per-second counts over the window ending at End: element
// i is the second End-len+1+i. New counts jobs first seen, Done and Failed
// jobs reaching those statuses.
type Throughput struct {
	End           time.Time `json:"end"`
	BucketSeconds int       `json:"bucket_seconds"`
	New           []uint32  `json:"new"`
	Done          []uint32  `json:"done"`
	Failed        []uint32  `json:"failed"`
	// DonePerSecond is the average DONE rate over the last minute.
	DonePerSecond float64 `json:"done_per_second_1m"`
}

// Throughput returns the per-second counts of the last ThroughputWindow.
func (v *View) Throughput() Throughput {
	v.mu.RLock()
	defer v.mu.RUnlock()
	now := v.now()
	nowSec := now.Unix()
	t := Throughput{
		End:           time.Unix(nowSec, 0).UTC(),
		BucketSeconds: 1,
		New:           make([]uint32, windowSeconds),
		Done:          make([]uint32, windowSeconds),
		Failed:        make([]uint32, windowSeconds),
	}
	var lastMinute uint32
	for k := int64(0); k < windowSeconds; k++ {
		s := nowSec - windowSeconds + 1 + k
		i := s % windowSeconds
		if i < 0 || v.rate.sec[i] != s {
			continue
		}
		c := v.rate.counts[i]
		t.New[k], t.Done[k], t.Failed[k] = c[rateNew], c[rateDone], c[rateFailed]
		if s > nowSec-60 {
			lastMinute += c[rateDone]
		}
	}
	t.DonePerSecond = float64(lastMinute) / 60
	return t
}
