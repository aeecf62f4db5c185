package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jobctl/jobctl/pkg/ledger"
	"github.com/segmentio/kafka-go"
)

// Jobs written by clients we did not write are processed too: kcat and
// Python's confluent-kafka (both librdkafka) send the seed's payload
// {"job_id": 1234, "status": "NEW"} with no status header, keyed by job id
// and placed by librdkafka's default partitioner (CRC32-based, not the
// Java client's murmur2). The worker decodes them, and their DONE events
// land in the NEW's partition, whatever partitioner placed it.

func TestInteropKcat(t *testing.T) {
	kcat := requireTool(t, "kcat", "kcat is not installed (Debian: apt-get install -y kcat)", "kcat", "-V")
	forEachBroker(t, func(t *testing.T, tgt Target) {
		topic := createTopic(t, tgt, 6)
		ids := interopIDs(100000, 30)
		var in strings.Builder
		for _, id := range ids {
			fmt.Fprintf(&in, "%d\t{\"job_id\": %d, \"status\": \"NEW\"}\n", id, id)
		}
		cmd := exec.Command(kcat, "-P", "-b", strings.Join(tgt.Brokers, ","), "-t", topic, "-K", "\t",
			"-X", "acks=all", "-X", "broker.address.family=v4")
		cmd.Stdin = strings.NewReader(in.String())
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("kcat: %v\n%s", err, out)
		}
		interopCheck(t, tgt, topic, ids)
	})
}

func TestInteropPythonConfluentKafka(t *testing.T) {
	python := requireTool(t, "python3", "python3 with confluent-kafka is not available (pip install confluent-kafka)", "python3", "-c", "import confluent_kafka")
	forEachBroker(t, func(t *testing.T, tgt Target) {
		topic := createTopic(t, tgt, 6)
		ids := interopIDs(200000, 30)
		script := filepath.Join(t.TempDir(), "produce.py")
		const src = `import json, sys
from confluent_kafka import Producer

brokers, topic = sys.argv[1], sys.argv[2]
errors = []
def report(err, msg):
    if err is not None:
        errors.append(str(err))
p = Producer({"bootstrap.servers": brokers, "acks": "all", "broker.address.family": "v4"})
for arg in sys.argv[3:]:
    job_id = int(arg)
    # The seed's payload, keyed by job id; default partitioner. Every
    # other job uses the rest of the record contract (docs/runtime.md,
    # "What foreign producers may send"): type, payload, created_at and a
    # run_at that has passed (= run now).
    job = {"job_id": job_id, "status": "NEW"}
    if job_id % 2:
        job.update(type="interop", payload={"n": job_id}, created_at="2026-01-02T03:04:05Z", run_at="2020-01-01T00:00:00Z")
    p.produce(topic, key=str(job_id), value=json.dumps(job), on_delivery=report)
left = p.flush(30)
if errors or left:
    sys.exit("delivery failed: %s (%d undelivered)" % (errors, left))
`
		if err := os.WriteFile(script, []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
		args := []string{script, strings.Join(tgt.Brokers, ","), topic}
		for _, id := range ids {
			args = append(args, strconv.Itoa(id))
		}
		if out, err := exec.Command(python, args...).CombinedOutput(); err != nil {
			t.Fatalf("python producer: %v\n%s", err, out)
		}
		interopCheck(t, tgt, topic, ids)
	})
}

// requireTool returns the path of tool after checking that check runs.
// Missing tools skip the test, except in CI (CI=true) where they fail it.
func requireTool(t *testing.T, tool, why string, check ...string) string {
	t.Helper()
	path, err := exec.LookPath(tool)
	if err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		var out []byte
		out, err = exec.CommandContext(ctx, path, check[1:]...).CombinedOutput()
		if err != nil {
			err = fmt.Errorf("%v: %s", err, out)
		}
	}
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s: %v (required in CI)", why, err)
		}
		t.Skipf("SKIPPING: %s: %v", why, err)
	}
	return path
}

func interopIDs(base, n int) []int {
	ids := make([]int, n)
	for i := range ids {
		ids[i] = base + 1234 + i
	}
	return ids
}

// interopCheck consumes topic and checks that every id was processed, its
// DONE in its NEW's partition, with the numeric id echoed back.
func interopCheck(t *testing.T, tgt Target, topic string, ids []int) {
	t.Helper()
	before := readTopic(t, tgt, topic)
	if len(before) != len(ids) {
		t.Fatalf("%d records on the topic, want %d", len(before), len(ids))
	}
	murmur := &kafka.Murmur2Balancer{}
	parts := []int{0, 1, 2, 3, 4, 5}
	notMurmur := 0
	for _, m := range before {
		if _, ok := ledger.StatusHeader(m); ok {
			t.Fatalf("record %d/%d has a status header; the foreign client should not set one", m.Partition, m.Offset)
		}
		if murmur.Balance(kafka.Message{Key: m.Key}, parts...) != m.Partition {
			notMurmur++
		}
	}
	// librdkafka placed these differently from murmur2: the DONE events
	// below must follow the record, not recompute a partition.
	t.Logf("%d of %d jobs are on a different partition than murmur2 would choose", notMurmur, len(ids))
	if notMurmur == 0 {
		t.Fatal("every job landed where murmur2 would put it; the test does not exercise a foreign partitioner")
	}

	log := filepath.Join(t.TempDir(), "processed.log")
	r := jobctl(t, tgt, "-t", topic, "-g", uniqueName(t, "g"), "consume", "--sleep", "0s", "--timeout", "3s", "--processed-log", log)
	if r.Code != 0 {
		t.Fatal(r)
	}
	l := wkIndex(t, readTopic(t, tgt, topic))
	for _, id := range ids {
		key := strconv.Itoa(id)
		nw, ok := l.news[key]
		if !ok {
			t.Fatalf("job %d: NEW not decoded", id)
		}
		dones := l.dones[key]
		if len(dones) != 1 {
			t.Fatalf("job %d: %d DONE events, want 1", id, len(dones))
		}
		if dones[0].Partition != nw.Partition {
			t.Fatalf("job %d: NEW in partition %d, DONE in %d", id, nw.Partition, dones[0].Partition)
		}
		if !dones[0].Event.JobID.Numeric() {
			t.Fatalf("job %d: DONE echoes the id as a string", id)
		}
	}
	raw := readTopic(t, tgt, topic)
	for _, m := range raw {
		if st, _ := ledger.StatusHeader(m); st == "DONE" {
			var v map[string]any
			if err := json.Unmarshal(m.Value, &v); err != nil || fmt.Sprint(v["job_id"]) != string(m.Key) {
				t.Fatalf("DONE record %s: job_id should be the number %s", m.Value, m.Key)
			}
		}
	}
	if got := len(wkReadProcessed(t, log)); got != len(ids) {
		t.Fatalf("processed log has %d lines, want %d", got, len(ids))
	}
}
