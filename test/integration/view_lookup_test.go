package integration

import (
	"context"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/jobctl/jobctl/pkg/job"
	"github.com/jobctl/jobctl/pkg/kafkaconn"
	"github.com/jobctl/jobctl/pkg/ledger"
	"github.com/jobctl/jobctl/pkg/view"
)

// TestViewFindJobMatchesRebuild: view.FindJob (one pass over the topic,
// decoding only the job's records) returns for a job exactly what a view
// rebuilt from the whole topic returns, on a topic written in many small
// batches (fetches start inside record batches) with retries, two groups
// and replays.
func TestViewFindJobMatchesRebuild(t *testing.T) {
	forEachBroker(t, func(t *testing.T, tgt Target) {
		const parts = 3
		topic := createTopic(t, tgt, parts)
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		conn := &kafkaconn.Conn{Brokers: tgt.Brokers, ClientID: "view-lookup-test"}
		w := ledger.NewWriter(conn, topic)
		defer w.Close()
		at := time.Now().UTC().Add(-time.Hour)
		var ids []string
		for round := range 10 {
			byPart := make([][]job.Event, parts)
			for i := range 60 {
				n := round*60 + i
				jid := job.NumericID(int64(7_000_000 + n))
				ids = append(ids, jid.String())
				t0 := at.Add(time.Duration(n) * time.Second)
				evs := []job.Event{{JobID: jid, Status: job.StatusNew, Type: "mock", CreatedAt: t0, UpdatedAt: t0}}
				if n%3 == 0 {
					evs = append(evs,
						job.Event{JobID: jid, Status: job.StatusRunning, Group: "a", Attempt: 1, Worker: "w1", UpdatedAt: t0.Add(time.Second)},
						job.Event{JobID: jid, Status: job.StatusFailed, Group: "a", Attempt: 1, Worker: "w1", Error: "boom", RetryAt: t0.Add(3 * time.Second), UpdatedAt: t0.Add(2 * time.Second)},
						job.Event{JobID: jid, Status: job.StatusNew, Group: "a", Attempt: 1, UpdatedAt: t0.Add(3 * time.Second)})
				}
				evs = append(evs, job.Event{JobID: jid, Status: job.StatusDone, Group: "a", Attempt: 1 + boolInt(n%3 == 0), Worker: "w2", UpdatedAt: t0.Add(4 * time.Second)})
				if n%4 == 0 {
					evs = append(evs, job.Event{JobID: jid, Status: job.StatusDone, Group: "b", Attempt: 1, Worker: "w3", UpdatedAt: t0.Add(5 * time.Second)})
				}
				byPart[n%parts] = append(byPart[n%parts], evs...)
			}
			for p, evs := range byPart {
				if err := w.AppendTo(ctx, p, evs...); err != nil {
					t.Fatalf("writing events: %v", err)
				}
			}
		}

		v := view.New(view.Options{Conn: conn, Topic: topic})
		rctx, stop := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- v.Run(rctx) }()
		defer func() { stop(); <-done }()
		if err := v.WaitCaughtUp(ctx); err != nil {
			t.Fatal(err)
		}
		if v.Len() != len(ids) {
			t.Fatalf("view holds %d jobs, want %d", v.Len(), len(ids))
		}
		for i, id := range ids {
			if i%37 != 0 && i != len(ids)-1 {
				continue
			}
			got, ok, err := view.FindJob(ctx, conn, topic, id, nil)
			if err != nil || !ok {
				t.Fatalf("FindJob(%s) = %v, %v", id, ok, err)
			}
			want, _ := v.Get(id)
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("FindJob(%s) differs from the rebuilt view:\n got %s\nwant %s", id, fmt.Sprintf("%+v", got), fmt.Sprintf("%+v", want))
			}
		}
	})
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}
