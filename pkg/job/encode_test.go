package job

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"testing"
	"time"
)

// TestAppendJSONMatchesMarshal: the hand-written encoder writes what
// json.Marshal writes, for every field, set or not, and for strings that
// need escaping.
func TestAppendJSONMatchesMarshal(t *testing.T) {
	strs := []string{"", "plain", "with \"quotes\" and \\", "tab\tnew\nline", "<html>&amp;", "ünïcödé ✓", "\x00\x1f", "bad \xff utf8", "line\u2028sep"}
	at := time.Date(2026, 11, 26, 1, 2, 3, 456789000, time.UTC)
	r := rand.New(rand.NewPCG(1, 2))
	pick := func() string { return strs[r.IntN(len(strs))] }
	for i := range 2000 {
		e := Event{JobID: NumericID(int64(r.IntN(1 << 40))), Status: Statuses[r.IntN(len(Statuses))]}
		if i%2 == 1 {
			e.JobID = ID{text: "id-" + pick()}
		}
		if r.IntN(2) == 0 {
			e.CreatedAt = at
		}
		if r.IntN(2) == 0 {
			e.UpdatedAt = at.Add(time.Duration(r.IntN(1e9))).In(time.FixedZone("X", 3600))
		}
		if r.IntN(2) == 0 {
			e.RetryAt = at
		}
		if r.IntN(2) == 0 {
			e.RunAt = at.Add(time.Duration(r.IntN(1e12))).In(time.FixedZone("Y", -7200))
		}
		e.Type, e.Error, e.Worker, e.Group = pick(), pick(), pick(), pick()
		if r.IntN(2) == 0 {
			e.Payload = json.RawMessage(`{"a":[1,2,"x"]}`)
		}
		e.Run, e.Attempt = r.IntN(3), r.IntN(4)
		if r.IntN(4) == 0 {
			e.Errors = []AttemptError{{Attempt: 1, Error: pick(), At: at}}
		}
		switch r.IntN(4) {
		case 0:
			e.Result = json.RawMessage(`{"sent": true, "to": ["<a@b.c>"]}`)
		case 1:
			q, _ := json.Marshal(pick())
			e.Result = q
		}
		want, err := json.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		got, err := e.appendJSON(nil)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("event %+v:\n got %s\nwant %s", e, got, want)
		}
	}
}

func BenchmarkEncode(b *testing.B) {
	e := Event{JobID: NumericID(123456789), Status: StatusDone, UpdatedAt: time.Now(), Type: "mock", Attempt: 1, Worker: "host-123-4", Group: "workers"}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := e.Encode(); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecode(b *testing.B) {
	e := Event{JobID: NumericID(6830828970002183), Status: StatusNew, CreatedAt: time.Now(), Type: "mock", Payload: json.RawMessage(`{"n":1}`)}
	data, err := e.Encode()
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Decode(data); err != nil {
			b.Fatal(err)
		}
	}
}
