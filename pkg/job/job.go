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
	// StatusNew asks for an attempt: a fresh job (attempt 0), or, with
	// Group set, the next attempt of a retry released for that group.
	StatusNew Status = "NEW"
	// StatusScheduled is a NEW whose run_at is still ahead: a group took
	// it up and put it into the delay topic until then. Its Attempt is
	// the NEW's, and it ranks with the NEW it waits for (see Position).
	StatusScheduled Status = "SCHEDULED"
	StatusRunning   Status = "RUNNING"
	StatusDone      Status = "DONE"
	// StatusFailed is an attempt that failed. With RetryAt set another
	// attempt follows at that time; without it the job failed for good
	// (written by older versions, or when no dead-letter topic is used).
	StatusFailed Status = "FAILED"
	// StatusDead is a job whose last attempt failed, or that could never
	// run (a permanent error): it is in the dead-letter topic.
	StatusDead Status = "DEAD"
	// StatusCancelled is a run stopped by 'jobctl jobs cancel': it never
	// started, or its handler's context was cancelled. It is not retried
	// and not dead-lettered; an explicit retry starts a new run.
	StatusCancelled Status = "CANCELED"
)

// Statuses lists every valid status, in lifecycle order.
var Statuses = []Status{StatusNew, StatusScheduled, StatusRunning, StatusDone, StatusFailed, StatusDead, StatusCancelled}

// Valid reports whether s is one of the known statuses.
func (s Status) Valid() bool { return s.rank() >= 0 }

// Terminal reports whether no further status follows s within one attempt.
func (s Status) Terminal() bool {
	return s == StatusDone || s == StatusFailed || s == StatusDead || s == StatusCancelled
}

func (s Status) rank() int {
	switch s {
	case StatusNew, StatusScheduled:
		return 0
	case StatusRunning:
		return 1
	case StatusDone, StatusFailed, StatusDead, StatusCancelled:
		return 2
	}
	return -1
}

// Record headers. Every event written by jobctl carries HeaderStatus;
// HeaderGroup, HeaderRun and HeaderAttempt are set when the event has a
// group, a run above 0 or an attempt above 0. They let workers classify a
// record (skip it, or remember it for duplicate detection) without
// decoding the JSON body. Records from other clients may have none.
const (
	HeaderStatus  = "status"
	HeaderGroup   = "group"
	HeaderRun     = "run"
	HeaderAttempt = "attempt"
)

// Event is one status change of one job.
//
// A job's life is a sequence of runs (Run 0 first; a replay from the
// dead-letter topic or an explicit retry starts Run+1), each a sequence of
// attempts (1, 2, ...). A NEW's Attempt is the number of attempts already
// made in its run (0 for a fresh job), so the worker runs NextAttempt();
// every other event's Attempt is the attempt it reports on.
type Event struct {
	JobID     ID              `json:"job_id"`
	Status    Status          `json:"status"`
	CreatedAt time.Time       `json:"created_at,omitzero"`
	UpdatedAt time.Time       `json:"updated_at,omitzero"`
	Type      string          `json:"type,omitempty"`
	Payload   json.RawMessage `json:"payload,omitempty"`
	Run       int             `json:"run,omitempty"`
	Attempt   int             `json:"attempt,omitempty"`
	Error     string          `json:"error,omitempty"`
	Worker    string          `json:"worker,omitempty"`
	// Group is the consumer group that wrote a worker's event, or the
	// only group a NEW is for (a released retry). Empty on a NEW means
	// every group.
	Group string `json:"group,omitempty"`
	// RetryAt, on a FAILED event, is when the next attempt is due.
	RetryAt time.Time `json:"retry_at,omitzero"`
	// RunAt, on a NEW, is when the job may run, not before: a group that
	// reads it earlier records SCHEDULED and waits in the delay topic.
	RunAt time.Time `json:"run_at,omitzero"`
	// StartedAt, on an event that ends an attempt (DONE, FAILED, DEAD,
	// CANCELED), is when that attempt started: workers write RUNNING only
	// for attempts still running after a second, so without it a short
	// attempt's duration would be unknown.
	StartedAt time.Time `json:"started_at,omitzero"`
	// Errors, on a NEW that releases a retry, are the earlier attempts'
	// errors of this run, so the dead letter of a last attempt has all.
	Errors []AttemptError `json:"errors,omitempty"`
	// Result, on a DONE event, is what the handler returned (an exec
	// handler's stdout, capped): JSON as given, or a JSON string.
	Result json.RawMessage `json:"result,omitempty"`
}

// AttemptError is why one attempt failed.
type AttemptError struct {
	Attempt int       `json:"attempt"`
	Error   string    `json:"error"`
	At      time.Time `json:"at,omitzero"`
}

// NextAttempt is the attempt a worker runs for this NEW event.
func (e Event) NextAttempt() int { return e.Attempt + 1 }

// Position orders a job's events across runs and attempts: a later run
// beats any event of an earlier one; within a run a later attempt wins;
// within an attempt NEW < RUNNING < terminal. A NEW that releases attempt
// n+1 is at (run, n+1, 0), after the FAILED of attempt n at (run, n, 2).
func (e Event) Position() (run, attempt, rank int) {
	if e.Status == StatusNew || e.Status == StatusScheduled {
		// A SCHEDULED stands where its NEW stands: between the submitted
		// NEW and the one released when due, the later update wins.
		return e.Run, e.Attempt + 1, 0
	}
	return e.Run, e.Attempt, e.Status.rank()
}

// Key is the Kafka record key of the event: the job id as text.
func (e Event) Key() []byte { return []byte(e.JobID.String()) }

// Encode returns the event as JSON.
func (e Event) Encode() ([]byte, error) {
	if err := e.Validate(); err != nil {
		return nil, err
	}
	return e.appendJSON(make([]byte, 0, 160+len(e.Payload)))
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
		return fmt.Errorf("status %q is not one of NEW, SCHEDULED, RUNNING, DONE, FAILED, DEAD, CANCELED", string(e.Status))
	}
	if e.Attempt < 0 {
		return fmt.Errorf("attempt %d is negative", e.Attempt)
	}
	if e.Run < 0 {
		return fmt.Errorf("run %d is negative", e.Run)
	}
	return nil
}

// Supersedes reports whether event e should replace cur as a job's current
// state. Later attempts win; within an attempt a job only moves forward
// (NEW < RUNNING < DONE/FAILED), so a late or duplicated NEW never
// overwrites DONE, whatever order events arrive in. Between two terminal
// events of one attempt the later update wins.
func (e Event) Supersedes(cur Event) bool {
	er, ea, ek := e.Position()
	cr, ca, ck := cur.Position()
	switch {
	case er != cr:
		return er > cr
	case ea != ca:
		return ea > ca
	case ek != ck:
		return ek > ck
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
	limit := MaxDepthLenient
	if strict {
		limit = MaxDepthStrict
	}
	// An object with no bracket inside is one level deep: the common
	// record (no payload, or a flat one) skips the depth walk, which two
	// IndexByte scans do faster.
	if bytes.IndexByte(trimmed[1:], '{') >= 0 || bytes.IndexByte(trimmed, '[') >= 0 {
		if err := checkDepth(trimmed, limit); err != nil {
			return e, err
		}
	}
	// The decoders get a pointer to an Event of their own: taking e's
	// address made every event escape to the heap, ~290 bytes a record on
	// the fast path too.
	if strict {
		slow := new(Event)
		dec := json.NewDecoder(bytes.NewReader(trimmed))
		dec.DisallowUnknownFields()
		if err := dec.Decode(slow); err != nil {
			return Event{}, fmt.Errorf("invalid job JSON: %s", cleanJSONError(err))
		}
		if dec.More() {
			return Event{}, errors.New("invalid job JSON: more than one value")
		}
		e = *slow
	} else if fast, ok := fastParse(trimmed); ok {
		// The path of every record a worker or the view reads.
		e = fast
	} else {
		slow := new(Event)
		if err := json.Unmarshal(trimmed, slow); err != nil {
			return Event{}, fmt.Errorf("invalid job JSON: %s", cleanJSONError(err))
		}
		e = *slow
	}
	if len(e.Payload) > 0 {
		e.Payload = compactJSON(e.Payload)
	}
	return e, nil
}

// Nesting limits of a job event's JSON (the event object is level 1). A
// submission is typed by a person or a program and has no reason to nest
// deeply; records already on the topic are read more leniently, but a
// record nested hundreds of levels deep is an attack on whoever renders
// it (the view, the dashboard), not a job.
const (
	MaxDepthStrict  = 64
	MaxDepthLenient = 512
)

// checkDepth fails when arrays and objects in data nest deeper than
// limit. It only counts brackets outside strings; whether data is valid
// JSON is the decoder's business.
func checkDepth(data []byte, limit int) error {
	depth, inString, escaped := 0, false, false
	for _, c := range data {
		switch {
		case inString:
			switch {
			case escaped:
				escaped = false
			case c == '\\':
				escaped = true
			case c == '"':
				inString = false
			}
		case c == '"':
			inString = true
		case c == '{' || c == '[':
			depth++
			if depth > limit {
				return fmt.Errorf("invalid job JSON: nested more than %d levels deep", limit)
			}
		case c == '}' || c == ']':
			depth--
		}
	}
	return nil
}

func compactJSON(raw json.RawMessage) json.RawMessage {
	if bytes.IndexAny(raw, " \t\r\n") < 0 {
		if string(raw) == "null" {
			return nil
		}
		return raw // already compact
	}
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
	if strings.Contains(msg, "after top-level value") {
		return "more than one value"
	}
	var typeErr *json.UnmarshalTypeError
	if errors.As(err, &typeErr) && typeErr.Field != "" {
		return fmt.Sprintf("field %q: want %s, got %s", typeErr.Field, typeErr.Type, typeErr.Value)
	}
	return msg
}
