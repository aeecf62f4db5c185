package integration

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jobctl/jobctl/pkg/job"
	"github.com/jobctl/jobctl/pkg/kafkaconn"
	"github.com/jobctl/jobctl/pkg/ledger"
	"github.com/jobctl/jobctl/pkg/worker"
	"github.com/segmentio/kafka-go"
)

// Tests of `jobctl consume`. Helpers here are prefixed wk (worker) to stay
// clear of the other test files of the package.

// TestConsumeThreeProcessesShareOneGroup: three consumer processes in one
// group share 10 000 jobs; every job gets exactly one DONE, in its NEW's
// partition, and the processed logs together list every job once.
func TestConsumeThreeProcessesShareOneGroup(t *testing.T) {
	forEachBroker(t, func(t *testing.T, tgt Target) {
		const n = 10000
		topic := createTopic(t, tgt, 6)
		group := uniqueName(t, "g")
		var procs []*wkProc
		for range 3 {
			procs = append(procs, wkStart(t, tgt, "consume", "-t", topic, "-g", group, "-c", "4",
				"--sleep", "0s", "--timeout", "5s", "--commit-interval", "200ms"))
		}
		// Produce only once all three own partitions, so each gets work.
		wkWaitUntil(t, 60*time.Second, "three members in a stable group", func() bool {
			state, members := wkGroup(t, tgt, group)
			return state == "Stable" && members == 3
		})
		jobs := wkJobs(uniqueName(t, "j"), n)
		wkProduce(t, tgt, topic, jobs)
		for i, p := range procs {
			if code := p.wait(t, 3*time.Minute); code != 0 {
				t.Fatalf("consumer %d: exit %d\n%s", i, code, p.stderr.String())
			}
		}

		l := wkIndex(t, readTopic(t, tgt, topic))
		wkCheckEveryJob(t, l, jobs, func(id string, dones []wkRecord) {
			if len(dones) != 1 {
				t.Errorf("job %s has %d DONE events, want exactly 1", id, len(dones))
			}
		})
		seen := map[string]int{}
		for i, p := range procs {
			lines := p.processed(t)
			if len(lines) == 0 {
				t.Errorf("consumer %d processed no job", i)
			}
			for _, r := range lines {
				seen[r.JobID.String()]++
				if r.Group != group || r.Status != job.StatusDone || r.Attempt != 1 || r.Worker == "" || r.Time.IsZero() {
					t.Fatalf("consumer %d: bad processed log line %+v", i, r)
				}
			}
			t.Logf("consumer %d processed %d jobs", i, len(lines))
		}
		for _, j := range jobs {
			if seen[j.JobID.String()] != 1 {
				t.Fatalf("job %s is in the processed logs %d times, want 1", j.JobID, seen[j.JobID.String()])
			}
		}
	})
}

// TestConsumeRebalanceKeepsOneDonePerJob: members joining and leaving
// while jobs are in flight do not make any job run twice: a generation
// ends only after its running jobs are recorded and committed.
func TestConsumeRebalanceKeepsOneDonePerJob(t *testing.T) {
	forEachBroker(t, func(t *testing.T, tgt Target) {
		const n = 3000
		topic := createTopic(t, tgt, 4)
		group := uniqueName(t, "g")
		jobs := wkJobs(uniqueName(t, "j"), n)
		wkProduce(t, tgt, topic, jobs)
		args := []string{"consume", "-t", topic, "-g", group, "-c", "4", "--sleep", "3ms", "--commit-interval", "500ms"}
		a := wkStart(t, tgt, append(args, "--timeout", "0")...)
		wkWaitUntil(t, 2*time.Minute, "the first consumer to process 400 jobs", func() bool {
			return wkCountLines(filepath.Join(a.cmd.Dir, "processed_jobs.log")) >= 400
		})
		b := wkStart(t, tgt, append(args, "--timeout", "4s")...) // joins: rebalance
		wkWaitUntil(t, 2*time.Minute, "the second consumer to process 400 jobs", func() bool {
			return wkCountLines(filepath.Join(b.cmd.Dir, "processed_jobs.log")) >= 400
		})
		if code := a.stop(t, syscall.SIGTERM, 40*time.Second); code != 0 { // leaves: rebalance
			t.Fatalf("first consumer: exit %d\n%s", code, a.stderr.String())
		}
		if code := b.wait(t, 3*time.Minute); code != 0 {
			t.Fatalf("second consumer: exit %d\n%s", code, b.stderr.String())
		}
		l := wkIndex(t, readTopic(t, tgt, topic))
		wkCheckEveryJob(t, l, jobs, func(id string, dones []wkRecord) {
			if len(dones) != 1 {
				t.Errorf("job %s has %d DONE events across the rebalances, want 1", id, len(dones))
			}
		})
		t.Logf("first consumer processed %d jobs, second %d", len(a.processed(t)), len(b.processed(t)))
	})
}

// TestConsumeTwoGroupsEachProcessEveryJob: groups are independent.
func TestConsumeTwoGroupsEachProcessEveryJob(t *testing.T) {
	forEachBroker(t, func(t *testing.T, tgt Target) {
		const n = 300
		topic := createTopic(t, tgt, 3)
		jobs := wkJobs(uniqueName(t, "j"), n)
		wkProduce(t, tgt, topic, jobs)
		dir := t.TempDir()
		groups := []string{uniqueName(t, "ga"), uniqueName(t, "gb")}
		results := make([]result, len(groups))
		var wg sync.WaitGroup
		for i, g := range groups {
			wg.Go(func() {
				results[i] = jobctl(t, tgt, "-t", topic, "-g", g, "consume", "--sleep", "1ms", "--timeout", "3s",
					"--processed-log", filepath.Join(dir, g+".log"))
			})
		}
		wg.Wait()
		for i, g := range groups {
			if results[i].Code != 0 {
				t.Fatalf("group %s: %s", g, results[i])
			}
			ids := map[string]bool{}
			for _, r := range wkReadProcessed(t, filepath.Join(dir, g+".log")) {
				if r.Group != g {
					t.Fatalf("group %s's log has a line of group %s", g, r.Group)
				}
				ids[r.JobID.String()] = true
			}
			if len(ids) != n {
				t.Fatalf("group %s processed %d distinct jobs, want %d", g, len(ids), n)
			}
		}
		l := wkIndex(t, readTopic(t, tgt, topic))
		wkCheckEveryJob(t, l, jobs, func(id string, dones []wkRecord) {
			if len(dones) != 2 {
				t.Errorf("job %s has %d DONE events, want 2 (one per group)", id, len(dones))
			}
		})
	})
}

// TestConsumePicksUpNewPartitions: partitions added while consumers run
// are consumed without restarting anything.
func TestConsumePicksUpNewPartitions(t *testing.T) {
	forEachBroker(t, func(t *testing.T, tgt Target) {
		topic := createTopic(t, tgt, 1)
		group := uniqueName(t, "g")
		var procs []*wkProc
		for range 2 {
			procs = append(procs, wkStart(t, tgt, "consume", "-t", topic, "-g", group, "--sleep", "0s", "--timeout", "0", "--grace", "10s"))
		}
		prefix := uniqueName(t, "j")
		before := wkJobs(prefix+"-before", 50)
		wkProduce(t, tgt, topic, before)
		wkWaitDone(t, tgt, topic, before, 60*time.Second)

		client := &kafka.Client{Addr: kafka.TCP(tgt.Brokers...), Timeout: 30 * time.Second}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		resp, err := client.CreatePartitions(ctx, &kafka.CreatePartitionsRequest{Topics: []kafka.TopicPartitionsConfig{{Name: topic, Count: 4}}})
		cancel()
		if err != nil || resp.Errors[topic] != nil {
			t.Fatalf("adding partitions: %v %v", err, resp)
		}
		waitForTopic(t, tgt, topic, 4)
		altered := time.Now()
		var after []job.Event
		w := ledger.NewWriter(wkConn(tgt), topic)
		defer w.Close()
		for p := 1; p < 4; p++ {
			batch := wkJobs(fmt.Sprintf("%s-p%d", prefix, p), 20)
			wkAppendTo(t, w, p, batch)
			after = append(after, batch...)
		}
		wkWaitDone(t, tgt, topic, after, 90*time.Second)
		t.Logf("jobs on the new partitions were all DONE %.1fs after the partition increase", time.Since(altered).Seconds())

		for i, p := range procs {
			if code := p.stop(t, syscall.SIGTERM, 40*time.Second); code != 0 {
				t.Fatalf("consumer %d: exit %d\n%s", i, code, p.stderr.String())
			}
		}
		l := wkIndex(t, readTopic(t, tgt, topic))
		wkCheckEveryJob(t, l, append(before, after...), func(id string, dones []wkRecord) {
			if len(dones) == 0 {
				t.Errorf("job %s has no DONE", id)
			}
		})
		for _, j := range after {
			if p := l.news[j.JobID.String()].Partition; p == 0 {
				t.Fatalf("job %s was meant for a new partition, landed on 0", j.JobID)
			}
		}
	})
}

// TestConsumeKillAndRestart: a consumer SIGKILLed mid-run and restarted
// leaves every job DONE, and re-runs only jobs at or after the committed
// offset of their partition at the time of the kill.
func TestConsumeKillAndRestart(t *testing.T) {
	forEachBroker(t, func(t *testing.T, tgt Target) {
		const n = 4000
		topic := createTopic(t, tgt, 3)
		group := uniqueName(t, "g")
		jobs := wkJobs(uniqueName(t, "j"), n)
		wkProduce(t, tgt, topic, jobs)
		args := []string{"consume", "-t", topic, "-g", group, "-c", "4", "--sleep", "4ms", "--commit-interval", "100ms"}

		first := wkStart(t, tgt, append(args, "--timeout", "60s")...)
		wkWaitUntil(t, 2*time.Minute, "the first consumer to process 800 jobs", func() bool {
			return wkCountLines(filepath.Join(first.cmd.Dir, "processed_jobs.log")) >= 800
		})
		if err := first.cmd.Process.Kill(); err != nil {
			t.Fatal(err)
		}
		first.wait(t, 30*time.Second)
		committed := wkCommitted(t, tgt, group, topic)
		done := wkCountLines(filepath.Join(first.cmd.Dir, "processed_jobs.log"))
		t.Logf("killed after %d jobs in its processed log; committed offsets %v", done, committed)

		second := wkStart(t, tgt, append(args, "--timeout", "5s", "-o", "json")...)
		if code := second.wait(t, 3*time.Minute); code != 0 {
			t.Fatalf("restarted consumer: exit %d\n%s", code, second.stderr.String())
		}
		l := wkIndex(t, readTopic(t, tgt, topic))
		reexecuted := 0
		wkCheckEveryJob(t, l, jobs, func(id string, dones []wkRecord) {
			if len(dones) < 2 {
				return
			}
			reexecuted++
			nw := l.news[id]
			if c, ok := committed[nw.Partition]; ok && nw.Offset < c {
				t.Errorf("job %s (partition %d offset %d) ran %d times although offset %d was committed before the kill",
					id, nw.Partition, nw.Offset, len(dones), c)
			}
		})
		t.Logf("%d of %d jobs were re-executed after the kill (all at or above the committed offsets)", reexecuted, n)
		// The restarted worker noticed each one: it fetched the killed
		// worker's DONE after running the job itself.
		var sum worker.Summary
		if err := json.Unmarshal([]byte(second.stdout.String()), &sum); err != nil {
			t.Fatalf("summary of the restarted consumer: %v\n%s", err, second.stdout.String())
		}
		if sum.Reexecuted != int64(reexecuted) {
			t.Errorf("the restarted consumer counted %d re-executions, the topic shows %d", sum.Reexecuted, reexecuted)
		}
	})
}

// TestConsumeKillBeforeFirstCommit: a worker SIGKILLed before it ever
// committed leaves the group with no offsets at all; the next owner must
// still skip the jobs whose DONE the dead worker wrote (CI caught a
// re-run of exactly those).
func TestConsumeKillBeforeFirstCommit(t *testing.T) {
	forEachBroker(t, func(t *testing.T, tgt Target) {
		const n = 600
		topic := createTopic(t, tgt, 2)
		group := uniqueName(t, "g")
		jobs := wkJobs(uniqueName(t, "j"), n)
		wkProduce(t, tgt, topic, jobs)
		args := []string{"consume", "-t", topic, "-g", group, "-c", "4", "--sleep", "5ms", "--session-timeout", "6s"}

		first := wkStart(t, tgt, append(args, "--commit-interval", "1h", "--timeout", "60s")...)
		wkWaitUntil(t, 2*time.Minute, "the first consumer to process 200 jobs", func() bool {
			return wkCountLines(filepath.Join(first.cmd.Dir, "processed_jobs.log")) >= 200
		})
		if err := first.cmd.Process.Kill(); err != nil {
			t.Fatal(err)
		}
		first.wait(t, 30*time.Second)
		for p, off := range wkCommitted(t, tgt, group, topic) {
			if off >= 0 {
				t.Fatalf("the killed consumer committed offset %d on partition %d; the test needs a group without offsets", off, p)
			}
		}
		second := wkStart(t, tgt, append(args, "--timeout", "5s")...)
		if code := second.wait(t, 3*time.Minute); code != 0 {
			t.Fatalf("restarted consumer: exit %d\n%s", code, second.stderr.String())
		}
		l := wkIndex(t, readTopic(t, tgt, topic))
		twice := 0
		wkCheckEveryJob(t, l, jobs, func(id string, dones []wkRecord) {
			if len(dones) > 1 {
				twice++
			}
		})
		// Only jobs running at the kill (at most -c 4) may run again.
		if twice > 4 {
			t.Errorf("%d jobs ran twice after a kill before the first commit; at most the 4 running ones may", twice)
		}
		t.Logf("killed before any commit after %d jobs; %d jobs ran twice", wkCountLines(filepath.Join(first.cmd.Dir, "processed_jobs.log")), twice)
	})
}

// TestConsumeSIGTERM: SIGTERM ends the consumer cleanly (exit 0), with
// every job whose DONE was written covered by the committed offsets, and
// the group left at once.
func TestConsumeSIGTERM(t *testing.T) {
	forEachBroker(t, func(t *testing.T, tgt Target) {
		const n, grace = 3000, 10 * time.Second
		topic := createTopic(t, tgt, 3)
		group := uniqueName(t, "g")
		jobs := wkJobs(uniqueName(t, "j"), n)
		wkProduce(t, tgt, topic, jobs)
		p := wkStart(t, tgt, "consume", "-t", topic, "-g", group, "-c", "4", "--sleep", "5ms",
			"--timeout", "0", "--grace", grace.String(), "--commit-interval", "5s")
		wkWaitUntil(t, 2*time.Minute, "300 processed jobs", func() bool {
			return wkCountLines(filepath.Join(p.cmd.Dir, "processed_jobs.log")) >= 300
		})
		// The hang guard only: a clean exit takes far less.
		if code := p.stop(t, syscall.SIGTERM, grace+30*time.Second); code != 0 {
			t.Fatalf("exit %d after SIGTERM, want 0\n%s", code, p.stderr.String())
		}
		if !strings.Contains(p.stderr.String(), "consumed (interrupted)") {
			t.Errorf("no final summary on stderr:\n%s", p.stderr.String())
		}
		// LeaveGroup was sent: the group is empty now, not after the
		// 10 s session timeout.
		wkWaitUntil(t, 3*time.Second, "the group to be empty", func() bool {
			_, members := wkGroup(t, tgt, group)
			return members == 0
		})
		committed := wkCommitted(t, tgt, group, topic)
		l := wkIndex(t, readTopic(t, tgt, topic))
		doneCount := 0
		for id, dones := range l.dones {
			doneCount++
			nw, ok := l.news[id]
			if !ok {
				t.Fatalf("DONE for unknown job %s", id)
			}
			if nw.Offset >= committed[nw.Partition] {
				t.Errorf("job %s is DONE (%d events) but its NEW at %d/%d is not below the committed offset %d",
					id, len(dones), nw.Partition, nw.Offset, committed[nw.Partition])
			}
		}
		if lines := p.processed(t); len(lines) != doneCount {
			t.Errorf("processed log has %d lines, the topic %d DONE jobs", len(lines), doneCount)
		}
		t.Logf("stopped after %d of %d jobs; committed %v", doneCount, n, committed)
	})
}

// TestConsumeSkipsGarbage: records that are not jobs are counted and
// skipped, the jobs after them are processed and the commit moves past
// them. The run also serves --metrics-addr and prints a -o json summary.
func TestConsumeSkipsGarbage(t *testing.T) {
	forEachBroker(t, func(t *testing.T, tgt Target) {
		topic := createTopic(t, tgt, 1)
		group := uniqueName(t, "g")
		prefix := uniqueName(t, "j")
		var msgs []kafka.Message
		var jobs []job.Event
		addJob := func(e job.Event) {
			m, err := ledger.Message(e)
			if err != nil {
				t.Fatal(err)
			}
			msgs = append(msgs, m)
			jobs = append(jobs, e)
		}
		raw := func(value string, status string) {
			m := kafka.Message{Value: []byte(value)}
			if status != "" {
				m.Headers = []kafka.Header{{Key: job.HeaderStatus, Value: []byte(status)}}
			}
			msgs = append(msgs, m)
		}
		addJob(wkJobs(prefix+"-a", 1)[0])
		raw("not json at all", "")
		raw(`{"hello": "world"}`, "")
		raw(`{"job_id": 77, "status": "BOGUS"}`, "")
		raw(`garbage{`, "NEW")
		raw(`[1, 2, 3]`, "")
		raw(`{"job_id": "elsewhere", "status": "DONE"}`, "DONE") // a job event, just not NEW
		seed := job.Event{JobID: mustID(t, prefix+"-seed"), Status: job.StatusNew}
		raw(`{"job_id": "`+seed.JobID.String()+`", "status": "NEW"}`, "") // no header: decoded
		jobs = append(jobs, seed)
		for _, e := range wkJobs(prefix+"-b", 9) {
			addJob(e)
		}
		w := &kafka.Writer{Addr: kafka.TCP(tgt.Brokers...), Topic: topic, RequiredAcks: kafka.RequireAll, BatchTimeout: time.Millisecond}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		if err := w.WriteMessages(ctx, msgs...); err != nil {
			t.Fatal(err)
		}
		cancel()
		w.Close()
		lastOffset := int64(len(msgs) - 1)

		addr := wkFreeAddr(t)
		var r result
		finished := make(chan struct{})
		go func() {
			defer close(finished)
			r = jobctl(t, tgt, "-t", topic, "-g", group, "-o", "json", "consume", "--sleep", "0s", "--timeout", "4s",
				"--processed-log", "", "--metrics-addr", addr)
		}()
		var metricsText string
		wkWaitUntil(t, 60*time.Second, "the metrics to count the jobs and the invalid records", func() bool {
			metricsText = wkGet(addr)
			return strings.Contains(metricsText, `jobctl_jobs_processed_total{status="DONE"} 11`) &&
				strings.Contains(metricsText, "jobctl_invalid_records_total 5")
		})
		if !strings.Contains(metricsText, "jobctl_handler_duration_seconds_count") {
			t.Errorf("metrics lack the handler duration:\n%s", metricsText)
		}
		if resp, err := http.Get("http://" + addr + "/debug/pprof/goroutine?debug=1"); err != nil || resp.StatusCode != 200 {
			t.Errorf("no goroutine profile at --metrics-addr: %v %v", err, resp)
		} else {
			resp.Body.Close()
		}
		<-finished
		if r.Code != 0 {
			t.Fatalf("consume: %s", r)
		}
		var sum worker.Summary
		if err := json.Unmarshal([]byte(r.Stdout), &sum); err != nil {
			t.Fatalf("-o json summary: %v\n%s", err, r.Stdout)
		}
		if sum.Processed != 11 || sum.Done != 11 || sum.Invalid != 5 || sum.Skipped < 1 || sum.StopReason != "idle timeout" {
			t.Errorf("summary %+v: want 11 processed, 11 done, 5 invalid, >=1 skipped, stopped by idle timeout", sum)
		}
		for _, bad := range []string{"offset=1 ", "offset=2 ", "offset=3 ", "offset=4 ", "offset=5 "} {
			if !strings.Contains(wkLogfmt(r.Stderr), bad) {
				t.Errorf("the log does not name the garbage record at %s:\n%s", bad, r.Stderr)
			}
		}
		l := wkIndex(t, readTopic(t, tgt, topic))
		wkCheckEveryJob(t, l, jobs, func(id string, dones []wkRecord) {
			if len(dones) != 1 {
				t.Errorf("job %s has %d DONE events, want 1", id, len(dones))
			}
		})
		if c := wkCommitted(t, tgt, group, topic)[0]; c <= lastOffset {
			t.Errorf("committed offset %d does not pass the last record we wrote (%d)", c, lastOffset)
		}
	})
}

// TestConsumeRetriesThenDies: a failing job's attempts are recorded FAILED
// with the time of the next attempt, and after --max-attempts it is DEAD.
func TestConsumeRetriesThenDies(t *testing.T) {
	forEachBroker(t, func(t *testing.T, tgt Target) {
		topic := createTopic(t, tgt, 2)
		jobs := wkJobs(uniqueName(t, "j"), 20)
		wkProduce(t, tgt, topic, jobs)
		log := filepath.Join(t.TempDir(), "p.log")
		r := jobctl(t, tgt, "-t", topic, "-g", uniqueName(t, "g"), "consume", "--sleep", "1ms", "--sleep-jitter", "2ms",
			"--fail-rate", "1", "--max-attempts", "3", "--retry-backoff", "100ms", "--retry-backoff-max", "200ms",
			"--timeout", "3s", "--processed-log", log)
		if r.Code != 0 {
			t.Fatal(r)
		}
		if !strings.Contains(r.Stderr, "60 attempts (0 done, 40 failed and retried, 20 dead)") {
			t.Errorf("summary line missing:\n%s", r.Stderr)
		}
		l := wkIndex(t, readTopic(t, tgt, topic))
		for _, j := range jobs {
			id := j.JobID.String()
			failed, dead := l.failed[id], l.dead[id]
			if len(failed) != 2 || len(dead) != 1 || len(l.dones[id]) != 0 {
				t.Fatalf("job %s: %d FAILED, %d DEAD, %d DONE; want 2 FAILED then DEAD", j.JobID, len(failed), len(dead), len(l.dones[id]))
			}
			for i, f := range failed {
				e := f.Event
				if e.Attempt != i+1 || e.RetryAt.IsZero() || !strings.Contains(e.Error, "simulated failure") || f.Partition != l.news[id].Partition {
					t.Fatalf("FAILED event %+v (partition %d): want attempt %d with retry_at and the error, in the NEW's partition", e, f.Partition, i+1)
				}
			}
			e := dead[0].Event
			if e.Attempt != 3 || !strings.Contains(e.Error, "simulated failure") || e.Worker == "" || dead[0].Partition != l.news[id].Partition || dead[0].Offset < failed[1].Offset {
				t.Fatalf("DEAD event %+v (partition %d): want attempt 3, the error, a worker, after the FAILED events in the NEW's partition", e, dead[0].Partition)
			}
		}
		lines := wkReadProcessed(t, log)
		if len(lines) != 60 {
			t.Fatalf("processed log has %d lines, want 60 (3 attempts of 20 jobs)", len(lines))
		}
		for _, line := range lines {
			if want := job.StatusFailed; line.Attempt == 3 && line.Status != job.StatusDead || line.Attempt < 3 && line.Status != want {
				t.Fatalf("processed log line %+v: want FAILED for attempts 1-2, DEAD for 3", line)
			}
		}
	})
}

// TestConsumeExecHandler runs real programs per job: success with the
// payload and environment, failure with the stderr tail as the error, a
// slow job that gets a RUNNING event, and a timeout that kills the job's
// whole process group.
func TestConsumeExecHandler(t *testing.T) {
	forEachBroker(t, func(t *testing.T, tgt Target) {
		topic := createTopic(t, tgt, 2)
		dir := t.TempDir()
		script := filepath.Join(dir, "handle.sh")
		body := `#!/bin/sh
OUT='` + dir + `'
case "$JOB_ID" in
  ok-*)   cat > "$OUT/$JOB_ID.stdin"; echo "$JOB_TYPE $JOB_ATTEMPT $JOB_RUN $JOB_GROUP $MODE" > "$OUT/$JOB_ID.env" ;;
  fail-*) echo "some noise" >&2; echo "boom on attempt $JOB_ATTEMPT" >&2; exit 7 ;;
  slow-*) sleep 1.3 ;;
  hang-*) sleep 100 & echo $! > "$OUT/$JOB_ID.$JOB_ATTEMPT.grandchild"; echo $$ > "$OUT/$JOB_ID.$JOB_ATTEMPT.child"; wait ;;
esac
`
		if err := os.WriteFile(script, []byte(body), 0o755); err != nil {
			t.Fatal(err)
		}
		suffix := uniqueName(t, "")
		mk := func(id, typ, payload string) job.Event {
			return job.Event{JobID: mustID(t, id+suffix), Status: job.StatusNew, Type: typ, Payload: json.RawMessage(payload), CreatedAt: time.Now().UTC()}
		}
		ok, fail, slow, hang := mk("ok-", "resize", `{"w":640}`), mk("fail-", "", ""), mk("slow-", "", ""), mk("hang-", "", "")
		wkProduce(t, tgt, topic, []job.Event{ok, fail, slow, hang})

		group := uniqueName(t, "g")
		r := jobctl(t, tgt, "-t", topic, "-g", group, "consume", "--handler", "exec", "--exec-command", script,
			"--job-timeout", "2s", "--max-attempts", "2", "--retry-backoff", "100ms", "--timeout", "3s", "--processed-log", "",
			"--exec-env", "MODE=fast")
		if r.Code != 0 {
			t.Fatal(r)
		}
		l := wkIndex(t, readTopic(t, tgt, topic))
		id := func(e job.Event) string { return e.JobID.String() }

		if d := l.dones[id(ok)]; len(d) != 1 {
			t.Fatalf("ok job: %d DONE", len(d))
		}
		stdin, _ := os.ReadFile(filepath.Join(dir, id(ok)+".stdin"))
		env, _ := os.ReadFile(filepath.Join(dir, id(ok)+".env"))
		// JOB_* and --exec-env reach the program (that jobctl's secrets
		// do not is pkg/handler's TestExecEnvironmentIsAllowListed).
		if want := "resize 1 0 " + group + " fast"; string(stdin) != `{"w":640}` || strings.TrimSpace(string(env)) != want {
			t.Errorf("ok job saw stdin %q and environment %q, want %q", stdin, env, want)
		}

		f := l.dead[id(fail)]
		if len(f) != 1 || f[0].Event.Attempt != 2 || !strings.Contains(f[0].Event.Error, "exit status 7") ||
			!strings.HasSuffix(f[0].Event.Error, "boom on attempt 2") {
			t.Errorf("failing job: DEAD events %+v, want one at attempt 2 with the exit status and the stderr tail", f)
		}

		if d := l.dones[id(slow)]; len(d) != 1 {
			t.Errorf("slow job: %d DONE", len(d))
		} else if run := l.running[id(slow)]; len(run) == 0 {
			t.Errorf("slow job (1.3s) got no RUNNING event")
		} else if run[0].Partition != d[0].Partition || run[0].Offset > d[0].Offset || run[0].Partition != l.news[id(slow)].Partition {
			t.Errorf("slow job: RUNNING at %d/%d must precede DONE at %d/%d in the NEW's partition", run[0].Partition, run[0].Offset, d[0].Partition, d[0].Offset)
		}

		h := l.dead[id(hang)]
		if len(h) != 1 || !strings.Contains(h[0].Event.Error, "timed out") || len(l.failed[id(hang)]) != 1 {
			t.Errorf("hanging job: FAILED %+v then DEAD %+v, want one each that timed out", l.failed[id(hang)], h)
		}
		for attempt := 1; attempt <= 2; attempt++ {
			for _, who := range []string{"child", "grandchild"} {
				wkWaitGone(t, fmt.Sprintf("attempt %d's %s", attempt, who), filepath.Join(dir, fmt.Sprintf("%s.%d.%s", id(hang), attempt, who)))
			}
		}
	})
}

// --- helpers -------------------------------------------------------------

func wkConn(tgt Target) *kafkaconn.Conn {
	return &kafkaconn.Conn{Brokers: tgt.Brokers, ClientID: "jobctl-test"}
}

func mustID(t *testing.T, s string) job.ID {
	t.Helper()
	id, err := job.StringID(s)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// wkJobs returns n NEW jobs with ids prefix-0 ... prefix-(n-1).
func wkJobs(prefix string, n int) []job.Event {
	now := time.Now().UTC()
	out := make([]job.Event, n)
	for i := range out {
		id, _ := job.StringID(prefix + "-" + strconv.Itoa(i))
		out[i] = job.Event{JobID: id, Status: job.StatusNew, Type: "test", CreatedAt: now}
	}
	return out
}

// wkProduce appends events placed by job id, in big batches.
func wkProduce(t *testing.T, tgt Target, topic string, events []job.Event) {
	t.Helper()
	w := ledger.NewWriter(wkConn(tgt), topic)
	defer w.Close()
	w.Tune(func(kw *kafka.Writer) { kw.BatchSize = 2000; kw.BatchBytes = 1 << 20 })
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for batch := range slices.Chunk(events, 5000) {
		if err := w.Append(ctx, batch...); err != nil {
			t.Fatalf("producing jobs: %v", err)
		}
	}
}

func wkAppendTo(t *testing.T, w *ledger.Writer, partition int, events []job.Event) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	// The writer may not know a partition created a moment ago yet.
	for {
		err := w.AppendTo(ctx, partition, events...)
		if err == nil {
			return
		}
		if ctx.Err() != nil {
			t.Fatalf("appending to partition %d: %v", partition, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// wkRecord is one record of the topic.
type wkRecord struct {
	Partition int
	Offset    int64
	Event     job.Event
}

// wkLedger indexes a topic's job events by job id.
type wkLedger struct {
	news, invalid map[string]wkRecord
	running       map[string][]wkRecord
	dones         map[string][]wkRecord
	failed        map[string][]wkRecord
	dead          map[string][]wkRecord
}

func wkIndex(t *testing.T, msgs []kafka.Message) wkLedger {
	t.Helper()
	l := wkLedger{news: map[string]wkRecord{}, invalid: map[string]wkRecord{}, running: map[string][]wkRecord{},
		dones: map[string][]wkRecord{}, failed: map[string][]wkRecord{}, dead: map[string][]wkRecord{}}
	for _, m := range msgs {
		e, err := ledger.Decode(m)
		if err != nil {
			l.invalid[fmt.Sprintf("%d/%d", m.Partition, m.Offset)] = wkRecord{Partition: m.Partition, Offset: m.Offset}
			continue
		}
		r := wkRecord{Partition: m.Partition, Offset: m.Offset, Event: e}
		id := e.JobID.String()
		switch e.Status {
		case job.StatusNew:
			if _, dup := l.news[id]; !dup {
				l.news[id] = r
			}
		case job.StatusRunning:
			l.running[id] = append(l.running[id], r)
		case job.StatusDone:
			l.dones[id] = append(l.dones[id], r)
		case job.StatusFailed:
			l.failed[id] = append(l.failed[id], r)
		case job.StatusDead:
			l.dead[id] = append(l.dead[id], r)
		}
	}
	return l
}

// wkCheckEveryJob checks that each job has a NEW and at least one DONE,
// all DONEs in the NEW's partition after it, then calls check.
func wkCheckEveryJob(t *testing.T, l wkLedger, jobs []job.Event, check func(id string, dones []wkRecord)) {
	t.Helper()
	missing := 0
	for _, j := range jobs {
		id := j.JobID.String()
		nw, ok := l.news[id]
		if !ok {
			t.Fatalf("job %s has no NEW event on the topic", id)
		}
		dones := l.dones[id]
		if len(dones) == 0 {
			if missing++; missing <= 5 {
				t.Errorf("job %s (NEW at %d/%d) has no DONE event", id, nw.Partition, nw.Offset)
			}
			continue
		}
		for _, d := range dones {
			if d.Partition != nw.Partition || d.Offset < nw.Offset {
				t.Fatalf("job %s: DONE at %d/%d, NEW at %d/%d: want the NEW's partition, after it", id, d.Partition, d.Offset, nw.Partition, nw.Offset)
			}
			if d.Event.Attempt < 1 || d.Event.Worker == "" || d.Event.UpdatedAt.IsZero() {
				t.Fatalf("job %s: DONE event lacks attempt/worker/time: %+v", id, d.Event)
			}
		}
		check(id, dones)
	}
	if missing > 0 {
		t.Fatalf("%d of %d jobs have no DONE event", missing, len(jobs))
	}
}

// wkWaitDone waits until every job in jobs has a DONE on the topic.
func wkWaitDone(t *testing.T, tgt Target, topic string, jobs []job.Event, d time.Duration) {
	t.Helper()
	wkWaitUntil(t, d, fmt.Sprintf("%d jobs to be DONE", len(jobs)), func() bool {
		l := wkIndex(t, readTopic(t, tgt, topic))
		for _, j := range jobs {
			if len(l.dones[j.JobID.String()]) == 0 {
				return false
			}
		}
		return true
	})
}

// wkCommitted returns the group's committed offset per partition (-1 for
// none).
func wkCommitted(t *testing.T, tgt Target, group, topic string) map[int]int64 {
	t.Helper()
	client := &kafka.Client{Addr: kafka.TCP(tgt.Brokers...), Timeout: 20 * time.Second}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	md, err := client.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{topic}})
	if err != nil || len(md.Topics) != 1 {
		t.Fatalf("metadata of %s: %v", topic, err)
	}
	var parts []int
	for _, p := range md.Topics[0].Partitions {
		parts = append(parts, p.ID)
	}
	resp, err := client.OffsetFetch(ctx, &kafka.OffsetFetchRequest{GroupID: group, Topics: map[string][]int{topic: parts}})
	if err != nil || resp.Error != nil {
		t.Fatalf("fetching committed offsets of %s: %v %v", group, err, resp)
	}
	out := map[int]int64{}
	for _, p := range resp.Topics[topic] {
		if p.Error != nil {
			t.Fatalf("committed offset of %s/%d: %v", topic, p.Partition, p.Error)
		}
		out[p.Partition] = p.CommittedOffset
	}
	return out
}

// wkGroup returns the group's state and member count.
func wkGroup(t *testing.T, tgt Target, group string) (string, int) {
	t.Helper()
	client := &kafka.Client{Addr: kafka.TCP(tgt.Brokers...), Timeout: 10 * time.Second}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := client.DescribeGroups(ctx, &kafka.DescribeGroupsRequest{GroupIDs: []string{group}})
	if err != nil || len(resp.Groups) != 1 {
		return "", -1
	}
	return resp.Groups[0].GroupState, len(resp.Groups[0].Members)
}

func wkWaitUntil(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up after %s waiting for %s", d, what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// wkProc is a jobctl child process.
type wkProc struct {
	cmd            *exec.Cmd
	stdout, stderr *wkBuffer
	done           chan struct{}
	code           int
}

func wkStart(t *testing.T, tgt Target, args ...string) *wkProc {
	t.Helper()
	p := &wkProc{cmd: jobctlProcess(t, tgt, []string{"JOBCTL_LOG_FORMAT=text"}, args...), stdout: &wkBuffer{}, stderr: &wkBuffer{}, done: make(chan struct{})}
	p.cmd.Stdout, p.cmd.Stderr = p.stdout, p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("starting jobctl %v: %v", args, err)
	}
	go func() {
		defer close(p.done)
		_ = p.cmd.Wait()
		p.code = p.cmd.ProcessState.ExitCode()
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			_ = p.cmd.Process.Kill()
			<-p.done
		}
	})
	return p
}

// wait returns the exit code, failing the test if it takes longer than d.
func (p *wkProc) wait(t *testing.T, d time.Duration) int {
	t.Helper()
	select {
	case <-p.done:
		return p.code
	case <-time.After(d):
		_ = p.cmd.Process.Kill()
		<-p.done
		t.Fatalf("jobctl %v did not exit within %s\nstderr:\n%s", p.cmd.Args[1:], d, p.stderr.String())
		return -1
	}
}

func (p *wkProc) stop(t *testing.T, sig os.Signal, d time.Duration) int {
	t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
	return p.wait(t, d)
}

// processed reads the process's processed_jobs.log.
func (p *wkProc) processed(t *testing.T) []worker.ProcessedRecord {
	t.Helper()
	return wkReadProcessed(t, filepath.Join(p.cmd.Dir, "processed_jobs.log"))
}

func wkReadProcessed(t *testing.T, path string) []worker.ProcessedRecord {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		if os.IsNotExist(err) {
			return nil
		}
		t.Fatal(err)
	}
	defer f.Close()
	var out []worker.ProcessedRecord
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var r worker.ProcessedRecord
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("%s: bad line %q: %v", path, sc.Text(), err)
		}
		out = append(out, r)
	}
	return out
}

func wkCountLines(path string) int {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	return bytes.Count(b, []byte("\n"))
}

// wkBuffer is a bytes.Buffer safe to read while a process writes to it.
type wkBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (w *wkBuffer) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func (w *wkBuffer) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}

func wkFreeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func wkGet(addr string) string {
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// wkLogfmt flattens JSON log lines into key=value text for simple
// searching ("offset":3 -> offset=3 ).
func wkLogfmt(s string) string {
	return regexp.MustCompile(`"(\w+)":("?[^",}]*"?)[,}]`).ReplaceAllString(s, "$1=$2 ")
}

// wkWaitGone waits until the process whose pid is in file is gone.
func wkWaitGone(t *testing.T, who, file string) {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Errorf("%s: no pid file: %v", who, err)
		return
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	wkWaitUntil(t, 10*time.Second, who+" (pid "+strconv.Itoa(pid)+") to die", func() bool {
		if syscall.Kill(pid, 0) != nil {
			return true
		}
		stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
		if err != nil {
			return true
		}
		rest := stat[bytes.LastIndexByte(stat, ')')+1:]
		return len(bytes.Fields(rest)) > 0 && string(bytes.Fields(rest)[0]) == "Z"
	})
}
