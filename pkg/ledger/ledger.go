// Package ledger reads and writes the job-status topic: the ledger where
// every status change of every job is one record, keyed by job id, with
// the status also in a record header so readers can skip events cheaply.
package ledger

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/jobctl/jobctl/pkg/job"
	"github.com/jobctl/jobctl/pkg/kafkaconn"
	"github.com/segmentio/kafka-go"
)

// Message turns an event into a Kafka record: key = job id, value = JSON,
// header "status" = the status.
func Message(e job.Event) (kafka.Message, error) {
	value, err := e.Encode()
	if err != nil {
		return kafka.Message{}, fmt.Errorf("encoding job %s: %w", e.JobID, err)
	}
	headers := make([]kafka.Header, 1, 4)
	headers[0] = kafka.Header{Key: job.HeaderStatus, Value: []byte(e.Status)}
	if e.Group != "" {
		headers = append(headers, kafka.Header{Key: job.HeaderGroup, Value: []byte(e.Group)})
	}
	if e.Run > 0 {
		headers = append(headers, kafka.Header{Key: job.HeaderRun, Value: strconv.AppendInt(nil, int64(e.Run), 10)})
	}
	if e.Attempt > 0 {
		headers = append(headers, kafka.Header{Key: job.HeaderAttempt, Value: strconv.AppendInt(nil, int64(e.Attempt), 10)})
	}
	return kafka.Message{Key: e.Key(), Value: value, Headers: headers}, nil
}

// Headers is what a record's headers say about its event, read without
// decoding the JSON value. OK is false when the record has no status
// header (a record from another client): only decoding tells then.
type Headers struct {
	Status  job.Status
	Group   string
	Run     int
	Attempt int
	OK      bool
}

// ReadHeaders returns what m's headers declare.
func ReadHeaders(m kafka.Message) Headers {
	var h Headers
	for _, kv := range m.Headers {
		switch kv.Key {
		case job.HeaderStatus:
			h.Status, h.OK = job.Status(kv.Value), true
		case job.HeaderGroup:
			h.Group = string(kv.Value)
		case job.HeaderRun:
			h.Run, _ = strconv.Atoi(string(kv.Value))
		case job.HeaderAttempt:
			h.Attempt, _ = strconv.Atoi(string(kv.Value))
		}
	}
	return h
}

// StatusHeader returns the status a record's header declares, if any.
// Records from other clients (kcat, the seed's Python producer) have none;
// their status is only known after decoding.
func StatusHeader(m kafka.Message) (job.Status, bool) {
	for _, h := range m.Headers {
		if h.Key == job.HeaderStatus {
			return job.Status(h.Value), true
		}
	}
	return "", false
}

// Decode returns the job event a record holds. A record that is not a job
// (garbage written by someone else) is an error naming its position.
func Decode(m kafka.Message) (job.Event, error) {
	e, err := job.Decode(m.Value)
	if err != nil {
		return job.Event{}, fmt.Errorf("record %s/%d@%d is not a job event: %w", m.Topic, m.Partition, m.Offset, err)
	}
	return e, nil
}

// Writer appends job events to the ledger. Every write is acknowledged by
// all in-sync replicas before it returns.
type Writer struct {
	byKey       *kafka.Writer // new jobs: Java-compatible murmur2 on the job id
	toPartition *kafka.Writer // follow-up events: the partition of the job's NEW
}

// NewWriter returns a writer for topic.
func NewWriter(conn *kafkaconn.Conn, topic string) *Writer {
	byKey := conn.Writer(topic, &kafka.Murmur2Balancer{})
	toPartition := conn.Writer(topic, samePartition{})
	// One connection pool and one metadata cache for both.
	toPartition.Transport = byKey.Transport
	return &Writer{byKey: byKey, toPartition: toPartition}
}

// Tune lets bulk producers change batching; it must be called before the
// first write.
func (w *Writer) Tune(fn func(*kafka.Writer)) { fn(w.byKey) }

// TuneAppendTo does the same for AppendTo's writer (follow-up events):
// the worker batches its DONE events itself and sends them at once.
func (w *Writer) TuneAppendTo(fn func(*kafka.Writer)) { fn(w.toPartition) }

// Append writes new events, placed by job id. The error, if any, is a
// kafka.WriteErrors with one entry per event when only some failed.
func (w *Writer) Append(ctx context.Context, events ...job.Event) error {
	msgs, err := messages(events, -1)
	if err != nil {
		return err
	}
	return w.byKey.WriteMessages(ctx, msgs...)
}

// AppendTo writes events into partition, the partition their job's NEW
// event came from. Keeping all of a job's events in one partition means
// every reader sees them in order, even when the NEW was placed by another
// partitioner (librdkafka's CRC32) or before the topic grew.
func (w *Writer) AppendTo(ctx context.Context, partition int, events ...job.Event) error {
	msgs, err := messages(events, partition)
	if err != nil {
		return err
	}
	return w.toPartition.WriteMessages(ctx, msgs...)
}

// Stats returns the key writer's statistics since the last call.
func (w *Writer) Stats() kafka.WriterStats { return w.byKey.Stats() }

// Close flushes and closes the writer.
func (w *Writer) Close() error {
	err := errors.Join(w.byKey.Close(), w.toPartition.Close())
	// kafka.Writer.Close only closes its default transport, not ours.
	if t, ok := w.byKey.Transport.(*kafka.Transport); ok {
		t.CloseIdleConnections()
	}
	return err
}

func messages(events []job.Event, partition int) ([]kafka.Message, error) {
	msgs := make([]kafka.Message, len(events))
	for i, e := range events {
		m, err := Message(e)
		if err != nil {
			return nil, err
		}
		if partition >= 0 {
			m.Partition = partition
		}
		msgs[i] = m
	}
	return msgs, nil
}

// samePartition sends a message to the partition set on it; kafka-go's
// Writer otherwise ignores Message.Partition.
type samePartition struct{}

func (samePartition) Balance(m kafka.Message, _ ...int) int { return m.Partition }
