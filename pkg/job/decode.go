package job

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"
	"time"
)

// fastParse decodes the common shape of a job event without reflection:
// a worker decodes every NEW it runs and the view every event it reads,
// and json.Unmarshal cost them about 2 µs and 11 allocations a record.
// It handles what jobctl and the usual producers write; for anything else
// (escaped strings, nulls, the errors list, keys that match a field only
// case-insensitively) it reports false and the caller falls back to
// json.Unmarshal, so the result is always what Unmarshal would give
// (FuzzFastParseMatchesUnmarshal). It checks the validity of what it
// reads itself (json.Valid over whole records was a third of its cost):
// structure and plain values as it goes, nested values (the payload,
// unknown fields) with json.Valid on their bytes alone.
func fastParse(data []byte) (Event, bool) {
	var e Event
	s := scanner{b: data}
	s.space()
	if !s.byte('{') {
		return e, false
	}
	s.space()
	if s.byte('}') {
		s.space()
		return e, s.i == len(s.b)
	}
	for {
		s.space()
		// The key is compared in place: making a string of every key
		// was half of a record's allocations.
		key, ok := s.plainBytes()
		if !ok {
			return e, false
		}
		s.space()
		if !s.byte(':') {
			return e, false
		}
		s.space()
		if s.peek() == 'n' { // null: Unmarshal's rules per field type
			return e, false
		}
		switch string(key) {
		case "job_id":
			if c := s.peek(); c == '"' {
				v, ok := s.plainString()
				if !ok {
					return e, false
				}
				id, err := StringID(v)
				if err != nil {
					return e, false
				}
				e.JobID = id
			} else {
				num := s.number()
				if !canonicalIntBytes(num) {
					return e, false
				}
				e.JobID = ID{text: string(num), numeric: true}
			}
		case "status":
			v, ok := s.plainBytes()
			if !ok {
				return e, false
			}
			e.Status = internStatusBytes(v)
		case "type", "error", "worker", "group":
			v, ok := s.plainString()
			if !ok {
				return e, false
			}
			switch string(key) {
			case "type":
				e.Type = v
			case "error":
				e.Error = v
			case "worker":
				e.Worker = v
			case "group":
				e.Group = v
			}
		case "created_at", "updated_at", "retry_at", "run_at", "started_at":
			start := s.i
			if !s.skipPlainString() {
				return e, false
			}
			var t time.Time
			if err := t.UnmarshalJSON(s.b[start:s.i]); err != nil {
				return e, false
			}
			switch string(key) {
			case "created_at":
				e.CreatedAt = t
			case "updated_at":
				e.UpdatedAt = t
			case "retry_at":
				e.RetryAt = t
			case "run_at":
				e.RunAt = t
			case "started_at":
				e.StartedAt = t
			}
		case "run", "attempt":
			n, ok := smallInt(s.number())
			if !ok {
				return e, false
			}
			if string(key) == "run" {
				e.Run = n
			} else {
				e.Attempt = n
			}
		case "payload", "result":
			start := s.i
			s.skipValue()
			raw := s.b[start:s.i]
			if !json.Valid(raw) {
				return e, false
			}
			if string(key) == "payload" {
				e.Payload = json.RawMessage(bytes.Clone(raw))
			} else {
				e.Result = json.RawMessage(bytes.Clone(raw))
			}
		default:
			if isFieldName(string(key)) {
				return e, false // "errors", or a case-insensitive match
			}
			start := s.i
			s.skipValue()
			if !json.Valid(s.b[start:s.i]) {
				return e, false
			}
		}
		s.space()
		if s.byte('}') {
			s.space()
			return e, s.i == len(s.b) // nothing may follow the object
		}
		if !s.byte(',') {
			return e, false
		}
	}
}

// internStatusBytes returns the known Status constant for v, so decoding
// a status allocates nothing.
func internStatusBytes(v []byte) Status {
	for _, st := range Statuses {
		if string(st) == string(v) {
			return st
		}
	}
	return Status(v)
}

// canonicalIntBytes is canonicalInt without allocating: an optional
// minus, no leading zeros, no "-0", within int64.
func canonicalIntBytes(b []byte) bool {
	d := b
	if len(d) > 0 && d[0] == '-' {
		d = d[1:]
	}
	if len(d) == 0 || len(d) > 19 || (d[0] == '0' && (len(d) > 1 || len(b) != len(d))) {
		return false
	}
	for _, c := range d {
		if c < '0' || c > '9' {
			return false
		}
	}
	if len(d) == 19 {
		_, err := strconv.ParseInt(string(b), 10, 64)
		return err == nil
	}
	return true
}

// smallInt parses a JSON integer that fits an int, without allocating.
func smallInt(b []byte) (int, bool) {
	neg := len(b) > 0 && b[0] == '-'
	d := b
	if neg {
		d = d[1:]
	}
	if len(d) == 0 || len(d) > 18 || (d[0] == '0' && len(d) > 1) {
		return 0, false
	}
	n := 0
	for _, c := range d {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	if neg {
		n = -n
	}
	return n, true
}

var fieldNames = []string{"job_id", "status", "created_at", "updated_at", "type", "payload", "run", "attempt", "error", "worker", "group", "retry_at", "run_at", "started_at", "errors", "result"}

func isFieldName(key string) bool {
	for _, f := range fieldNames {
		if strings.EqualFold(f, key) {
			return true
		}
	}
	return false
}

// scanner walks valid JSON.
type scanner struct {
	b []byte
	i int
}

func (s *scanner) peek() byte {
	if s.i < len(s.b) {
		return s.b[s.i]
	}
	return 0
}

func (s *scanner) byte(c byte) bool {
	if s.peek() == c {
		s.i++
		return true
	}
	return false
}

func (s *scanner) space() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// plainString reads a string without escapes or non-ASCII bytes (those
// need Unmarshal's decoding and invalid-UTF-8 replacement).
func (s *scanner) plainString() (string, bool) {
	if !s.byte('"') {
		return "", false
	}
	start := s.i
	for s.i < len(s.b) {
		c := s.b[s.i]
		switch {
		case c == '"':
			v := string(s.b[start:s.i])
			s.i++
			return v, true
		case c == '\\' || c >= 0x80 || c < 0x20:
			return "", false
		}
		s.i++
	}
	return "", false
}

// plainBytes is plainString without making the string: the bytes
// between the quotes, valid while s.b is.
func (s *scanner) plainBytes() ([]byte, bool) {
	start := s.i + 1
	if !s.skipPlainString() {
		return nil, false
	}
	return s.b[start : s.i-1], true
}

// skipPlainString is plainString without making the string: time fields
// are parsed from the bytes.
func (s *scanner) skipPlainString() bool {
	if !s.byte('"') {
		return false
	}
	for s.i < len(s.b) {
		c := s.b[s.i]
		switch {
		case c == '"':
			s.i++
			return true
		case c == '\\' || c >= 0x80 || c < 0x20:
			return false
		}
		s.i++
	}
	return false
}

// number reads a number token.
func (s *scanner) number() []byte {
	start := s.i
	for s.i < len(s.b) {
		switch c := s.b[s.i]; {
		case c >= '0' && c <= '9', c == '-', c == '+', c == '.', c == 'e', c == 'E':
			s.i++
		default:
			return s.b[start:s.i]
		}
	}
	return s.b[start:s.i]
}

// skipValue moves past one value. It does not validate it: callers run
// json.Valid on what it skipped.
func (s *scanner) skipValue() {
	if c := s.peek(); c != '"' && c != '{' && c != '[' {
		for s.i < len(s.b) { // a scalar: up to the next delimiter
			switch s.b[s.i] {
			case ',', '}', ']', ' ', '\t', '\n', '\r':
				return
			}
			s.i++
		}
		return
	}
	depth := 0
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case '"':
			s.i++
			for s.i < len(s.b) && s.b[s.i] != '"' {
				if s.b[s.i] == '\\' {
					s.i++
				}
				s.i++
			}
			s.i = min(s.i+1, len(s.b))
		case '{', '[':
			depth++
			s.i++
		case '}', ']':
			depth--
			s.i++
		default:
			s.i++
		}
		if depth <= 0 {
			return
		}
	}
}
