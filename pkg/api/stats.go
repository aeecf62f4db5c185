package api

import (
	"context"
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
	st := Stats{
		Jobs:       s.opts.Store.Counts(),
		Throughput: s.opts.Store.Throughput(),
		View:       s.opts.Store.Progress(),
		Lag:        s.lag.get(r.Context()),

		PausedGroups: s.pausedGroups(),
	}
	if st.View.Partitions == nil {
		st.View.Partitions = []view.PartitionProgress{}
	}
	s.updateLagGauges(st.Lag)
	writeJSON(w, http.StatusOK, st)
}

func (s *Server) handleHealthz(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
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
		}
	}
}

// lagCache reuses one lag reading for ttl: reading it costs a request per
// consumer group, and every open dashboard polls /stats.
type lagCache struct {
	reader LagReader
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
	c.last = LagStats{Groups: groups, ReadAt: c.now().UTC()}
	if err != nil {
		c.last.Error = err.Error()
	}
	return c.last
}
