package view

import (
	"testing"
	"time"

	"github.com/jobctl/jobctl/pkg/job"
)

func gev(t testing.TB, jobID string, st job.Status, group string, attempt int, at time.Time) job.Event {
	e := ev(t, jobID, st, attempt, at)
	e.Group = group
	e.Worker = group + "-w"
	return e
}

func groupRow(t *testing.T, j Job, group string) GroupStatus {
	t.Helper()
	for _, g := range j.Groups {
		if g.Group == group {
			return g
		}
	}
	t.Fatalf("job %s has no row for group %s: %+v", j.ID, group, j.Groups)
	return GroupStatus{}
}

// TestStatusPerGroup: two groups each run a job; the view keeps both
// states, and the overall status is the group furthest behind.
func TestStatusPerGroup(t *testing.T) {
	v := New(Options{})
	rec := Record{Partition: 1}
	v.Apply(ev(t, "1", job.StatusNew, 0, t0), rec)
	v.Apply(gev(t, "1", job.StatusRunning, "a", 1, t0.Add(time.Second)), rec)
	v.Apply(gev(t, "1", job.StatusDone, "a", 1, t0.Add(2*time.Second)), rec)
	j, _ := v.Get("1")
	if j.Status != job.StatusDone || len(j.Groups) != 1 || j.Groups[0].Group != "a" || j.Groups[0].Status != job.StatusDone {
		t.Fatalf("one group: %+v", j)
	}
	if got := v.Pending([]string{"a", "b"}, nil); len(got["a"]) != 0 || len(got["b"]) != 0 {
		t.Fatalf("pending without untouched = %v, want none", got)
	}
	if got := v.Pending([]string{"a", "b"}, func(string, int) bool { return true }); got["a"][1] != 0 || got["b"][1] != 1 {
		t.Fatalf("pending = %v, want a:0 b:1 (b exists and has not touched the job)", got)
	}

	// Group b starts later: the job is RUNNING overall while b runs it.
	v.Apply(gev(t, "1", job.StatusRunning, "b", 1, t0.Add(3*time.Second)), rec)
	j, _ = v.Get("1")
	if j.Status != job.StatusRunning || j.Worker != "b-w" {
		t.Fatalf("overall while b runs = %s (%s), want RUNNING from b", j.Status, j.Worker)
	}
	if a, b := groupRow(t, j, "a"), groupRow(t, j, "b"); a.Status != job.StatusDone || a.Worker != "a-w" || b.Status != job.StatusRunning {
		t.Fatalf("rows: %+v", j.Groups)
	}
	if c := v.Counts(); c.ByStatus[job.StatusRunning] != 1 || c.ByStatus[job.StatusDone] != 0 {
		t.Fatalf("counts = %+v", c)
	}
	if got := v.Pending([]string{"a", "b"}, nil); got["a"][1] != 0 || got["b"][1] != 1 {
		t.Fatalf("pending = %v, want a:0 b:1", got)
	}
	// b fails for good: DEAD outranks a's DONE (DONE only when all are).
	v.Apply(gev(t, "1", job.StatusDead, "b", 1, t0.Add(4*time.Second)), rec)
	j, _ = v.Get("1")
	if j.Status != job.StatusDead || groupRow(t, j, "a").Status != job.StatusDone {
		t.Fatalf("after b DEAD: %+v", j)
	}
	if got := v.Pending([]string{"a", "b"}, nil); got["a"][1] != 0 || got["b"][1] != 0 {
		t.Fatalf("pending = %v, want none", got)
	}
	// A retry (a NEW of run 1, no group) is pending for both groups.
	retry := ev(t, "1", job.StatusNew, 0, t0.Add(5*time.Second))
	retry.Run = 1
	v.Apply(retry, rec)
	j, _ = v.Get("1")
	if j.Status != job.StatusNew || groupRow(t, j, "a").Status != job.StatusNew || groupRow(t, j, "b").Status != job.StatusNew {
		t.Fatalf("after retry: %+v", j)
	}
	if got := v.Pending([]string{"a", "b"}, nil); got["a"][1] != 1 || got["b"][1] != 1 {
		t.Fatalf("pending = %v, want a:1 b:1", got)
	}
	done := gev(t, "1", job.StatusDone, "a", 1, t0.Add(6*time.Second))
	done.Run = 1
	v.Apply(done, rec)
	done.Group, done.Worker, done.UpdatedAt = "b", "b-w", t0.Add(7*time.Second)
	v.Apply(done, rec)
	j, _ = v.Get("1")
	if j.Status != job.StatusDone || j.Run != 1 {
		t.Fatalf("after both DONE in run 1: %+v", j)
	}
	if c := v.Counts(); c.Total != 1 || c.ByStatus[job.StatusDone] != 1 {
		t.Fatalf("counts = %+v", c)
	}

	// List by group shows that group's state and only jobs it touched.
	v.Apply(ev(t, "2", job.StatusNew, 0, t0), Record{Partition: 0})
	v.Apply(gev(t, "2", job.StatusFailed, "a", 1, t0.Add(time.Second)), Record{Partition: 0})
	list, _ := v.List(Query{Group: "a"})
	if len(list) != 2 || list[1].Status != job.StatusFailed || list[1].Worker != "a-w" {
		t.Fatalf("list --group a = %+v", list)
	}
	list, _ = v.List(Query{Group: "b"})
	if len(list) != 1 || list[0].ID.String() != "1" {
		t.Fatalf("list --group b = %+v", list)
	}
	if list, _ = v.List(Query{Group: "a", Status: job.StatusFailed}); len(list) != 1 || list[0].ID.String() != "2" {
		t.Fatalf("list --group a --status FAILED = %+v", list)
	}
	if list, _ = v.List(Query{Group: "nope"}); len(list) != 0 {
		t.Fatalf("list --group nope = %+v", list)
	}
	got := v.Pending([]string{"a", "b"}, func(g string, p int) bool { return g == "b" })
	if got["a"][0] != 1 || got["a"][1] != 0 || got["b"][0] != 1 || got["b"][1] != 0 {
		t.Fatalf("pending = %v, want a:{0:1} b:{0:1}", got)
	}
}

// TestGroupOrderIndependent: the per-group states do not depend on the
// order events arrive in.
func TestGroupOrderIndependent(t *testing.T) {
	evs := []job.Event{
		ev(t, "9", job.StatusNew, 0, t0),
		gev(t, "9", job.StatusRunning, "a", 1, t0.Add(time.Second)),
		gev(t, "9", job.StatusDone, "a", 1, t0.Add(2*time.Second)),
		gev(t, "9", job.StatusFailed, "b", 1, t0.Add(3*time.Second)),
		gev(t, "9", job.StatusDone, "b", 2, t0.Add(4*time.Second)),
	}
	var first []GroupStatus
	for _, order := range [][]int{{0, 1, 2, 3, 4}, {4, 3, 2, 1, 0}, {3, 0, 4, 2, 1}, {2, 4, 0, 1, 3}} {
		v := New(Options{})
		for _, i := range order {
			v.Apply(evs[i], Record{})
		}
		j, _ := v.Get("9")
		if j.Status != job.StatusDone {
			t.Errorf("order %v: overall %s, want DONE", order, j.Status)
		}
		rows := map[string]GroupStatus{}
		for _, g := range j.Groups {
			rows[g.Group] = g
		}
		if rows["a"].Status != job.StatusDone || rows["a"].Attempt != 1 || rows["b"].Status != job.StatusDone || rows["b"].Attempt != 2 {
			t.Errorf("order %v: rows %+v", order, j.Groups)
		}
		_ = first
	}
}

// TestSingleGroupKeepsNoGroupStates: jobs touched by one group keep no
// per-group slice (their entry is their group's state).
func TestSingleGroupKeepsNoGroupStates(t *testing.T) {
	v := New(Options{})
	for i := range 100 {
		id := job.NumericID(int64(i))
		v.Apply(job.Event{JobID: id, Status: job.StatusNew, UpdatedAt: t0}, Record{})
		v.Apply(job.Event{JobID: id, Status: job.StatusDone, Group: "g", Attempt: 1, UpdatedAt: t0.Add(time.Second)}, Record{})
	}
	if len(v.multi) != 0 {
		t.Fatalf("%d jobs keep per-group slices, want 0", len(v.multi))
	}
	j, _ := v.Get("5")
	if j.Status != job.StatusDone || len(j.Groups) != 1 || j.Groups[0].Group != "g" {
		t.Fatalf("job 5: %+v", j)
	}
}
