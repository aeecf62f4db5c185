package job

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"unicode/utf8"
)

// maxIDLen bounds a job id; it is a Kafka key and a URL path segment.
const maxIDLen = 256

// ID is a job's identity. The seed API sends it as a JSON number
// ({"job_id": 1234}); other producers send strings. Both are accepted and
// an ID is echoed back in the form it was given. As a Kafka key both forms
// are the same text, so 1234 and "1234" name the same job.
type ID struct {
	text    string
	numeric bool
}

// NumericID returns the ID for integer n.
func NumericID(n int64) ID { return ID{text: strconv.FormatInt(n, 10), numeric: true} }

// StringID returns the ID s, after checking it is usable as a key.
func StringID(s string) (ID, error) {
	if err := checkIDText(s); err != nil {
		return ID{}, err
	}
	return ID{text: s}, nil
}

// ParseID turns text from a URL or a record key into an ID. Integer text
// becomes a numeric ID, so the JSON echo matches the seed's form.
func ParseID(s string) (ID, error) {
	if _, err := strconv.ParseInt(s, 10, 64); err == nil && canonicalInt(s) {
		return ID{text: s, numeric: true}, nil
	}
	return StringID(s)
}

func canonicalInt(s string) bool {
	n, err := strconv.ParseInt(s, 10, 64)
	return err == nil && strconv.FormatInt(n, 10) == s
}

func checkIDText(s string) error {
	switch {
	case s == "":
		return errors.New("job_id is empty")
	case len(s) > maxIDLen:
		return fmt.Errorf("job_id is %d bytes, over the %d byte limit", len(s), maxIDLen)
	case !utf8.ValidString(s):
		return errors.New("job_id is not valid UTF-8")
	case s == "." || s == "..":
		// As a URL path segment they would be resolved away: /jobs/.. is /.
		return fmt.Errorf("job_id %q is not allowed (it is a path segment of its own)", s)
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f || r == '/' {
			return fmt.Errorf("job_id %q contains %q, which is not allowed", s, r)
		}
	}
	return nil
}

// String is the id as text: the Kafka key and the URL path segment.
func (id ID) String() string { return id.text }

// IsZero reports whether the id is unset.
func (id ID) IsZero() bool { return id.text == "" }

// Numeric reports whether the id was given as a JSON number.
func (id ID) Numeric() bool { return id.numeric }

// MarshalJSON writes the id back in the form it was given.
func (id ID) MarshalJSON() ([]byte, error) {
	if id.numeric {
		return []byte(id.text), nil
	}
	return json.Marshal(id.text)
}

// UnmarshalJSON accepts an integer or a non-empty string.
func (id *ID) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) == 0 || string(b) == "null" {
		return errors.New("job_id is null, want an integer or a string")
	}
	switch {
	case b[0] == '"':
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return fmt.Errorf("job_id: %w", err)
		}
		parsed, err := StringID(s)
		if err != nil {
			return err
		}
		*id = parsed
		return nil
	case b[0] == '-' || (b[0] >= '0' && b[0] <= '9'):
		if !canonicalInt(string(b)) {
			return fmt.Errorf("job_id %s is not an integer in the int64 range (use a string for other ids)", b)
		}
		*id = ID{text: string(b), numeric: true}
		return nil
	}
	return fmt.Errorf("job_id %s is neither an integer nor a string", b)
}
