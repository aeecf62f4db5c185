package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/jobctl/jobctl/pkg/deadletter"
	"github.com/jobctl/jobctl/pkg/job"
	"github.com/jobctl/jobctl/pkg/kafkaconn"
	"github.com/jobctl/jobctl/pkg/ledger"
	"github.com/segmentio/kafka-go"
)

// The dead-letter tests write letters with deadletter.Writer directly, as
// a worker does, then read and replay them through `jobctl dlq` and the
// API.

func dlqConn(tgt Target) *kafkaconn.Conn {
	return &kafkaconn.Conn{Brokers: tgt.Brokers, ClientID: "jobctl-test"}
}

func dlqID(t *testing.T, s string) job.ID {
	t.Helper()
	id, err := job.ParseID(s)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// createDLQ creates the dead-letter topic of jobTopic with n partitions.
func createDLQ(t *testing.T, tgt Target, jobTopic string, n int) string {
	t.Helper()
	topic := deadletter.Topic(jobTopic)
	client := &kafka.Client{Addr: kafka.TCP(tgt.Brokers...), Timeout: 30 * time.Second}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	resp, err := client.CreateTopics(ctx, &kafka.CreateTopicsRequest{Topics: []kafka.TopicConfig{{Topic: topic, NumPartitions: n, ReplicationFactor: 1}}})
	if err == nil {
		err = resp.Errors[topic]
	}
	if err != nil {
		t.Fatalf("creating %s: %v", topic, err)
	}
	waitForTopic(t, tgt, topic, n)
	return topic
}

func writeLetters(t *testing.T, tgt Target, jobTopic string, letters ...deadletter.Letter) {
	t.Helper()
	w := deadletter.NewWriter(dlqConn(tgt), jobTopic)
	defer w.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := w.Write(ctx, letters...); err != nil {
		t.Fatalf("writing dead letters: %v", err)
	}
}

// dlqEnds is the sum of topic's end offsets: it changes when anything is
// written.
func dlqEnds(t *testing.T, tgt Target, topic string) int64 {
	t.Helper()
	client := &kafka.Client{Addr: kafka.TCP(tgt.Brokers...), Timeout: 30 * time.Second}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	md, err := client.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{topic}})
	if err != nil || len(md.Topics) != 1 {
		t.Fatalf("metadata of %s: %v", topic, err)
	}
	var reqs []kafka.OffsetRequest
	for _, p := range md.Topics[0].Partitions {
		reqs = append(reqs, kafka.LastOffsetOf(p.ID))
	}
	resp, err := client.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{topic: reqs}})
	if err != nil {
		t.Fatalf("end offsets of %s: %v", topic, err)
	}
	var sum int64
	for _, po := range resp.Topics[topic] {
		if po.Error != nil {
			t.Fatalf("end offset of %s/%d: %v", topic, po.Partition, po.Error)
		}
		sum += po.LastOffset
	}
	return sum
}

// newsOf returns the NEW events of job id in topic with their partitions.
func newsOf(t *testing.T, tgt Target, topic, id string) (events []job.Event, partitions []int, headers []ledger.Headers) {
	t.Helper()
	for _, m := range readTopic(t, tgt, topic) {
		if string(m.Key) != id {
			continue
		}
		ev, err := ledger.Decode(m)
		if err != nil || ev.Status != job.StatusNew {
			continue
		}
		events, partitions, headers = append(events, ev), append(partitions, m.Partition), append(headers, ledger.ReadHeaders(m))
	}
	return events, partitions, headers
}

// dlqLetters returns the letters the test writes: three dead jobs, one
// poison record.
func dlqLetters(t *testing.T, jobTopic string, prefix string) []deadletter.Letter {
	now := time.Now().UTC()
	return []deadletter.Letter{
		{Kind: deadletter.KindJob, JobID: dlqID(t, prefix+"a1"), Group: "billing", Type: "resize", Payload: json.RawMessage(`{"w":64}`), Attempts: 3,
			Errors: []job.AttemptError{{Attempt: 1, Error: "timeout"}, {Attempt: 2, Error: "timeout"}, {Attempt: 3, Error: "dial tcp: connection refused"}},
			Reason: "last attempt failed", Origin: deadletter.Origin{Topic: jobTopic, Partition: 2, Offset: 5}, DeadAt: now.Add(-2 * time.Hour)},
		{Kind: deadletter.KindJob, JobID: dlqID(t, prefix+"a2"), Group: "audit", Type: "email", Payload: json.RawMessage(`{"to":"x@example.com"}`), Attempts: 1,
			Errors: []job.AttemptError{{Attempt: 1, Error: "invalid address"}}, Reason: "permanent error",
			Origin: deadletter.Origin{Topic: jobTopic, Partition: 1, Offset: 9}, DeadAt: now.Add(-10 * time.Minute)},
		{Kind: deadletter.KindPoison, Reason: "not a job event: invalid job JSON",
			Origin: deadletter.Origin{Topic: jobTopic, Partition: 0, Offset: 3}, Key: []byte("??"), Record: []byte("{not json"), DeadAt: now.Add(-5 * time.Minute)},
		{Kind: deadletter.KindJob, JobID: dlqID(t, prefix+"a3"), Group: "billing", Type: "resize", Payload: json.RawMessage(`{"w":128}`), Attempts: 3, Run: 2,
			Errors: []job.AttemptError{{Attempt: 3, Error: "out of memory"}}, Reason: "last attempt failed",
			Origin: deadletter.Origin{Topic: jobTopic, Partition: 0, Offset: 7}, DeadAt: now.Add(-time.Minute)},
	}
}

func listJSON(t *testing.T, tgt Target, topic string, args ...string) []deadletter.Entry {
	t.Helper()
	r := mustJobctl(t, tgt, append([]string{"dlq", "list", "--topic", topic, "-o", "json"}, args...)...)
	var entries []deadletter.Entry
	if err := json.Unmarshal([]byte(r.Stdout), &entries); err != nil {
		t.Fatalf("dlq list -o json: %v\n%s", err, r)
	}
	return entries
}

func compact(raw json.RawMessage) string {
	var b bytes.Buffer
	_ = json.Compact(&b, raw)
	return b.String()
}

func entryIDs(entries []deadletter.Entry) string {
	var ids []string
	for _, e := range entries {
		ids = append(ids, string(e.RecordKey()))
	}
	return strings.Join(ids, ",")
}

func TestDLQListAndReplay(t *testing.T) {
	forEachBroker(t, func(t *testing.T, tgt Target) {
		topic := createTopic(t, tgt, 3)

		// No DLQ topic yet: a clear note, nothing listed, exit 0.
		r := mustJobctl(t, tgt, "dlq", "list", "--topic", topic)
		if !strings.Contains(r.Stderr, "no dead letters yet: topic "+topic+".dlq does not exist") || r.Stdout != "" {
			t.Fatalf("list without a DLQ: %s", r)
		}
		if r := mustJobctl(t, tgt, "dlq", "list", "--topic", topic, "-o", "json"); strings.TrimSpace(r.Stdout) != "[]" {
			t.Fatalf("list -o json without a DLQ: %s", r)
		}
		if r := jobctl(t, tgt, "dlq", "replay", "--topic", topic, "--id", "x"); r.Code != 1 || !strings.Contains(r.Stderr, "no dead letter") {
			t.Fatalf("replay of an id without a DLQ: %s", r)
		}

		dlq := createDLQ(t, tgt, topic, 2)
		p := "j-"
		writeLetters(t, tgt, topic, dlqLetters(t, topic, p)...)

		// The table: every letter, oldest first, poison keyed by position.
		r = mustJobctl(t, tgt, "dlq", "list", "--topic", topic)
		lines := strings.Split(strings.TrimSpace(r.Stdout), "\n")
		if len(lines) != 5 || !strings.HasPrefix(lines[0], "JOB_ID") || !strings.Contains(lines[0], "REASON/LAST ERROR") {
			t.Fatalf("table: %s", r)
		}
		for i, want := range []string{p + "a1", p + "a2", "poison:0:3", p + "a3"} {
			if !strings.HasPrefix(lines[i+1], want+" ") {
				t.Fatalf("row %d %q, want %s first; %s", i+1, lines[i+1], want, r)
			}
		}
		if !strings.Contains(lines[1], "dial tcp: connection refused") || !strings.Contains(lines[1], " no ") {
			t.Fatalf("row of a1 lacks its last error or REPLAYED=no: %q", lines[1])
		}

		// JSON: the letters in full.
		all := listJSON(t, tgt, topic)
		if entryIDs(all) != p+"a1,"+p+"a2,poison:0:3,"+p+"a3" {
			t.Fatalf("json entries %s", entryIDs(all))
		}
		a1 := all[0]
		if a1.Kind != deadletter.KindJob || a1.Group != "billing" || len(a1.Errors) != 3 || a1.Origin.Partition != 2 || compact(a1.Payload) != `{"w":64}` || a1.Replayed {
			t.Fatalf("a1 %+v", a1)
		}
		if !bytes.Equal(all[2].Record, []byte("{not json")) || all[2].JobID.String() != "" {
			t.Fatalf("poison %+v", all[2])
		}

		// Filters.
		for _, tc := range []struct {
			args []string
			want string
		}{
			{[]string{"--type", "resize"}, p + "a1," + p + "a3"},
			{[]string{"--error", "Connection REFUSED"}, p + "a1"},
			{[]string{"--since", "1h"}, p + "a2,poison:0:3," + p + "a3"},
			{[]string{"--until", "30m"}, p + "a1"},
			{[]string{"--since", time.Now().Add(-7 * time.Minute).UTC().Format(time.RFC3339)}, "poison:0:3," + p + "a3"},
			{[]string{"--from-group", "audit"}, p + "a2"},
			{[]string{"--kind", "poison"}, "poison:0:3"},
			{[]string{"--type", "resize", "--from-group", "billing", "--since", "90m"}, p + "a3"},
			{[]string{"--limit", "2"}, p + "a1," + p + "a2"},
		} {
			if got := entryIDs(listJSON(t, tgt, topic, tc.args...)); got != tc.want {
				t.Errorf("dlq list %v: %s, want %s", tc.args, got, tc.want)
			}
		}
		if r := mustJobctl(t, tgt, "dlq", "list", "--topic", topic, "--limit", "1"); !strings.Contains(r.Stderr, "more match") {
			t.Errorf("--limit 1 does not say more match: %s", r)
		}
		for _, bad := range [][]string{{"--kind", "replayed"}, {"--since", "yesterday"}, {"--limit", "-1"}} {
			if r := jobctl(t, tgt, append([]string{"dlq", "list", "--topic", topic}, bad...)...); r.Code != 2 {
				t.Errorf("dlq list %v: want exit 2, %s", bad, r)
			}
		}

		// Dry run: reports, writes nothing.
		jobsEnd, dlqEnd := dlqEnds(t, tgt, topic), dlqEnds(t, tgt, dlq)
		r = mustJobctl(t, tgt, "dlq", "replay", "--topic", topic, "--id", p+"a1", "--dry-run")
		if !strings.Contains(r.Stdout, "would replay 1, already replayed 0, skipped 0, not found 0") {
			t.Fatalf("dry run: %s", r)
		}
		if dlqEnds(t, tgt, topic) != jobsEnd || dlqEnds(t, tgt, dlq) != dlqEnd {
			t.Fatal("a dry run wrote records")
		}

		// Replay by id: NEW with run+1 in the origin partition, a marker.
		r = mustJobctl(t, tgt, "dlq", "replay", "--topic", topic, "--id", p+"a1")
		if !strings.Contains(r.Stdout, "replayed 1, already replayed 0") {
			t.Fatalf("replay: %s", r)
		}
		news, parts, hdrs := newsOf(t, tgt, topic, p+"a1")
		if len(news) != 1 || parts[0] != 2 || news[0].Run != 1 || hdrs[0].Run != 1 || news[0].Type != "resize" || string(news[0].Payload) != `{"w":64}` || news[0].Group != "" || news[0].Attempt != 0 {
			t.Fatalf("replayed NEW: %+v in partitions %v, headers %+v", news, parts, hdrs)
		}
		if dlqEnds(t, tgt, dlq) != dlqEnd+1 {
			t.Fatalf("want exactly one marker written")
		}
		if e := listJSON(t, tgt, topic, "--type", "resize")[0]; !e.Replayed || e.ReplayedAt.IsZero() {
			t.Fatalf("a1 not shown as replayed: %+v", e)
		}
		if r := mustJobctl(t, tgt, "dlq", "list", "--topic", topic, "--type", "resize"); !strings.Contains(strings.Split(r.Stdout, "\n")[1], " yes ") {
			t.Fatalf("table does not show REPLAYED yes: %s", r)
		}

		// A second replay of the same dead run does nothing.
		jobsEnd, dlqEnd = dlqEnds(t, tgt, topic), dlqEnds(t, tgt, dlq)
		r = mustJobctl(t, tgt, "dlq", "replay", "--topic", topic, "--id", p+"a1", "-o", "json")
		var res deadletter.ReplayResult
		if err := json.Unmarshal([]byte(r.Stdout), &res); err != nil {
			t.Fatalf("replay -o json: %v %s", err, r)
		}
		if len(res.Replayed) != 0 || len(res.AlreadyReplayed) != 1 || res.AlreadyReplayed[0].JobID.String() != p+"a1" {
			t.Fatalf("second replay: %+v", res)
		}
		if dlqEnds(t, tgt, topic) != jobsEnd || dlqEnds(t, tgt, dlq) != dlqEnd {
			t.Fatal("a second replay wrote records")
		}

		// --all with a filter: a3 (run 2 -> 3), a1 already, a2 not selected.
		r = mustJobctl(t, tgt, "dlq", "replay", "--topic", topic, "--all", "--type", "resize", "--rate", "20")
		if !strings.Contains(r.Stdout, "replayed 1, already replayed 1, skipped 0") {
			t.Fatalf("replay --all --type resize: %s", r)
		}
		news, parts, _ = newsOf(t, tgt, topic, p+"a3")
		if len(news) != 1 || parts[0] != 0 || news[0].Run != 3 {
			t.Fatalf("a3 NEW: %+v in %v", news, parts)
		}
		if news, _, _ := newsOf(t, tgt, topic, p+"a2"); len(news) != 0 {
			t.Fatalf("a2 was replayed by a filter that excludes it")
		}

		// Poison letters are skipped, with why.
		r = mustJobctl(t, tgt, "dlq", "replay", "--topic", topic, "--all", "--kind", "poison")
		if !strings.Contains(r.Stdout, "replayed 0, already replayed 0, skipped 1") || !strings.Contains(r.Stdout, "poison:0:3") || !strings.Contains(r.Stdout, "not a job event") {
			t.Fatalf("poison replay: %s", r)
		}

		// Unknown ids exit 1 (the others are replayed); no selection is a usage error.
		r = jobctl(t, tgt, "dlq", "replay", "--topic", topic, "--id", p+"a2", "--id", "nosuch")
		if r.Code != 1 || !strings.Contains(r.Stdout, "replayed 1") || !strings.Contains(r.Stderr, "nosuch") {
			t.Fatalf("replay with an unknown id: %s", r)
		}
		if r := jobctl(t, tgt, "dlq", "replay", "--topic", topic); r.Code != 2 {
			t.Fatalf("replay without --id or --all: %s", r)
		}
		if r := jobctl(t, tgt, "dlq", "replay", "--topic", topic, "--all", "--id", "x"); r.Code != 2 {
			t.Fatalf("replay with --id and --all: %s", r)
		}
	})
}

// A letter far over the broker's record limit is cut to fit, not lost.
func TestDLQBigLetterIsCutToFit(t *testing.T) {
	forEachBroker(t, func(t *testing.T, tgt Target) {
		topic := createTopic(t, tgt, 1)
		createDLQ(t, tgt, topic, 1)
		huge := `"` + strings.Repeat("p", 3<<20) + `"`
		writeLetters(t, tgt, topic,
			deadletter.Letter{Kind: deadletter.KindJob, JobID: dlqID(t, "big"), Payload: json.RawMessage(huge), Reason: "last attempt failed",
				Errors: []job.AttemptError{{Attempt: 1, Error: strings.Repeat("e", 1<<20)}}, DeadAt: time.Now()},
			deadletter.Letter{Kind: deadletter.KindPoison, Record: bytes.Repeat([]byte{0xff}, 2<<20), Origin: deadletter.Origin{Topic: topic, Offset: 1}, DeadAt: time.Now()},
		)
		all := listJSON(t, tgt, topic)
		if len(all) != 2 {
			t.Fatalf("%d letters, want 2", len(all))
		}
		big, poison := all[0], all[1]
		if big.Kind != deadletter.KindJob {
			big, poison = poison, big
		}
		if !strings.Contains(string(big.Payload), `"truncated"`) || !strings.Contains(big.Reason, "cut to fit") || len(big.Errors[0].Error) > 2<<10 {
			t.Fatalf("big letter not cut: payload %.80s reason %q", big.Payload, big.Reason)
		}
		if len(poison.Record) != deadletter.MaxRecordBytes {
			t.Fatalf("poison record %d bytes, want %d", len(poison.Record), deadletter.MaxRecordBytes)
		}
		// A cut payload is not replayed: the job would run with the wrong one.
		r := mustJobctl(t, tgt, "dlq", "replay", "--topic", topic, "--id", "big")
		if !strings.Contains(r.Stdout, "skipped 1") || !strings.Contains(r.Stdout, "payload was cut") {
			t.Fatalf("replay of a cut letter: %s", r)
		}
	})
}

func TestDLQAPI(t *testing.T) {
	forEachBroker(t, func(t *testing.T, tgt Target) {
		topic := createTopic(t, tgt, 3)
		createDLQ(t, tgt, topic, 1)
		p := "api-"
		writeLetters(t, tgt, topic, dlqLetters(t, topic, p)...)

		for _, token := range []string{"s3cret", ""} {
			var env []string
			var auth []string
			if token != "" {
				env, auth = []string{"JOBCTL_API_TOKEN=" + token}, []string{"Authorization", "Bearer " + token}
			}
			srv := startServe(t, tgt, topic, env...)

			resp, body := srv.do(t, "GET", "/dlq?type=resize&limit=1", "")
			var list struct {
				DeadLetters []deadletter.Entry `json:"dead_letters"`
				More        bool               `json:"more"`
			}
			if resp.StatusCode != 200 || json.Unmarshal(body, &list) != nil || len(list.DeadLetters) != 1 || !list.More || list.DeadLetters[0].JobID.String() != p+"a1" {
				t.Fatalf("GET /dlq: %d %s", resp.StatusCode, body)
			}
			resp, body = srv.do(t, "GET", "/dlq?kind=nope", "")
			wantJSONError(t, "GET /dlq?kind=nope", resp, body, 400)

			replay := func(reqBody string, hdr ...string) deadletter.ReplayResult {
				t.Helper()
				resp, body := srv.do(t, "POST", "/dlq/replay", reqBody, hdr...)
				var res deadletter.ReplayResult
				if resp.StatusCode != 200 || json.Unmarshal(body, &res) != nil {
					t.Fatalf("POST /dlq/replay %s: %d %s", reqBody, resp.StatusCode, body)
				}
				return res
			}
			id := p + "a2"
			if token != "" {
				id = p + "a1"
				resp, body := srv.do(t, "POST", "/dlq/replay", `{"ids": ["`+id+`"]}`)
				wantJSONError(t, "replay without the token", resp, body, 401)
				resp, body = srv.do(t, "POST", "/dlq/replay", `{"ids": ["`+id+`"]}`, "Authorization", "Bearer wrong")
				wantJSONError(t, "replay with a wrong token", resp, body, 401)
			}
			resp, body = srv.do(t, "POST", "/dlq/replay", `{"ids": ["`+id+`"], "typo": 1}`, auth...)
			wantJSONError(t, "replay with an unknown field", resp, body, 400)
			if !strings.Contains(string(body), "typo") {
				t.Fatalf("400 does not name the problem: %s", body)
			}
			resp, body = srv.do(t, "POST", "/dlq/replay", `{}`, auth...)
			wantJSONError(t, "replay of nothing", resp, body, 400)

			dlqEnd := dlqEnds(t, tgt, deadletter.Topic(topic))
			if res := replay(`{"ids": ["`+id+`"], "dry_run": true}`, auth...); !res.DryRun || len(res.Replayed) != 1 {
				t.Fatalf("dry run: %+v", res)
			}
			if dlqEnds(t, tgt, deadletter.Topic(topic)) != dlqEnd {
				t.Fatal("a dry run over the API wrote a marker")
			}
			if res := replay(`{"ids": ["`+id+`"]}`, auth...); len(res.Replayed) != 1 || res.Replayed[0].NewRun != 1 {
				t.Fatalf("replay: %+v", res)
			}
			if res := replay(`{"ids": ["`+id+`"]}`, auth...); len(res.Replayed) != 0 || len(res.AlreadyReplayed) != 1 {
				t.Fatalf("second replay: %+v", res)
			}
			if news, _, _ := newsOf(t, tgt, topic, id); len(news) != 1 || news[0].Run != 1 {
				t.Fatalf("NEW events of %s: %+v", id, news)
			}
			// The list reflects the replay at once (the cache is dropped).
			resp, body = srv.do(t, "GET", "/dlq", "")
			if resp.StatusCode != 200 || !strings.Contains(string(body), `"replayed":true`) {
				t.Fatalf("GET /dlq after replay: %d %s", resp.StatusCode, body)
			}
			srv.stop(t)
		}
	})
}
