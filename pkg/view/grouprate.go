package view

import "time"

// groupRateSeconds is the window of GroupRates.
const groupRateSeconds = 60

// groupRateRing counts one group's finished jobs per second of event time
// over the last minute.
type groupRateRing struct {
	sec [groupRateSeconds]int64
	n   [groupRateSeconds]uint32
}

// groupRates holds one ring per group index (see groups.go); bounded by
// the group table.
type groupRates struct {
	rings []*groupRateRing
}

func (g *groupRates) add(gi uint16, atNano, nowSec int64) {
	if gi == 0 || atNano == 0 {
		return
	}
	s := atNano / int64(time.Second)
	if s > nowSec {
		s = nowSec // a worker's clock ahead of ours
	}
	if s <= nowSec-groupRateSeconds {
		return
	}
	if int(gi) >= len(g.rings) {
		g.rings = append(g.rings, make([]*groupRateRing, int(gi)+1-len(g.rings))...)
	}
	r := g.rings[gi]
	if r == nil {
		r = new(groupRateRing)
		g.rings[gi] = r
	}
	i := s % groupRateSeconds
	if r.sec[i] != s {
		r.sec[i], r.n[i] = s, 0
	}
	r.n[i]++
}

// GroupRates returns, per consumer group that wrote events the view has
// read, the jobs it finished (DONE, FAILED, DEAD and CANCELED events it
// wrote) per second over the last minute of event time.
func (v *View) GroupRates() map[string]float64 {
	v.mu.RLock()
	defer v.mu.RUnlock()
	nowSec := v.now().Unix()
	out := make(map[string]float64, len(v.groupNames))
	for gi, name := range v.groupNames {
		if gi == 0 {
			continue
		}
		var n uint32
		if gi < len(v.groupRates.rings) {
			if r := v.groupRates.rings[gi]; r != nil {
				for i, s := range r.sec {
					if s > nowSec-groupRateSeconds && s <= nowSec {
						n += r.n[i]
					}
				}
			}
		}
		out[name] = float64(n) / groupRateSeconds
	}
	return out
}
