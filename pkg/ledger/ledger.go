// Package ledger reads and writes the job-status topic: the ledger where
// every status change of every job is one record, keyed by job id, with
// the status also in a record header so readers can skip events cheaply.
package ledger

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"sync"

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
	return kafka.Message{Key: e.Key(), Value: value, Headers: appendHeaders(make([]kafka.Header, 0, 4), &e)}, nil
}

// appendHeaders appends e's headers: status, and group, run and attempt
// when set. Statuses and small numbers use shared, never-written values
// rather than a new []byte per event.
func appendHeaders(h []kafka.Header, e *job.Event) []kafka.Header {
	h = append(h, kafka.Header{Key: job.HeaderStatus, Value: statusValue(e.Status)})
	if e.Group != "" {
		h = append(h, kafka.Header{Key: job.HeaderGroup, Value: []byte(e.Group)})
	}
	if e.Run > 0 {
		h = append(h, kafka.Header{Key: job.HeaderRun, Value: intValue(e.Run)})
	}
	if e.Attempt > 0 {
		h = append(h, kafka.Header{Key: job.HeaderAttempt, Value: intValue(e.Attempt)})
	}
	return h
}

var statusValues = func() map[job.Status][]byte {
	m := map[job.Status][]byte{}
	for _, s := range job.Statuses {
		m[s] = []byte(s)
	}
	return m
}()

func statusValue(s job.Status) []byte {
	if v, ok := statusValues[s]; ok {
		return v
	}
	return []byte(s)
}

var smallInts = func() [][]byte {
	v := make([][]byte, 64)
	for i := range v {
		v[i] = strconv.AppendInt(nil, int64(i), 10)
	}
	return v
}()

func intValue(n int) []byte {
	if n >= 0 && n < len(smallInts) {
		return smallInts[n]
	}
	return strconv.AppendInt(nil, int64(n), 10)
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
//
// Each call is sent at once, as one produce request per partition leader
// (see leaderProducer): the callers batch (the producer, the worker's
// recorder, the API's Coalescer), so a batch timeout would only add
// latency, and kafka.Writer's per-message overhead was most of
// `jobctl produce`'s client-side CPU.
type Writer struct {
	lp       *leaderProducer
	balancer kafka.Murmur2Balancer // Java-compatible murmur2 on the job id

	mu          sync.Mutex
	byKey       retryPolicy // Append
	toPartition retryPolicy // AppendTo
	closed      bool
}

// NewWriter returns a writer for topic.
func NewWriter(conn *kafkaconn.Conn, topic string) *Writer {
	kw := conn.Writer(topic, nil)
	policy := policyOf(kw)
	return &Writer{
		lp:    &leaderProducer{transport: conn.Transport(), addr: kafka.TCP(conn.Brokers...), topic: topic},
		byKey: policy, toPartition: policy,
	}
}

// Tune lets a caller change how long Append retries: of the kafka.Writer
// settings, MaxAttempts, WriteBackoffMin, WriteBackoffMax and
// WriteTimeout apply. The batch settings (BatchSize, BatchTimeout) have
// nothing left to tune: every call is sent at once.
func (w *Writer) Tune(fn func(*kafka.Writer)) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.byKey = tuned(w.byKey, fn)
}

// TuneAppendTo does the same for AppendTo (follow-up events).
func (w *Writer) TuneAppendTo(fn func(*kafka.Writer)) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.toPartition = tuned(w.toPartition, fn)
}

func tuned(p retryPolicy, fn func(*kafka.Writer)) retryPolicy {
	kw := &kafka.Writer{MaxAttempts: p.attempts, WriteBackoffMin: p.backoffMin, WriteBackoffMax: p.backoffMax, WriteTimeout: p.timeout}
	fn(kw)
	return policyOf(kw)
}

func (w *Writer) policies() (byKey, toPartition retryPolicy, err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return retryPolicy{}, retryPolicy{}, io.ErrClosedPipe
	}
	return w.byKey, w.toPartition, nil
}

// Append writes new events, placed by job id. The error, if any, is a
// kafka.WriteErrors with one entry per event when only some failed.
func (w *Writer) Append(ctx context.Context, events ...job.Event) error {
	policy, _, err := w.policies()
	if err != nil || len(events) == 0 {
		return err
	}
	msgs, err := messages(events)
	if err != nil {
		return err
	}
	meta, err := w.lp.partitions(ctx)
	if err != nil {
		return err
	}
	ids := partitionIDs(len(meta))
	parts := make([]int32, len(msgs))
	for i := range msgs {
		parts[i] = int32(w.balancer.Balance(msgs[i], ids...))
	}
	return w.lp.write(ctx, policy, msgs, parts)
}

// AppendTo writes events into partition, the partition their job's NEW
// event came from. Keeping all of a job's events in one partition means
// every reader sees them in order, even when the NEW was placed by another
// partitioner (librdkafka's CRC32) or before the topic grew.
func (w *Writer) AppendTo(ctx context.Context, partition int, events ...job.Event) error {
	_, policy, err := w.policies()
	if err != nil || len(events) == 0 {
		return err
	}
	if partition < 0 {
		return fmt.Errorf("writing %d events to %s: partition %d is negative", len(events), w.lp.topic, partition)
	}
	msgs, err := messages(events)
	if err != nil {
		return err
	}
	parts := make([]int32, len(msgs))
	for i := range parts {
		parts[i] = int32(partition)
	}
	return w.lp.write(ctx, policy, msgs, parts)
}

// Close ends the writer. Every write returns only once it is
// acknowledged or failed, so there is nothing left to flush.
func (w *Writer) Close() error {
	w.mu.Lock()
	w.closed = true
	w.mu.Unlock()
	w.lp.transport.CloseIdleConnections()
	return nil
}

// partitionIDs returns 0..n-1, the partition list the balancer picks from.
func partitionIDs(n int) []int {
	if n <= len(smallPartitionIDs) {
		return smallPartitionIDs[:n]
	}
	ids := make([]int, n)
	for i := range ids {
		ids[i] = i
	}
	return ids
}

var smallPartitionIDs = func() []int {
	ids := make([]int, 256)
	for i := range ids {
		ids[i] = i
	}
	return ids
}()

// messages encodes events. Keys and header slices are cut from one
// allocation each: a bulk write of thousands of events is otherwise
// thousands of small allocations for the garbage collector.
func messages(events []job.Event) ([]kafka.Message, error) {
	msgs := make([]kafka.Message, len(events))
	keyBytes := 0
	for i := range events {
		keyBytes += len(events[i].JobID.String())
	}
	keys := make([]byte, 0, keyBytes)
	headers := make([]kafka.Header, 0, 2*len(events))
	for i := range events {
		e := &events[i]
		value, err := e.Encode()
		if err != nil {
			return nil, fmt.Errorf("encoding job %s: %w", e.JobID, err)
		}
		start := len(keys)
		keys = append(keys, e.JobID.String()...)
		hstart := len(headers)
		headers = appendHeaders(headers, e)
		msgs[i] = kafka.Message{
			Key:   keys[start:len(keys):len(keys)],
			Value: value,
			// Capped, so that an append to one message's headers cannot
			// overwrite the next one's.
			Headers: headers[hstart:len(headers):len(headers)],
		}
	}
	return msgs, nil
}
