package ledger

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/jobctl/jobctl/pkg/embedded"
	"github.com/jobctl/jobctl/pkg/job"
	"github.com/jobctl/jobctl/pkg/kafkaconn"
	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/protocol"
)

func newEvent(id int64, st job.Status) job.Event {
	now := time.Now()
	return job.Event{JobID: job.NumericID(id), Status: st, Type: "t", CreatedAt: now, UpdatedAt: now}
}

func TestMessageHeaders(t *testing.T) {
	e := newEvent(42, job.StatusFailed)
	e.Group, e.Run, e.Attempt = "g", 2, 300
	m, err := Message(e)
	if err != nil {
		t.Fatal(err)
	}
	h := ReadHeaders(m)
	if !h.OK || h.Status != job.StatusFailed || h.Group != "g" || h.Run != 2 || h.Attempt != 300 {
		t.Fatalf("headers %+v", h)
	}
	if string(m.Key) != "42" {
		t.Fatalf("key %q", m.Key)
	}
	if got, err := Decode(m); err != nil || got.JobID != e.JobID || got.Status != e.Status {
		t.Fatalf("decoded %+v, %v", got, err)
	}
}

// The keys and headers of a bulk write share backing arrays; one
// message's slices must not reach into the next one's.
func TestMessagesAreIndependent(t *testing.T) {
	events := make([]job.Event, 50)
	for i := range events {
		events[i] = newEvent(int64(1000+i), job.StatusNew)
		if i%3 == 0 {
			events[i].Attempt = i
		}
		if i%5 == 0 {
			events[i].Group = fmt.Sprint("g", i)
		}
	}
	msgs, err := messages(events)
	if err != nil {
		t.Fatal(err)
	}
	for i, m := range msgs {
		if cap(m.Key) != len(m.Key) || cap(m.Headers) != len(m.Headers) {
			t.Fatalf("message %d: key or headers not capped", i)
		}
		if string(m.Key) != fmt.Sprint(1000+i) {
			t.Fatalf("message %d key %q", i, m.Key)
		}
		h := ReadHeaders(m)
		if h.Status != job.StatusNew || h.Attempt != events[i].Attempt || h.Group != events[i].Group {
			t.Fatalf("message %d headers %+v, event %+v", i, h, events[i])
		}
	}
	// Appending to one message's headers leaves the next one alone.
	before := ReadHeaders(msgs[1])
	msgs[0].Headers = append(msgs[0].Headers, kafka.Header{Key: job.HeaderStatus, Value: []byte("X")})
	if ReadHeaders(msgs[1]) != before {
		t.Fatal("an append to message 0's headers changed message 1's")
	}
	// The shared status values are what the status says.
	if string(statusValue(job.StatusDone)) != "DONE" || string(statusValue("ODD")) != "ODD" {
		t.Fatal("status values")
	}
	if string(intValue(7)) != "7" || string(intValue(12345)) != "12345" || string(intValue(-1)) != "-1" {
		t.Fatal("int values")
	}
}

func TestRetryPolicy(t *testing.T) {
	p := policyOf(&kafka.Writer{})
	if p.attempts != 10 || p.backoffMin != 100*time.Millisecond || p.backoffMax != time.Second || p.timeout != 10*time.Second {
		t.Fatalf("defaults %+v", p)
	}
	p = tuned(p, func(kw *kafka.Writer) {
		kw.MaxAttempts, kw.WriteBackoffMax, kw.BatchTimeout = 3, 250*time.Millisecond, time.Microsecond
	})
	if p.attempts != 3 || p.backoffMax != 250*time.Millisecond || p.backoffMin != 100*time.Millisecond {
		t.Fatalf("tuned %+v", p)
	}
	if p.backoff(1) != 100*time.Millisecond || p.backoff(2) != 250*time.Millisecond {
		t.Fatalf("backoff %s %s", p.backoff(1), p.backoff(2))
	}
	for _, err := range []error{kafka.NotLeaderForPartition, kafka.NotEnoughReplicas, kafka.RequestTimedOut,
		fmt.Errorf("writing: %w", kafka.LeaderNotAvailable), io.ErrUnexpectedEOF, context.DeadlineExceeded} {
		if !retriable(err) {
			t.Errorf("%v is not retried", err)
		}
	}
	for _, err := range []error{kafka.MessageSizeTooLarge, kafka.InvalidTopic, context.Canceled, errors.New("other")} {
		if retriable(err) {
			t.Errorf("%v is retried", err)
		}
	}
}

// The record set encoder writes what kafka-go's own encoder writes for
// the same records (but for the partition leader epoch, which the broker
// sets), and what kafka-go reads back.
func TestAppendRecordSetMatchesKafkaGo(t *testing.T) {
	now := time.UnixMilli(1_764_000_000_123)
	msgs := []kafka.Message{
		{Key: []byte("a"), Value: []byte(strings.Repeat("v", 300)), Headers: []kafka.Header{{Key: "status", Value: []byte("NEW")}, {Key: "attempt", Value: []byte("12")}}},
		{Key: []byte("skipped")},
		{Key: []byte("b"), Value: nil, Headers: []kafka.Header{{Key: "h", Value: nil}}},
		{Key: nil, Value: []byte("v"), Time: now.Add(-5 * time.Second)},
		{Key: []byte(""), Value: []byte(""), Time: now.Add(70 * time.Second)},
	}
	idx := []int32{0, 2, 3, 4}
	got := appendRecordSet([]byte("prefix"), msgs, idx, now)[len("prefix"):]
	if len(got) > recordSetSize(msgs, idx) {
		t.Fatalf("encoded %d bytes, recordSetSize said at most %d", len(got), recordSetSize(msgs, idx))
	}

	var records []kafka.Record
	for _, i := range idx {
		m := msgs[i]
		r := kafka.Record{Time: m.Time, Headers: m.Headers}
		if r.Time.IsZero() {
			r.Time = now
		}
		if m.Key != nil {
			r.Key = protocol.NewBytes(m.Key)
		}
		if m.Value != nil {
			r.Value = protocol.NewBytes(m.Value)
		}
		records = append(records, r)
	}
	var want bytes.Buffer
	if _, err := (&protocol.RecordSet{Version: 2, Records: protocol.NewRecordReader(records...)}).WriteTo(&want); err != nil {
		t.Fatal(err)
	}
	w := want.Bytes()
	// kafka-go writes leader epoch 0 (bytes 4+12..4+16); the Java client
	// and this encoder write -1.
	if len(got) != len(w) || !bytes.Equal(got[:16], w[:16]) || !bytes.Equal(got[20:], w[20:]) {
		t.Fatalf("record set differs from kafka-go's:\n got %x\nwant %x", got, w)
	}

	var rs protocol.RecordSet
	if _, err := rs.ReadFrom(bytes.NewReader(got)); err != nil {
		t.Fatal(err)
	}
	for n := 0; ; n++ {
		r, err := rs.Records.ReadRecord()
		if errors.Is(err, io.EOF) {
			if n != len(idx) {
				t.Fatalf("read %d records, wrote %d", n, len(idx))
			}
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		m := msgs[idx[n]]
		k, v := readBytes(r.Key), readBytes(r.Value)
		if !bytes.Equal(k, m.Key) || (k == nil) != (m.Key == nil) || !bytes.Equal(v, m.Value) || (v == nil) != (m.Value == nil) ||
			r.Offset != int64(n) || !r.Time.Equal(records[n].Time) || len(r.Headers) != len(m.Headers) {
			t.Fatalf("record %d: %+v, wrote %+v", n, r, m)
		}
	}
	// The CRC covers everything from the attributes on.
	if crc := crc32.Checksum(got[4+21:], crc32.MakeTable(crc32.Castagnoli)); crc != binary.BigEndian.Uint32(got[4+17:]) {
		t.Fatalf("crc %x, header says %x", crc, binary.BigEndian.Uint32(got[4+17:]))
	}
}

func readBytes(b protocol.Bytes) []byte {
	if b == nil {
		return nil
	}
	v, _ := io.ReadAll(b)
	if v == nil {
		v = []byte{}
	}
	return v
}

func TestVarintLen(t *testing.T) {
	for _, x := range []int64{0, 1, -1, 63, 64, -64, -65, 8191, 8192, 1 << 20, -(1 << 30), 1<<62 + 5} {
		if got, want := varintLen(x), len(binary.AppendVarint(nil, x)); got != want {
			t.Errorf("varintLen(%d) = %d, want %d", x, got, want)
		}
	}
}

// broker starts an embedded broker with topic (partitions p) on it.
func broker(t *testing.T, topic string, p int) *kafkaconn.Conn {
	t.Helper()
	b, err := embedded.Start(embedded.Options{Addr: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	conn := &kafkaconn.Conn{Brokers: []string{b.Addr()}, ClientID: "ledger-test"}
	client := conn.Client()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res, err := client.CreateTopics(ctx, &kafka.CreateTopicsRequest{Topics: []kafka.TopicConfig{{Topic: topic, NumPartitions: p, ReplicationFactor: 1}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := res.Errors[topic]; err != nil {
		t.Fatal(err)
	}
	return conn
}

// readAll returns every record of topic by partition.
func readAll(t *testing.T, conn *kafkaconn.Conn, topic string, partitions int) map[int][]kafka.Message {
	t.Helper()
	out := map[int][]kafka.Message{}
	client := conn.Client()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for p := range partitions {
		for offset := int64(0); ; {
			res, err := client.Fetch(ctx, &kafka.FetchRequest{Topic: topic, Partition: p, Offset: offset, MaxBytes: 1 << 20, MaxWait: 50 * time.Millisecond})
			if err != nil {
				t.Fatal(err)
			}
			if res.Error != nil {
				t.Fatal(res.Error)
			}
			n := 0
			for {
				r, err := res.Records.ReadRecord()
				if err != nil {
					break
				}
				m := kafka.Message{Partition: p, Offset: r.Offset, Time: r.Time, Headers: r.Headers}
				m.Key, _ = io.ReadAll(r.Key)
				m.Value, _ = io.ReadAll(r.Value)
				out[p] = append(out[p], m)
				offset = r.Offset + 1
				n++
			}
			if n == 0 || offset >= res.HighWatermark {
				break
			}
		}
	}
	return out
}

func TestWriterPlacesByMurmur2AndAppendsToPartition(t *testing.T) {
	const topic, parts = "ledger-place", 6
	conn := broker(t, topic, parts)
	w := NewWriter(conn, topic)
	defer w.Close()
	ctx := context.Background()
	events := make([]job.Event, 600)
	for i := range events {
		events[i] = newEvent(int64(5000+i), job.StatusNew)
	}
	if err := w.Append(ctx, events...); err != nil {
		t.Fatal(err)
	}
	done := newEvent(5000, job.StatusDone)
	done.Attempt = 1
	if err := w.AppendTo(ctx, 4, done); err != nil {
		t.Fatal(err)
	}
	got := readAll(t, conn, topic, parts)
	ids := make([]int, parts)
	for i := range ids {
		ids[i] = i
	}
	total := 0
	for p, msgs := range got {
		for _, m := range msgs {
			total++
			h := ReadHeaders(m)
			if h.Status == job.StatusDone {
				if p != 4 || string(m.Key) != "5000" || h.Attempt != 1 {
					t.Fatalf("DONE in partition %d: %s %+v", p, m.Key, h)
				}
				continue
			}
			if want := (kafka.Murmur2Balancer{}).Balance(kafka.Message{Key: m.Key}, ids...); want != p {
				t.Fatalf("job %s in partition %d, murmur2 says %d", m.Key, p, want)
			}
			if m.Time.IsZero() || time.Since(m.Time) > time.Minute {
				t.Fatalf("record time %s", m.Time)
			}
		}
	}
	if total != len(events)+1 {
		t.Fatalf("read %d records, wrote %d", total, len(events)+1)
	}
	// Order within a partition is the order of the call.
	for p, msgs := range got {
		last := ""
		for _, m := range msgs {
			if ReadHeaders(m).Status == job.StatusNew && last != "" && len(m.Key) == len(last) && string(m.Key) < last {
				t.Fatalf("partition %d: %s after %s", p, m.Key, last)
			}
			if ReadHeaders(m).Status == job.StatusNew {
				last = string(m.Key)
			}
		}
	}
}

// One partition refuses its records for good (too large); the others
// are written, and the error has one entry per event.
func TestWriterPartialFailure(t *testing.T) {
	const topic, parts = "ledger-partial", 3
	conn := broker(t, topic, parts)
	w := NewWriter(conn, topic)
	defer w.Close()
	big := newEvent(1, job.StatusNew)
	big.Payload = []byte(`"` + strings.Repeat("x", 2<<20) + `"`)
	events := []job.Event{newEvent(2, job.StatusNew), big, newEvent(3, job.StatusNew), newEvent(4, job.StatusNew)}
	ids := []int{0, 1, 2}
	bigPart := (kafka.Murmur2Balancer{}).Balance(kafka.Message{Key: []byte("1")}, ids...)
	err := w.Append(context.Background(), events...)
	var werr kafka.WriteErrors
	if !errors.As(err, &werr) || len(werr) != len(events) {
		t.Fatalf("error %v, want WriteErrors of %d", err, len(events))
	}
	for i, e := range events {
		p := (kafka.Murmur2Balancer{}).Balance(kafka.Message{Key: e.Key()}, ids...)
		// The big record's partition fails from it on; records of that
		// partition before it are written.
		if (p == bigPart && i >= 1) != (werr[i] != nil) {
			t.Fatalf("event %d (partition %d, the big one's %d): error %v", i, p, bigPart, werr[i])
		}
	}
	if !errors.Is(werr[1], kafka.MessageSizeTooLarge) && !errors.Is(werr[1], kafka.RecordListTooLarge) {
		t.Fatalf("big record's error %v", werr[1])
	}
	got := readAll(t, conn, topic, parts)
	n := 0
	for _, msgs := range got {
		n += len(msgs)
	}
	if written := len(events) - werr.Count(); n != written {
		t.Fatalf("read %d records, %d reported written", n, written)
	}
}

// A call with more than a batch's worth of bytes for one partition is
// sent as several batches, in order; a record the broker refuses stops
// its partition there: the records before it are written, it and the
// ones after it fail.
func TestWriterSplitsBigCallsInOrder(t *testing.T) {
	const topic = "ledger-split"
	conn := broker(t, topic, 2)
	w := NewWriter(conn, topic)
	defer w.Close()
	ctx := context.Background()
	payload := []byte(`"` + strings.Repeat("p", 300<<10) + `"`)
	var events []job.Event
	for i := range 10 {
		e := newEvent(int64(100+i), job.StatusDone)
		e.Payload = payload
		events = append(events, e)
	}
	if err := w.AppendTo(ctx, 1, events...); err != nil {
		t.Fatalf("3 MB to one partition: %v", err)
	}
	got := readAll(t, conn, topic, 2)[1]
	if len(got) != len(events) {
		t.Fatalf("partition 1 holds %d records, wrote %d", len(got), len(events))
	}
	for i, m := range got {
		if string(m.Key) != fmt.Sprint(100+i) {
			t.Fatalf("record %d is job %s: out of order", i, m.Key)
		}
	}

	big := newEvent(200, job.StatusDone)
	big.Payload = []byte(`"` + strings.Repeat("x", 2<<20) + `"`)
	mixed := []job.Event{newEvent(199, job.StatusDone), big, newEvent(201, job.StatusDone)}
	err := w.AppendTo(ctx, 0, mixed...)
	var werr kafka.WriteErrors
	if !errors.As(err, &werr) || len(werr) != 3 || werr[0] != nil || werr[1] == nil || werr[2] == nil {
		t.Fatalf("small, too big, small: %v", err)
	}
	if p0 := readAll(t, conn, topic, 2)[0]; len(p0) != 1 || string(p0[0].Key) != "199" {
		t.Fatalf("partition 0 holds %d records", len(p0))
	}
}

func TestWriterErrors(t *testing.T) {
	const topic = "ledger-errors"
	conn := broker(t, topic, 2)
	ctx := context.Background()

	// No such topic: at once, not after retries, and not per event.
	missing := NewWriter(conn, "ledger-missing")
	start := time.Now()
	err := missing.Append(ctx, newEvent(1, job.StatusNew))
	var werr kafka.WriteErrors
	if !errors.Is(err, kafka.UnknownTopicOrPartition) || errors.As(err, &werr) || time.Since(start) > 5*time.Second {
		t.Fatalf("append to a missing topic: %v after %s", err, time.Since(start))
	}
	missing.Close()

	// A partition the topic does not have is retried (it may have just
	// been added), then reported per event.
	w := NewWriter(conn, topic)
	w.TuneAppendTo(func(kw *kafka.Writer) { kw.MaxAttempts, kw.WriteBackoffMin = 2, time.Millisecond })
	err = w.AppendTo(ctx, 9, newEvent(1, job.StatusDone), newEvent(2, job.StatusDone))
	if !errors.As(err, &werr) || len(werr) != 2 || !errors.Is(werr[0], kafka.UnknownTopicOrPartition) {
		t.Fatalf("append to partition 9 of 2: %v", err)
	}
	if err := w.AppendTo(ctx, -1, newEvent(1, job.StatusDone)); err == nil || !strings.Contains(err.Error(), "negative") {
		t.Fatalf("append to partition -1: %v", err)
	}

	// A cancelled context ends the call with its error.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := w.Append(cctx, newEvent(3, job.StatusNew)); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled append: %v", err)
	}

	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := w.Append(ctx, newEvent(4, job.StatusNew)); !errors.Is(err, io.ErrClosedPipe) {
		t.Fatalf("append after close: %v", err)
	}
}

// Partitions added while a writer runs are written to once its metadata
// catches up: AppendTo retries meanwhile instead of failing.
func TestWriterSeesAddedPartitions(t *testing.T) {
	const topic = "ledger-grow"
	conn := broker(t, topic, 2)
	w := NewWriter(conn, topic)
	defer w.Close()
	ctx := context.Background()
	if err := w.Append(ctx, newEvent(1, job.StatusNew)); err != nil {
		t.Fatal(err)
	}
	client := conn.Client()
	res, err := client.CreatePartitions(ctx, &kafka.CreatePartitionsRequest{Topics: []kafka.TopicPartitionsConfig{{Name: topic, Count: 4}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := res.Errors[topic]; err != nil {
		t.Fatal(err)
	}
	if err := w.AppendTo(ctx, 3, newEvent(1, job.StatusDone)); err != nil {
		t.Fatalf("append to the added partition 3: %v", err)
	}
	if got := readAll(t, conn, topic, 4)[3]; len(got) != 1 || string(got[0].Key) != "1" {
		t.Fatalf("partition 3 holds %d records", len(got))
	}
}
