package admin

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sort"

	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/protocol/describegroups"
)

// GroupDescription is a consumer group as its coordinator describes it.
type GroupDescription struct {
	Group string `json:"group"`
	// State is the coordinator's group state: Stable, PreparingRebalance,
	// CompletingRebalance, Empty or Dead (a group it does not know).
	State string `json:"state"`
	// ProtocolType is "consumer" for consumer groups; Protocol is the
	// assignor the members agreed on ("jobctl-cooperative" for jobctl's
	// workers, "range", "cooperative-sticky", ... for other clients).
	ProtocolType string        `json:"protocol_type"`
	Protocol     string        `json:"protocol"`
	Members      []GroupMember `json:"members"`
	// Error says why the group could not be described (fully).
	Error string `json:"error,omitempty"`
}

// GroupMember is one member of a group and the partitions of the
// described topic assigned to it.
type GroupMember struct {
	MemberID   string `json:"member_id"`
	InstanceID string `json:"instance_id,omitempty"`
	ClientID   string `json:"client_id"`
	Host       string `json:"host"`
	Partitions []int  `json:"partitions"`
}

// DescribeGroups describes groups, each at its coordinator, with the
// partitions of topic their members are assigned.
//
// kafka-go's Client.DescribeGroups drops the instance id and the
// assignor's name, and fails the whole group when one member's metadata
// is not in the consumer format; the raw protocol message keeps all of
// it, so the assignments are decoded here. Both jobctl's own
// "jobctl-cooperative" assignor (pkg/group, which sends its assignment
// through kafka-go's SyncGroup encoder) and other clients' assignors use
// the consumer protocol's Assignment layout; only their user data
// differs, and it is not needed to list partitions.
func (a *Admin) DescribeGroups(ctx context.Context, topic string, groups []string) ([]GroupDescription, error) {
	if len(groups) == 0 {
		return []GroupDescription{}, nil
	}
	c, done := a.session()
	defer done()
	if c.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.Timeout)
		defer cancel()
	}
	m, err := c.Transport.RoundTrip(ctx, c.Addr, &describegroups.Request{Groups: groups})
	if err != nil {
		return nil, fmt.Errorf("describing consumer groups %v: %w", groups, err)
	}
	resp := m.(*describegroups.Response)
	out := make([]GroupDescription, 0, len(resp.Groups))
	var errs []error
	for _, g := range resp.Groups {
		d := GroupDescription{Group: g.GroupID, State: g.GroupState, ProtocolType: g.ProtocolType, Protocol: g.ProtocolData, Members: []GroupMember{}}
		if g.ErrorCode != 0 {
			err := fmt.Errorf("describing consumer group %q: %w", g.GroupID, kafka.Error(g.ErrorCode))
			d.Error = err.Error()
			errs = append(errs, err)
		}
		for _, mem := range g.Members {
			gm := GroupMember{MemberID: mem.MemberID, InstanceID: mem.GroupInstanceID, ClientID: mem.ClientID, Host: mem.ClientHost, Partitions: []int{}}
			if g.ProtocolType == "consumer" && len(mem.MemberAssignment) > 0 {
				parts, err := decodeAssignment(mem.MemberAssignment)
				if err != nil {
					err = fmt.Errorf("decoding the assignment of member %q of group %q: %w", mem.MemberID, g.GroupID, err)
					if d.Error != "" {
						d.Error += "; "
					}
					d.Error += err.Error()
					errs = append(errs, err)
				}
				gm.Partitions = append(gm.Partitions, parts[topic]...)
				sort.Ints(gm.Partitions)
			}
			d.Members = append(d.Members, gm)
		}
		sort.Slice(d.Members, func(i, j int) bool {
			a, b := d.Members[i], d.Members[j]
			if a.ClientID != b.ClientID {
				return a.ClientID < b.ClientID
			}
			return a.MemberID < b.MemberID
		})
		out = append(out, d)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Group < out[j].Group })
	return out, errors.Join(errs...)
}

// decodeAssignment reads a consumer protocol Assignment (versions 0-3
// share this layout): int16 version, an array of (topic string, int32
// partitions array), then user data bytes, which are ignored.
func decodeAssignment(b []byte) (map[string][]int, error) {
	r := assignmentReader{b: b}
	r.int16() // version
	out := map[string][]int{}
	topics := r.int32()
	for i := int32(0); i < topics && r.err == nil; i++ {
		topic := r.string()
		n := r.int32()
		if n > 0 && int(n) > len(r.b)/4 {
			r.err = fmt.Errorf("%d partitions announced, %d bytes left", n, len(r.b))
			break
		}
		for j := int32(0); j < n && r.err == nil; j++ {
			out[topic] = append(out[topic], int(r.int32()))
		}
	}
	return out, r.err
}

// assignmentReader reads big-endian fields and remembers the first
// short read.
type assignmentReader struct {
	b   []byte
	err error
}

func (r *assignmentReader) take(n int) []byte {
	if r.err != nil {
		return nil
	}
	if n < 0 || len(r.b) < n {
		r.err = fmt.Errorf("assignment cut short: want %d bytes, %d left", n, len(r.b))
		return nil
	}
	out := r.b[:n]
	r.b = r.b[n:]
	return out
}

func (r *assignmentReader) int16() int16 {
	if b := r.take(2); b != nil {
		return int16(binary.BigEndian.Uint16(b))
	}
	return 0
}

func (r *assignmentReader) int32() int32 {
	if b := r.take(4); b != nil {
		return int32(binary.BigEndian.Uint32(b))
	}
	return 0
}

func (r *assignmentReader) string() string {
	n := r.int16()
	if n < 0 {
		return ""
	}
	return string(r.take(int(n)))
}
