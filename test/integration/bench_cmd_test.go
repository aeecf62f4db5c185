package integration

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/jobctl/jobctl/pkg/ledger"
	"github.com/segmentio/kafka-go"
)

// benchOutput is the part of `jobctl bench -o json` the tests check.
type benchOutput struct {
	Embedded    bool     `json:"embedded"`
	Brokers     []string `json:"brokers"`
	Topics      []string `json:"topics"`
	Partitions  int      `json:"partitions"`
	Replication int      `json:"replication_factor"`
	Count       int      `json:"count"`
	Workers     int      `json:"workers"`
	Concurrency int      `json:"concurrency"`
	Produce     struct {
		Jobs          int     `json:"jobs"`
		Seconds       float64 `json:"seconds"`
		JobsPerSecond float64 `json:"jobs_per_second"`
	} `json:"produce"`
	Processed struct {
		Jobs          int     `json:"jobs"`
		Seconds       float64 `json:"seconds"`
		JobsPerSecond float64 `json:"jobs_per_second"`
		Executions    int     `json:"executions"`
		Committed     bool    `json:"committed"`
	} `json:"processed"`
	Latency *struct {
		Jobs  int     `json:"jobs"`
		Lost  int     `json:"lost"`
		P50Ms float64 `json:"p50_ms"`
		P90Ms float64 `json:"p90_ms"`
		P99Ms float64 `json:"p99_ms"`
		MaxMs float64 `json:"max_ms"`
	} `json:"latency"`
	TopicsDeleted bool `json:"topics_deleted"`
}

func runBench(t *testing.T, tgt Target, args ...string) benchOutput {
	t.Helper()
	r := mustJobctl(t, tgt, append([]string{"bench", "-o", "json"}, args...)...)
	var out benchOutput
	if err := json.Unmarshal([]byte(r.Stdout), &out); err != nil {
		t.Fatalf("bench output is not the JSON result: %v\n%s", err, r)
	}
	return out
}

// checkBenchFigures requires every measured figure to be present and
// positive: no timing thresholds, the machine decides those.
func checkBenchFigures(t *testing.T, out benchOutput, count int, latency bool) {
	t.Helper()
	if out.Count != count || out.Produce.Jobs != count || out.Processed.Jobs != count {
		t.Errorf("count %d, produced %d, processed %d; want %d each", out.Count, out.Produce.Jobs, out.Processed.Jobs, count)
	}
	if out.Produce.Seconds <= 0 || out.Produce.JobsPerSecond <= 0 {
		t.Errorf("produce figures not positive: %+v", out.Produce)
	}
	if out.Processed.Seconds <= 0 || out.Processed.JobsPerSecond <= 0 || out.Processed.Executions < count {
		t.Errorf("processed figures not positive: %+v", out.Processed)
	}
	if !out.Processed.Committed {
		t.Error("processed: the group's offsets did not cover every job")
	}
	if !latency {
		if out.Latency != nil {
			t.Errorf("latency phase ran although skipped: %+v", *out.Latency)
		}
		return
	}
	l := out.Latency
	if l == nil {
		t.Fatal("no latency figures")
	}
	if l.Jobs <= 0 || l.P50Ms <= 0 || l.P90Ms < l.P50Ms || l.P99Ms < l.P90Ms || l.MaxMs < l.P99Ms {
		t.Errorf("latency figures not positive and ordered: %+v", *l)
	}
	if l.Lost != 0 {
		t.Errorf("%d latency jobs got no DONE", l.Lost)
	}
}

// TestBenchEmbedded runs the whole bench on its own in-process broker.
func TestBenchEmbedded(t *testing.T) {
	out := runBench(t, targets[0], "--embedded", "--count", "2000", "--latency-duration", "2s")
	checkBenchFigures(t, out, 2000, true)
	if !out.Embedded || len(out.Brokers) != 1 || out.Brokers[0] == targets[0].Brokers[0] {
		t.Errorf("ran on %v (embedded %v), want a broker of its own", out.Brokers, out.Embedded)
	}
	if len(out.Topics) != 2 || !out.TopicsDeleted {
		t.Errorf("topics %v deleted=%v, want two scratch topics, deleted", out.Topics, out.TopicsDeleted)
	}
	if out.Partitions != 6 || out.Replication != 1 || out.Workers != 1 || out.Concurrency != 8 {
		t.Errorf("settings %d partitions, replication factor %d, %d workers, concurrency %d; want the defaults 6, 1, 1, 8", out.Partitions, out.Replication, out.Workers, out.Concurrency)
	}
}

// TestBenchDeletesTopics runs the bench on each target's brokers and
// checks its scratch topics are gone afterwards.
func TestBenchDeletesTopics(t *testing.T) {
	forEachBroker(t, func(t *testing.T, tgt Target) {
		out := runBench(t, tgt, "--count", "2000", "--latency-duration", "1s", "--latency-rate", "500")
		checkBenchFigures(t, out, 2000, true)
		if len(out.Topics) != 2 || !out.TopicsDeleted {
			t.Fatalf("topics %v deleted=%v, want two scratch topics, deleted", out.Topics, out.TopicsDeleted)
		}
		for _, topic := range out.Topics {
			for _, name := range []string{topic, ledger.DelayTopic(topic), ledger.DLQTopic(topic)} {
				waitTopicGone(t, tgt, name)
			}
		}
	})
}

// TestBenchKeep checks --keep, --workers, --partitions and a skipped
// latency phase.
func TestBenchKeep(t *testing.T) {
	forEachBroker(t, func(t *testing.T, tgt Target) {
		out := runBench(t, tgt, "--count", "1500", "--workers", "2", "--partitions", "3", "--concurrency", "2", "--latency-duration", "0", "--keep")
		t.Cleanup(func() {
			for _, topic := range out.Topics {
				deleteTopics(t, tgt, topic, ledger.DelayTopic(topic), ledger.DLQTopic(topic))
			}
		})
		checkBenchFigures(t, out, 1500, false)
		if out.Workers != 2 || out.Partitions != 3 || out.Concurrency != 2 {
			t.Errorf("settings %d workers, %d partitions, concurrency %d; want 2, 3, 2", out.Workers, out.Partitions, out.Concurrency)
		}
		if len(out.Topics) != 1 || out.TopicsDeleted {
			t.Fatalf("topics %v deleted=%v, want one scratch topic, kept", out.Topics, out.TopicsDeleted)
		}
		if n := topicRecords(t, tgt, out.Topics[0], 3); n < 2*1500 {
			t.Errorf("kept topic holds %d records, want at least %d (NEW + DONE per job)", n, 2*1500)
		}
	})
}

func TestBenchRejectsBadSettings(t *testing.T) {
	r := jobctl(t, targets[0], "bench", "--embedded", "--count", "0")
	if r.Code != 2 {
		t.Errorf("--count 0: want exit 2 (usage), got %s", r)
	}
	r = jobctl(t, targets[0], "bench", "--embedded", "--replication-factor", "0")
	if r.Code != 2 || !strings.Contains(r.Stderr, "replication factor must be at least 1") {
		t.Errorf("--replication-factor 0: want exit 2 naming the replication factor, got %s", r)
	}
	// More replicas than brokers: the error names the topic's settings.
	r = jobctl(t, targets[0], "bench", "--embedded", "--replication-factor", "3", "--count", "10", "--latency-duration", "0")
	if r.Code == 0 || !strings.Contains(r.Stderr, "replication factor 3") {
		t.Errorf("--replication-factor 3 on one broker: want a failure naming it, got %s", r)
	}
}

// freshClient is a client with a connection pool (and metadata cache) of
// its own: kafka-go's DefaultTransport caches metadata for seconds, and a
// topic created or deleted meanwhile would look unchanged.
func freshClient(t *testing.T, tgt Target) *kafka.Client {
	tr := &kafka.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	return &kafka.Client{Addr: kafka.TCP(tgt.Brokers...), Timeout: 10 * time.Second, Transport: tr}
}

// topicRecords sums the end offsets of topic's partitions.
func topicRecords(t *testing.T, tgt Target, topic string, partitions int) int64 {
	t.Helper()
	reqs := make([]kafka.OffsetRequest, partitions)
	for p := range reqs {
		reqs[p] = kafka.LastOffsetOf(p)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	resp, err := freshClient(t, tgt).ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{topic: reqs}})
	if err != nil {
		t.Fatalf("end offsets of %s: %v", topic, err)
	}
	var n int64
	for _, p := range resp.Topics[topic] {
		if p.Error != nil {
			t.Fatalf("end offset of %s/%d: %v", topic, p.Partition, p.Error)
		}
		n += p.LastOffset
	}
	return n
}

// waitTopicGone waits until topic is absent from the metadata: real Kafka
// deletes topics asynchronously.
func waitTopicGone(t *testing.T, tgt Target, topic string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		client := freshClient(t, tgt)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		md, err := client.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{topic}})
		cancel()
		if err == nil && (len(md.Topics) == 0 || errors.Is(md.Topics[0].Error, kafka.UnknownTopicOrPartition)) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("scratch topic %s still exists 30s after the bench (last error %v)", topic, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func deleteTopics(t *testing.T, tgt Target, topics ...string) {
	t.Helper()
	if len(topics) == 0 {
		return
	}
	if _, err := freshClient(t, tgt).DeleteTopics(context.Background(), &kafka.DeleteTopicsRequest{Topics: topics}); err != nil {
		t.Logf("deleting %v: %v", topics, err)
	}
}
