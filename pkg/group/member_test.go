package group

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jobctl/jobctl/pkg/embedded"
	"github.com/segmentio/kafka-go"
)

// The suite runs against the embedded broker and, when JOBCTL_TEST_BROKERS
// is set, against that Kafka cluster too.
func forEachBroker(t *testing.T, fn func(t *testing.T, addr string)) {
	t.Run("embedded", func(t *testing.T) {
		t.Parallel()
		fn(t, embeddedAddr(t))
	})
	if addrs := os.Getenv("JOBCTL_TEST_BROKERS"); addrs != "" {
		t.Run("kafka", func(t *testing.T) {
			t.Parallel()
			fn(t, addrs)
		})
	}
}

var (
	embeddedOnce sync.Once
	embeddedBrk  *embedded.Broker
	embeddedErr  error
)

func embeddedAddr(t *testing.T) string {
	embeddedOnce.Do(func() {
		embeddedBrk, embeddedErr = embedded.Start(embedded.Options{Addr: "127.0.0.1:0"})
	})
	if embeddedErr != nil {
		t.Fatalf("starting embedded broker: %v", embeddedErr)
	}
	return embeddedBrk.Addr()
}

func TestMain(m *testing.M) {
	code := m.Run()
	if embeddedBrk != nil {
		embeddedBrk.Close()
	}
	os.Exit(code)
}

// newClient is one "process": its own transport, short metadata cache.
func newClient(addr string) *kafka.Client {
	return &kafka.Client{
		Addr:      kafka.TCP(strings.Split(addr, ",")...),
		Transport: &kafka.Transport{MetadataTTL: 500 * time.Millisecond, ClientID: "jobctl-group-test"},
		Timeout:   10 * time.Second,
	}
}

var seq atomic.Int64

func uniqueName(prefix string) string {
	return fmt.Sprintf("%s-%d-%d", prefix, time.Now().UnixNano(), seq.Add(1))
}

func createTopic(t *testing.T, addr string, partitions int) string {
	t.Helper()
	name := uniqueName("group-test")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	resp, err := newClient(addr).CreateTopics(ctx, &kafka.CreateTopicsRequest{Topics: []kafka.TopicConfig{{
		Topic: name, NumPartitions: partitions, ReplicationFactor: 1,
	}}})
	if err == nil {
		err = resp.Errors[name]
	}
	if err != nil {
		t.Fatalf("creating topic %s: %v", name, err)
	}
	// Wait until metadata shows every partition.
	eventually(t, 10*time.Second, "topic metadata", func() bool {
		n, err := topicPartitions(addr, name)
		return err == nil && n == partitions
	})
	return name
}

func topicPartitions(addr, topic string) (int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	resp, err := newClient(addr).Metadata(ctx, &kafka.MetadataRequest{Topics: []string{topic}})
	if err != nil {
		return 0, err
	}
	if len(resp.Topics) != 1 || resp.Topics[0].Error != nil {
		return 0, errors.New("topic not ready")
	}
	return len(resp.Topics[0].Partitions), nil
}

func eventually(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// board records which test member runs which partition and flags any
// moment two members run the same one.
type board struct {
	mu         sync.Mutex
	owner      map[int]string
	violations []string
}

func newBoard() *board { return &board{owner: map[int]string{}} }

func (b *board) take(who string, parts []int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, p := range parts {
		if o, ok := b.owner[p]; ok && o != who {
			b.violations = append(b.violations, fmt.Sprintf("%s got partition %d while %s still ran it", who, p, o))
		}
		b.owner[p] = who
	}
}

func (b *board) drop(who string, parts []int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, p := range parts {
		if b.owner[p] == who {
			delete(b.owner, p)
		}
	}
}

func (b *board) dropAll(who string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for p, o := range b.owner {
		if o == who {
			delete(b.owner, p)
		}
	}
}

func (b *board) check(t *testing.T) {
	t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, v := range b.violations {
		t.Error(v)
	}
}

// recorder is a test Handler.
type recorder struct {
	name  string
	board *board
	m     *Member

	// revokeDelay simulates jobs that take a while to finish.
	revokeDelay time.Duration
	// commitOnRevoke commits offset 100+p with metadata "<name>:p".
	commitOnRevoke bool

	mu        sync.Mutex
	owned     map[int]bool
	assigned  []Partition
	revoked   []int
	lost      []int
	commitErr []error
	events    []string
}

func newRecorder(name string, b *board) *recorder {
	return &recorder{name: name, board: b, owned: map[int]bool{}}
}

func (r *recorder) Assigned(_ context.Context, parts []Partition) {
	ids := make([]int, 0, len(parts))
	for _, p := range parts {
		ids = append(ids, p.ID)
	}
	r.board.take(r.name, ids)
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, p := range parts {
		r.owned[p.ID] = true
	}
	r.assigned = append(r.assigned, parts...)
	r.events = append(r.events, fmt.Sprintf("assigned %v", ids))
}

func (r *recorder) Revoked(ctx context.Context, parts []int) {
	if r.revokeDelay > 0 {
		select {
		case <-time.After(r.revokeDelay):
		case <-ctx.Done():
		}
	}
	if r.commitOnRevoke {
		offs := map[int]Offset{}
		for _, p := range parts {
			offs[p] = Offset{Offset: int64(100 + p), Metadata: fmt.Sprintf("%s:%d", r.name, p)}
		}
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err := r.m.Commit(cctx, offs)
		cancel()
		r.mu.Lock()
		r.commitErr = append(r.commitErr, err)
		r.mu.Unlock()
	}
	r.board.drop(r.name, parts)
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, p := range parts {
		delete(r.owned, p)
	}
	r.revoked = append(r.revoked, parts...)
	r.events = append(r.events, fmt.Sprintf("revoked %v", parts))
}

func (r *recorder) Lost(parts []int) {
	r.board.drop(r.name, parts)
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, p := range parts {
		delete(r.owned, p)
	}
	r.lost = append(r.lost, parts...)
	r.events = append(r.events, fmt.Sprintf("lost %v", parts))
}

func (r *recorder) ownedList() []int {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]int, 0, len(r.owned))
	for p := range r.owned {
		out = append(out, p)
	}
	sort.Ints(out)
	return out
}

func (r *recorder) eventCount() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.events)
}

func (r *recorder) history() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.events)
}

// running is a member whose Run goroutine the test controls.
type running struct {
	m      *Member
	rec    *recorder
	cancel context.CancelFunc
	done   chan error
}

type memberOpts struct {
	instanceID string
	session    time.Duration
}

func start(t *testing.T, addr, topic, group string, rec *recorder, o memberOpts) *running {
	t.Helper()
	if o.session == 0 {
		o.session = 6 * time.Second
	}
	m, err := New(Config{
		Client:                 newClient(addr),
		Group:                  group,
		Topic:                  topic,
		InstanceID:             o.instanceID,
		SessionTimeout:         o.session,
		RebalanceTimeout:       20 * time.Second,
		HeartbeatInterval:      500 * time.Millisecond,
		PartitionCheckInterval: 500 * time.Millisecond,
		Logger:                 testLogger(t).With("test_member", rec.name),
	}, rec)
	if err != nil {
		t.Fatal(err)
	}
	rec.m = m
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{m: m, rec: rec, cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- m.Run(ctx) }()
	t.Cleanup(func() { r.stop(t) })
	return r
}

// stop ends Run gracefully and waits for it.
func (r *running) stop(t *testing.T) {
	t.Helper()
	r.cancel()
	select {
	case err, ok := <-r.done:
		if ok && err != nil {
			t.Errorf("%s: Run: %v", r.rec.name, err)
		}
		if ok {
			close(r.done)
		}
	case <-time.After(30 * time.Second):
		t.Errorf("%s: Run did not return", r.rec.name)
	}
}

// crash stops the member like a killed process: no revoke, no LeaveGroup.
func (r *running) crash(t *testing.T) {
	t.Helper()
	r.m.crashed.Store(true)
	r.stop(t)
	r.rec.board.dropAll(r.rec.name)
}

func testLogger(t *testing.T) *slog.Logger {
	if os.Getenv("GROUP_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug})).With("test", t.Name())
	}
	return slog.New(slog.NewTextHandler(testWriter{t}, nil))
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// covers asserts the members' partitions are disjoint and complete.
func covers(n int, recs ...*recorder) bool {
	seen := map[int]bool{}
	for _, r := range recs {
		for _, p := range r.ownedList() {
			if seen[p] {
				return false
			}
			seen[p] = true
		}
	}
	return len(seen) == n
}

func balanced(n int, recs ...*recorder) bool {
	if !covers(n, recs...) {
		return false
	}
	for _, r := range recs {
		c := len(r.ownedList())
		if c < n/len(recs) || c > (n+len(recs)-1)/len(recs) {
			return false
		}
	}
	return true
}

func TestMembersShareJoinAndLeave(t *testing.T) {
	forEachBroker(t, func(t *testing.T, addr string) {
		const n = 6
		topic, group := createTopic(t, addr, n), uniqueName("g")
		b := newBoard()
		a, bb := newRecorder("a", b), newRecorder("b", b)
		ra := start(t, addr, topic, group, a, memberOpts{session: 10 * time.Second})
		start(t, addr, topic, group, bb, memberOpts{session: 10 * time.Second})
		eventually(t, 20*time.Second, "two members sharing all partitions", func() bool { return balanced(n, a, bb) })
		time.Sleep(time.Second) // let a follow-up rebalance settle
		aBefore, bBefore := a.ownedList(), bb.ownedList()
		hist := map[string]int{"a": len(a.history()), "b": len(bb.history())}

		c := newRecorder("c", b)
		t0 := time.Now()
		start(t, addr, topic, group, c, memberOpts{session: 10 * time.Second})
		eventually(t, 20*time.Second, "three members sharing all partitions", func() bool { return balanced(n, a, bb, c) })
		t.Logf("third member balanced in %s", time.Since(t0).Round(time.Millisecond))
		time.Sleep(500 * time.Millisecond)

		for _, pair := range []struct {
			r      *recorder
			before []int
		}{{a, aBefore}, {bb, bBefore}} {
			r := pair.r
			evs := r.history()[hist[r.name]:]
			if len(evs) != 1 || !strings.HasPrefix(evs[0], "revoked") {
				t.Errorf("%s: want exactly one revoke while the newcomer joined, got %v", r.name, evs)
			}
			// Kept partitions: everything owned now was owned before, and
			// everything revoked went to the newcomer.
			for _, p := range r.ownedList() {
				if !slices.Contains(pair.before, p) {
					t.Errorf("%s gained partition %d during the rebalance", r.name, p)
				}
			}
			for _, p := range pair.before {
				if !slices.Contains(r.ownedList(), p) && !slices.Contains(c.ownedList(), p) {
					t.Errorf("%s's partition %d did not move to the newcomer", r.name, p)
				}
			}
		}

		// a stops gracefully: its partitions reach b and c promptly (well
		// below the 10s session timeout).
		gone := a.ownedList()
		t0 = time.Now()
		ra.stop(t)
		eventually(t, 8*time.Second, "a's partitions moving to the others", func() bool { return balanced(n, bb, c) })
		t.Logf("partitions of a stopped member reassigned in %s", time.Since(t0).Round(time.Millisecond))
		a.mu.Lock()
		revoked := slices.Clone(a.revoked)
		a.mu.Unlock()
		if !slices.Equal(revoked[len(revoked)-len(gone):], gone) {
			t.Errorf("a revoked %v, want %v last", revoked, gone)
		}
		b.check(t)
	})
}

func TestStaticMemberRestartKeepsPartitions(t *testing.T) {
	forEachBroker(t, func(t *testing.T, addr string) {
		const n = 4
		topic, group := createTopic(t, addr, n), uniqueName("g")
		b := newBoard()
		a, s1 := newRecorder("a", b), newRecorder("s1", b)
		start(t, addr, topic, group, a, memberOpts{instanceID: "worker-a", session: 10 * time.Second})
		eventually(t, 20*time.Second, "a owning everything", func() bool { return covers(n, a) })
		rs := start(t, addr, topic, group, s1, memberOpts{instanceID: "worker-s", session: 10 * time.Second})
		eventually(t, 20*time.Second, "a and s sharing", func() bool { return balanced(n, a, s1) })
		// Let any follow-up settle, then snapshot.
		time.Sleep(1500 * time.Millisecond)
		want := s1.ownedList()
		aEvents := a.eventCount()
		gen := rs.m.Generation()

		rs.crash(t)
		s2 := newRecorder("s2", b)
		t0 := time.Now()
		r2 := start(t, addr, topic, group, s2, memberOpts{instanceID: "worker-s", session: 10 * time.Second})
		eventually(t, 8*time.Second, "restarted static member owning its partitions", func() bool {
			return slices.Equal(s2.ownedList(), want)
		})
		t.Logf("restarted static member got %v back in %s; generation %d -> %d", want, time.Since(t0).Round(time.Millisecond), gen, r2.m.Generation())
		time.Sleep(2 * time.Second) // anything that would disturb a shows up by now
		if got := a.eventCount(); got != aEvents {
			t.Errorf("the other member saw assignment changes: %v", a.history()[aEvents:])
		}
		if !covers(n, a, s2) {
			t.Errorf("partitions not covered: a=%v s2=%v", a.ownedList(), s2.ownedList())
		}
		b.check(t)
	})
}

func TestCrashedDynamicMemberPartitionsMoveAfterSessionTimeout(t *testing.T) {
	forEachBroker(t, func(t *testing.T, addr string) {
		const n = 4
		topic, group := createTopic(t, addr, n), uniqueName("g")
		b := newBoard()
		a, c := newRecorder("a", b), newRecorder("c", b)
		start(t, addr, topic, group, a, memberOpts{})
		rc := start(t, addr, topic, group, c, memberOpts{})
		eventually(t, 20*time.Second, "two members sharing", func() bool { return balanced(n, a, c) })
		time.Sleep(time.Second)
		hist := len(a.history())
		rc.crash(t)
		t0 := time.Now()
		eventually(t, 20*time.Second, "survivor owning everything", func() bool { return covers(n, a) })
		took := time.Since(t0)
		t.Logf("crashed member's partitions moved after %s (session timeout 6s)", took.Round(time.Millisecond))
		if took < 3*time.Second {
			t.Errorf("partitions moved after %s, before the session could expire", took)
		}
		for _, ev := range a.history()[hist:] {
			if !strings.HasPrefix(ev, "assigned") {
				t.Errorf("survivor after the crash: %v", a.history()[hist:])
			}
		}
		b.check(t)
	})
}

func TestPartitionGrowthIsAssigned(t *testing.T) {
	forEachBroker(t, func(t *testing.T, addr string) {
		topic, group := createTopic(t, addr, 2), uniqueName("g")
		b := newBoard()
		a, c := newRecorder("a", b), newRecorder("c", b)
		start(t, addr, topic, group, a, memberOpts{})
		start(t, addr, topic, group, c, memberOpts{})
		eventually(t, 20*time.Second, "two members sharing", func() bool { return balanced(2, a, c) })
		time.Sleep(time.Second) // let a follow-up rebalance settle
		before := map[string][]int{"a": a.ownedList(), "c": c.ownedList()}
		hist := map[string]int{"a": len(a.history()), "c": len(c.history())}

		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		resp, err := newClient(addr).CreatePartitions(ctx, &kafka.CreatePartitionsRequest{
			Topics: []kafka.TopicPartitionsConfig{{Name: topic, Count: 6}},
		})
		if err == nil {
			err = resp.Errors[topic]
		}
		if err != nil {
			t.Fatalf("adding partitions: %v", err)
		}
		t0 := time.Now()
		eventually(t, 20*time.Second, "new partitions assigned", func() bool { return balanced(6, a, c) })
		t.Logf("new partitions assigned %s after the increase", time.Since(t0).Round(time.Millisecond))
		for _, r := range []*recorder{a, c} {
			for _, p := range before[r.name] {
				if !slices.Contains(r.ownedList(), p) {
					t.Errorf("%s lost its partition %d on growth", r.name, p)
				}
			}
			for _, ev := range r.history()[hist[r.name]:] {
				if !strings.HasPrefix(ev, "assigned") {
					t.Errorf("%s after growth: %v", r.name, r.history()[hist[r.name]:])
				}
			}
		}
		b.check(t)
	})
}

func TestCommitMetadataRoundTrip(t *testing.T) {
	forEachBroker(t, func(t *testing.T, addr string) {
		const n = 3
		topic, group := createTopic(t, addr, n), uniqueName("g")
		b := newBoard()
		a := newRecorder("a", b)
		a.commitOnRevoke = true
		ra := start(t, addr, topic, group, a, memberOpts{})
		eventually(t, 20*time.Second, "a owning everything", func() bool { return covers(n, a) })
		for _, p := range a.assigned {
			if p.Offset != -1 || p.Metadata != "" {
				t.Errorf("fresh group: partition %+v has a committed offset", p)
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := ra.m.Commit(ctx, map[int]Offset{n + 5: {Offset: 1}}); !errors.Is(err, ErrNotOwned) {
			t.Errorf("commit of a partition not owned: %v, want ErrNotOwned", err)
		}
		ra.stop(t)
		for _, err := range a.commitErr {
			if err != nil {
				t.Fatalf("commit inside Revoked: %v", err)
			}
		}

		d := newRecorder("d", b)
		start(t, addr, topic, group, d, memberOpts{})
		eventually(t, 20*time.Second, "d owning everything", func() bool { return covers(n, d) })
		d.mu.Lock()
		defer d.mu.Unlock()
		for _, p := range d.assigned {
			if p.Offset != int64(100+p.ID) || p.Metadata != fmt.Sprintf("a:%d", p.ID) {
				t.Errorf("partition %d: offset %d metadata %q, want %d %q", p.ID, p.Offset, p.Metadata, 100+p.ID, fmt.Sprintf("a:%d", p.ID))
			}
		}
	})
}

func TestLongRevokeKeepsMembership(t *testing.T) {
	forEachBroker(t, func(t *testing.T, addr string) {
		const n = 4
		topic, group := createTopic(t, addr, n), uniqueName("g")
		b := newBoard()
		a, c := newRecorder("a", b), newRecorder("c", b)
		a.revokeDelay = 9 * time.Second // longer than the 6s session timeout
		a.commitOnRevoke = true
		ra := start(t, addr, topic, group, a, memberOpts{})
		start(t, addr, topic, group, c, memberOpts{})
		eventually(t, 20*time.Second, "two members sharing", func() bool { return balanced(n, a, c) })
		time.Sleep(time.Second) // let a follow-up rebalance settle
		aParts := a.ownedList()
		t.Logf("a owns %v, c owns %v", aParts, c.ownedList())

		t0 := time.Now()
		ra.stop(t)
		took := time.Since(t0)
		if took < 9*time.Second {
			t.Errorf("stop took %s, the revoke was cut short", took)
		}
		a.mu.Lock()
		errs, lost := slices.Clone(a.commitErr), slices.Clone(a.lost)
		a.mu.Unlock()
		if len(errs) == 0 || errs[len(errs)-1] != nil {
			t.Errorf("commit at the end of a long revoke: %v (the member was evicted?)", errs)
		}
		if len(lost) > 0 {
			t.Errorf("a lost %v", lost)
		}
		eventually(t, 10*time.Second, "c owning everything", func() bool { return covers(n, c) })
		c.mu.Lock()
		last := map[int]Partition{}
		for _, p := range c.assigned {
			last[p.ID] = p
		}
		c.mu.Unlock()
		for _, id := range aParts {
			if last[id].Offset != int64(100+id) {
				t.Errorf("c got partition %d at offset %d, want a's commit %d", id, last[id].Offset, 100+id)
			}
		}
		b.check(t)
	})
}
