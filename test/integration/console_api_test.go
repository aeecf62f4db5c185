package integration

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jobctl/jobctl/pkg/deadletter"
	"github.com/jobctl/jobctl/pkg/job"
	"github.com/segmentio/kafka-go"
)

// loadingBody is the 503 answer while serve's view is still loading.
type loadingBody struct {
	Error    string `json:"error"`
	Loading  bool   `json:"loading"`
	Progress struct {
		CaughtUp bool `json:"caught_up"`
	} `json:"progress"`
}

// wantLoading checks a 503 "still loading" answer.
func wantLoading(t *testing.T, what string, code int, retryAfter string, body []byte) {
	t.Helper()
	var l loadingBody
	if code != 503 || retryAfter != "1" || json.Unmarshal(body, &l) != nil || !l.Loading || l.Progress.CaughtUp ||
		!strings.HasPrefix(l.Error, "the job view is still loading: read ") {
		t.Fatalf("%s while loading: %d (Retry-After %q) %s, want 503 loading", what, code, retryAfter, body)
	}
}

// TestConsoleAPIMissingTopicAndLoading: serve started before its topic
// exists answers POST /jobs with 404 naming the topic, and the reads
// that need the whole topic with 503 "loading" (Retry-After 1), while
// /healthz names the topic; once the topic exists the same reads are
// 200 (and an unknown job 404) without a restart.
func TestConsoleAPIMissingTopicAndLoading(t *testing.T) {
	forEachBroker(t, func(t *testing.T, tgt Target) {
		topic := uniqueName(t, "t")
		s := startServe(t, tgt, topic)
		eventually(t, 30*time.Second, "POST /jobs to say the topic does not exist", func() bool {
			resp, body := s.do(t, "POST", "/jobs", `{"job_id": 1}`)
			if resp.StatusCode == 404 {
				want := "{\"error\":\"topic \\\"" + topic + "\\\" does not exist: create it with `jobctl topic create`\"}"
				if strings.TrimSpace(string(body)) != want {
					t.Fatalf("POST /jobs on a missing topic: %s, want %s", body, want)
				}
				return true
			}
			wantJSONError(t, "POST /jobs before the broker answered", resp, body, 503)
			return false
		})
		for _, path := range []string{"/jobs", "/jobs?status=NEW", "/jobs/1", "/stats"} {
			resp, body := s.do(t, "GET", path, "")
			wantLoading(t, "GET "+path, resp.StatusCode, resp.Header.Get("Retry-After"), body)
		}
		resp, body := s.do(t, "GET", "/healthz", "")
		var h struct{ Status, Topic, Version string }
		if resp.StatusCode != 200 || json.Unmarshal(body, &h) != nil || h.Status != "ok" || h.Topic != topic || h.Version == "" {
			t.Fatalf("GET /healthz: %d %s", resp.StatusCode, body)
		}

		client := &kafka.Client{Addr: kafka.TCP(tgt.Brokers...), Timeout: 30 * time.Second}
		cr, err := client.CreateTopics(context.Background(), &kafka.CreateTopicsRequest{Topics: []kafka.TopicConfig{{Topic: topic, NumPartitions: 2, ReplicationFactor: 1}}})
		if err == nil {
			err = cr.Errors[topic]
		}
		if err != nil {
			t.Fatalf("creating topic %s: %v", topic, err)
		}
		s.waitReady(t)
		for _, path := range []string{"/jobs", "/stats"} {
			if resp, body := s.do(t, "GET", path, ""); resp.StatusCode != 200 {
				t.Fatalf("GET %s once ready: %d %s", path, resp.StatusCode, body)
			}
		}
		resp, body = s.do(t, "GET", "/jobs/1", "")
		wantJSONError(t, "GET /jobs/1 once ready", resp, body, 404)
	})
}

// TestConsoleAPINeverAnswersAPartialView: right after serve starts on a
// topic of 20,000 jobs, /stats and /jobs answer either 503 "loading" or
// the whole topic — never 200 with the part read so far (serve once
// answered 200 with 4,946 of 20,000). On a slow enough start (the usual
// case) the 503 is seen; both branches are checked whichever comes.
func TestConsoleAPINeverAnswersAPartialView(t *testing.T) {
	forEachBroker(t, func(t *testing.T, tgt Target) {
		const n = 20000
		topic := createTopic(t, tgt, 4)
		mustJobctl(t, tgt, "produce", "--topic", topic, "--count", "20000")
		s := startServe(t, tgt, topic)
		sawLoading := false
		eventually(t, 120*time.Second, "/stats to answer 200", func() bool {
			resp, body := s.do(t, "GET", "/stats", "")
			if resp.StatusCode == 503 {
				wantLoading(t, "GET /stats", resp.StatusCode, resp.Header.Get("Retry-After"), body)
				sawLoading = true
				return false
			}
			var st statsBody
			if resp.StatusCode != 200 || json.Unmarshal(body, &st) != nil || st.Jobs.Total != n || !st.View.CaughtUp {
				t.Fatalf("GET /stats: %d with %d jobs (caught up %v), want 503 or all %d: %.300s", resp.StatusCode, st.Jobs.Total, st.View.CaughtUp, n, body)
			}
			return true
		})
		t.Logf("saw 503 while loading: %v", sawLoading)
		if jobs, _ := s.allJobs(t, "/jobs?limit=1000"); len(jobs) != n {
			t.Fatalf("GET /jobs once caught up: %d jobs, want %d", len(jobs), n)
		}
	})
}

// TestConsoleAPIJobsSinceUntil: GET /jobs?since=&until= keeps the jobs
// last updated in [since, until), by the events' own times, and names a
// bad parameter.
func TestConsoleAPIJobsSinceUntil(t *testing.T) {
	forEachBroker(t, func(t *testing.T, tgt Target) {
		topic := createTopic(t, tgt, 2)
		w := ledgerWriter(t, tgt, topic)
		base := time.Date(2026, 1, 2, 3, 0, 0, 0, time.UTC)
		var events []job.Event
		for i := range 6 {
			events = append(events, job.Event{JobID: job.NumericID(int64(i + 1)), Status: job.StatusNew, Type: "t",
				CreatedAt: base, UpdatedAt: base.Add(time.Duration(i) * time.Minute)})
		}
		if err := w.Append(context.Background(), events...); err != nil {
			t.Fatalf("writing jobs: %v", err)
		}
		s := startServe(t, tgt, topic)
		s.waitReady(t)
		at := func(min int) string {
			return url.QueryEscape(base.Add(time.Duration(min) * time.Minute).Format(time.RFC3339))
		}
		for query, want := range map[string]string{
			"since=" + at(2):                     "3 4 5 6",
			"until=" + at(2):                     "1 2",
			"since=" + at(1) + "&until=" + at(4): "2 3 4",
			"since=" + at(1) + "&limit=2":        "2 3 4 5 6", // over pages
			"since=" + at(4) + "&order=desc":     "6 5",
			"since=" + at(9):                     "",
		} {
			jobs, _ := s.allJobs(t, "/jobs?"+query)
			var ids []string
			for _, j := range jobs {
				ids = append(ids, j.id())
			}
			if got := strings.Join(ids, " "); got != want {
				t.Errorf("GET /jobs?%s: %q, want %q", query, got, want)
			}
		}
		resp, body := s.do(t, "GET", "/jobs?until=soon", "")
		wantJSONError(t, "GET /jobs?until=soon", resp, body, 400)
		if !strings.Contains(string(body), `until \"soon\"`) {
			t.Errorf("the error does not name until: %s", body)
		}
	})
}

// apiGroup is a group as GET /groups answers it.
type apiGroup struct {
	Group    string `json:"group"`
	State    string `json:"state"`
	Protocol string `json:"protocol"`
	Paused   bool   `json:"paused"`
	Members  []struct {
		MemberID   string `json:"member_id"`
		ClientID   string `json:"client_id"`
		Host       string `json:"host"`
		Partitions []int  `json:"partitions"`
	} `json:"members"`
	Pending       map[string]int64 `json:"pending"`
	PendingTotal  int64            `json:"pending_total"`
	JobsPerSecond float64          `json:"jobs_per_second"`
	Error         string           `json:"error"`
}

// TestConsoleAPIGroups: two real `jobctl consume` members of one group
// each list their own partitions in GET /groups/{group} (decoded from
// the broker's DescribeGroups), together every partition once; GET
// /groups lists the group with its pending jobs and finish rate, and a
// paused group; an unknown group is 404.
func TestConsoleAPIGroups(t *testing.T) {
	forEachBroker(t, func(t *testing.T, tgt Target) {
		const partitions, n = 4, 40
		topic := createTopic(t, tgt, partitions)
		mustJobctl(t, tgt, "produce", "--topic", topic, "--count", strconv.Itoa(n))
		group := uniqueName(t, "g")
		startConsumer(t, tgt, topic, group)
		startConsumer(t, tgt, topic, group)
		s := startServe(t, tgt, topic)
		s.waitReady(t)

		var g apiGroup
		var body []byte
		eventually(t, 90*time.Second, "both members to hold partitions and every job to be done", func() bool {
			var resp *http.Response
			resp, body = s.do(t, "GET", "/groups/"+url.PathEscape(group), "")
			if resp.StatusCode == 404 {
				return false // no commit and no member described yet
			}
			g = apiGroup{}
			if resp.StatusCode != 200 || json.Unmarshal(body, &g) != nil {
				t.Fatalf("GET /groups/%s: %d %s", group, resp.StatusCode, body)
			}
			if g.State != "Stable" || len(g.Members) != 2 || g.PendingTotal != 0 || len(g.Pending) != partitions {
				return false
			}
			seen := map[int]int{}
			for _, m := range g.Members {
				if len(m.Partitions) == 0 {
					return false // a rebalance is still handing partitions over
				}
				for _, p := range m.Partitions {
					seen[p]++
				}
			}
			if len(seen) != partitions {
				return false
			}
			for p, k := range seen {
				if k != 1 {
					t.Fatalf("partition %d is assigned to %d members: %s", p, k, body)
				}
			}
			return true
		})
		if g.Group != group || g.Protocol != "jobctl-cooperative" || g.Paused || g.Error != "" || g.JobsPerSecond <= 0 {
			t.Fatalf("GET /groups/%s: %s", group, body)
		}
		for _, m := range g.Members {
			if m.MemberID == "" || m.ClientID == "" || m.Host == "" {
				t.Fatalf("a member without ids or host: %s", body)
			}
		}

		// The list has it too, and a paused group that never consumed.
		paused := uniqueName(t, "paused")
		mustJobctl(t, tgt, "-t", topic, "group", "pause", paused)
		eventually(t, 30*time.Second, "GET /groups to list both groups", func() bool {
			resp, body := s.do(t, "GET", "/groups", "")
			var list struct{ Groups []apiGroup }
			if resp.StatusCode != 200 || json.Unmarshal(body, &list) != nil {
				t.Fatalf("GET /groups: %d %s", resp.StatusCode, body)
			}
			found := map[string]apiGroup{}
			for _, lg := range list.Groups {
				found[lg.Group] = lg
			}
			worker, ok := found[group]
			if ok && (len(worker.Members) != 2 || worker.PendingTotal != 0) {
				t.Fatalf("GET /groups lists %s as %+v", group, worker)
			}
			return ok && found[paused].Paused
		})
		resp, body := s.do(t, "GET", "/groups/no-such-group", "")
		wantJSONError(t, "GET /groups/no-such-group", resp, body, 404)
	})
}

// TestConsoleAPIDeadLetters: GET /dlq?id= lists one job's letters (an id
// above 2^53 stays exact), POST /dlq/replay takes the selected ids as
// strings or numbers and replays exactly those, and the filter form
// with "all" and "id" selects that job alone.
func TestConsoleAPIDeadLetters(t *testing.T) {
	forEachBroker(t, func(t *testing.T, tgt Target) {
		topic := createTopic(t, tgt, 3)
		createDLQ(t, tgt, topic, 1)
		const big = "9007199254740993" // 2^53 + 1: a float64 would make it ...992
		now := time.Now().UTC()
		letter := func(id string, partition int) deadletter.Letter {
			return deadletter.Letter{Kind: deadletter.KindJob, JobID: dlqID(t, id), Group: "g", Type: "resize", Attempts: 1,
				Errors: []job.AttemptError{{Attempt: 1, Error: "boom"}}, Reason: "last attempt failed",
				Origin: deadletter.Origin{Topic: topic, Partition: partition, Offset: 1}, DeadAt: now.Add(-time.Minute)}
		}
		writeLetters(t, tgt, topic, letter(big, 0), letter("42", 1), letter("n-b", 2), letter("n-c", 2))
		s := startServe(t, tgt, topic)
		s.waitReady(t)

		resp, body := s.do(t, "GET", "/dlq?id="+big, "")
		if resp.StatusCode != 200 || strings.Count(string(body), `"job_id":`) != 1 || !strings.Contains(string(body), `"job_id":`+big+`,`) {
			t.Fatalf("GET /dlq?id=%s: %d %s", big, resp.StatusCode, body)
		}
		resp, body = s.do(t, "GET", "/dlq?id=n-b", "")
		if resp.StatusCode != 200 || strings.Count(string(body), `"job_id":`) != 1 || !strings.Contains(string(body), `"job_id":"n-b"`) {
			t.Fatalf("GET /dlq?id=n-b: %d %s", resp.StatusCode, body)
		}
		resp, body = s.do(t, "GET", "/dlq?id=nobody", "")
		if resp.StatusCode != 200 || !strings.Contains(string(body), `"dead_letters":[]`) {
			t.Fatalf("GET /dlq?id=nobody: %d %s", resp.StatusCode, body)
		}

		replay := func(req string) deadletter.ReplayResult {
			t.Helper()
			resp, body := s.do(t, "POST", "/dlq/replay", req)
			var res deadletter.ReplayResult
			if resp.StatusCode != 200 || json.Unmarshal(body, &res) != nil {
				t.Fatalf("POST /dlq/replay %s: %d %s", req, resp.StatusCode, body)
			}
			return res
		}
		replayed := func(res deadletter.ReplayResult) string {
			var ids []string
			for _, r := range res.Replayed {
				ids = append(ids, r.JobID.String())
			}
			slices.Sort(ids)
			return strings.Join(ids, " ")
		}
		// The selected ids, one as a string (as the dashboard sends big
		// ids), one as a number.
		if res := replay(`{"ids": ["` + big + `", 42]}`); replayed(res) != "42 "+big || len(res.NotFound) != 0 {
			t.Fatalf("replay of the selected ids: %+v", res)
		}
		for _, id := range []string{big, "42"} {
			if news, _, _ := newsOf(t, tgt, topic, id); len(news) != 1 || news[0].Run != 1 {
				t.Fatalf("NEW events of %s after the replay: %+v", id, news)
			}
		}
		if news, _, _ := newsOf(t, tgt, topic, "n-b"); len(news) != 0 {
			t.Fatalf("n-b was not selected but has NEW events: %+v", news)
		}
		// All matching, narrowed to one id.
		if res := replay(`{"all": true, "id": "n-b", "dry_run": true}`); replayed(res) != "n-b" || !res.DryRun {
			t.Fatalf("dry run of all letters of n-b: %+v", res)
		}
		if res := replay(`{"all": true, "type": "resize"}`); replayed(res) != "n-b n-c" || len(res.AlreadyReplayed) != 2 {
			t.Fatalf("replay of all the rest: %+v", res)
		}
	})
}
