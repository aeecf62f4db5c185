package deadletter

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/jobctl/jobctl/pkg/job"
)

func mustID(t *testing.T, s string) job.ID {
	t.Helper()
	id, err := job.ParseID(s)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func TestLetterEncoding(t *testing.T) {
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	l := Letter{
		Kind: KindJob, JobID: mustID(t, "42"), Group: "billing", Run: 1, Type: "resize",
		Payload: json.RawMessage(`{"w":64}`), Attempts: 2,
		Errors: []job.AttemptError{{Attempt: 1, Error: "boom", At: at}, {Attempt: 2, Error: "bang", At: at}},
		Reason: "last attempt failed", Origin: Origin{Topic: "jobs", Partition: 3, Offset: 12}, DeadAt: at,
	}
	m, err := Message(l)
	if err != nil {
		t.Fatal(err)
	}
	if string(m.Key) != "42" || len(m.Headers) != 1 || m.Headers[0].Key != HeaderKind || string(m.Headers[0].Value) != "job" {
		t.Fatalf("key %q headers %v", m.Key, m.Headers)
	}
	var raw map[string]any
	if err := json.Unmarshal(m.Value, &raw); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"kind", "job_id", "group", "run", "type", "payload", "attempts", "errors", "reason", "origin", "dead_at"} {
		if _, ok := raw[k]; !ok {
			t.Errorf("field %q missing in %s", k, m.Value)
		}
	}
	if raw["job_id"] != float64(42) {
		t.Errorf("numeric job id echoed as %v", raw["job_id"])
	}
	for _, k := range []string{"record", "key", "truncated"} {
		if _, ok := raw[k]; ok {
			t.Errorf("field %q should be omitted: %s", k, m.Value)
		}
	}
	back, err := Decode(m.Value)
	if err != nil {
		t.Fatal(err)
	}
	if back.JobID.String() != "42" || back.Run != 1 || back.Origin != l.Origin || !back.DeadAt.Equal(at) || len(back.Errors) != 2 || back.LastError() != "bang" {
		t.Fatalf("round trip: %+v", back)
	}

	// A poison record without an id: keyed by its position, raw bytes kept.
	p := Letter{Kind: KindPoison, Origin: Origin{Topic: "jobs", Partition: 1, Offset: 7}, Key: nil, Record: []byte{0xff, 0, 'x'}, Reason: "not a job event"}
	m, err = Message(p)
	if err != nil {
		t.Fatal(err)
	}
	if string(m.Key) != "poison:1:7" {
		t.Fatalf("poison key %q", m.Key)
	}
	if bytes.Contains(m.Value, []byte(`"job_id"`)) {
		t.Fatalf("poison letter without id has a job_id: %s", m.Value)
	}
	back, err = Decode(m.Value)
	if err != nil || !bytes.Equal(back.Record, p.Record) || back.Kind != KindPoison {
		t.Fatalf("poison round trip: %+v %v", back, err)
	}

	// Invalid letters fail before anything is written.
	if _, err := Message(Letter{Kind: KindJob}); err == nil || !strings.Contains(err.Error(), "job_id") {
		t.Fatalf("job letter without id: %v", err)
	}
	if _, err := Message(Letter{Kind: "zombie", JobID: mustID(t, "1")}); err == nil {
		t.Fatal("unknown kind accepted")
	}
	if _, err := Decode([]byte(`{"job_id": 1, "status": "NEW"}`)); err == nil {
		t.Fatal("a job event decoded as a letter")
	}
}

func TestRecordIsCappedAt64KiB(t *testing.T) {
	l := Letter{Kind: KindPoison, Origin: Origin{Partition: 0, Offset: 1}, Record: bytes.Repeat([]byte("a"), 200<<10)}
	got, err := Fit(l, MaxLetterBytes)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Record) != MaxRecordBytes || !contains(got.Truncated, "record") || !strings.Contains(got.Reason, "record kept 65536 of 204800 bytes") {
		t.Fatalf("record %d bytes, truncated %v, reason %q", len(got.Record), got.Truncated, got.Reason)
	}
}

func TestShrinkToFit(t *testing.T) {
	big := strings.Repeat("x", 400<<10)
	errs := make([]job.AttemptError, 50)
	for i := range errs {
		errs[i] = job.AttemptError{Attempt: i + 1, Error: strings.Repeat("e", 30<<10)}
	}
	cases := []struct {
		name     string
		letter   Letter
		budget   int
		wantCut  []string
		keptPay  bool
		wantNote string
	}{
		{"fits", Letter{Kind: KindJob, JobID: mustID(t, "a"), Payload: json.RawMessage(`{"a":1}`)}, MaxLetterBytes, nil, true, ""},
		{"record cut first", Letter{Kind: KindPoison, JobID: mustID(t, "a"), Payload: json.RawMessage(`{"a":1}`), Record: bytes.Repeat([]byte("r"), 60<<10)}, 40 << 10, []string{"record"}, true, "record kept"},
		{"payload replaced", Letter{Kind: KindJob, JobID: mustID(t, "b"), Payload: json.RawMessage(`"` + big + `"`), Errors: errs[:2]}, 100 << 10, []string{"payload"}, false, "replaced by {\"truncated\": "},
		{"errors cut", Letter{Kind: KindJob, JobID: mustID(t, "c"), Payload: json.RawMessage(`"` + big + `"`), Errors: errs}, 100 << 10, []string{"payload", "errors"}, false, "error texts kept"},
		{"long errors cut to a few", Letter{Kind: KindJob, JobID: mustID(t, "c"), Payload: json.RawMessage(`"` + big + `"`), Errors: errs}, 20 << 10, []string{"payload", "errors"}, false, "kept the first and last 5 of 50 errors"},
		{"everything long", Letter{Kind: KindJob, JobID: mustID(t, "d"), Type: big, Group: big, Reason: big, Payload: json.RawMessage(`"` + big + `"`), Errors: errs}, 20 << 10, []string{"payload", "errors", "fields"}, false, "reason cut"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.letter.Reason = tc.letter.Reason + "why"
			got, v, err := fit(tc.letter, tc.budget)
			if err != nil {
				t.Fatal(err)
			}
			if len(v) > tc.budget {
				t.Fatalf("encoded %d bytes, over the budget %d", len(v), tc.budget)
			}
			for _, c := range tc.wantCut {
				if !contains(got.Truncated, c) {
					t.Errorf("truncated %v, want %q in it", got.Truncated, c)
				}
			}
			if tc.wantCut == nil && got.Truncated != nil {
				t.Errorf("truncated %v, want nothing", got.Truncated)
			}
			if tc.keptPay != bytes.Equal(got.Payload, tc.letter.Payload) {
				t.Errorf("payload kept = %v, want %v (truncated %v, reason %q)", !tc.keptPay, tc.keptPay, got.Truncated, got.Reason)
			}
			if !tc.keptPay {
				var note struct{ Truncated int }
				if err := json.Unmarshal(got.Payload, &note); err != nil || note.Truncated != len(tc.letter.Payload) {
					t.Errorf("payload %s, want {\"truncated\": %d}", got.Payload, len(tc.letter.Payload))
				}
			}
			if !strings.Contains(got.Reason, tc.wantNote) || !strings.HasPrefix(got.Reason, "why") && tc.letter.Reason == "why" {
				t.Errorf("reason %q, want it to say %q", got.Reason, tc.wantNote)
			}
			back, err := Decode(v)
			if err != nil {
				t.Fatalf("the cut letter does not decode: %v", err)
			}
			if back.JobID != tc.letter.JobID {
				t.Errorf("job id %v, want %v", back.JobID, tc.letter.JobID)
			}
		})
	}
}

func TestFilter(t *testing.T) {
	t0 := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	l := Letter{Kind: KindJob, JobID: mustID(t, "1"), Type: "resize", Group: "billing", DeadAt: t0,
		Errors: []job.AttemptError{{Attempt: 1, Error: "Connection Refused"}}, Reason: "max attempts"}
	cases := []struct {
		f    Filter
		want bool
	}{
		{Filter{}, true},
		{Filter{Type: "resize"}, true},
		{Filter{Type: "other"}, false},
		{Filter{Group: "billing"}, true},
		{Filter{Group: "audit"}, false},
		{Filter{Kind: KindJob}, true},
		{Filter{Kind: KindPoison}, false},
		{Filter{ErrorContains: "connection refused"}, true},
		{Filter{ErrorContains: "MAX ATT"}, true},
		{Filter{ErrorContains: "timeout"}, false},
		{Filter{Since: t0}, true},
		{Filter{Since: t0.Add(time.Second)}, false},
		{Filter{Until: t0}, false},
		{Filter{Until: t0.Add(time.Second)}, true},
		{Filter{Since: t0.Add(-time.Hour), Until: t0.Add(time.Hour), Type: "resize", Group: "billing", ErrorContains: "refused"}, true},
	}
	for _, tc := range cases {
		if got := tc.f.Match(l); got != tc.want {
			t.Errorf("%+v: match %v, want %v", tc.f, got, tc.want)
		}
	}
	if (Filter{}).Match(Letter{Kind: KindReplayed, JobID: mustID(t, "1")}) {
		t.Error("a replay marker is listed")
	}
	for _, bad := range []Filter{{Kind: KindReplayed}, {Kind: "x"}, {Limit: -1}, {Since: t0, Until: t0}} {
		if bad.Check() == nil {
			t.Errorf("%+v passed Check", bad)
		}
	}
}

func TestParseTime(t *testing.T) {
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	for in, want := range map[string]time.Time{
		"":                     {},
		"1h":                   now.Add(-time.Hour),
		"90m":                  now.Add(-90 * time.Minute),
		"7d":                   now.Add(-7 * 24 * time.Hour),
		"2026-04-30T10:00:00Z": time.Date(2026, 4, 30, 10, 0, 0, 0, time.UTC),
	} {
		got, err := ParseTime(in, now)
		if err != nil || !got.Equal(want) {
			t.Errorf("ParseTime(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, bad := range []string{"yesterday", "-1h", "2026-04-30", "1.5d"} {
		if _, err := ParseTime(bad, now); err == nil {
			t.Errorf("ParseTime(%q) accepted", bad)
		}
	}
}

func TestCollateAndPlan(t *testing.T) {
	t0 := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	id := func(s string) job.ID { return mustID(t, s) }
	records := []Entry{
		{Letter: Letter{Kind: KindJob, JobID: id("a"), Run: 0, Group: "g1", DeadAt: t0, Origin: Origin{Topic: "jobs", Partition: 2}}, Offset: 0},
		{Letter: Letter{Kind: KindJob, JobID: id("a"), Run: 0, Group: "g2", DeadAt: t0.Add(time.Second), Origin: Origin{Topic: "jobs", Partition: 2}}, Offset: 1},
		{Letter: Letter{Kind: KindReplayed, JobID: id("a"), Run: 0}, Offset: 2, ReplayedAt: t0.Add(time.Minute)},
		{Letter: Letter{Kind: KindJob, JobID: id("a"), Run: 1, Group: "g1", DeadAt: t0.Add(2 * time.Minute), Origin: Origin{Topic: "jobs", Partition: 2}}, Offset: 3},
		{Letter: Letter{Kind: KindJob, JobID: id("b"), Run: 0, DeadAt: t0.Add(-time.Minute), Type: "x", Origin: Origin{Topic: "jobs"}}, Offset: 4},
		{Letter: Letter{Kind: KindReplayed, JobID: id("b"), Run: 0}, Offset: 5, ReplayedAt: t0},
		{Letter: Letter{Kind: KindPoison, DeadAt: t0, Origin: Origin{Topic: "jobs", Partition: 1, Offset: 9}}, Offset: 6},
		{Letter: Letter{Kind: KindJob, JobID: id("c"), DeadAt: t0, Truncated: []string{"payload"}, Origin: Origin{Topic: "jobs"}}, Offset: 7},
		{Letter: Letter{Kind: KindJob, JobID: id("d"), DeadAt: t0, Origin: Origin{Topic: "other"}}, Offset: 8},
	}
	all := collate(records)
	if len(all) != 7 {
		t.Fatalf("%d entries, want 7 (markers folded)", len(all))
	}
	if all[0].JobID.String() != "b" || !all[0].Replayed {
		t.Fatalf("oldest first and replayed: %+v", all[0])
	}
	replayed := 0
	for _, e := range all {
		if e.Replayed {
			replayed++
		}
	}
	if replayed != 3 { // a run 0 (two groups' letters) and b
		t.Fatalf("%d replayed entries, want 3", replayed)
	}

	res, todo := plan(all, "jobs", ReplayRequest{All: true})
	if len(todo) != 1 || todo[0].JobID.String() != "a" || todo[0].Run != 1 || res.Replayed[0].NewRun != 2 {
		t.Fatalf("todo %+v result %+v", todo, res)
	}
	if len(res.AlreadyReplayed) != 1 || res.AlreadyReplayed[0].JobID.String() != "b" {
		t.Fatalf("already replayed %+v", res.AlreadyReplayed)
	}
	if len(res.Skipped) != 3 {
		t.Fatalf("skipped %+v, want poison, cut payload, other topic", res.Skipped)
	}

	res, todo = plan(all, "jobs", ReplayRequest{IDs: []job.ID{id("b"), id("zz")}})
	if len(todo) != 0 || len(res.AlreadyReplayed) != 1 || len(res.NotFound) != 1 || res.NotFound[0].String() != "zz" {
		t.Fatalf("by id: %+v", res)
	}
	res, todo = plan(all, "jobs", ReplayRequest{All: true, Filter: Filter{Group: "g2"}})
	if len(todo) != 0 || len(res.Replayed) != 0 {
		// a's latest run (1) died in g1: the g2 letter of run 0 is history.
		t.Fatalf("group filter: %+v", res)
	}
	if got := filterEntries(all, Filter{Limit: 2}); len(got) != 2 {
		t.Fatalf("limit: %d", len(got))
	}
	if (ReplayRequest{}).Check() == nil || (ReplayRequest{All: true, IDs: []job.ID{id("a")}}).Check() == nil || (ReplayRequest{All: true, Rate: -1}).Check() == nil {
		t.Fatal("bad requests pass Check")
	}
}
