package job

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"
)

// DecodeSubmission parses a job someone asks to run: an API body or a line
// of a jobs file. Field names are checked strictly; the status must be NEW
// (and is NEW when absent); job_id may be absent, and the caller then
// assigns one with NewID.
func DecodeSubmission(data []byte) (Event, error) {
	if len(data) > MaxJobBytes {
		return Event{}, &TooLargeError{Size: len(data), Limit: MaxJobBytes}
	}
	e, err := parse(data, true)
	if err != nil {
		if rerr := checkRunAtText(data); rerr != nil {
			return Event{}, rerr
		}
		return Event{}, err
	}
	if e.Status == "" {
		e.Status = StatusNew
	}
	if e.Status != StatusNew {
		return Event{}, &StatusError{Status: string(e.Status)}
	}
	check := e
	if check.JobID.IsZero() {
		check.JobID = ID{text: "-"} // stand-in so Validate checks the other fields
	}
	if err := check.Validate(); err != nil {
		return Event{}, err
	}
	if !e.RunAt.IsZero() && time.Until(e.RunAt) > MaxRunAhead {
		return Event{}, &RunAtError{Reason: fmt.Sprintf("%s is more than %s ahead", e.RunAt.Format(time.RFC3339), "a year")}
	}
	return e, nil
}

// MaxRunAhead is how far ahead a submission's run_at may be. A run_at in
// the past means now.
const MaxRunAhead = 366 * 24 * time.Hour

// RunAtError is a submission whose run_at is not a usable time.
type RunAtError struct{ Reason string }

func (e *RunAtError) Error() string {
	return "run_at: " + e.Reason + " (want an RFC 3339 time such as 2026-11-26T15:04:05Z, at most a year ahead)"
}

// IsRunAtError reports whether err is a RunAtError.
func IsRunAtError(err error) bool {
	var re *RunAtError
	return errors.As(err, &re)
}

// checkRunAtText explains a run_at that does not parse, which the JSON
// decoder reports only as a time layout mismatch.
func checkRunAtText(data []byte) error {
	var probe struct {
		RunAt json.RawMessage `json:"run_at"`
	}
	if json.Unmarshal(data, &probe) != nil || len(probe.RunAt) == 0 {
		return nil
	}
	var t time.Time
	if err := t.UnmarshalJSON(probe.RunAt); err != nil {
		return &RunAtError{Reason: fmt.Sprintf("%s is not an RFC 3339 time", probe.RunAt)}
	}
	return nil
}

// MaxJobBytes is the largest job a submission may be. A job travels in
// more than its NEW record: a retry carries it to the delay topic with
// the errors of earlier attempts, and a dead letter carries it with all of
// them, so it must stay well under the broker's default record limit
// (message.max.bytes, 1 MiB) for those writes to succeed too.
const MaxJobBytes = 900 << 10

// TooLargeError is a submission over MaxJobBytes.
type TooLargeError struct{ Size, Limit int }

func (e *TooLargeError) Error() string {
	return fmt.Sprintf("job is %d bytes, over the %d byte limit for a job (it must fit, with its retry and dead-letter envelopes, in the broker's 1 MiB record limit)", e.Size, e.Limit)
}

// IsTooLarge reports whether err is a TooLargeError.
func IsTooLarge(err error) bool {
	var te *TooLargeError
	return errors.As(err, &te)
}

// StatusError is a submission whose status is not NEW: new jobs start NEW.
type StatusError struct{ Status string }

func (e *StatusError) Error() string {
	return fmt.Sprintf("status %q: a new job must have status NEW", e.Status)
}

// IsStatusError reports whether err is a StatusError.
func IsStatusError(err error) bool {
	var se *StatusError
	return errors.As(err, &se)
}

// NewID returns a unique job id that sorts by creation time: milliseconds
// since the epoch and 48 random bits ("1732550000123-9f2c4e1a7b3d").
func NewID() ID {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return ID{text: strconv.FormatInt(time.Now().UnixMilli(), 10) + "-" + hex.EncodeToString(b[:])}
}
