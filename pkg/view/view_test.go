package view

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/jobctl/jobctl/pkg/job"
)

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func id(t testing.TB, s string) job.ID {
	t.Helper()
	i, err := job.ParseID(s)
	if err != nil {
		t.Fatal(err)
	}
	return i
}

func ev(t testing.TB, jobID string, st job.Status, attempt int, at time.Time) job.Event {
	return job.Event{JobID: id(t, jobID), Status: st, Attempt: attempt, UpdatedAt: at}
}

func TestLateNewDoesNotRegress(t *testing.T) {
	v := New(Options{})
	v.Apply(job.Event{JobID: id(t, "7"), Status: job.StatusNew, Type: "mock", CreatedAt: t0, UpdatedAt: t0, Payload: json.RawMessage(`{"a":1}`)}, Record{Partition: 2})
	v.Apply(job.Event{JobID: id(t, "7"), Status: job.StatusDone, Attempt: 1, UpdatedAt: t0.Add(time.Second), Worker: "w1"}, Record{Partition: 2})
	// A NEW written again later (a producer retry, a replay) must not undo DONE.
	v.Apply(job.Event{JobID: id(t, "7"), Status: job.StatusNew, CreatedAt: t0, UpdatedAt: t0.Add(time.Minute)}, Record{Partition: 2})

	j, ok := v.Get("7")
	if !ok {
		t.Fatal("job 7 missing")
	}
	if j.Status != job.StatusDone || j.Attempt != 1 || j.Worker != "w1" {
		t.Fatalf("job regressed: %+v", j)
	}
	if j.Type != "mock" || string(j.Payload) != `{"a":1}` || !j.CreatedAt.Equal(t0) || j.Partition != 2 {
		t.Fatalf("descriptive fields lost: %+v", j)
	}
	if j.Events != 3 || len(j.History) != 3 || j.History[2].Status != job.StatusNew {
		t.Fatalf("history = %+v (events %d), want the late NEW recorded last", j.History, j.Events)
	}
	c := v.Counts()
	if c.Total != 1 || c.ByStatus[job.StatusDone] != 1 || c.ByStatus[job.StatusNew] != 0 {
		t.Fatalf("counts = %+v", c)
	}
}

func TestDuplicatesChangeNothing(t *testing.T) {
	v := New(Options{})
	e := ev(t, "a", job.StatusNew, 0, t0)
	v.Apply(e, Record{})
	v.Apply(e, Record{})
	v.Apply(e, Record{})
	j, _ := v.Get("a")
	if j.Events != 1 || len(j.History) != 1 {
		t.Fatalf("replayed duplicates were counted: %+v", j)
	}
}

func TestFinalStateIsOrderIndependent(t *testing.T) {
	events := []job.Event{
		ev(t, "1", job.StatusNew, 0, t0),
		ev(t, "1", job.StatusRunning, 1, t0.Add(1*time.Second)),
		ev(t, "1", job.StatusFailed, 1, t0.Add(2*time.Second)),
		ev(t, "1", job.StatusRunning, 2, t0.Add(3*time.Second)),
		ev(t, "1", job.StatusDone, 2, t0.Add(4*time.Second)),
		ev(t, "2", job.StatusNew, 0, t0),
		ev(t, "2", job.StatusDone, 1, t0.Add(time.Second)),
		ev(t, "3", job.StatusNew, 0, t0),
	}
	want := map[string]job.Status{"1": job.StatusDone, "2": job.StatusDone, "3": job.StatusNew}
	r := rand.New(rand.NewPCG(1, 2))
	for round := range 200 {
		perm := slices.Clone(events)
		r.Shuffle(len(perm), func(i, j int) { perm[i], perm[j] = perm[j], perm[i] })
		v := New(Options{})
		for _, e := range perm {
			v.Apply(e, Record{})
		}
		for k, st := range want {
			if j, _ := v.Get(k); j.Status != st {
				t.Fatalf("round %d: job %s is %s, want %s (order %v)", round, k, j.Status, st, perm)
			}
		}
		if j, _ := v.Get("1"); j.Attempt != 2 {
			t.Fatalf("round %d: job 1 attempt %d, want 2", round, j.Attempt)
		}
	}
}

func TestHistoryIsBounded(t *testing.T) {
	v := New(Options{HistoryLimit: 3})
	for i := range 10 {
		v.Apply(ev(t, "x", job.StatusFailed, i+1, t0.Add(time.Duration(i)*time.Second)), Record{})
	}
	j, _ := v.Get("x")
	if j.Events != 10 || len(j.History) != 3 {
		t.Fatalf("events %d history %d, want 10 and 3", j.Events, len(j.History))
	}
	if j.History[0].Attempt != 8 || j.History[2].Attempt != 10 {
		t.Fatalf("history kept %+v, want the last three", j.History)
	}
}

func TestRecordTimeStandsInForMissingTimes(t *testing.T) {
	v := New(Options{})
	v.Apply(job.Event{JobID: job.NumericID(1234), Status: job.StatusNew}, Record{Time: t0})
	j, _ := v.Get("1234")
	if !j.UpdatedAt.Equal(t0) || !j.CreatedAt.Equal(t0) {
		t.Fatalf("times = %v / %v, want the record time", j.CreatedAt, j.UpdatedAt)
	}
	b, _ := json.Marshal(j)
	var m map[string]any
	_ = json.Unmarshal(b, &m)
	if _, isNum := m["job_id"].(float64); !isNum {
		t.Fatalf("numeric job_id not echoed as a number: %s", b)
	}
}

func TestListOrderPagesAndFilters(t *testing.T) {
	v := New(Options{})
	ids := []string{"b", "10", "-3", "2", "a", "1732550000123-9f", "0", "1", "A"}
	for i, s := range ids {
		e := ev(t, s, job.StatusNew, 0, t0)
		if i%2 == 0 {
			e.Type = "even"
		}
		v.Apply(e, Record{})
	}
	v.Apply(ev(t, "2", job.StatusDone, 1, t0.Add(time.Second)), Record{})
	want := []string{"-3", "0", "1", "2", "10", "1732550000123-9f", "A", "a", "b"}

	all, more := v.List(Query{})
	if more || !reflect.DeepEqual(texts(all), want) {
		t.Fatalf("order = %v (more %v), want %v", texts(all), more, want)
	}
	// Walk pages of 2 by cursor.
	var walked []string
	after := ""
	for {
		page, more := v.List(Query{Limit: 2, After: after})
		walked = append(walked, texts(page)...)
		if !more {
			break
		}
		after = page[len(page)-1].ID.String()
	}
	if !reflect.DeepEqual(walked, want) {
		t.Fatalf("paged walk = %v, want %v", walked, want)
	}
	desc, _ := v.List(Query{Desc: true, Limit: 3})
	if !reflect.DeepEqual(texts(desc), []string{"b", "a", "A"}) {
		t.Fatalf("desc = %v", texts(desc))
	}
	descAfter, _ := v.List(Query{Desc: true, After: "A", Limit: 2})
	if !reflect.DeepEqual(texts(descAfter), []string{"1732550000123-9f", "10"}) {
		t.Fatalf("desc after A = %v", texts(descAfter))
	}
	done, _ := v.List(Query{Status: job.StatusDone})
	if !reflect.DeepEqual(texts(done), []string{"2"}) {
		t.Fatalf("status filter = %v", texts(done))
	}
	even, _ := v.List(Query{Type: "even"})
	if len(even) != 5 {
		t.Fatalf("type filter = %v", texts(even))
	}
	// An after that is not in the view still has its place in the order.
	fromGap, _ := v.List(Query{After: "5", Limit: 1})
	if !reflect.DeepEqual(texts(fromGap), []string{"10"}) {
		t.Fatalf("after 5 = %v", texts(fromGap))
	}
	if got, more := v.List(Query{After: "bad/id"}); len(got) != 0 || more {
		t.Fatalf("an invalid cursor listed %v", texts(got))
	}
}

func texts(jobs []Job) []string {
	out := make([]string, len(jobs))
	for i, j := range jobs {
		out[i] = j.ID.String()
	}
	return out
}

func TestCompareIDText(t *testing.T) {
	ordered := []string{"-9223372036854775808", "-10", "-9", "-1", "0", "1", "9", "10", "99", "100", "9223372036854775807",
		"-0", "01", "1.5", "10000000000000000000000", "A", "a", "ab", "b"}
	for i := range ordered {
		for j := range ordered {
			got := compareIDText(ordered[i], ordered[j])
			want := 0
			if i < j {
				want = -1
			} else if i > j {
				want = 1
			}
			if got != want {
				t.Errorf("compare(%q, %q) = %d, want %d", ordered[i], ordered[j], got, want)
			}
		}
	}
}

func TestSubscribeDeliversAndDropsForSlowReaders(t *testing.T) {
	v := New(Options{})
	fast := v.Subscribe(100)
	slow := v.Subscribe(2)
	for i := range 5 {
		v.Apply(ev(t, strconv.Itoa(i), job.StatusNew, 0, t0), Record{})
	}
	for i := range 5 {
		c := <-fast.C
		if c.Job.ID.String() != strconv.Itoa(i) || c.Missed != 0 {
			t.Fatalf("fast subscriber got %+v", c)
		}
	}
	// The slow one holds 2; 3 were dropped and the next change says so.
	<-slow.C
	<-slow.C
	v.Apply(ev(t, "9", job.StatusNew, 0, t0), Record{})
	c := <-slow.C
	if c.Missed != 3 || c.Job.ID.String() != "9" {
		t.Fatalf("slow subscriber got %+v, want missed=3 for job 9", c)
	}
	if gap := c.Seq - 2; gap != 4 {
		t.Fatalf("seq %d: the gap should show 3 dropped changes", c.Seq)
	}
	slow.Close()
	slow.Close()
	if _, ok := <-slow.C; ok {
		t.Fatal("closed subscription still delivers")
	}
	if v.Subscribers() != 1 {
		t.Fatalf("subscribers = %d, want 1", v.Subscribers())
	}
	// A no-op event (duplicate) is not a change.
	v.Apply(ev(t, "9", job.StatusNew, 0, t0), Record{})
	select {
	case c := <-fast.C:
		if c.Job.ID.String() != "9" {
			t.Fatalf("unexpected %+v", c)
		}
	default:
		t.Fatal("fast subscriber missed job 9")
	}
	select {
	case c := <-fast.C:
		t.Fatalf("duplicate produced a change: %+v", c)
	default:
	}
}

func TestThroughputWindow(t *testing.T) {
	now := t0.Add(10 * time.Minute)
	v := New(Options{Now: func() time.Time { return now }})
	for i := range 6 {
		v.Apply(ev(t, fmt.Sprint(i), job.StatusNew, 0, now.Add(-5*time.Second)), Record{})
		v.Apply(ev(t, fmt.Sprint(i), job.StatusDone, 1, now.Add(-2*time.Second)), Record{})
	}
	v.Apply(ev(t, "old", job.StatusDone, 1, now.Add(-time.Hour)), Record{})     // outside the window
	v.Apply(ev(t, "future", job.StatusFailed, 1, now.Add(time.Hour)), Record{}) // clock skew: counted now
	tp := v.Throughput()
	n := len(tp.Done)
	if n != 600 || !tp.End.Equal(now) {
		t.Fatalf("window %d ending %v", n, tp.End)
	}
	if tp.Done[n-3] != 6 || tp.New[n-6] != 6 || tp.Failed[n-1] != 1 {
		t.Fatalf("done %v new %v failed %v", tp.Done[n-8:], tp.New[n-8:], tp.Failed[n-8:])
	}
	var total uint32
	for _, d := range tp.Done {
		total += d
	}
	if total != 6 {
		t.Fatalf("done total %d, want 6 (the hour-old event is outside)", total)
	}
	if tp.DonePerSecond != 0.1 {
		t.Fatalf("done/s = %v, want 6/60", tp.DonePerSecond)
	}
}
