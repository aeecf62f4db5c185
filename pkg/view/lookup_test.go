package view

import (
	"context"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/jobctl/jobctl/pkg/embedded"
	"github.com/jobctl/jobctl/pkg/job"
	"github.com/jobctl/jobctl/pkg/kafkaconn"
	"github.com/jobctl/jobctl/pkg/ledger"
	"github.com/segmentio/kafka-go"
)

// lifeOf is a job's events as workers write them: retries, a second
// group, a dead run replayed, a cancelled one, depending on i.
func lifeOf(jid job.ID, i int, at time.Time) []job.Event {
	step := func(k int) time.Time { return at.Add(time.Duration(k) * 100 * time.Millisecond) }
	evs := []job.Event{{JobID: jid, Status: job.StatusNew, Type: fmt.Sprint("type-", i%3), Payload: []byte(fmt.Sprintf(`{"n":%d}`, i)), CreatedAt: at, UpdatedAt: at}}
	switch i % 5 {
	case 0: // done at once
		evs = append(evs, job.Event{JobID: jid, Status: job.StatusDone, Group: "g1", Attempt: 1, Worker: "w1", UpdatedAt: step(1), Result: []byte(`"ok"`)})
	case 1: // fails twice, then done
		for a := 1; a <= 2; a++ {
			evs = append(evs,
				job.Event{JobID: jid, Status: job.StatusRunning, Group: "g1", Attempt: a, Worker: "w2", UpdatedAt: step(3*a - 2)},
				job.Event{JobID: jid, Status: job.StatusFailed, Group: "g1", Attempt: a, Worker: "w2", Error: fmt.Sprint("boom ", a), RetryAt: step(3 * a), UpdatedAt: step(3*a - 1)},
				job.Event{JobID: jid, Status: job.StatusNew, Group: "g1", Attempt: a, UpdatedAt: step(3 * a)})
		}
		evs = append(evs, job.Event{JobID: jid, Status: job.StatusDone, Group: "g1", Attempt: 3, Worker: "w2", UpdatedAt: step(7)})
	case 2: // two groups, one still running
		evs = append(evs,
			job.Event{JobID: jid, Status: job.StatusDone, Group: "g1", Attempt: 1, Worker: "w1", UpdatedAt: step(1)},
			job.Event{JobID: jid, Status: job.StatusRunning, Group: "g2", Attempt: 1, Worker: "w3", UpdatedAt: step(2)})
	case 3: // dead, replayed as run 1, done
		evs = append(evs,
			job.Event{JobID: jid, Status: job.StatusDead, Group: "g1", Attempt: 1, Worker: "w1", Error: "fatal", UpdatedAt: step(1)},
			job.Event{JobID: jid, Status: job.StatusNew, Run: 1, UpdatedAt: step(2)},
			job.Event{JobID: jid, Status: job.StatusDone, Group: "g1", Run: 1, Attempt: 1, Worker: "w1", UpdatedAt: step(3)})
	case 4: // cancelled; the event written twice (a producer retry)
		c := job.Event{JobID: jid, Status: job.StatusCancelled, Group: "g1", Attempt: 1, Worker: "w1", UpdatedAt: step(1)}
		evs = append(evs, c, c)
	}
	return evs
}

// TestFindJobMatchesView checks that FindJob returns for a job exactly
// what View.Get returns after a full replay of the same topic.
func TestFindJobMatchesView(t *testing.T) {
	b, err := embedded.Start(embedded.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	conn := &kafkaconn.Conn{Brokers: []string{b.Addr()}, ClientID: "view-test"}
	const topic, parts = "jobs", 3
	resp, err := conn.Client().CreateTopics(ctx, &kafka.CreateTopicsRequest{Topics: []kafka.TopicConfig{{Topic: topic, NumPartitions: parts, ReplicationFactor: 1}}})
	if err != nil || resp.Errors[topic] != nil {
		t.Fatalf("creating topic: %v %v", err, resp)
	}
	w := ledger.NewWriter(conn, topic)
	defer w.Close()
	at := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	var ids []job.ID
	byPart := make([][]job.Event, parts)
	for i := range 400 {
		jid := job.NumericID(int64(1_000_000 + i))
		if i%7 == 0 {
			jid, _ = job.StringID(fmt.Sprintf("job-%03d", i))
		}
		ids = append(ids, jid)
		byPart[i%parts] = append(byPart[i%parts], lifeOf(jid, i, at.Add(time.Duration(i)*time.Second))...)
	}
	for p, evs := range byPart {
		must(t, w.AppendTo(ctx, p, evs...))
	}
	// Records that share a job's key but are not its events: garbage,
	// and an event of another job under that key.
	raw := conn.Writer(topic, nil)
	defer raw.Close()
	other, _ := job.Event{JobID: job.NumericID(42), Status: job.StatusNew, UpdatedAt: at}.Encode()
	must(t, raw.WriteMessages(ctx,
		kafka.Message{Key: []byte(ids[1].String()), Value: []byte("{not json")},
		kafka.Message{Key: []byte(ids[2].String()), Value: other},
	))

	v := New(Options{Conn: conn, Topic: topic})
	rctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- v.Run(rctx) }()
	defer func() { stop(); <-done }()
	must(t, v.WaitCaughtUp(ctx))

	var calls int
	var lastRead, lastTotal int64
	for i, jid := range ids {
		if i%9 != 0 && i > 12 {
			continue // every kind of life, and a sample of the rest
		}
		progress := func(read, total int64) { calls, lastRead, lastTotal = calls+1, read, total }
		got, ok, err := FindJob(ctx, conn, topic, jid.String(), progress)
		if err != nil || !ok {
			t.Fatalf("FindJob(%s) = %v, %v", jid, ok, err)
		}
		want, _ := v.Get(jid.String())
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("FindJob(%s) differs from the view:\n got %+v\nwant %+v", jid, got, want)
		}
		if len(want.History) < 2 {
			t.Fatalf("job %s has history %+v, want its events", jid, want.History)
		}
	}
	if calls == 0 || lastRead != lastTotal || lastTotal == 0 {
		t.Fatalf("progress: %d calls, last %d of %d", calls, lastRead, lastTotal)
	}
	if _, ok, err := FindJob(ctx, conn, topic, "999", nil); ok || err != nil {
		t.Fatalf("FindJob of an unknown job = %v, %v; want not found, no error", ok, err)
	}
	if _, _, err := FindJob(ctx, conn, "no-such-topic", "1", nil); err == nil {
		t.Fatal("FindJob on a missing topic: no error")
	}
}
