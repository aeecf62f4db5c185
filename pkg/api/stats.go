package api

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/jobctl/jobctl/pkg/view"
)

// Stats is the body of GET /stats.
type Stats struct {
	Jobs       view.Counts     `json:"jobs"`
	Throughput view.Throughput `json:"throughput"`
	View       view.Progress   `json:"view"`
	Lag        LagStats        `json:"lag"`
	// PausedGroups are the consumer groups paused now (jobctl group
	// pause).
	PausedGroups []string `json:"paused_groups"`
	// Durations are run durations per job type over the throughput
	// window (empty when the store does not measure them).
	Durations view.Durations `json:"durations"`
}

// DurationSource measures run durations per job type; *view.View
// implements it.
type DurationSource interface {
	Durations() view.Durations
}

// LagStats are the consumer groups' positions, as of ReadAt.
type LagStats struct {
	Groups []GroupLag `json:"groups"`
	ReadAt time.Time  `json:"read_at,omitzero"`
	// Error says why the lag could not be read (fully); Groups then holds
	// what could be.
	Error string `json:"error,omitempty"`
}

func (s *Server) handleStats(w http.ResponseWriter, r *http.Request) {
	if s.loading(w) {
		return
	}
	st := Stats{
		Jobs:       s.opts.Store.Counts(),
		Throughput: s.opts.Store.Throughput(),
		View:       s.opts.Store.Progress(),
		Lag:        s.lag.get(r.Context()),

		PausedGroups: s.pausedGroups(),
	}
	if ds, ok := s.opts.Store.(DurationSource); ok {
		st.Durations = ds.Durations()
	}
	if st.Durations.Types == nil {
		st.Durations.Types = []view.TypeDurations{}
	}
	if st.View.Partitions == nil {
		st.View.Partitions = []view.PartitionProgress{}
	}
	s.updateLagGauges(st.Lag)
	writeJSON(w, http.StatusOK, st)
}

// health is the body of /healthz.
type health struct {
	Status  string `json:"status"`
	Topic   string `json:"topic"`
	Version string `json:"version"`
}

// handleHealthz answers 200 while the process serves at all, loading or
// not; the topic lets a client check it reached the server it meant.
func (s *Server) handleHealthz(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, health{Status: "ok", Topic: s.opts.Topic, Version: s.opts.Version})
}

// loadingAnswer is the body of a 503 while the view is still loading.
type loadingAnswer struct {
	Error    string        `json:"error"`
	Loading  bool          `json:"loading"`
	Progress view.Progress `json:"progress"`
}

// loading answers 503 with Retry-After when the view has not yet read
// the whole topic (or never reached the broker): a list, a count or a
// "not found" from a partial view would be wrong, not just incomplete.
// It reports whether it answered.
func (s *Server) loading(w http.ResponseWriter) bool {
	p := s.opts.Store.Progress()
	if p.CaughtUp {
		return false
	}
	if p.Partitions == nil {
		p.Partitions = []view.PartitionProgress{}
	}
	read, total := recordsRead(p)
	w.Header().Set("Retry-After", "1")
	msg := fmt.Sprintf("the job view is still loading: read %d of %d records", read, total)
	if !p.Started && p.LastError != "" {
		msg += " (" + p.LastError + ")"
	}
	writeJSON(w, http.StatusServiceUnavailable, loadingAnswer{Error: msg, Loading: true, Progress: p})
	return true
}

// recordsRead sums, over the partitions present at start, the offsets
// read and the offsets to read before the view is caught up. Offsets
// stand in for records: on a compacted or expired partition they
// overcount both sides alike.
func recordsRead(p view.Progress) (read, total int64) {
	for _, pp := range p.Partitions {
		if pp.EndOffsetAtStart < 0 {
			continue // added after start: not part of catching up
		}
		total += pp.EndOffsetAtStart
		read += min(pp.NextOffset, pp.EndOffsetAtStart)
	}
	return read, total
}

// readiness is the body of /readyz.
type readiness struct {
	Status          string `json:"status"`
	Error           string `json:"error,omitempty"`
	CaughtUp        bool   `json:"caught_up"`
	BrokerReachable bool   `json:"broker_reachable"`
}

// handleReadyz answers 200 once the view has read the whole topic and the
// broker answers, 503 before (and whenever the broker stops answering).
func (s *Server) handleReadyz(w http.ResponseWriter, _ *http.Request) {
	p := s.opts.Store.Progress()
	if s.opts.Store.Ready() {
		writeJSON(w, http.StatusOK, readiness{Status: "ready", CaughtUp: true, BrokerReachable: true})
		return
	}
	msg := "not ready: "
	switch {
	case p.LastError != "":
		msg += p.LastError
	case !p.Started:
		msg += "the broker has not answered yet"
	default:
		msg += "the job view is still reading the topic"
	}
	writeJSON(w, http.StatusServiceUnavailable, readiness{Status: "not ready", Error: msg, CaughtUp: p.CaughtUp, BrokerReachable: p.BrokerReachable})
}

// handleMetrics refreshes the gauges that mirror the view and the lag,
// then serves the registry.
func (s *Server) handleMetrics(w http.ResponseWriter, r *http.Request) {
	m := s.opts.Metrics
	if m == nil {
		writeError(w, http.StatusNotFound, "metrics are not enabled")
		return
	}
	for st, n := range s.opts.Store.Counts().ByStatus {
		m.JobsByStatus.WithLabelValues(string(st)).Set(float64(n))
	}
	s.updateLagGauges(s.lag.get(r.Context()))
	m.Handler().ServeHTTP(w, r)
}

func (s *Server) updateLagGauges(l LagStats) {
	m := s.opts.Metrics
	if m == nil {
		return
	}
	for _, g := range l.Groups {
		for _, p := range g.Partitions {
			if p.Lag != nil {
				m.ConsumerLag.WithLabelValues(g.Group, strconv.Itoa(p.Partition)).Set(float64(*p.Lag))
			}
			if p.Pending != nil {
				m.PendingJobs.WithLabelValues(g.Group, strconv.Itoa(p.Partition)).Set(float64(*p.Pending))
			}
		}
	}
}

// lagCache reuses one lag reading for ttl: reading it costs a request per
// consumer group, and every open dashboard polls /stats.
type lagCache struct {
	reader LagReader
	store  JobStore // counts pending jobs when it is a PendingCounter
	ttl    time.Duration
	now    func() time.Time

	mu   sync.Mutex
	last LagStats
}

func (c *lagCache) get(ctx context.Context) LagStats {
	if c.reader == nil {
		return LagStats{Groups: []GroupLag{}}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.last.ReadAt.IsZero() && c.now().Sub(c.last.ReadAt) < c.ttl {
		return c.last
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	groups, err := c.reader.GroupLag(ctx)
	if groups == nil {
		groups = []GroupLag{}
	}
	if pc, ok := c.store.(PendingCounter); ok {
		addPending(pc, groups)
	}
	c.last = LagStats{Groups: groups, ReadAt: c.now().UTC()}
	if err != nil {
		c.last.Error = err.Error()
	}
	return c.last
}

// PendingCounter counts the jobs each consumer group has not finished;
// *view.View implements it. A JobStore that does not leaves /stats and
// /metrics without pending counts.
type PendingCounter interface {
	PendingAt(positions map[string]map[int]view.GroupPosition) map[string]map[int]int
}

// addPending fills in the pending jobs of groups. It walks every job of
// the view, which is why it runs only when the lag is read again (at
// most once per LagCacheTTL), not per request.
func addPending(pc PendingCounter, groups []GroupLag) {
	positions := make(map[string]map[int]view.GroupPosition, len(groups))
	for _, g := range groups {
		m := make(map[int]view.GroupPosition, len(g.Partitions))
		for _, p := range g.Partitions {
			m[p.Partition] = view.GroupPosition{Committed: p.Committed, EndOffset: p.EndOffset}
		}
		positions[g.Group] = m
	}
	pending := pc.PendingAt(positions)
	for i := range groups {
		g := &groups[i]
		var total int64
		for j := range g.Partitions {
			n := int64(pending[g.Group][g.Partitions[j].Partition])
			g.Partitions[j].Pending = &n
			total += n
		}
		g.Pending = &total
	}
}
