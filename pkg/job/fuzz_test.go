package job

import (
	"bytes"
	"encoding/json"
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
