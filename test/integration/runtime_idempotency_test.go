package integration

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jobctl/jobctl/pkg/job"
)

// TestRuntimeRunOncePerID: one job id submitted many times runs once per
// group: 200 concurrent POSTs of one new id spread over two `jobctl serve`
// processes, a duplicate line in `produce -f`, and a NEW written twice by
// hand. Two groups each run every id exactly once (one DONE per group),
// and each counts the duplicate NEWs it skipped.
func TestRuntimeRunOncePerID(t *testing.T) {
	t.Parallel()
	forEachBroker(t, func(t *testing.T, tgt Target) {
		start := time.Now()
		topic := createTopic(t, tgt, 3)
		short := uniqueName(t, "")
		short = short[len(short)-8:]
		servers := []*serveProc{startServe(t, tgt, topic), startServe(t, tgt, topic)}
		for _, s := range servers {
			s.waitReady(t)
		}

		postID := "idem-post-" + short
		body := fmt.Sprintf(`{"job_id":%q,"type":"test","payload":{"n":1}}`, postID)
		codes := map[int]int{}
		var mu sync.Mutex
		var wg sync.WaitGroup
		client := &http.Client{Timeout: 30 * time.Second}
		for i := range 200 {
			wg.Go(func() {
				code := 0
				req, err := http.NewRequest("POST", servers[i%2].URL+"/jobs", strings.NewReader(body))
				if err == nil {
					req.Header.Set("Content-Type", "application/json")
					var resp *http.Response
					if resp, err = client.Do(req); err == nil {
						code = resp.StatusCode
						resp.Body.Close()
					}
				}
				mu.Lock()
				codes[code]++
				mu.Unlock()
			})
		}
		wg.Wait()
		for code, k := range codes {
			if code != http.StatusAccepted && code != http.StatusConflict && code != http.StatusServiceUnavailable {
				t.Errorf("%d concurrent POSTs answered %d", k, code)
			}
		}
		if codes[http.StatusAccepted] == 0 {
			t.Fatalf("no POST of %s was accepted: %v", postID, codes)
		}

		fileA, fileB := "idem-file-a-"+short, "idem-file-b-"+short
		file := filepath.Join(t.TempDir(), "jobs.jsonl")
		lines := fmt.Sprintf("{\"job_id\":%q,\"type\":\"test\"}\n{\"job_id\":%q,\"type\":\"test\"}\n{\"job_id\":%q,\"type\":\"test\"}\n", fileA, fileB, fileA)
		if err := os.WriteFile(file, []byte(lines), 0o644); err != nil {
			t.Fatal(err)
		}
		r := jobctl(t, tgt, "-t", topic, "produce", "-f", file, "--on-error", "skip")
		t.Logf("produce -f with a duplicate line: exit %d\n%s%s", r.Code, r.Stdout, r.Stderr)

		handID := "idem-hand-" + short
		hand := job.Event{JobID: mustID(t, handID), Status: job.StatusNew, Type: "test", CreatedAt: time.Now().UTC()}
		w := ledgerWriter(t, tgt, topic)
		for range 2 {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			if err := w.Append(ctx, hand); err != nil {
				t.Fatal(err)
			}
			cancel()
		}

		ids := []string{postID, fileA, fileB, handID}
		l := rtRead(t, tgt, topic)
		news := 0
		for _, id := range ids {
			k := len(l.with(id, job.StatusNew, ""))
			if k == 0 {
				t.Fatalf("job %s has no NEW on the topic", id)
			}
			news += k
		}

		groups := []string{uniqueName(t, "ga"), uniqueName(t, "gb")}
		var procs []*wkProc
		for _, g := range groups {
			procs = append(procs, rtConsume(t, tgt, topic, g, "--sleep", "0s", "--timeout", "5s", "-o", "json"))
		}
		dups, skipped := 0, []int64{}
		for i, g := range groups {
			rtWaitExit(t, procs[i], 2*time.Minute)
			sum := rtParseSummary(t, procs[i].stdout.String())
			skipped = append(skipped, sum.DuplicatesSkipped)
			if want := int64(news - len(ids)); sum.DuplicatesSkipped != want {
				t.Errorf("group %s skipped %d duplicate NEWs, the topic has %d", g, sum.DuplicatesSkipped, want)
			}
			l = rtRead(t, tgt, topic)
			lines := map[string]int{}
			for _, r := range rtLogs(t, procs[i]) {
				lines[r.JobID.String()]++
			}
			for _, id := range ids {
				if d := l.with(id, job.StatusDone, g); len(d) != 1 || lines[id] != 1 {
					dups++
					t.Errorf("group %s: job %s has %d DONE events and %d processed-log lines, want 1 each", g, id, len(d), lines[id])
				}
			}
		}
		lost := 0
		for _, g := range groups {
			lost += l.countMissing(ids, job.StatusDone, g)
		}
		rtReport(t, "run-once-per-id", tgt, len(ids), lost, dups, start, "groups", len(groups), "new_records", news,
			"post_202", codes[http.StatusAccepted], "post_409", codes[http.StatusConflict], "post_503", codes[http.StatusServiceUnavailable],
			"duplicates_skipped", fmt.Sprint(skipped))
	})
}
