package integration

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/jobctl/jobctl/pkg/job"
	"github.com/jobctl/jobctl/pkg/ledger"
	"github.com/segmentio/kafka-go"
)

// Poison and oversized records (issue 9, tests 3 and 4).

// rtNearLimitValue is the size of a foreign record's value that still
// fits the brokers' default max.message.bytes (1,048,588 bytes for the
// whole record batch) with a key of up to 24 bytes, while the job's
// terminal event (the same job plus updated_at, worker, group, attempt
// and their headers) cannot.
const rtNearLimitValue = 1<<20 - 176

// rtBigJob returns the JSON of a NEW job with id whose encoding is
// exactly size bytes.
func rtBigJob(id string, size int) []byte {
	head := fmt.Sprintf(`{"job_id":%q,"status":"NEW","type":"big","payload":{"blob":"`, id)
	tail := `"}}`
	return []byte(head + strings.Repeat("x", size-len(head)-len(tail)) + tail)
}

// rtPoisonRecord is one record for the Python producer.
type rtPoisonRecord struct {
	Key   *string `json:"k"`
	Value *string `json:"v"` // base64; nil = a null value
	Alone bool    `json:"alone,omitempty"`
}

const rtPoisonProducer = `import base64, json, sys
from confluent_kafka import Producer

brokers, topic, spec = sys.argv[1], sys.argv[2], sys.argv[3]
errors = []
def report(err, msg):
    if err is not None:
        errors.append(str(err))
p = Producer({"bootstrap.servers": brokers, "acks": "all", "broker.address.family": "v4",
              "linger.ms": 5, "message.max.bytes": 2000000})
with open(spec) as f:
    for line in f:
        r = json.loads(line)
        key = None if r["k"] is None else r["k"].encode()
        value = None if r["v"] is None else base64.b64decode(r["v"])
        if r.get("alone"):
            p.flush(30)  # a near-limit record travels in a batch of its own
        while True:
            try:
                p.produce(topic, key=key, value=value, on_delivery=report)
                break
            except BufferError:
                p.poll(0.1)
        if r.get("alone"):
            p.flush(30)
        p.poll(0)
left = p.flush(60)
if errors or left:
    sys.exit("delivery failed: %s (%d undelivered)" % (errors[:5], left))
`

// TestRuntimePoisonRecords: 10,000 records written by Python's
// confluent-kafka, 1% of them garbage of every kind (not JSON, wrong
// schema, unknown status, empty value, null value, null key, a near-1 MiB
// job whose result cannot be written): every valid job is DONE once,
// every garbage record is in <topic>.dlq with its reason and origin, and
// the consumer ends by its idle timeout (no stall, no loop).
func TestRuntimePoisonRecords(t *testing.T) {
	python := requireTool(t, "python3", "python3 with confluent-kafka is not available (pip install confluent-kafka)", "python3", "-c", "import confluent_kafka")
	t.Parallel()
	forEachBroker(t, func(t *testing.T, tgt Target) {
		start := time.Now()
		const total, every = 10000, 100
		topic := createTopic(t, tgt, 4)
		group := uniqueName(t, "g")
		prefix := uniqueName(t, "")
		short := prefix[len(prefix)-8:]

		str := func(s string) *string { return &s }
		b64 := func(b []byte) *string { return str(base64.StdEncoding.EncodeToString(b)) }
		kinds := []string{"notjson", "schema", "status", "empty", "nullvalue", "nullkey", "oversized"}
		quota := map[string]int{"notjson": 20, "schema": 20, "status": 20, "empty": 15, "nullvalue": 5, "nullkey": 15, "oversized": 5}
		// kindOf tells a garbage record by its key (or, for a null key,
		// by its job id), once read back from the topic.
		var valid []string
		var specs []rtPoisonRecord
		k, used := 0, map[string]int{}
		for i := range total {
			if i%every != every/2 {
				id := fmt.Sprintf("v-%s-%d", prefix, i)
				valid = append(valid, id)
				specs = append(specs, rtPoisonRecord{Key: str(id), Value: b64(fmt.Appendf(nil, `{"job_id":%q,"status":"NEW","type":"test"}`, id))})
				continue
			}
			for used[kinds[k%len(kinds)]] >= quota[kinds[k%len(kinds)]] {
				k++
			}
			kind := kinds[k%len(kinds)]
			n := used[kind]
			used[kind]++
			k++
			key := fmt.Sprintf("poison-%s-%s-%d", kind, prefix, n)
			switch kind {
			case "notjson":
				specs = append(specs, rtPoisonRecord{Key: str(key), Value: b64(fmt.Appendf(nil, "this is not JSON {%d", n))})
			case "schema":
				bodies := []string{`{"id": "x", "state": "NEW"}`, `{"job_id": {"a": 1}, "status": "NEW"}`, `[1, 2, 3]`, `{"job_id": "", "status": "NEW"}`, `"just a string"`}
				specs = append(specs, rtPoisonRecord{Key: str(key), Value: b64([]byte(bodies[n%len(bodies)]))})
			case "status":
				specs = append(specs, rtPoisonRecord{Key: str(key), Value: b64(fmt.Appendf(nil, `{"job_id":%q,"status":"BOGUS"}`, key))})
			case "empty":
				specs = append(specs, rtPoisonRecord{Key: str(key), Value: str("")})
			case "nullvalue":
				specs = append(specs, rtPoisonRecord{Key: str(key), Value: nil})
			case "nullkey":
				// A keyless record is a job if its value is one (the job
				// is named by its job_id, whatever its key), else poison.
				if n%3 == 0 {
					specs = append(specs, rtPoisonRecord{Key: nil, Value: b64(fmt.Appendf(nil, "no key, no job %d", n))})
				} else {
					valid = append(valid, key)
					specs = append(specs, rtPoisonRecord{Key: nil, Value: b64(fmt.Appendf(nil, `{"job_id":%q,"status":"NEW"}`, key))})
				}
			case "oversized":
				id := fmt.Sprintf("big%s-%d", short, n) // a short key: the record must fit
				specs = append(specs, rtPoisonRecord{Key: str(id), Value: b64(rtBigJob(id, rtNearLimitValue)), Alone: true})
			}
		}
		specFile := filepath.Join(t.TempDir(), "records.jsonl")
		f, err := os.Create(specFile)
		if err != nil {
			t.Fatal(err)
		}
		enc := json.NewEncoder(f)
		for _, s := range specs {
			if err := enc.Encode(s); err != nil {
				t.Fatal(err)
			}
		}
		f.Close()
		script := filepath.Join(t.TempDir(), "produce.py")
		if err := os.WriteFile(script, []byte(rtPoisonProducer), 0o644); err != nil {
			t.Fatal(err)
		}
		if out, err := exec.Command(python, script, strings.Join(tgt.Brokers, ","), topic, specFile).CombinedOutput(); err != nil {
			t.Fatalf("python producer: %v\n%s", err, out)
		}

		// Where each garbage record landed.
		type origin struct {
			Partition int
			Offset    int64
		}
		garbage := map[origin]string{} // -> kind
		garbageID := map[origin]string{}
		for _, m := range rtReadTopic(t, tgt, topic) {
			key := string(m.Key)
			kind := ""
			switch {
			case m.Key == nil && !strings.HasPrefix(string(m.Value), "{"):
				kind = "nullkey"
			case strings.HasPrefix(key, "poison-"):
				kind = strings.SplitN(key, "-", 3)[1]
			case strings.HasPrefix(key, "big"+short):
				kind = "oversized"
			}
			if kind != "" {
				garbage[origin{m.Partition, m.Offset}] = kind
				garbageID[origin{m.Partition, m.Offset}] = key
			}
		}
		if want := total/every - quota["nullkey"] + quota["nullkey"]/3; len(garbage) != want {
			t.Fatalf("found %d garbage records on the topic, want %d", len(garbage), want)
		}

		p := rtConsume(t, tgt, topic, group, "-c", "8", "--sleep", "0s", "--timeout", "6s", "-o", "json")
		rtWaitExit(t, p, 4*time.Minute)
		sum := rtParseSummary(t, p.stdout.String())
		l := rtRead(t, tgt, topic)

		lost := l.countMissing(valid, job.StatusDone, group)
		if lost > 0 {
			t.Errorf("%d of %d valid jobs have no DONE", lost, len(valid))
		}
		dups, _, worst := rtDuplicateRuns(l, group, rtLogs(t, p), valid)
		if dups > 0 {
			t.Errorf("%d valid jobs ran twice: %v", dups, worst)
		}
		for _, id := range valid {
			if d := l.with(id, job.StatusDone, group); len(d) > 1 {
				t.Errorf("valid job %s has %d DONE events", id, len(d))
			}
		}

		letters := map[origin][]rtDeadLetter{}
		byJob := map[string][]rtDeadLetter{}
		for _, d := range rtReadDLQ(t, tgt, topic) {
			if d.Origin.Topic == topic {
				letters[origin{d.Origin.Partition, d.Origin.Offset}] = append(letters[origin{d.Origin.Partition, d.Origin.Offset}], d)
			}
			byJob[d.JobID.String()] = append(byJob[d.JobID.String()], d)
		}
		inDLQ := map[string]int{}
		missing := 0
		for o, kind := range garbage {
			ds := letters[o]
			if len(ds) == 0 && kind == "oversized" {
				ds = byJob[garbageID[o]] // a job letter may name the attempt's NEW
			}
			if len(ds) != 1 {
				if missing++; missing <= 10 {
					t.Errorf("garbage record %s at %d/%d has %d dead letters, want 1", kind, o.Partition, o.Offset, len(ds))
				}
				continue
			}
			d := ds[0]
			if d.Reason == "" || d.Origin.Topic != topic || d.Origin.Partition != o.Partition {
				t.Errorf("dead letter of the %s record at %d/%d: %+v; want a reason and the origin", kind, o.Partition, o.Offset, d)
			}
			if d.Kind == "poison" {
				// Keyed by the record's key when it has one (a job id),
				// else by its origin (pkg/deadletter Letter.RecordKey).
				want := garbageID[o]
				if want == "" {
					want = fmt.Sprintf("poison:%d:%d", o.Partition, o.Offset)
				}
				if string(d.Raw.Key) != want || d.Origin.Offset != o.Offset {
					t.Errorf("poison letter of the %s record at %d/%d has key %q and origin offset %d, want key %q", kind, o.Partition, o.Offset, d.Raw.Key, d.Origin.Offset, want)
				}
			} else if kind != "oversized" {
				t.Errorf("the %s record at %d/%d is a %q letter, want poison", kind, o.Partition, o.Offset, d.Kind)
			}
			inDLQ[kind]++
		}
		for _, kind := range kinds {
			t.Logf("%s: %d in the dead-letter topic (%d written)", kind, inDLQ[kind], quota[kind])
		}
		if sum.Done != int64(len(valid)) || !strings.Contains(sum.StopReason, "idle") {
			t.Errorf("summary %+v: want %d done, stopped by the idle timeout", sum, len(valid))
		}
		rtReport(t, "poison", tgt, len(valid), lost+missing, dups, start, "records", total, "garbage", len(garbage),
			"garbage_in_dlq", len(garbage)-missing, "invalid_counted", sum.Invalid, "dead_counted", sum.Dead)
	})
}

// TestRuntimeOversizedJob: a job whose terminal event cannot fit in a
// record is refused at submission (POST /jobs 413; `produce -f` reports a
// bad line), while a 256 KiB one is accepted; a foreign near-limit record
// written straight to the topic ends in the dead-letter topic, DEAD with
// the reason, and the 200 jobs around it are DONE.
func TestRuntimeOversizedJob(t *testing.T) {
	t.Parallel()
	forEachBroker(t, func(t *testing.T, tgt Target) {
		start := time.Now()
		topic := createTopic(t, tgt, 1)
		group := uniqueName(t, "g")
		prefix := uniqueName(t, "")
		short := prefix[len(prefix)-8:]
		srv := startServe(t, tgt, topic)
		srv.waitReady(t)

		// A request body under api.max_body_bytes (1 MiB) whose job is
		// within a few hundred bytes of the record limit.
		post := func(id string, size int) (*http.Response, []byte) {
			head := fmt.Sprintf(`{"job_id":%q,"type":"big","payload":{"blob":"`, id)
			body := head + strings.Repeat("y", size-len(head)-3) + `"}}`
			return srv.do(t, "POST", "/jobs", body)
		}
		hugeID, midID := "huge-post-"+short, "mid-post-"+short
		resp, body := post(hugeID, 1<<20-400)
		wantJSONError(t, "POST of a near-limit job", resp, body, http.StatusRequestEntityTooLarge)
		if resp, body := post(midID, 256<<10); resp.StatusCode != http.StatusAccepted {
			t.Fatalf("POST of a 256 KiB job: %d %s, want 202", resp.StatusCode, body)
		}

		file := filepath.Join(t.TempDir(), "jobs.jsonl")
		lines := []string{
			fmt.Sprintf(`{"job_id":"file-a-%s","type":"test"}`, short),
			string(rtBigJob("huge-file-"+short, 1<<20-400)),
			fmt.Sprintf(`{"job_id":"file-b-%s","type":"test"}`, short),
		}
		if err := os.WriteFile(file, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		r := jobctl(t, tgt, "-t", topic, "produce", "-f", file, "--on-error", "skip", "-o", "json")
		var ps struct {
			Sent     int `json:"sent"`
			BadLines int `json:"bad_lines"`
		}
		_ = json.Unmarshal([]byte(r.Stdout), &ps)
		low := strings.ToLower(r.Stderr)
		if ps.Sent != 2 || ps.BadLines != 1 || !regexp.MustCompile(`line\W{0,3}2\b`).MatchString(low) ||
			!(strings.Contains(low, "large") || strings.Contains(low, "limit") || strings.Contains(low, "bytes")) {
			t.Errorf("produce -f with a near-limit line: want 2 sent, 1 bad line naming line 2 and the size limit; got %s", r)
		}

		// A foreign producer writes a near-limit job between 200 others.
		before, after := wkJobs("before-"+prefix, 100), wkJobs("after-"+prefix, 100)
		bigID := "big" + short
		var msgs []kafka.Message
		for _, e := range before {
			m, _ := ledger.Message(e)
			msgs = append(msgs, m)
		}
		msgs = append(msgs, kafka.Message{Key: []byte(bigID), Value: rtBigJob(bigID, rtNearLimitValue)})
		for _, e := range after {
			m, _ := ledger.Message(e)
			msgs = append(msgs, m)
		}
		w := &kafka.Writer{Addr: kafka.TCP(tgt.Brokers...), Topic: topic, RequiredAcks: kafka.RequireAll,
			BatchTimeout: time.Millisecond, BatchBytes: 8 << 20, Balancer: &kafka.LeastBytes{}}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		for _, batch := range [][]kafka.Message{msgs[:100], msgs[100:101], msgs[101:]} {
			if err := w.WriteMessages(ctx, batch...); err != nil {
				t.Fatalf("writing the foreign records: %v", err)
			}
		}
		cancel()
		w.Close()
		bigOffset := int64(-1)
		for _, m := range rtReadTopic(t, tgt, topic) {
			if string(m.Key) == bigID {
				bigOffset = m.Offset
			}
		}
		if bigOffset < 0 {
			t.Fatal("the near-limit record is not on the topic")
		}

		p := rtConsume(t, tgt, topic, group, "-c", "4", "--sleep", "0s", "--timeout", "6s", "-o", "json")
		rtWaitExit(t, p, 3*time.Minute)
		l := rtRead(t, tgt, topic)

		for _, id := range []string{hugeID, "huge-file-" + short} {
			if evs := l.byID[id]; len(evs) != 0 {
				t.Errorf("refused job %s is on the topic: %v", id, rtStatuses(l, id))
			}
		}
		ok := append(append(rtIDs(before), rtIDs(after)...), midID, "file-a-"+short, "file-b-"+short)
		lost := l.countMissing(ok, job.StatusDone, group)
		if lost > 0 {
			t.Errorf("%d of %d jobs around the oversized one have no DONE", lost, len(ok))
		}
		// Over job.MaxJobBytes it is a poison record: no attempt runs,
		// so no event of the group follows it.
		if len(l.byID[bigID]) != 1 {
			t.Errorf("foreign near-limit job: %v; want only its NEW (a poison record runs no attempt)", rtStatuses(l, bigID))
		}
		var letter *rtDeadLetter
		for _, d := range rtReadDLQ(t, tgt, topic) {
			if d.JobID.String() == bigID || (d.Origin.Topic == topic && d.Origin.Offset == bigOffset) {
				letter = &d
			}
		}
		if letter == nil {
			t.Errorf("the foreign near-limit job is not in %s.dlq", topic)
		} else if letter.Reason == "" || letter.Origin.Topic != topic || letter.Origin.Offset != bigOffset {
			t.Errorf("dead letter of the near-limit job: %+v; want a reason and origin %s/0@%d", *letter, topic, bigOffset)
		}
		dups, _, worst := rtDuplicateRuns(l, group, rtLogs(t, p), ok)
		if dups > 0 {
			t.Errorf("%d jobs ran twice: %v", dups, worst)
		}
		rtReport(t, "oversized", tgt, len(ok)+1, lost, dups, start, "post_413", resp.StatusCode == 413,
			"produce_bad_lines", ps.BadLines, "foreign_in_dlq", letter != nil, "foreign_events", len(l.byID[bigID]))
	})
}
