package group

import (
	"encoding/binary"
	"sort"
)

// protocolName is the assignor name every member announces; members of
// one group must agree on it.
const protocolName = "jobctl-cooperative"

// protocolType is the classic protocol's consumer type, so that admin
// tools can describe the group.
const protocolType = "consumer"

const userDataVersion = 1

// subscriptionData is what a member tells the leader besides the
// partitions it owns: the generation it got them in and how many
// partitions it saw the topic have.
type subscriptionData struct {
	Generation int
	Partitions int
}

func (s subscriptionData) encode() []byte {
	b := make([]byte, 9)
	b[0] = userDataVersion
	binary.BigEndian.PutUint32(b[1:5], uint32(int32(s.Generation)))
	binary.BigEndian.PutUint32(b[5:9], uint32(int32(s.Partitions)))
	return b
}

func decodeSubscriptionData(b []byte) subscriptionData {
	if len(b) < 9 || b[0] != userDataVersion {
		return subscriptionData{Generation: -1}
	}
	return subscriptionData{
		Generation: int(int32(binary.BigEndian.Uint32(b[1:5]))),
		Partitions: int(int32(binary.BigEndian.Uint32(b[5:9]))),
	}
}

// assignmentData travels with each member's assignment: the partition
// count the leader used, so members do not rejoin for growth the leader
// already saw.
type assignmentData struct {
	Partitions int
}

func (a assignmentData) encode() []byte {
	b := make([]byte, 5)
	b[0] = userDataVersion
	binary.BigEndian.PutUint32(b[1:5], uint32(int32(a.Partitions)))
	return b
}

func decodeAssignmentData(b []byte) assignmentData {
	if len(b) < 5 || b[0] != userDataVersion {
		return assignmentData{}
	}
	return assignmentData{Partitions: int(int32(binary.BigEndian.Uint32(b[1:5])))}
}

// claim is one member's view in a rebalance.
type claim struct {
	MemberID   string
	Owned      []int
	Generation int
}

// assign computes a sticky, balanced, cooperative assignment of
// partitions 0..numPartitions-1:
//   - a partition claimed by two members stays with the claim of the
//     higher generation;
//   - every member keeps its partitions up to its fair share (the members
//     owning the most get the rounded-up shares);
//   - a partition above its owner's share is assigned to nobody: the owner
//     revokes it and rejoins, and the follow-up rebalance places it;
//   - partitions nobody owns go to the members furthest below their share.
func assign(claims []claim, numPartitions int) map[string][]int {
	out := make(map[string][]int, len(claims))
	if len(claims) == 0 {
		return out
	}
	members := make([]claim, len(claims))
	copy(members, claims)
	sort.Slice(members, func(i, j int) bool { return members[i].MemberID < members[j].MemberID })

	type owner struct {
		member     string
		generation int
	}
	owners := make(map[int]owner)
	for _, m := range members {
		for _, p := range m.Owned {
			if p < 0 || p >= numPartitions {
				continue
			}
			if o, ok := owners[p]; ok && o.generation >= m.Generation {
				continue
			}
			owners[p] = owner{m.MemberID, m.Generation}
		}
	}
	kept := make(map[string][]int, len(members))
	for p := 0; p < numPartitions; p++ {
		if o, ok := owners[p]; ok {
			kept[o.member] = append(kept[o.member], p)
		}
	}

	// Fair shares: the members that already own the most get the extra
	// partitions of an uneven split, which moves the fewest partitions.
	byOwned := make([]string, len(members))
	for i, m := range members {
		byOwned[i] = m.MemberID
	}
	sort.SliceStable(byOwned, func(i, j int) bool { return len(kept[byOwned[i]]) > len(kept[byOwned[j]]) })
	base, extra := numPartitions/len(members), numPartitions%len(members)
	quota := make(map[string]int, len(members))
	for i, id := range byOwned {
		quota[id] = base
		if i < extra {
			quota[id]++
		}
	}

	for _, m := range members {
		k := kept[m.MemberID]
		if len(k) > quota[m.MemberID] {
			k = k[:quota[m.MemberID]] // the rest is revoked, assigned to nobody now
		}
		out[m.MemberID] = append([]int{}, k...)
	}
	for p := 0; p < numPartitions; p++ {
		if _, owned := owners[p]; owned {
			continue
		}
		best := ""
		for _, m := range members {
			id := m.MemberID
			if len(out[id]) >= quota[id] {
				continue
			}
			if best == "" || quota[id]-len(out[id]) > quota[best]-len(out[best]) {
				best = id
			}
		}
		if best != "" {
			out[best] = append(out[best], p)
		}
	}
	for id := range out {
		sort.Ints(out[id])
	}
	return out
}
