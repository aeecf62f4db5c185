package view

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jobctl/jobctl/pkg/job"
)

// The compact layout (view.go, history.go) must not change what the view
// answers: these tests pin what it has to keep exactly.

func TestLayoutIDFormsAndOrder(t *testing.T) {
	v := New(Options{})
	texts := []string{"1234", "-5", "0", "9223372036854775807", "9999999999999999999", "99999999999999999999", "0012", "abc", "Abc", "job-7", "77"}
	for _, s := range texts {
		var jid job.ID
		if s == "77" || s == "0012" || s == "9999999999999999999" || !isCanonicalInt(s) {
			jid, _ = job.StringID(s) // given as a JSON string
		} else {
			jid, _ = job.ParseID(s)
		}
		v.Apply(job.Event{JobID: jid, Status: job.StatusNew, UpdatedAt: t0}, Record{})
	}
	for _, s := range texts {
		j, ok := v.Get(s)
		if !ok || j.ID.String() != s {
			t.Fatalf("Get(%q) = %v, %v", s, j.ID, ok)
		}
		b, _ := json.Marshal(j.ID)
		wantQuoted := s == "77" || s == "0012" || s == "9999999999999999999" || !isCanonicalInt(s)
		if quoted := b[0] == '"'; quoted != wantQuoted {
			t.Errorf("id %q marshals as %s: the form it was given in is lost", s, b)
		}
	}
	want := slices.Clone(texts)
	slices.SortFunc(want, compareIDText)
	list := func(q Query) []string {
		jobs, _ := v.List(q)
		var out []string
		for _, j := range jobs {
			out = append(out, j.ID.String())
		}
		return out
	}
	if got := list(Query{}); !slices.Equal(got, want) {
		t.Fatalf("list order\n got %q\nwant %q", got, want)
	}
	rev := slices.Clone(want)
	slices.Reverse(rev)
	if got := list(Query{Desc: true}); !slices.Equal(got, rev) {
		t.Fatalf("desc order\n got %q\nwant %q", got, rev)
	}
	for i, after := range want {
		if got := list(Query{After: after}); !slices.Equal(got, want[i+1:]) {
			t.Errorf("after %q: got %q, want %q", after, got, want[i+1:])
		}
		if got := list(Query{After: after, Desc: true}); !slices.Equal(got, rev[len(want)-i:]) {
			t.Errorf("after %q desc: got %q, want %q", after, got, rev[len(want)-i:])
		}
	}
	if _, ok := v.Get("12345"); ok {
		t.Fatal("Get of an unknown id found a job")
	}
}

func TestLayoutHistoryLimitAndFields(t *testing.T) {
	v := New(Options{HistoryLimit: 3})
	jid := id(t, "42")
	long := strings.Repeat("stack trace line\n", 1000)
	v.Apply(job.Event{JobID: jid, Status: job.StatusNew, Type: "report", Payload: json.RawMessage(`{"a":[1,2]}`), RunAt: t0.Add(time.Hour), CreatedAt: t0, UpdatedAt: t0}, Record{Partition: 3})
	var want []HistoryEntry
	for a := 1; a <= 3; a++ {
		at := t0.Add(time.Duration(a) * time.Minute)
		e := job.Event{JobID: jid, Status: job.StatusFailed, Group: "g", Attempt: a, Worker: fmt.Sprint("w", a), Error: fmt.Sprint(long, a), RetryAt: at.Add(time.Second), UpdatedAt: at}
		v.Apply(e, Record{Partition: 3})
		want = append(want, HistoryEntry{Status: job.StatusFailed, At: at, Attempt: a, Group: "g", Worker: fmt.Sprint("w", a), Error: fmt.Sprint(long, a)})
	}
	done := t0.Add(time.Hour)
	v.Apply(job.Event{JobID: jid, Status: job.StatusDone, Group: "g", Attempt: 4, Worker: "w4", Result: json.RawMessage(`{"ok":true}`), UpdatedAt: done}, Record{Partition: 3})
	want = append(want, HistoryEntry{Status: job.StatusDone, At: done, Attempt: 4, Group: "g", Worker: "w4"})
	// An event still in the history is a duplicate.
	v.Apply(job.Event{JobID: jid, Status: job.StatusFailed, Group: "g", Attempt: 3, Worker: "w3", Error: fmt.Sprint(long, 3), UpdatedAt: t0.Add(3 * time.Minute)}, Record{})

	j, _ := v.Get("42")
	if j.Events != 5 || !slices.EqualFunc(j.History, want[1:], sameEntry) {
		t.Fatalf("events %d, history %+v\nwant the last 3 of %+v", j.Events, brief(j.History), brief(want))
	}
	if j.Status != job.StatusDone || j.Type != "report" || string(j.Payload) != `{"a":[1,2]}` || string(j.Result) != `{"ok":true}` ||
		!j.RunAt.Equal(t0.Add(time.Hour)) || !j.CreatedAt.Equal(t0) || j.Worker != "w4" || j.Error != "" || j.Partition != 3 || j.Attempt != 4 {
		t.Fatalf("job = %+v", j)
	}
}

func sameEntry(a, b HistoryEntry) bool {
	at := a.At.Equal(b.At)
	a.At, b.At = time.Time{}, time.Time{}
	return at && a == b
}

func brief(h []HistoryEntry) []string {
	var out []string
	for _, e := range h {
		out = append(out, fmt.Sprintf("%s@%s a%d %s/%s err %d B", e.Status, e.At.Format(time.TimeOnly), e.Attempt, e.Group, e.Worker, len(e.Error)))
	}
	return out
}

// Names past the bounded name table are kept per job.
func TestLayoutNamesPastTheTable(t *testing.T) {
	v := New(Options{})
	n := maxInterned + 100
	for i := range n {
		jid := job.NumericID(int64(i))
		v.Apply(job.Event{JobID: jid, Status: job.StatusNew, Type: fmt.Sprint("type-", i), UpdatedAt: t0}, Record{})
		v.Apply(job.Event{JobID: jid, Status: job.StatusRunning, Attempt: 1, Worker: fmt.Sprint("worker-", i), UpdatedAt: t0.Add(time.Second)}, Record{})
	}
	for _, i := range []int{0, 1, maxInterned / 2, maxInterned - 1, maxInterned, n - 1} {
		j, ok := v.Get(fmt.Sprint(i))
		if !ok || j.Type != fmt.Sprint("type-", i) || j.Worker != fmt.Sprint("worker-", i) || len(j.History) != 2 || j.History[1].Worker != fmt.Sprint("worker-", i) {
			t.Fatalf("job %d = %+v", i, j)
		}
		// A replayed event with a name past the table is still a duplicate.
		v.Apply(job.Event{JobID: job.NumericID(int64(i)), Status: job.StatusRunning, Attempt: 1, Worker: fmt.Sprint("worker-", i), UpdatedAt: t0.Add(time.Second)}, Record{})
		if j, _ := v.Get(fmt.Sprint(i)); j.Events != 2 {
			t.Fatalf("job %d: the replayed RUNNING counted again: %d events", i, j.Events)
		}
	}
	if jobs, _ := v.List(Query{Type: fmt.Sprint("type-", n-1)}); len(jobs) != 1 {
		t.Fatalf("List by a type past the table: %d jobs", len(jobs))
	}
}
