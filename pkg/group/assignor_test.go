package group

import (
	"reflect"
	"testing"
)

func TestAssignBalancesFromScratch(t *testing.T) {
	got := assign([]claim{{MemberID: "b", Generation: -1}, {MemberID: "a", Generation: -1}}, 5)
	want := map[string][]int{"a": {0, 2, 4}, "b": {1, 3}}
	if len(got["a"])+len(got["b"]) != 5 || abs(len(got["a"])-len(got["b"])) > 1 {
		t.Fatalf("unbalanced: %v (e.g. %v)", got, want)
	}
	assertDisjointComplete(t, got, 5)
}

func TestAssignIsStickyAndRevokesToNobody(t *testing.T) {
	claims := []claim{
		{MemberID: "a", Owned: []int{0, 1, 2}, Generation: 3},
		{MemberID: "b", Owned: []int{3, 4, 5}, Generation: 3},
		{MemberID: "c", Generation: -1},
	}
	got := assign(claims, 6)
	want := map[string][]int{"a": {0, 1}, "b": {3, 4}, "c": {}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("first round = %v, want %v", got, want)
	}
	// Follow-up round after a and b revoked 2 and 5.
	claims = []claim{
		{MemberID: "a", Owned: []int{0, 1}, Generation: 4},
		{MemberID: "b", Owned: []int{3, 4}, Generation: 4},
		{MemberID: "c", Generation: -1},
	}
	got = assign(claims, 6)
	want = map[string][]int{"a": {0, 1}, "b": {3, 4}, "c": {2, 5}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("follow-up round = %v, want %v", got, want)
	}
}

func TestAssignHigherGenerationWinsAConflict(t *testing.T) {
	got := assign([]claim{
		{MemberID: "a", Owned: []int{0, 1}, Generation: 2},
		{MemberID: "b", Owned: []int{1}, Generation: 5},
	}, 2)
	if !reflect.DeepEqual(got, map[string][]int{"a": {0}, "b": {1}}) {
		t.Fatalf("got %v", got)
	}
}

func TestAssignGivesNewPartitionsToMembersBelowShare(t *testing.T) {
	got := assign([]claim{
		{MemberID: "a", Owned: []int{0, 1}, Generation: 2},
		{MemberID: "b", Owned: []int{2, 3}, Generation: 2},
	}, 7)
	if !reflect.DeepEqual(got["a"][:2], []int{0, 1}) || !reflect.DeepEqual(got["b"][:2], []int{2, 3}) {
		t.Fatalf("owned partitions moved: %v", got)
	}
	assertDisjointComplete(t, got, 7)
}

func TestAssignDropsPartitionsOfADeadMember(t *testing.T) {
	got := assign([]claim{{MemberID: "a", Owned: []int{0, 1}, Generation: 7}}, 4)
	if !reflect.DeepEqual(got, map[string][]int{"a": {0, 1, 2, 3}}) {
		t.Fatalf("got %v", got)
	}
}

func TestSubscriptionDataRoundTrip(t *testing.T) {
	in := subscriptionData{Generation: -1, Partitions: 12}
	if out := decodeSubscriptionData(in.encode()); out != in {
		t.Fatalf("got %+v", out)
	}
	if out := decodeSubscriptionData(nil); out.Generation != -1 {
		t.Fatalf("foreign user data decoded as %+v", out)
	}
}

func assertDisjointComplete(t *testing.T, plan map[string][]int, n int) {
	t.Helper()
	seen := map[int]string{}
	for id, ps := range plan {
		for _, p := range ps {
			if other, ok := seen[p]; ok {
				t.Fatalf("partition %d assigned to %s and %s", p, other, id)
			}
			seen[p] = id
		}
	}
	if len(seen) != n {
		t.Fatalf("%d of %d partitions assigned: %v", len(seen), n, plan)
	}
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}
