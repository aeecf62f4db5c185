package job

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

func TestDecodeSeedPayload(t *testing.T) {
	e, err := Decode([]byte(`{"job_id": 1234, "status": "NEW"}`))
	if err != nil {
		t.Fatal(err)
	}
	if e.JobID.String() != "1234" || !e.JobID.Numeric() || e.Status != StatusNew {
		t.Fatalf("got %+v", e)
	}
	out, err := json.Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	if string(out) != `{"job_id":1234,"status":"NEW"}` {
		t.Fatalf("seed payload should round trip unchanged, got %s", out)
	}
}

func TestDecodeStringIDEchoedAsString(t *testing.T) {
	e, err := Decode([]byte(`{"job_id": "abc-1", "status": "DONE", "attempt": 2, "worker": "w1"}`))
	if err != nil {
		t.Fatal(err)
	}
	out, _ := json.Marshal(e)
	if !strings.Contains(string(out), `"job_id":"abc-1"`) {
		t.Fatalf("string id should stay a string: %s", out)
	}
	// The same text as a number or a string is the same key.
	n, _ := Decode([]byte(`{"job_id": 42, "status": "NEW"}`))
	s, _ := Decode([]byte(`{"job_id": "42", "status": "NEW"}`))
	if string(n.Key()) != string(s.Key()) {
		t.Fatalf("keys differ: %q %q", n.Key(), s.Key())
	}
}

func TestDecodeRejectsWithReason(t *testing.T) {
	cases := map[string]string{
		``:                                   "empty input",
		`[1,2]`:                              "got an array",
		`"x"`:                                "got a string",
		`42`:                                 "got a number",
		`not json`:                           "not JSON",
		`{}`:                                 "job_id is missing",
		`{"job_id": 1}`:                      "status is missing",
		`{"job_id": 1, "status": "DUN"}`:     `status "DUN" is not one of`,
		`{"job_id": null, "status": "NEW"}`:  "job_id is null",
		`{"job_id": "", "status": "NEW"}`:    "job_id is empty",
		`{"job_id": 1.5, "status": "NEW"}`:   "not an integer",
		`{"job_id": 1e3, "status": "NEW"}`:   "not an integer",
		`{"job_id": true, "status": "NEW"}`:  "neither an integer nor a string",
		`{"job_id": "a/b", "status": "NEW"}`: "not allowed",
		`{"job_id": 1, "status": 5}`:         `field "status"`,
		`{"job_id": 1, "status": "NEW", "attempt": -1}`:     "negative",
		`{"job_id": 1, "status": "NEW"} {}`:                 "more than one value",
		`{"job_id": 1, "status": "NEW"`:                     "invalid job JSON",
		`{"job_id": 99999999999999999999, "status": "NEW"}`: "int64 range",
	}
	for in, want := range cases {
		_, err := Decode([]byte(in))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Decode(%q) = %v, want error containing %q", in, err, want)
		}
	}
}

func TestDecodeIgnoresUnknownFieldsButStrictDoesNot(t *testing.T) {
	in := []byte(`{"job_id": 1, "status": "NEW", "jobid": 2}`)
	if _, err := Decode(in); err != nil {
		t.Fatalf("lenient decode: %v", err)
	}
	if _, err := DecodeStrict(in); err == nil || !strings.Contains(err.Error(), "jobid") {
		t.Fatalf("strict decode should name the unknown field, got %v", err)
	}
}

func TestDecodeSubmission(t *testing.T) {
	e, err := DecodeSubmission([]byte(`{"type": "email", "payload": {"to": "x"}}`))
	if err != nil {
		t.Fatal(err)
	}
	if !e.JobID.IsZero() || e.Status != StatusNew || string(e.Payload) != `{"to":"x"}` {
		t.Fatalf("got %+v", e)
	}
	if _, err := DecodeSubmission([]byte(`{"job_id": 1, "status": "DONE"}`)); !IsStatusError(err) {
		t.Fatalf("DONE submission: want StatusError, got %v", err)
	}
	if _, err := DecodeSubmission([]byte(`{"job_id": 1, "stauts": "NEW"}`)); err == nil {
		t.Fatal("misspelt field accepted")
	}
	if e, err := DecodeSubmission([]byte(`{"job_id": 1234, "status": "NEW"}`)); err != nil || e.JobID.String() != "1234" {
		t.Fatalf("seed payload: %+v %v", e, err)
	}
}

func TestNewIDUniqueAndOrdered(t *testing.T) {
	a, b := NewID(), NewID()
	if a == b || a.Numeric() || a.String() == "" {
		t.Fatalf("ids %v %v", a, b)
	}
	if _, err := ParseID(a.String()); err != nil {
		t.Fatalf("generated id does not parse: %v", err)
	}
}

func TestSupersedes(t *testing.T) {
	t0 := time.Unix(100, 0)
	ev := func(s Status, attempt int, sec int64) Event {
		return Event{JobID: NumericID(1), Status: s, Attempt: attempt, UpdatedAt: t0.Add(time.Duration(sec) * time.Second)}
	}
	cases := []struct {
		name     string
		next     Event
		cur      Event
		replaces bool
	}{
		{"DONE after NEW", ev(StatusDone, 1, 2), ev(StatusNew, 0, 1), true},
		{"late NEW after DONE", ev(StatusNew, 0, 3), ev(StatusDone, 1, 2), false},
		{"RUNNING after NEW", ev(StatusRunning, 1, 2), ev(StatusNew, 0, 1), true},
		{"late RUNNING after DONE", ev(StatusRunning, 1, 3), ev(StatusDone, 1, 2), false},
		{"retry RUNNING after FAILED", ev(StatusRunning, 2, 3), ev(StatusFailed, 1, 2), true},
		{"late FAILED of attempt 1 after DONE of 2", ev(StatusFailed, 1, 4), ev(StatusDone, 2, 3), false},
		{"duplicate DONE, later wins", ev(StatusDone, 1, 5), ev(StatusDone, 1, 4), true},
		{"duplicate DONE, earlier loses", ev(StatusDone, 1, 3), ev(StatusDone, 1, 4), false},
	}
	for _, c := range cases {
		if got := c.next.Supersedes(c.cur); got != c.replaces {
			t.Errorf("%s: Supersedes = %v, want %v", c.name, got, c.replaces)
		}
	}
}

func TestParseID(t *testing.T) {
	for in, numeric := range map[string]bool{"1234": true, "-5": true, "007": false, "abc": false, "1e3": false} {
		id, err := ParseID(in)
		if err != nil {
			t.Fatalf("ParseID(%q): %v", in, err)
		}
		if id.Numeric() != numeric || id.String() != in {
			t.Errorf("ParseID(%q) = %+v", in, id)
		}
	}
	if _, err := ParseID(""); err == nil {
		t.Error("empty id accepted")
	}
}
