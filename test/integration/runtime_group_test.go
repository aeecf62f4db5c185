package integration

import (
	"context"
	"fmt"
	"math/rand/v2"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jobctl/jobctl/pkg/job"
	"github.com/segmentio/kafka-go"
)

// Crashes and rebalances (issue 9, tests 5 and 6), on real Kafka only:
// they are about the group coordinator's behaviour, which the embedded
// broker only imitates.

// TestRuntimeCrashLoop: two consumers with static membership share
// 20,000 jobs while one of them is SIGKILLed at random moments ten times
// and restarted with the same --instance-id. Nothing is lost; the jobs
// run twice are at most the jobs that were running at the kills (-c 4
// per kill); the stall of each kill is measured on the killed member's
// partitions and on the survivor's.
func TestRuntimeCrashLoop(t *testing.T) {
	t.Parallel()
	forEachBroker(t, func(t *testing.T, tgt Target) {
		if !tgt.Real {
			t.Skip("static membership and session timeouts are real Kafka's; the embedded broker only imitates them")
		}
		start := time.Now()
		const n, kills, conc = 20000, 10, 4
		topic := createTopic(t, tgt, 6)
		group := uniqueName(t, "g")
		args := func(id string) []string {
			// 16 ms jobs: about 40 s of work for two members, twice what
			// the ten kills below take, so every kill hits a busy member
			// even on a fast machine.
			return []string{"-c", strconv.Itoa(conc), "--sleep", "16ms", "--timeout", "0", "--instance-id", id, "--session-timeout", "10s"}
		}
		survivor := rtConsume(t, tgt, topic, group, args("survivor")...)
		victim := rtConsume(t, tgt, topic, group, args("victim")...)
		wkWaitUntil(t, 60*time.Second, "two members in a stable group", func() bool {
			state, members := wkGroup(t, tgt, group)
			return state == "Stable" && members == 2
		})
		jobs := wkJobs(uniqueName(t, "j"), n)
		ids := rtIDs(jobs)
		wkProduce(t, tgt, topic, jobs)

		victims := []*wkProc{victim}
		var killedAt []time.Time
		var killedParts []map[int]bool
		for len(killedAt) < kills {
			time.Sleep(time.Duration(600+rand.IntN(1000)) * time.Millisecond)
			parts := map[int]bool{}
			for _, r := range rtLogs(t, victims...) { // static membership: the same partitions
				parts[r.Partition] = true
			}
			if err := victim.cmd.Process.Kill(); err != nil {
				t.Fatal(err)
			}
			killedAt = append(killedAt, time.Now())
			killedParts = append(killedParts, parts)
			victim.wait(t, 30*time.Second)
			victim = rtConsume(t, tgt, topic, group, args("victim")...)
			victims = append(victims, victim)
		}
		l := rtRead(t, tgt, topic)
		remaining := l.countMissing(ids, job.StatusDone, group)
		if remaining == 0 {
			t.Errorf("every job was DONE before the last kill; the kills did not all hit a busy consumer")
		}
		l = rtWaitFor(t, tgt, topic, 3*time.Minute, "every job DONE",
			func(l rtLedger) bool { return l.finished(ids, job.StatusDone, group) },
			func(l rtLedger) string {
				return fmt.Sprintf("%d of %d without DONE", l.countMissing(ids, job.StatusDone, group), n)
			})
		rtStop(t, survivor)
		rtStop(t, victim)
		logs := rtLogs(t, append(victims, survivor)...)
		l = rtRead(t, tgt, topic)
		lost := l.countMissing(ids, job.StatusDone, group)
		dups, extra, worst := rtDuplicateRuns(l, group, logs, ids)
		if bound := kills * conc; dups > bound {
			t.Errorf("%d jobs ran twice (%d extra runs), more than the %d that can have been running at %d kills: %v", dups, extra, bound, kills, worst)
		}

		// The stall of a kill, per partition: the gap between the last
		// DONE before the kill and the first after it.
		dones := map[int][]time.Time{}
		for _, id := range ids {
			for _, d := range l.with(id, job.StatusDone, group) {
				dones[d.Partition] = append(dones[d.Partition], d.Event.UpdatedAt)
			}
		}
		for p := range dones {
			slices.SortFunc(dones[p], func(a, b time.Time) int { return a.Compare(b) })
		}
		var killedStalls, survivorStalls []time.Duration
		for k, at := range killedAt {
			for p, ts := range dones {
				i := sort.Search(len(ts), func(i int) bool { return ts[i].After(at) })
				if i == 0 || i == len(ts) {
					continue // the partition had not started or was finished
				}
				gap := ts[i].Sub(ts[i-1])
				if killedParts[k][p] {
					killedStalls = append(killedStalls, gap)
				} else {
					survivorStalls = append(survivorStalls, gap)
				}
			}
		}
		med := func(ds []time.Duration) time.Duration {
			if len(ds) == 0 {
				return 0
			}
			s := slices.Clone(ds)
			slices.Sort(s)
			return s[len(s)/2].Round(10 * time.Millisecond)
		}
		if len(survivorStalls) > 0 && slices.Max(survivorStalls) > 6*time.Second {
			t.Errorf("a kill of the other member stalled the survivor's partitions for %s (session timeout 10s)", slices.Max(survivorStalls))
		}
		maxOf := func(ds []time.Duration) time.Duration {
			if len(ds) == 0 {
				return 0
			}
			return slices.Max(ds).Round(10 * time.Millisecond)
		}
		rtReport(t, "crash-loop", tgt, n, lost, dups, start, "kills", kills, "dup_bound", kills*conc, "extra_runs", extra,
			"stall_killed_median", med(killedStalls), "stall_killed_max", maxOf(killedStalls),
			"stall_survivor_median", med(survivorStalls), "stall_survivor_max", maxOf(survivorStalls))
	})
}

// TestRuntimeRebalanceUnderLongJobs: three consumers run 20 s jobs (-c 2),
// a fourth joins and one leaves. No job runs on two members at once (the
// processed logs' start-end intervals of one job never overlap across
// workers) and no job runs twice; the group does not rebalance again and
// again: at most three generations per membership change (a cooperative
// rebalance takes more than one round), no member is ever evicted (only the
// four member ids are ever seen) and no member loses partitions without
// handing them over.
func TestRuntimeRebalanceUnderLongJobs(t *testing.T) {
	t.Parallel()
	forEachBroker(t, func(t *testing.T, tgt Target) {
		if !tgt.Real {
			t.Skip("rebalance timing is real Kafka's; the embedded broker only imitates it")
		}
		start := time.Now()
		const n = 16
		topic := createTopic(t, tgt, 8)
		group := uniqueName(t, "g")
		args := []string{"-c", "2", "--sleep", "20s", "--timeout", "0", "--session-timeout", "6s", "--grace", "60s"}
		var members []*wkProc
		for range 3 {
			members = append(members, rtConsume(t, tgt, topic, group, args...))
		}
		wkWaitUntil(t, 90*time.Second, "three members in a stable group", func() bool {
			state, m := wkGroup(t, tgt, group)
			return state == "Stable" && m == 3
		})

		// Watch the group: member ids and how often it leaves Stable.
		watch := &rtGroupWatch{ids: map[string]bool{}}
		ctx, stopWatch := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		wg.Go(func() { watch.run(ctx, tgt, group) })
		time.Sleep(time.Second)
		gen0 := rtMaxGeneration(members...)

		jobs := wkJobs(uniqueName(t, "j"), n)
		ids := rtIDs(jobs)
		wkProduce(t, tgt, topic, jobs)
		rtWaitFor(t, tgt, topic, 60*time.Second, "six jobs RUNNING", func(l rtLedger) bool {
			running := 0
			for _, id := range ids {
				if len(l.with(id, job.StatusRunning, group)) > 0 {
					running++
				}
			}
			return running >= 6
		}, func(l rtLedger) string { return "" })

		joiner := rtConsume(t, tgt, topic, group, args...)
		wkWaitUntil(t, 90*time.Second, "the fourth member to get partitions", func() bool {
			return strings.Contains(joiner.stderr.String(), "partitions assigned")
		})
		gen1 := rtMaxGeneration(append(members, joiner)...)
		leaver := members[0]
		if err := leaver.cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		l := rtWaitFor(t, tgt, topic, 4*time.Minute, "every job DONE",
			func(l rtLedger) bool { return l.finished(ids, job.StatusDone, group) },
			func(l rtLedger) string {
				return fmt.Sprintf("%d of %d without DONE", l.countMissing(ids, job.StatusDone, group), n)
			})
		if code := leaver.wait(t, 90*time.Second); code != 0 && code != 130 {
			t.Errorf("the member that left exited %d\n%s", code, rtTail(leaver.stderr.String(), 3000))
		}
		time.Sleep(3 * time.Second) // a storm would show here
		all := append(slices.Clone(members), joiner)
		gen2 := rtMaxGeneration(all...)
		stopWatch()
		wg.Wait()
		for _, p := range all[1:] {
			rtStop(t, p)
		}
		l = rtRead(t, tgt, topic)
		logs := rtLogs(t, all...)

		lost := l.countMissing(ids, job.StatusDone, group)
		byID := map[string][]rtProcessed{}
		for _, r := range logs {
			byID[r.JobID.String()] = append(byID[r.JobID.String()], r)
		}
		overlaps, twice := 0, 0
		for _, id := range ids {
			rs := byID[id]
			if len(rs) > 1 || len(l.with(id, job.StatusDone, group)) > 1 {
				twice++
				t.Errorf("job %s ran %d times: %+v; events %v", id, len(rs), rs, rtStatuses(l, id))
			}
			for i := range rs {
				for j := i + 1; j < len(rs); j++ {
					if rs[i].Worker != rs[j].Worker && rs[i].Started.Before(rs[j].Time) && rs[j].Started.Before(rs[i].Time) {
						overlaps++
						t.Errorf("job %s ran on %s and %s at once: %s-%s and %s-%s", id, rs[i].Worker, rs[j].Worker,
							rs[i].Started.Format(time.TimeOnly), rs[i].Time.Format(time.TimeOnly), rs[j].Started.Format(time.TimeOnly), rs[j].Time.Format(time.TimeOnly))
					}
				}
			}
			for _, e := range l.byID[id] {
				if e.Event.Status != job.StatusNew && (e.Event.Run != 0 || e.Event.Attempt != 1) {
					t.Errorf("job %s has an event of run %d attempt %d", id, e.Event.Run, e.Event.Attempt)
				}
			}
		}
		lostParts := 0
		for _, p := range all {
			lostParts += strings.Count(p.stderr.String(), "partitions lost")
		}
		if lostParts > 0 {
			t.Errorf("members lost partitions without handing them over %d times (evicted while jobs ran)", lostParts)
		}
		rebalances := gen2 - gen0
		if gen0 == 0 || gen2 == 0 {
			t.Errorf("no generation numbers in the members' logs (\"joined the group ... generation=N\")")
		} else if rebalances > 6 {
			// A cooperative join takes a revoke round and an assign round
			// (3 generations were seen for the join); a storm takes many.
			t.Errorf("%d generations after a join and a leave (gen %d -> %d after the join -> %d); want at most 6", rebalances, gen0, gen1, gen2)
		}
		if ids := watch.memberIDs(); ids > 4 {
			t.Errorf("%d member ids seen in the group, want 4: a member was evicted and rejoined", ids)
		}
		rtReport(t, "rebalance-long-jobs", tgt, n, lost, twice, start, "overlapping_runs", overlaps,
			"generations", fmt.Sprintf("%d->%d->%d", gen0, gen1, gen2), "left_stable", watch.unstable(), "member_ids", watch.memberIDs(),
			"partitions_lost", lostParts)
	})
}

var rtGenerationRE = regexp.MustCompile(`generation[=":]+(\d+)`)

// rtMaxGeneration is the highest group generation any of procs logged.
func rtMaxGeneration(procs ...*wkProc) int {
	g := 0
	for _, p := range procs {
		for _, m := range rtGenerationRE.FindAllStringSubmatch(p.stderr.String(), -1) {
			if v, _ := strconv.Atoi(m[1]); v > g {
				g = v
			}
		}
	}
	return g
}

// rtGroupWatch polls DescribeGroups: the member ids seen and how many
// times the group left the Stable state.
type rtGroupWatch struct {
	mu        sync.Mutex
	ids       map[string]bool
	transits  int
	lastState string
}

func (w *rtGroupWatch) run(ctx context.Context, tgt Target, group string) {
	client := &kafka.Client{Addr: kafka.TCP(tgt.Brokers...), Timeout: 5 * time.Second}
	for ctx.Err() == nil {
		rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		resp, err := client.DescribeGroups(rctx, &kafka.DescribeGroupsRequest{GroupIDs: []string{group}})
		cancel()
		if err == nil && len(resp.Groups) == 1 {
			g := resp.Groups[0]
			w.mu.Lock()
			for _, m := range g.Members {
				w.ids[m.MemberID] = true
			}
			if w.lastState == "Stable" && g.GroupState != "Stable" {
				w.transits++
			}
			w.lastState = g.GroupState
			w.mu.Unlock()
		}
		select {
		case <-ctx.Done():
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func (w *rtGroupWatch) memberIDs() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.ids)
}

func (w *rtGroupWatch) unstable() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.transits
}
