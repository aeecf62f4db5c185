// Package deadletter reads and writes the dead-letter topic <topic>.dlq:
// jobs whose last attempt failed (or that failed permanently), records of
// the job topic that are not jobs at all (poison), and the markers that
// say a dead job was replayed. The record format is part of the runtime
// contract in docs/runtime.md ("Dead letters").
package deadletter

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/jobctl/jobctl/pkg/job"
	"github.com/segmentio/kafka-go"
)

// Topic is the dead-letter topic of a job topic.
func Topic(jobTopic string) string { return jobTopic + ".dlq" }

// Kind says what a letter is.
type Kind string

const (
	// KindJob is a job that died: its last attempt failed, or it failed
	// permanently. It can be replayed.
	KindJob Kind = "job"
	// KindPoison is a record of the job topic that is not a job event.
	// It cannot be replayed: there is no job to run.
	KindPoison Kind = "poison"
	// KindReplayed marks the dead run Run of job JobID as replayed.
	KindReplayed Kind = "replayed"
)

// Valid reports whether k is a known kind.
func (k Kind) Valid() bool { return k == KindJob || k == KindPoison || k == KindReplayed }

// HeaderKind is the record header that carries a letter's kind, so a
// reader can tell markers from letters without decoding the value.
const HeaderKind = "kind"

// Origin is where the record that died was in the job topic.
type Origin struct {
	Topic     string `json:"topic"`
	Partition int    `json:"partition"`
	Offset    int64  `json:"offset"`
}

// Letter is one record of the dead-letter topic.
type Letter struct {
	Kind Kind `json:"kind"`
	// JobID is empty only for a poison record without a usable key.
	JobID job.ID `json:"job_id,omitzero"`
	// Group is the consumer group whose worker gave up on the job.
	Group string `json:"group,omitempty"`
	// Run is the run that died (for a marker: the run it replayed).
	Run      int                `json:"run"`
	Type     string             `json:"type,omitempty"`
	Payload  json.RawMessage    `json:"payload,omitempty"`
	Attempts int                `json:"attempts,omitempty"`
	Errors   []job.AttemptError `json:"errors,omitempty"`
	Reason   string             `json:"reason,omitempty"`
	Origin   Origin             `json:"origin"`
	DeadAt   time.Time          `json:"dead_at,omitzero"`
	// Key is a poison record's raw key (may be nil).
	Key []byte `json:"key,omitempty"`
	// Record is a poison record's raw value, capped at MaxRecordBytes.
	Record []byte `json:"record,omitempty"`
	// Truncated names what was cut to fit the letter into one Kafka
	// record ("record", "payload", "errors", ...); Reason says how. A
	// letter whose payload was cut is not replayed: its job would run
	// with the wrong payload.
	Truncated []string `json:"truncated,omitempty"`
}

// LastError is the error of the last attempt, or the reason.
func (l Letter) LastError() string {
	if n := len(l.Errors); n > 0 && l.Errors[n-1].Error != "" {
		return l.Errors[n-1].Error
	}
	return l.Reason
}

// RecordKey is the Kafka key of the letter: the job id, or
// poison:<partition>:<offset> for a poison record without one.
func (l Letter) RecordKey() []byte {
	if !l.JobID.IsZero() {
		return []byte(l.JobID.String())
	}
	return []byte("poison:" + strconv.Itoa(l.Origin.Partition) + ":" + strconv.FormatInt(l.Origin.Offset, 10))
}

// Validate says what is wrong with l, if anything.
func (l Letter) Validate() error {
	if !l.Kind.Valid() {
		return fmt.Errorf("dead letter kind %q is not one of job, poison, replayed", string(l.Kind))
	}
	if l.Kind != KindPoison && l.JobID.IsZero() {
		return fmt.Errorf("a %s dead letter needs a job_id", l.Kind)
	}
	if l.Run < 0 {
		return fmt.Errorf("dead letter run %d is negative", l.Run)
	}
	return nil
}

// Encode returns the letter as JSON, cut to fit MaxLetterBytes (see Fit).
func (l Letter) Encode() ([]byte, error) {
	if err := l.Validate(); err != nil {
		return nil, err
	}
	_, value, err := fit(l, MaxLetterBytes)
	return value, err
}

// Message turns a letter into a Kafka record: key RecordKey, value the
// JSON (cut to fit), header "kind".
func Message(l Letter) (kafka.Message, error) {
	value, err := l.Encode()
	if err != nil {
		return kafka.Message{}, fmt.Errorf("encoding dead letter %s: %w", l.RecordKey(), err)
	}
	return kafka.Message{
		Key:     l.RecordKey(),
		Value:   value,
		Headers: []kafka.Header{{Key: HeaderKind, Value: []byte(l.Kind)}},
	}, nil
}

// Decode parses one letter.
func Decode(data []byte) (Letter, error) {
	var l Letter
	if err := json.Unmarshal(data, &l); err != nil {
		return Letter{}, fmt.Errorf("not a dead letter: %w", err)
	}
	if err := l.Validate(); err != nil {
		return Letter{}, errors.New("not a dead letter: " + err.Error())
	}
	return l, nil
}
