// Package control is job control kept in Kafka: a small compacted topic,
// <topic>.control, that says which job runs are cancelled and which
// consumer groups are paused. Writer writes it (the CLI, the API); Tail
// reads it whole and then follows it (every worker, the API server), so a
// worker far behind in its partition still knows a job is cancelled
// before it starts it.
//
// Records (key, JSON value):
//
//	job:<id>      {"kind":"cancel","job_id":<id>,"run":r,"at":...}
//	group:<name>  {"kind":"pause"|"resume","group":"<name>","at":...}
//
// A cancel of run r cancels every run up to r of that job, never run r+1
// (the run an explicit retry starts). The latest record per key is the
// state, which is what compaction keeps.
package control

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/jobctl/jobctl/pkg/job"
	"github.com/jobctl/jobctl/pkg/kafkaconn"
	"github.com/jobctl/jobctl/pkg/ledger"
	"github.com/segmentio/kafka-go"
)

// Kind is what a control record asks for.
type Kind string

const (
	KindCancel Kind = "cancel"
	KindPause  Kind = "pause"
	KindResume Kind = "resume"
)

// Record is one control record.
type Record struct {
	Kind  Kind      `json:"kind"`
	JobID job.ID    `json:"job_id,omitzero"`
	Run   int       `json:"run,omitempty"`
	Group string    `json:"group,omitempty"`
	At    time.Time `json:"at,omitzero"`
}

// Key is the record's Kafka key: one key per job, one per group.
func (r Record) Key() string {
	if r.Kind == KindCancel {
		return "job:" + r.JobID.String()
	}
	return "group:" + r.Group
}

// Check says what is wrong with r, if anything.
func (r Record) Check() error {
	switch r.Kind {
	case KindCancel:
		if r.JobID.IsZero() {
			return errors.New("a cancel needs a job id")
		}
		if r.Run < 0 {
			return fmt.Errorf("run %d is negative", r.Run)
		}
	case KindPause, KindResume:
		if strings.TrimSpace(r.Group) == "" {
			return errors.New("a group name is required")
		}
	default:
		return fmt.Errorf("unknown control kind %q", r.Kind)
	}
	return nil
}

// decode parses a control record value; records it cannot read are
// reported, never applied.
func decode(value []byte) (Record, error) {
	var r Record
	if err := json.Unmarshal(value, &r); err != nil {
		return Record{}, fmt.Errorf("not a control record: %w", err)
	}
	return r, r.Check()
}

// Writer writes control records. It creates the control topic (with the
// other auxiliary topics) before its first write, so a cancel works
// before any worker has run.
type Writer struct {
	conn     *kafkaconn.Conn
	jobTopic string
	w        *kafka.Writer

	mu      sync.Mutex
	ensured bool
}

// NewWriter returns a writer to jobTopic's control topic.
func NewWriter(conn *kafkaconn.Conn, jobTopic string) *Writer {
	// One partition: every record goes to partition 0 whatever the
	// topic's partition count, so Tail reads one partition.
	w := conn.Writer(ledger.ControlTopic(jobTopic), kafka.BalancerFunc(func(kafka.Message, ...int) int { return 0 }))
	return &Writer{conn: conn, jobTopic: jobTopic, w: w}
}

// Write appends records once every in-sync replica has them.
func (w *Writer) Write(ctx context.Context, recs ...Record) error {
	msgs := make([]kafka.Message, len(recs))
	for i, r := range recs {
		if err := r.Check(); err != nil {
			return err
		}
		if r.At.IsZero() {
			r.At = time.Now().UTC()
		}
		v, err := json.Marshal(r)
		if err != nil {
			return err
		}
		msgs[i] = kafka.Message{Key: []byte(r.Key()), Value: v}
	}
	if err := w.ensure(ctx); err != nil {
		return err
	}
	if err := w.w.WriteMessages(ctx, msgs...); err != nil {
		return fmt.Errorf("writing to topic %q: %w", ledger.ControlTopic(w.jobTopic), err)
	}
	return nil
}

func (w *Writer) ensure(ctx context.Context) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.ensured {
		return nil
	}
	if err := ledger.EnsureAuxTopics(ctx, w.conn, w.jobTopic); err != nil {
		return err
	}
	w.ensured = true
	return nil
}

// Close flushes and closes the writer.
func (w *Writer) Close() error { return w.w.Close() }
