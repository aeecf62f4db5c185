package api

import (
	"context"
	"encoding/json"
	"slices"
	"testing"
	"time"

	"github.com/jobctl/jobctl/pkg/job"
	"github.com/jobctl/jobctl/pkg/view"
)

// fakeGroups describes groups from a table; unknown ones are Dead, as a
// coordinator answers.
type fakeGroups struct {
	groups map[string]GroupDescription
	asked  [][]string
}

func (f *fakeGroups) DescribeGroups(_ context.Context, names []string) ([]GroupDescription, error) {
	f.asked = append(f.asked, names)
	out := []GroupDescription{}
	for _, n := range names {
		d, ok := f.groups[n]
		if !ok {
			d = GroupDescription{Group: n, State: "Dead"}
		}
		out = append(out, d)
	}
	return out, nil
}

// TestGroupsRoutes: GET /groups lists the groups with commits (a, b), the
// paused one (c) and the one the view saw finish jobs (d), with members
// from the describer, pending as /stats counts it and jobs per second;
// GET /groups/{group} answers one, also a group only the broker knows
// that reads the topic (e), and 404 for others.
func TestGroupsRoutes(t *testing.T) {
	desc := &fakeGroups{groups: map[string]GroupDescription{
		"a": {Group: "a", State: "Stable", Protocol: "jobctl-cooperative", Members: []GroupMember{
			{MemberID: "m1", ClientID: "jobctl", Host: "/127.0.0.1", Partitions: []int{0}},
			{MemberID: "m2", InstanceID: "w2", ClientID: "jobctl", Host: "/127.0.0.1", Partitions: []int{1}},
		}},
		"b": {Group: "b", State: "Empty"},
		"e": {Group: "e", State: "Stable", Protocol: "range", Members: []GroupMember{{MemberID: "x", ClientID: "rdkafka", Partitions: []int{0, 1}}}},
	}}
	ctl := &fakeControl{paused: []string{"c"}}
	f := newFixture(t, func(o *Options) { o.Lag, o.Groups, o.Paused = twoGroupsLag{}, desc, ctl })
	at := time.Now()
	for _, id := range []int64{1, 2} {
		f.store.Apply(job.Event{JobID: job.NumericID(id), Status: job.StatusNew, UpdatedAt: at}, view.Record{})
		f.store.Apply(job.Event{JobID: job.NumericID(id), Status: job.StatusDone, Group: "a", Worker: "wa", Attempt: 1, UpdatedAt: at}, view.Record{})
		f.store.Apply(job.Event{JobID: job.NumericID(id), Status: job.StatusDone, Group: "d", Worker: "wd", Attempt: 1, UpdatedAt: at}, view.Record{})
	}

	resp, body := f.do(t, "GET", "/groups", "")
	var list groupList
	if err := json.Unmarshal(body, &list); err != nil || resp.StatusCode != 200 {
		t.Fatalf("GET /groups: %d %s", resp.StatusCode, body)
	}
	var names []string
	byName := map[string]groupInfo{}
	for _, g := range list.Groups {
		names = append(names, g.Group)
		byName[g.Group] = g
	}
	if !slices.Equal(names, []string{"a", "b", "c", "d"}) {
		t.Fatalf("GET /groups lists %v, want a b c d: %s", names, body)
	}
	a := byName["a"]
	if a.State != "Stable" || a.Protocol != "jobctl-cooperative" || len(a.Members) != 2 || !slices.Equal(a.Members[1].Partitions, []int{1}) ||
		a.Members[1].InstanceID != "w2" || a.Paused || a.PendingTotal != 0 || a.Pending["0"] != 0 || a.JobsPerSecond <= 0 {
		t.Errorf("group a: %+v", a)
	}
	// b runs nothing and has two untouched jobs before its commit.
	if b := byName["b"]; b.State != "Empty" || len(b.Members) != 0 || b.Members == nil || b.PendingTotal != 2 || b.Pending["0"] != 2 || b.JobsPerSecond != 0 {
		t.Errorf("group b: %+v", b)
	}
	if c := byName["c"]; !c.Paused || c.State != "Dead" || len(c.Pending) != 0 {
		t.Errorf("group c: %+v", c)
	}
	if d := byName["d"]; d.JobsPerSecond != byName["a"].JobsPerSecond || d.Paused {
		t.Errorf("group d: %+v", d)
	}
	if len(desc.asked) != 1 || !slices.Equal(desc.asked[0], names) {
		t.Errorf("described %v, want one request for %v", desc.asked, names)
	}

	for name, want := range map[string]int{"a": 200, "c": 200, "e": 200, "zzz": 404} {
		resp, body := f.do(t, "GET", "/groups/"+name, "")
		if want == 404 {
			wantError(t, resp, body, 404)
			continue
		}
		var g groupInfo
		if err := json.Unmarshal(body, &g); err != nil || resp.StatusCode != want || g.Group != name {
			t.Errorf("GET /groups/%s: %d %s", name, resp.StatusCode, body)
		}
	}

	// Loading: pending would be counted from part of the topic.
	f.store.ready.Store(false)
	resp, body = f.do(t, "GET", "/groups", "")
	wantError(t, resp, body, 503)
}

// TestGroupsWithoutDescriber lists the groups without members.
func TestGroupsWithoutDescriber(t *testing.T) {
	f := newFixture(t, func(o *Options) { o.Lag = twoGroupsLag{} })
	_, body := f.do(t, "GET", "/groups", "")
	var list groupList
	if err := json.Unmarshal(body, &list); err != nil || len(list.Groups) != 2 || list.Groups[0].Members == nil {
		t.Fatalf("GET /groups: %s", body)
	}
}
