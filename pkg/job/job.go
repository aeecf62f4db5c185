// Package job defines the job event: the one record type on the job-status
// topic. Every status change of a job is one event keyed by its job id.
// The package is a leaf: it imports nothing from the rest of jobctl.
package job

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Status is where a job is in its life.
type Status string

const (
	StatusNew     Status = "NEW"
	StatusRunning Status = "RUNNING"
	StatusDone    Status = "DONE"
	StatusFailed  Status = "FAILED"
)

// Statuses lists every valid status, in lifecycle order.
var Statuses = []Status{StatusNew, StatusRunning, StatusDone, StatusFailed}

// Valid reports whether s is one of the known statuses.
func (s Status) Valid() bool { return s.rank() >= 0 }

// Terminal reports whether no further status follows s within one attempt.
func (s Status) Terminal() bool { return s == StatusDone || s == StatusFailed }

func (s Status) rank() int {
	switch s {
	case StatusNew:
		return 0
	case StatusRunning:
		return 1
	case StatusDone, StatusFailed:
		return 2
	}
	return -1
}

// HeaderStatus is the record header that carries the event's status, so a
// worker can skip events that are not NEW without decoding the JSON body.
const HeaderStatus = "status"

// Event is one status change of one job.
type Event struct {
	JobID     ID              `json:"job_id"`
	Status    Status          `json:"status"`
	CreatedAt time.Time       `json:"created_at,omitzero"`
	UpdatedAt time.Time       `json:"updated_at,omitzero"`
	Type      string          `json:"type,omitempty"`
	Payload   json.RawMessage `json:"payload,omitempty"`
	Attempt   int             `json:"attempt,omitempty"`
	Error     string          `json:"error,omitempty"`
	Worker    string          `json:"worker,omitempty"`
}

// Key is the Kafka record key of the event: the job id as text.
func (e Event) Key() []byte { return []byte(e.JobID.String()) }

// Encode returns the event as JSON.
func (e Event) Encode() ([]byte, error) {
	if err := e.Validate(); err != nil {
		return nil, err
	}
	return json.Marshal(e)
}

// Validate says what is wrong with e, if anything.
func (e Event) Validate() error {
	if e.JobID.IsZero() {
		return errors.New("job_id is missing")
	}
	if e.Status == "" {
		return errors.New("status is missing")
	}
	if !e.Status.Valid() {
		return fmt.Errorf("status %q is not one of NEW, RUNNING, DONE, FAILED", string(e.Status))
	}
	if e.Attempt < 0 {
		return fmt.Errorf("attempt %d is negative", e.Attempt)
	}
	return nil
}

// Supersedes reports whether event e should replace cur as a job's current
// state. Later attempts win; within an attempt a job only moves forward
// (NEW < RUNNING < DONE/FAILED), so a late or duplicated NEW never
// overwrites DONE, whatever order events arrive in. Between two terminal
// events of one attempt the later update wins.
func (e Event) Supersedes(cur Event) bool {
	// A NEW (attempt 0) and the events of the attempt that processes it
	// belong to one run: a NEW never outranks a processed event.
	if (e.Status == StatusNew) != (cur.Status == StatusNew) {
		return cur.Status == StatusNew
	}
	if e.Attempt != cur.Attempt {
		return e.Attempt > cur.Attempt
	}
	if e.Status.rank() != cur.Status.rank() {
		return e.Status.rank() > cur.Status.rank()
	}
	return !e.UpdatedAt.Before(cur.UpdatedAt)
}

// maxEventBytes bounds one encoded event; larger records are not jobs.
const maxEventBytes = 1 << 20

// Decode parses one job event. Fields it does not know are ignored, so
// events written by newer producers still decode. It fails with a message
// saying what is wrong when data is not a job event.
func Decode(data []byte) (Event, error) { return decode(data, false) }

// DecodeStrict is Decode for input typed by a person (API bodies, job
// files): unknown fields are errors, so a misspelt "jobid" is caught.
func DecodeStrict(data []byte) (Event, error) { return decode(data, true) }

func decode(data []byte, strict bool) (Event, error) {
	e, err := parse(data, strict)
	if err != nil {
		return Event{}, err
	}
	if err := e.Validate(); err != nil {
		return Event{}, err
	}
	return e, nil
}

// parse decodes the JSON object without checking that it is a whole job.
func parse(data []byte, strict bool) (Event, error) {
	var e Event
	if len(data) > maxEventBytes {
		return e, fmt.Errorf("job event is %d bytes, over the %d byte limit", len(data), maxEventBytes)
	}
	trimmed := bytes.TrimSpace(data)
	if len(trimmed) == 0 {
		return e, errors.New("empty input, want a JSON object with job_id and status")
	}
	if trimmed[0] != '{' {
		return e, fmt.Errorf("want a JSON object with job_id and status, got %s", describeJSON(trimmed))
	}
	dec := json.NewDecoder(bytes.NewReader(trimmed))
	if strict {
		dec.DisallowUnknownFields()
	}
	if err := dec.Decode(&e); err != nil {
		return Event{}, fmt.Errorf("invalid job JSON: %s", cleanJSONError(err))
	}
	if dec.More() {
		return Event{}, errors.New("invalid job JSON: more than one value")
	}
	if len(e.Payload) > 0 {
		e.Payload = compactJSON(e.Payload)
	}
	return e, nil
}

func compactJSON(raw json.RawMessage) json.RawMessage {
	var buf bytes.Buffer
	if err := json.Compact(&buf, raw); err != nil {
		return raw
	}
	if buf.String() == "null" {
		return nil
	}
	return buf.Bytes()
}

func describeJSON(b []byte) string {
	if !json.Valid(b) {
		return "text that is not JSON"
	}
	switch b[0] {
	case '[':
		return "an array"
	case '"':
		return "a string"
	case 't', 'f':
		return "a boolean"
	case 'n':
		return "null"
	}
	if b[0] == '-' || (b[0] >= '0' && b[0] <= '9') {
		return "a number"
	}
	return "text that is not JSON"
}

func cleanJSONError(err error) string {
	msg := err.Error()
	msg = strings.TrimPrefix(msg, "json: ")
	var typeErr *json.UnmarshalTypeError
	if errors.As(err, &typeErr) && typeErr.Field != "" {
		return fmt.Sprintf("field %q: want %s, got %s", typeErr.Field, typeErr.Type, typeErr.Value)
	}
	return msg
}
