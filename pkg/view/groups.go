package view

import (
	"time"

	"github.com/jobctl/jobctl/pkg/job"
)

// Status per consumer group.
//
// Every event a worker writes names its group; a NEW without group (a
// submitted job, a replay, an explicit retry) is for every group. A
// group's status of a job is the furthest state (job.Event.Supersedes)
// among the job's events that name that group or no group.
//
// Memory: a job that no group or only one group has touched keeps no
// more than today's entry: its current state is that group's state, and
// the group is a uint16 index (entry.group) in the entry's padding. Only
// when a second group touches a job does the view keep a small slice of
// per-group states for it (View.multi), with element 0 the state of the
// events without group (where a group that has not touched the job yet
// starts).
//
// Overall status of a job touched by several groups: the state of the
// group that is furthest behind. A group that has not finished the job's
// latest run comes before one that has; among unfinished groups the
// lowest position (NEW/SCHEDULED < RUNNING < FAILED of an earlier
// attempt ...); among finished ones DEAD, then CANCELED, then DONE — so a
// job is DONE only when every group that touched it is DONE. With one
// group (or none) it is exactly that group's status, as before groups
// were recorded.

// maxGroups bounds the group table; events of further groups count as
// events without group (a cluster with 65,535 groups on one job topic is
// not a use case).
const maxGroups = 1<<16 - 1

// groupState is one group's state of one job.
type groupState struct {
	updated int64
	worker  string
	err     string
	run     int32
	attempt int32
	group   uint16
	status  uint8
}

// GroupStatus is one consumer group's state of a job.
type GroupStatus struct {
	Group     string     `json:"group"`
	Status    job.Status `json:"status"`
	Run       int        `json:"run,omitempty"`
	Attempt   int        `json:"attempt"`
	UpdatedAt time.Time  `json:"updated_at,omitzero"`
	Worker    string     `json:"worker,omitempty"`
	Error     string     `json:"error,omitempty"`
}

func (s groupState) event() job.Event {
	return job.Event{Status: job.Statuses[s.status], Run: int(s.run), Attempt: int(s.attempt), UpdatedAt: fromNano(s.updated)}
}

func (s groupState) supersedes(cur groupState) bool { return s.event().Supersedes(cur.event()) }

// finished reports whether status ends a run for a group.
func finished(st uint8) bool {
	switch job.Statuses[st] {
	case job.StatusDone, job.StatusDead, job.StatusCancelled:
		return true
	}
	return false
}

// finishRank orders groups for the overall status: unfinished first.
func finishRank(st uint8) int {
	switch job.Statuses[st] {
	case job.StatusDead:
		return 1
	case job.StatusCancelled:
		return 2
	case job.StatusDone:
		return 3
	}
	return 0
}

// behind reports whether a is strictly less advanced than b (see the
// overall status above).
func behind(a, b groupState) bool {
	if a.run != b.run {
		return a.run < b.run
	}
	if fa, fb := finishRank(a.status), finishRank(b.status); fa != fb {
		return fa < fb
	}
	ar, aa, ak := a.event().Position()
	br, ba, bk := b.event().Position()
	switch {
	case ar != br:
		return ar < br
	case aa != ba:
		return aa < ba
	case ak != bk:
		return ak < bk
	}
	return a.updated < b.updated
}

func (v *View) stateOf(e *entry) groupState {
	return groupState{updated: e.updated, worker: v.workerOf(e), err: v.sideOf(e).err, run: e.run, attempt: e.attempt, group: e.group, status: e.status}
}

// setCurrentLocked makes s the job's current (overall) state.
func (v *View) setCurrentLocked(e *entry, s groupState) {
	v.counts[e.status]--
	v.counts[s.status]++
	e.status, e.run, e.attempt, e.updated = s.status, s.run, s.attempt, s.updated
	v.setWorker(e, s.worker)
	v.setErr(e, s.err)
}

func (v *View) groupIndex(name string) uint16 {
	if name == "" {
		return 0
	}
	if i, ok := v.groupIdx[name]; ok {
		return i
	}
	if len(v.groupNames) > maxGroups {
		return 0
	}
	if len(v.groupNames) == 0 {
		v.groupNames = append(v.groupNames, "")
	}
	i := uint16(len(v.groupNames))
	v.groupNames = append(v.groupNames, name)
	v.groupIdx[name] = i
	return i
}

// mergeLocked merges event ev into the known job e and reports whether
// the job's current state changed.
func (v *View) mergeLocked(e *entry, ev job.Event) bool {
	gi := v.groupIndex(ev.Group)
	s := groupState{updated: unixNano(ev.UpdatedAt), worker: ev.Worker, err: ev.Error, run: int32(ev.Run), attempt: int32(ev.Attempt), group: gi, status: statusIndex(ev.Status)}
	states, multi := v.multi[e]
	if !multi && (gi == 0 || e.group == 0 || e.group == gi) {
		// One group (or none): its state is the job's state.
		if gi != 0 {
			e.group = gi
		}
		if !ev.Supersedes(v.current(e)) {
			return false
		}
		s.group = e.group
		v.setCurrentLocked(e, s)
		return true
	}
	if !multi {
		// Room for the group that touches the job second: most jobs
		// stop there.
		states = make([]groupState, 2, 3)
		states[0], states[1] = v.ungroupedState(e), v.stateOf(e)
	}
	changed := false
	if gi == 0 {
		for i := range states {
			if s.supersedes(states[i]) {
				s.group = states[i].group
				states[i] = s
				changed = true
			}
		}
	} else {
		i := 1
		for i < len(states) && states[i].group != gi {
			i++
		}
		if i == len(states) {
			base := states[0]
			base.group = gi
			states = append(states, base)
			changed = true
		}
		if s.supersedes(states[i]) {
			states[i] = s
			changed = true
		}
	}
	v.multi[e] = states
	if !changed {
		return false
	}
	least := states[1]
	for _, x := range states[2:] {
		if behind(x, least) {
			least = x
		}
	}
	if least == v.stateOf(e) {
		return false
	}
	v.setCurrentLocked(e, least)
	return true
}

// ungroupedState is the furthest state among the job's kept events
// without group: where a group that has not touched the job starts.
func (v *View) ungroupedState(e *entry) groupState {
	s := groupState{status: statusIndex(job.StatusNew)}
	first := true
	r := histReader{b: e.history}
	var h hist
	for r.next(&h) {
		if h.group.idx != 0 {
			continue
		}
		x := groupState{updated: h.at, worker: refName(h.worker, v.names.names), err: string(h.err), run: h.run, attempt: h.attempt, status: h.status}
		if first || x.supersedes(s) {
			s, first = x, false
		}
	}
	return s
}

// groupStateLocked is group gi's state of job e; false when gi has not
// touched it.
func (v *View) groupStateLocked(e *entry, gi uint16) (groupState, bool) {
	if gi == 0 {
		return groupState{}, false
	}
	if states, ok := v.multi[e]; ok {
		for _, s := range states[1:] {
			if s.group == gi {
				return s, true
			}
		}
		return groupState{}, false
	}
	if e.group == gi {
		return v.stateOf(e), true
	}
	return groupState{}, false
}

func (v *View) groupStatus(s groupState) GroupStatus {
	return GroupStatus{Group: v.groupNames[s.group], Status: job.Statuses[s.status], Run: int(s.run), Attempt: int(s.attempt),
		UpdatedAt: fromNano(s.updated), Worker: s.worker, Error: s.err}
}

// groupsLocked lists e's per-group states, in the order the groups first
// touched it.
func (v *View) groupsLocked(e *entry) []GroupStatus {
	if states, ok := v.multi[e]; ok {
		out := make([]GroupStatus, 0, len(states)-1)
		for _, s := range states[1:] {
			out = append(out, v.groupStatus(s))
		}
		return out
	}
	if e.group != 0 {
		return []GroupStatus{v.groupStatus(v.stateOf(e))}
	}
	return nil
}

// Pending counts, per group and partition, the jobs the group has not
// finished: for a job the group has touched, its state for the job's
// latest run is not DONE, DEAD or CANCELED (NEW, SCHEDULED, RUNNING, a
// FAILED waiting for its retry); a job the group has not touched counts
// only where untouched(group, partition) says so (the caller knows
// whether the group exists and still has records to read there). Every
// group asked for has an entry; partitions without pending jobs may be
// missing. It walks every job: callers cache it.
func (v *View) Pending(groups []string, untouched func(group string, partition int) bool) map[string]map[int]int {
	v.mu.RLock()
	defer v.mu.RUnlock()
	type counts struct{ touched, unfinished map[int]int }
	byIdx := make(map[uint16]*counts, len(groups))
	for _, g := range groups {
		if i, ok := v.groupIdx[g]; ok {
			byIdx[i] = &counts{touched: map[int]int{}, unfinished: map[int]int{}}
		}
	}
	total := map[int]int{}
	count := func(s groupState, p int) {
		c := byIdx[s.group]
		if c == nil {
			return
		}
		c.touched[p]++
		if !finished(s.status) {
			c.unfinished[p]++
		}
	}
	v.order.Ascend(func(e *entry) bool {
		p := int(e.partition)
		total[p]++
		if states, ok := v.multi[e]; ok {
			for _, s := range states[1:] {
				count(s, p)
			}
		} else if e.group != 0 {
			count(v.stateOf(e), p)
		}
		return true
	})
	out := make(map[string]map[int]int, len(groups))
	for _, g := range groups {
		m := map[int]int{}
		c := byIdx[v.groupIdx[g]]
		if _, known := v.groupIdx[g]; !known {
			c = nil
		}
		for p, n := range total {
			pending := 0
			if c != nil {
				pending = c.unfinished[p]
				n -= c.touched[p]
			}
			if untouched != nil && untouched(g, p) {
				pending += n
			}
			if pending > 0 {
				m[p] = pending
			}
		}
		out[g] = m
	}
	return out
}

// GroupPosition is a consumer group's position on one partition, as the
// broker reports it.
type GroupPosition struct {
	// Committed is the next offset the group reads; -1 when it has
	// committed nothing on the partition.
	Committed int64
	// EndOffset is the partition's end offset (high watermark); -1 when
	// unknown.
	EndOffset int64
}

// PendingAt counts pending jobs (see Pending) for the groups in
// positions, which are the groups that exist: they have committed
// offsets on the topic. A job a group has not touched yet counts as
// pending on a partition unless the group has read that partition to its
// end (committed = end offset): then the group has passed over the job
// (it started --from latest after it, or skipped it as a duplicate) and
// will not run it. While the group still has records to read there, its
// untouched jobs count, so the figure is an upper bound until it has.
func (v *View) PendingAt(positions map[string]map[int]GroupPosition) map[string]map[int]int {
	groups := make([]string, 0, len(positions))
	for g := range positions {
		groups = append(groups, g)
	}
	return v.Pending(groups, func(g string, p int) bool {
		pos, ok := positions[g][p]
		if !ok {
			return true
		}
		return pos.Committed < 0 || pos.EndOffset < 0 || pos.Committed < pos.EndOffset
	})
}
