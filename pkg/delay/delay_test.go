package delay

import (
	"encoding/json"
	"strconv"
	"testing"
	"time"

	"github.com/jobctl/jobctl/pkg/job"
	"github.com/jobctl/jobctl/pkg/ledger"
	"github.com/segmentio/kafka-go"
)

func TestTiersMatchTopic(t *testing.T) {
	if len(Tiers) != ledger.DelayPartitions {
		t.Fatalf("%d tiers, the delay topic has %d partitions", len(Tiers), ledger.DelayPartitions)
	}
	if Tiers[0] != 0 {
		t.Fatalf("tier 0 is %v, want 0", Tiers[0])
	}
	for i := 1; i < len(Tiers); i++ {
		if Tiers[i] <= Tiers[i-1] {
			t.Fatalf("tiers not increasing: %v", Tiers)
		}
	}
	if got := Topic("jobs"); got != "jobs.delay" {
		t.Fatalf("Topic = %q", got)
	}
}

func TestTierFor(t *testing.T) {
	for _, tc := range []struct {
		in   time.Duration
		want int
	}{
		{-time.Hour, 0}, {0, 0}, {200 * time.Millisecond, 0}, {999 * time.Millisecond, 0},
		{time.Second, 1}, {1500 * time.Millisecond, 1}, {3 * time.Second, 1}, {5 * time.Second, 2},
		{7 * time.Second, 2}, {40 * time.Second, 3}, {2 * time.Minute, 4}, {11 * time.Minute, 5},
		{time.Hour, 6}, {72 * time.Hour, 6},
	} {
		if got := TierFor(Tiers, tc.in); got != tc.want {
			t.Errorf("TierFor(%v) = %d, want %d", tc.in, got, tc.want)
		}
	}
}

func TestMessageFormat(t *testing.T) {
	now := time.Date(2030, 1, 2, 3, 4, 5, 600_000_000, time.UTC)
	ev := job.Event{JobID: job.NumericID(42), Status: job.StatusNew, Type: "mail", Attempt: 2, Group: "g"}
	for _, tc := range []struct {
		due      time.Duration
		tier     int
		wakeFrom time.Duration // wake_at - now
	}{
		{-time.Second, 0, -time.Second}, // overdue: wakes at once (due_at)
		{300 * time.Millisecond, 0, 300 * time.Millisecond},
		{1500 * time.Millisecond, 1, time.Second},
		{40 * time.Second, 3, 30 * time.Second},
		{3 * time.Hour, 6, time.Hour},
	} {
		due := now.Add(tc.due)
		m, err := message(Tiers, Item{DueAt: due, Partition: 3, Event: ev}, now)
		if err != nil {
			t.Fatal(err)
		}
		if m.Partition != tc.tier || string(m.Key) != "42" {
			t.Errorf("due in %v: partition %d key %q, want tier %d key 42", tc.due, m.Partition, m.Key, tc.tier)
		}
		var raw map[string]json.RawMessage
		if err := json.Unmarshal(m.Value, &raw); err != nil {
			t.Fatal(err)
		}
		for _, k := range []string{"due_at", "wake_at", "partition", "event"} {
			if _, ok := raw[k]; !ok {
				t.Errorf("value has no %q: %s", k, m.Value)
			}
		}
		if len(raw) != 4 {
			t.Errorf("value has extra fields: %s", m.Value)
		}
		it, wake, err := decode(m)
		if err != nil {
			t.Fatal(err)
		}
		if !it.DueAt.Equal(due) || it.Partition != 3 || it.Event.JobID != ev.JobID || it.Event.Attempt != 2 {
			t.Errorf("round trip: %+v", it)
		}
		if want := now.Add(tc.wakeFrom); !wake.Equal(want) {
			t.Errorf("due in %v: wake_at %v, want %v", tc.due, wake, want)
		}
		hdr := ""
		for _, h := range m.Headers {
			if h.Key == HeaderWakeAt {
				hdr = string(h.Value)
			}
		}
		if want := strconv.FormatInt(now.Add(tc.wakeFrom).UnixMilli(), 10); hdr != want {
			t.Errorf("wake_at header %q, want %q", hdr, want)
		}
		if got := wakeOf(m); got.Before(wake) {
			t.Errorf("wakeOf %v is before wake_at %v", got, wake)
		}
	}
}

func TestWakeHeaderRoundsUp(t *testing.T) {
	wake := time.UnixMilli(1000).Add(300 * time.Microsecond)
	if ms := ceilMillis(wake); ms != 1001 {
		t.Fatalf("ceilMillis = %d, want 1001", ms)
	}
}

func TestWakeOfWithoutHeader(t *testing.T) {
	now := time.Now()
	m, err := message(Tiers, Item{DueAt: now.Add(10 * time.Second), Event: job.Event{JobID: job.NumericID(1), Status: job.StatusNew}}, now)
	if err != nil {
		t.Fatal(err)
	}
	m.Headers = nil
	if got, want := wakeOf(m), now.Add(5*time.Second); !got.Equal(want) {
		t.Fatalf("wakeOf = %v, want %v (from the value)", got, want)
	}
	if got := wakeOf(kafka.Message{Value: []byte("garbage")}); !got.IsZero() {
		t.Fatalf("garbage wakes at %v, want at once", got)
	}
}

func TestMessageRejectsBadItems(t *testing.T) {
	if _, err := message(Tiers, Item{Partition: -1, Event: job.Event{JobID: job.NumericID(1), Status: job.StatusNew}}, time.Now()); err == nil {
		t.Error("negative partition accepted")
	}
	if _, err := message(Tiers, Item{Event: job.Event{Status: job.StatusNew}}, time.Now()); err == nil {
		t.Error("event without id accepted")
	}
}
