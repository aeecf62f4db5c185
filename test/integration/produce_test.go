package integration

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/jobctl/jobctl/pkg/job"
	"github.com/jobctl/jobctl/pkg/ledger"
)

func TestProduceMockJobs(t *testing.T) {
	forEachBroker(t, func(t *testing.T, tgt Target) {
		topic := createTopic(t, tgt, 3)
		r := mustJobctl(t, tgt, "-t", topic, "produce", "--count", "500", "--type", "email", "--payload", `{"to":"a@b.c"}`, "-o", "json")
		var summary struct{ Sent, Failed, BadLines int }
		if err := json.Unmarshal([]byte(r.Stdout), &summary); err != nil {
			t.Fatalf("summary is not JSON: %v\n%s", err, r.Stdout)
		}
		if summary.Sent != 500 || summary.Failed != 0 {
			t.Fatalf("summary %+v", summary)
		}
		msgs := readTopic(t, tgt, topic)
		if len(msgs) != 500 {
			t.Fatalf("want 500 records, got %d", len(msgs))
		}
		ids := map[string]bool{}
		partitions := map[int]bool{}
		for _, m := range msgs {
			e, err := ledger.Decode(m)
			if err != nil {
				t.Fatal(err)
			}
			if status, ok := ledger.StatusHeader(m); !ok || status != job.StatusNew {
				t.Fatalf("status header %q %v", status, ok)
			}
			if e.Status != job.StatusNew || e.Type != "email" || string(e.Payload) != `{"to":"a@b.c"}` || !e.JobID.Numeric() || e.CreatedAt.IsZero() {
				t.Fatalf("unexpected event %+v", e)
			}
			if string(m.Key) != e.JobID.String() {
				t.Fatalf("key %q != job id %s", m.Key, e.JobID)
			}
			ids[e.JobID.String()] = true
			partitions[m.Partition] = true
		}
		if len(ids) != 500 {
			t.Fatalf("want 500 distinct ids, got %d", len(ids))
		}
		if len(partitions) != 3 {
			t.Fatalf("jobs should spread over all 3 partitions, got %v", partitions)
		}
	})
}

func TestProduceJSONLines(t *testing.T) {
	forEachBroker(t, func(t *testing.T, tgt Target) {
		t.Run("seed payload from stdin", func(t *testing.T) {
			topic := createTopic(t, tgt, 1)
			r := jobctlIn(t, tgt, "{\"job_id\": 1234, \"status\": \"NEW\"}\n\n{\"job_id\": \"s-1\", \"type\": \"resize\", \"payload\": [1,2]}\n{\"type\": \"noid\"}\n", "-t", topic, "produce", "-f", "-")
			if r.Code != 0 {
				t.Fatal(r)
			}
			msgs := readTopic(t, tgt, topic)
			if len(msgs) != 3 {
				t.Fatalf("want 3 records, got %d", len(msgs))
			}
			if !strings.Contains(string(msgs[0].Value), `"job_id":1234`) || !strings.Contains(string(msgs[0].Value), `"status":"NEW"`) {
				t.Fatalf("seed payload changed: %s", msgs[0].Value)
			}
			if e, _ := ledger.Decode(msgs[2]); e.JobID.IsZero() || e.Type != "noid" {
				t.Fatalf("a line without job_id should get one: %+v", e)
			}
		})
		bad := "{\"job_id\": 1, \"status\": \"NEW\"}\nnot json\n{\"job_id\": 2, \"status\": \"DONE\"}\n{\"job_id\": 3, \"status\": \"NEW\"}\n"
		t.Run("skip reports each bad line and exits 1", func(t *testing.T) {
			topic := createTopic(t, tgt, 1)
			r := jobctlIn(t, tgt, bad, "-t", topic, "--log-format", "json", "produce", "-f", "-", "--on-error", "skip")
			if r.Code != 1 {
				t.Fatalf("want exit 1, got %s", r)
			}
			for _, want := range []string{`"line":2`, `"line":3`, "not JSON", "must have status NEW"} {
				if !strings.Contains(r.Stderr, want) {
					t.Errorf("stderr lacks %q:\n%s", want, r.Stderr)
				}
			}
			if !strings.Contains(r.Stdout, "sent 2 jobs") || !strings.Contains(r.Stdout, "2 bad input lines") {
				t.Errorf("summary: %s", r.Stdout)
			}
			if n := len(readTopic(t, tgt, topic)); n != 2 {
				t.Fatalf("want the 2 good jobs on the topic, got %d", n)
			}
		})
		t.Run("stop sends nothing after the bad line", func(t *testing.T) {
			topic := createTopic(t, tgt, 1)
			file := filepath.Join(t.TempDir(), "jobs.jsonl")
			os.WriteFile(file, []byte(bad), 0o600)
			r := jobctl(t, tgt, "-t", topic, "produce", "-f", file)
			if r.Code != 1 || !strings.Contains(r.Stdout, "stopped early: line 2") {
				t.Fatalf("want exit 1 stopping at line 2, got %s", r)
			}
			if n := len(readTopic(t, tgt, topic)); n != 1 {
				t.Fatalf("only the line before the bad one may be sent, got %d records", n)
			}
		})
	})
}

func TestProduceErrors(t *testing.T) {
	forEachBroker(t, func(t *testing.T, tgt Target) {
		r := jobctl(t, tgt, "-t", uniqueName(t, "missing"), "produce", "--count", "1")
		if r.Code != 1 || !strings.Contains(r.Stderr, "does not exist") || !strings.Contains(r.Stderr, "jobctl topic create") {
			t.Errorf("missing topic: %s", r)
		}
		topic := createTopic(t, tgt, 1)
		for _, args := range [][]string{
			{"produce", "--payload", "{nope"},
			{"produce", "--count", "-1"},
			{"produce", "--rate", "-5"},
			{"produce", "--on-error", "ignore"},
			{"produce", "-f", "/does/not/exist.jsonl"},
			{"produce", "extra-arg"},
		} {
			r := jobctl(t, tgt, append([]string{"-t", topic}, args...)...)
			if r.Code != 2 {
				t.Errorf("jobctl %v: want exit 2, got %s", args, r)
			}
		}
		if n := len(readTopic(t, tgt, topic)); n != 0 {
			t.Fatalf("rejected runs wrote %d records", n)
		}
	})
}

func TestProduceRate(t *testing.T) {
	forEachBroker(t, func(t *testing.T, tgt Target) {
		topic := createTopic(t, tgt, 1)
		r := mustJobctl(t, tgt, "-t", topic, "produce", "--count", "20", "--rate", "100", "-o", "json")
		var s struct {
			Sent       int
			ElapsedSec float64 `json:"elapsed_seconds"`
		}
		json.Unmarshal([]byte(r.Stdout), &s)
		// 20 jobs at 100/s cannot finish before the 20th slot at 190 ms:
		// a lower bound the pacing guarantees, not a timing threshold.
		if s.Sent != 20 || s.ElapsedSec < 0.19 {
			t.Fatalf("rate not applied: %+v", s)
		}
	})
}

// A slow run reports its rate (not "0 jobs/s"), and the summary once: the
// "produce finished" log line is for --log-level debug only.
func TestProduceSummaryOnceSlowRate(t *testing.T) {
	forEachBroker(t, func(t *testing.T, tgt Target) {
		topic := createTopic(t, tgt, 1)
		r := mustJobctl(t, tgt, "-t", topic, "produce", "--count", "2", "--rate", "0.5")
		if n := strings.Count(r.Stdout+r.Stderr, "sent 2 jobs"); n != 1 || strings.Contains(r.Stderr, "produce finished") {
			t.Fatalf("want the summary exactly once and no log line, got %s", r)
		}
		m := regexp.MustCompile(`\(([0-9.e+-]+) jobs/s\)`).FindStringSubmatch(r.Stdout)
		if m == nil {
			t.Fatalf("summary without a rate: %s", r)
		}
		if rate, err := strconv.ParseFloat(m[1], 64); err != nil || rate <= 0 {
			t.Fatalf("rate %q in %s", m[1], r)
		}
		r = mustJobctl(t, tgt, "-t", topic, "produce", "--count", "1", "--rate", "0.5", "-o", "json")
		var s struct {
			Sent int     `json:"sent"`
			Rate float64 `json:"jobs_per_second"`
		}
		if err := json.Unmarshal([]byte(r.Stdout), &s); err != nil || s.Sent != 1 || s.Rate <= 0 || r.Stderr != "" {
			t.Fatalf("json summary %+v (%v): %s", s, err, r)
		}
	})
}
