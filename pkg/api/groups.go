package api

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"time"
)

// GroupDescriber describes consumer groups as their coordinators see
// them: members and the partitions of the topic assigned to each. serve
// adapts pkg/admin's DescribeGroups to it.
type GroupDescriber interface {
	DescribeGroups(ctx context.Context, groups []string) ([]GroupDescription, error)
}

// GroupDescription is one group as its coordinator describes it.
type GroupDescription struct {
	Group    string
	State    string
	Protocol string
	Members  []GroupMember
	// Error says why the group could not be described (fully).
	Error string
}

// GroupMember is one member of a group and its partitions of the topic.
type GroupMember struct {
	MemberID   string `json:"member_id"`
	InstanceID string `json:"instance_id"`
	ClientID   string `json:"client_id"`
	Host       string `json:"host"`
	Partitions []int  `json:"partitions"`
}

// GroupRater reports jobs finished per second by consumer group;
// *view.View implements it. Without it jobs_per_second is 0.
type GroupRater interface {
	GroupRates() map[string]float64
}

// describeTimeout bounds one DescribeGroups round trip.
const describeTimeout = 5 * time.Second

// groupInfo is one group of GET /groups.
type groupInfo struct {
	Group    string        `json:"group"`
	State    string        `json:"state"`
	Protocol string        `json:"protocol"`
	Paused   bool          `json:"paused"`
	Members  []GroupMember `json:"members"`
	// Pending is the group's unfinished jobs by partition, as /stats
	// counts them: only for a group with committed offsets on the topic.
	Pending       map[string]int64 `json:"pending"`
	PendingTotal  int64            `json:"pending_total"`
	JobsPerSecond float64          `json:"jobs_per_second"`
	// Error says what could not be read for this group (its members, or
	// the lag its pending count comes from).
	Error string `json:"error,omitempty"`
}

// groupList is the body of GET /groups.
type groupList struct {
	Groups []groupInfo `json:"groups"`
}

// handleListGroups answers GET /groups: every consumer group that has
// committed offsets on the topic, is paused, or wrote events the view
// has read, with its members and their partitions, pending jobs and
// finish rate. Pending comes from the whole view, so it is 503 while the
// view is loading, like /stats.
func (s *Server) handleListGroups(w http.ResponseWriter, r *http.Request) {
	if s.loading(w) {
		return
	}
	groups := s.groups(r.Context(), "")
	writeJSON(w, http.StatusOK, groupList{Groups: groups})
}

// handleGetGroup answers GET /groups/{group}: one group as GET /groups
// lists it; also a group known only to the broker whose members are
// assigned partitions of the topic (it has not committed yet). 404 for
// any other.
func (s *Server) handleGetGroup(w http.ResponseWriter, r *http.Request) {
	if s.loading(w) {
		return
	}
	name := r.PathValue("group")
	groups := s.groups(r.Context(), name)
	if len(groups) == 0 {
		writeError(w, http.StatusNotFound, fmt.Sprintf("consumer group %q has no committed offsets on topic %q, is not paused, wrote no job events there and has no members reading it", name, s.opts.Topic))
		return
	}
	writeJSON(w, http.StatusOK, groups[0])
}

// groups gathers the groups of GET /groups, or only the group named
// only when it is not empty.
func (s *Server) groups(ctx context.Context, only string) []groupInfo {
	lag := s.lag.get(ctx)
	paused := s.pausedGroups()
	var rates map[string]float64
	if gr, ok := s.opts.Store.(GroupRater); ok {
		rates = gr.GroupRates()
	}

	known := map[string]bool{}
	for _, g := range lag.Groups {
		known[g.Group] = true
	}
	for _, g := range paused {
		known[g] = true
	}
	for g := range rates {
		known[g] = true
	}
	var names []string
	if only != "" {
		names = []string{only}
	} else {
		for g := range known {
			names = append(names, g)
		}
		sort.Strings(names)
	}
	if len(names) == 0 {
		return []groupInfo{}
	}

	described := map[string]GroupDescription{}
	var describeErr string
	if s.opts.Groups != nil {
		dctx, cancel := context.WithTimeout(ctx, describeTimeout)
		descs, err := s.opts.Groups.DescribeGroups(dctx, names)
		cancel()
		for _, d := range descs {
			described[d.Group] = d
		}
		if err != nil && len(descs) == 0 {
			describeErr = "describing the consumer groups failed: " + err.Error()
		}
	}

	out := make([]groupInfo, 0, len(names))
	for _, name := range names {
		d, ok := described[name]
		if !known[name] && !(ok && hasPartitions(d.Members)) {
			continue
		}
		gi := groupInfo{
			Group: name, State: d.State, Protocol: d.Protocol, Members: d.Members,
			Paused: slices.Contains(paused, name), Pending: map[string]int64{},
			JobsPerSecond: rates[name], Error: d.Error,
		}
		if gi.Members == nil {
			gi.Members = []GroupMember{}
		}
		if !ok && describeErr != "" {
			gi.Error = describeErr
		}
		for _, gl := range lag.Groups {
			if gl.Group != name {
				continue
			}
			for _, p := range gl.Partitions {
				if p.Pending != nil {
					gi.Pending[strconv.Itoa(p.Partition)] = *p.Pending
					gi.PendingTotal += *p.Pending
				}
			}
		}
		if lag.Error != "" && gi.Error == "" {
			gi.Error = "reading committed offsets: " + lag.Error
		}
		out = append(out, gi)
	}
	return out
}

func hasPartitions(members []GroupMember) bool {
	for _, m := range members {
		if len(m.Partitions) > 0 {
			return true
		}
	}
	return false
}
