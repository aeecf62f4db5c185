package job

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"
)

// FuzzDecode checks that Decode never panics, and that whatever it accepts
// is a valid event that encodes and decodes back to the same thing.
func FuzzDecode(f *testing.F) {
	for _, seed := range []string{
		`{"job_id": 1234, "status": "NEW"}`,
		`{"job_id": "a", "status": "DONE", "attempt": 1, "worker": "w", "error": "x"}`,
		`{"job_id": 1, "status": "NEW", "payload": {"a": [1, 2, {"b": null}]}, "type": "t"}`,
		`{"job_id": 1, "status": "FAILED", "created_at": "2026-01-02T03:04:05Z", "updated_at": "2026-01-02T03:04:06.5Z"}`,
		`[]`, `{}`, `null`, `{"job_id": -0, "status": "NEW"}`, "{\"job_id\": \"\\u0000\", \"status\": \"NEW\"}",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		e, err := Decode(data)
		if err != nil {
			return
		}
		if err := e.Validate(); err != nil {
			t.Fatalf("Decode accepted an invalid event: %v", err)
		}
		enc, err := e.Encode()
		if err != nil {
			t.Fatalf("accepted event does not encode: %v", err)
		}
		again, err := Decode(enc)
		if err != nil {
			t.Fatalf("re-decoding %s: %v", enc, err)
		}
		enc2, _ := again.Encode()
		if !bytes.Equal(enc, enc2) {
			t.Fatalf("round trip changed the event:\n%s\n%s", enc, enc2)
		}
		if !json.Valid(enc) {
			t.Fatalf("encoded event is not JSON: %s", enc)
		}
	})
}

// FuzzFastParseMatchesUnmarshal: whenever the fast decoder takes a
// record, it decodes what json.Unmarshal decodes.
func FuzzFastParseMatchesUnmarshal(f *testing.F) {
	for _, s := range []string{
		`{"job_id": 1234, "status": "NEW"}`,
		`{"job_id":"a-1","status":"DONE","created_at":"2026-11-26T01:02:03.456Z","type":"t","payload":{"a":[1,"}",{"b":null}]},"run":1,"attempt":2,"error":"x","worker":"w","group":"g","retry_at":"2026-11-26T01:02:03Z","extra":[1,2]}`,
		`{"job_id": 7, "status": "NEW", "run_at": "2026-11-26T01:02:03.5+02:00"}`,
		`{"job_id": 7, "status": "NEW", "run_at": "not a time"}`,
		`{"job_id": 7, "status": "NEW", "Run_At": "2026-11-26T01:02:03Z"}`,
		`{"job_id": 5, "Status": "NEW"}`,
		`{"job_id": 5, "status": "NEW", "payload": "s\"q"}`,
		`{"job_id": 1e3, "status": "NEW"}`,
		`{}`,
		`{"job_id": 5, "status": "NEW"} x`,
		`{"job_id": 5, "status": "NEW", "payload": {"a": }}`,
		`{"job_id": 05, "status": "NEW"}`,
		`{"job_id": 9, "status": "DONE", "result": {"sent": [1, "x"]}}`,
		`{"job_id": 9, "status": "DONE", "result": "plain \u003c text"}`,
		`{"job_id": 9, "status": "DONE", "result": null}`,
		`{"job_id": 9, "status": "DONE", "Result": 1}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		fast, ok := fastParse(data)
		if !ok {
			return
		}
		var slow Event
		if err := json.Unmarshal(data, &slow); err != nil {
			t.Fatalf("fast decoder accepted %q, Unmarshal says %v", data, err)
		}
		if !reflect.DeepEqual(fast, slow) {
			t.Fatalf("%q:\nfast %#v\nslow %#v", data, fast, slow)
		}
	})
}
