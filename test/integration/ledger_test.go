package integration

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/jobctl/jobctl/pkg/job"
	"github.com/jobctl/jobctl/pkg/kafkaconn"
	"github.com/jobctl/jobctl/pkg/ledger"
	"github.com/segmentio/kafka-go"
)

// javaMurmur2 is org.apache.kafka.common.utils.Utils.murmur2, written
// from the Java source independently of kafka-go's Murmur2Balancer, so the
// test checks the writer against the reference rather than against itself.
// uint32 arithmetic wraps like Java's int; >> on uint32 is Java's >>>.
func javaMurmur2(data []byte) int32 {
	const (
		seed uint32 = 0x9747b28c
		m    uint32 = 0x5bd1e995
		r           = 24
	)
	length := len(data)
	h := seed ^ uint32(length)
	for i := 0; i+4 <= length; i += 4 {
		k := uint32(data[i]) | uint32(data[i+1])<<8 | uint32(data[i+2])<<16 | uint32(data[i+3])<<24
		k *= m
		k ^= k >> r
		k *= m
		h *= m
		h ^= k
	}
	tail := length &^ 3
	switch length % 4 {
	case 3:
		h ^= uint32(data[tail+2]) << 16
		fallthrough
	case 2:
		h ^= uint32(data[tail+1]) << 8
		fallthrough
	case 1:
		h ^= uint32(data[tail])
		h *= m
	}
	h ^= h >> 13
	h *= m
	h ^= h >> 15
	return int32(h)
}

// javaPartition is the Java client's default partition for a keyed record:
// Utils.toPositive(Utils.murmur2(key)) % numPartitions.
func javaPartition(key []byte, partitions int) int {
	return int(javaMurmur2(key)&0x7fffffff) % partitions
}

// The reference itself, against Kafka's UtilsTest.testMurmur2 vectors.
func TestJavaMurmur2Reference(t *testing.T) {
	for in, want := range map[string]int32{
		"21":                         -973932308,
		"foobar":                     -790332482,
		"a-little-bit-long-string":   -985981536,
		"a-little-bit-longer-string": -1486304829,
		"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8": -58897971,
		"abc": 479470107,
	} {
		if got := javaMurmur2([]byte(in)); got != want {
			t.Errorf("javaMurmur2(%q) = %d, want %d", in, got, want)
		}
	}
}

// Job events written with the ledger Writer land where the Java client
// would put their key, and come back with their status header and JSON.
func TestLedgerWriterPlacesKeysLikeJava(t *testing.T) {
	forEachBroker(t, func(t *testing.T, tgt Target) {
		const partitions = 4
		topic := createTopic(t, tgt, partitions)
		w := ledger.NewWriter(&kafkaconn.Conn{Brokers: tgt.Brokers, ClientID: "jobctl-test"}, topic)
		defer w.Close()

		created := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
		var news []job.Event
		for i := range 60 {
			id := job.NumericID(int64(i * 7919))
			if i%2 == 1 {
				var err error
				if id, err = job.StringID(fmt.Sprintf("job-%d-%s", i, uniqueName(t, "k")[:6])); err != nil {
					t.Fatal(err)
				}
			}
			news = append(news, job.Event{
				JobID: id, Status: job.StatusNew, CreatedAt: created, UpdatedAt: created,
				Type: "mock", Payload: []byte(fmt.Sprintf(`{"n":%d,"s":"x y"}`, i)),
			})
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := w.Append(ctx, news...); err != nil {
			t.Fatalf("appending %d NEW events: %v", len(news), err)
		}
		// A follow-up goes to the partition of its job's NEW, whatever the
		// hash says: here deliberately a different partition.
		done := job.Event{JobID: news[0].JobID, Status: job.StatusDone, CreatedAt: created, UpdatedAt: created.Add(time.Second), Attempt: 1, Worker: "w1"}
		donePartition := (javaPartition(news[0].Key(), partitions) + 1) % partitions
		if err := w.AppendTo(ctx, donePartition, done); err != nil {
			t.Fatalf("appending DONE: %v", err)
		}

		got := readLedgerToEnd(t, tgt, topic, partitions)
		if len(got) != len(news)+1 {
			t.Fatalf("read %d records, wrote %d", len(got), len(news)+1)
		}
		want := map[string]job.Event{}
		for _, e := range news {
			want[e.JobID.String()] = e
		}
		sawDone := false
		for _, m := range got {
			status, ok := ledger.StatusHeader(m)
			if !ok {
				t.Fatalf("record %d@%d has no status header", m.Partition, m.Offset)
			}
			e, err := ledger.Decode(m)
			if err != nil {
				t.Fatal(err)
			}
			if status != e.Status {
				t.Fatalf("record %d@%d: header status %s, JSON status %s", m.Partition, m.Offset, status, e.Status)
			}
			if !bytes.Equal(m.Key, e.Key()) {
				t.Fatalf("record %d@%d: key %q, job id %q", m.Partition, m.Offset, m.Key, e.JobID)
			}
			if e.Status == job.StatusDone {
				sawDone = true
				if m.Partition != donePartition || e.JobID != done.JobID || e.Worker != "w1" || e.Attempt != 1 {
					t.Fatalf("DONE event %+v on partition %d, want %+v on %d", e, m.Partition, done, donePartition)
				}
				continue
			}
			if p := javaPartition(m.Key, partitions); m.Partition != p {
				t.Errorf("key %q is on partition %d; the Java client puts it on %d", m.Key, m.Partition, p)
			}
			orig, ok := want[e.JobID.String()]
			if !ok {
				t.Fatalf("unexpected job %q", e.JobID)
			}
			if e.JobID != orig.JobID || e.JobID.Numeric() != orig.JobID.Numeric() || e.Type != orig.Type ||
				!e.CreatedAt.Equal(orig.CreatedAt) || !bytes.Equal(e.Payload, orig.Payload) {
				t.Errorf("round trip changed the event:\n got %+v\nwant %+v", e, orig)
			}
			delete(want, e.JobID.String())
		}
		if len(want) != 0 || !sawDone {
			t.Fatalf("missing events: %d NEW, DONE seen %v", len(want), sawDone)
		}
	})
}

// readLedgerToEnd reads every record of topic, partition by partition, up to the
// high watermark each had when reading started.
func readLedgerToEnd(t *testing.T, tgt Target, topic string, partitions int) []kafka.Message {
	t.Helper()
	client := &kafka.Client{Addr: kafka.TCP(tgt.Brokers...), Timeout: 20 * time.Second}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	reqs := make([]kafka.OffsetRequest, partitions)
	for p := range partitions {
		reqs[p] = kafka.LastOffsetOf(p)
	}
	offs, err := client.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{topic: reqs}})
	if err != nil {
		t.Fatalf("listing offsets of %s: %v", topic, err)
	}
	var out []kafka.Message
	for _, po := range offs.Topics[topic] {
		if po.Error != nil {
			t.Fatalf("offsets of %s/%d: %v", topic, po.Partition, po.Error)
		}
		if po.LastOffset == 0 {
			continue // empty: a read would block forever
		}
		r := kafka.NewReader(kafka.ReaderConfig{
			Brokers: tgt.Brokers, Topic: topic, Partition: po.Partition, MaxWait: 500 * time.Millisecond,
		})
		for {
			m, err := r.ReadMessage(ctx)
			if err != nil {
				r.Close()
				t.Fatalf("reading %s/%d: %v", topic, po.Partition, err)
			}
			out = append(out, m)
			if m.Offset+1 >= po.LastOffset {
				break
			}
		}
		r.Close()
	}
	return out
}
