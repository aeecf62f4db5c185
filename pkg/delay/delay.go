// Package delay keeps jobs that must run later (retry backoff, and
// scheduled jobs) in Kafka, in the topic `<jobTopic>.delay`, and releases
// them into the job topic when they are due. Nothing waits in process
// memory: a restart of every worker loses no delayed job.
//
// The delay topic has one partition per tier of fixed delay (Tiers). A
// record due in r is written to the largest tier not above r and wakes
// after that tier's delay; every record of a tier partition waits about as
// long, so its head record is (nearly) always the next to wake and a
// releaser only ever waits for the head. A record that wakes before it is
// due is written again to the tier for the time left: a timing wheel made
// of topics. Tier 0 holds records due in less than Tiers[1]; they wake
// exactly at their due time.
//
// Delivery is at least once: after a crash, or when a generation of the
// releasers' consumer group ends between a release and its commit, a record
// can be released twice. Workers detect the duplicate NEW (docs/runtime.md,
// "Duplicate detection").
package delay

import (
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/jobctl/jobctl/pkg/job"
	"github.com/jobctl/jobctl/pkg/ledger"
	"github.com/segmentio/kafka-go"
)

// tierDurations backs Tiers; its length is checked against the topic's
// partition count at compile time.
var tierDurations = [...]time.Duration{0, time.Second, 5 * time.Second, 30 * time.Second, 2 * time.Minute, 10 * time.Minute, time.Hour}

// The delay topic is created by ledger.EnsureAuxTopics with one partition
// per tier: these fail to compile if the counts differ.
var (
	_ [len(tierDurations) - ledger.DelayPartitions]struct{}
	_ [ledger.DelayPartitions - len(tierDurations)]struct{}
)

// Tiers are the delays of the delay topic's partitions: partition i holds
// records that wait Tiers[i]. Writers and Releasers copy it when they are
// built; tests may shorten the durations first, but the length is the
// topic's partition count and must not change.
var Tiers = tierDurations[:]

// HeaderWakeAt is the record header with the record's wake time in Unix
// milliseconds (rounded up), so a releaser can wait without decoding.
const HeaderWakeAt = "wake_at"

// Topic is the delay topic of jobTopic.
func Topic(jobTopic string) string { return ledger.DelayTopic(jobTopic) }

// Item is a job event to write to the job topic later.
type Item struct {
	// DueAt is when the event is released, never before.
	DueAt time.Time
	// Partition is the job-topic partition to release the event into:
	// the partition of the job's NEW, so its history stays in one place.
	Partition int
	Event     job.Event
}

// TierFor returns the tier a record due in remaining goes to with tiers:
// the largest tier not above remaining, 0 when it is due or nearly so.
func TierFor(tiers []time.Duration, remaining time.Duration) int {
	tier := 0
	for i, d := range tiers {
		if d <= remaining {
			tier = i
		}
	}
	return tier
}

// wakeAt is when a record written at now into tier wakes: after the tier's
// delay, or at its due time if that is sooner. Tier 0 waits exactly until
// due: waking earlier would only write it to tier 0 again.
func wakeAt(tiers []time.Duration, tier int, due, now time.Time) time.Time {
	if tier == 0 {
		return due
	}
	if w := now.Add(tiers[tier]); w.Before(due) {
		return w
	}
	return due
}

// record is the JSON value of a delay-topic record (docs/runtime.md).
type record struct {
	DueAt     time.Time       `json:"due_at"`
	WakeAt    time.Time       `json:"wake_at"`
	Partition int             `json:"partition"`
	Event     json.RawMessage `json:"event"`
}

// message encodes it as a record of tier written at now.
func message(tiers []time.Duration, it Item, now time.Time) (kafka.Message, error) {
	if it.Partition < 0 {
		return kafka.Message{}, fmt.Errorf("delaying job %s: partition %d is negative", it.Event.JobID, it.Partition)
	}
	ev, err := it.Event.Encode()
	if err != nil {
		return kafka.Message{}, fmt.Errorf("delaying job %s: %w", it.Event.JobID, err)
	}
	tier := TierFor(tiers, it.DueAt.Sub(now))
	wake := wakeAt(tiers, tier, it.DueAt, now)
	value, err := json.Marshal(record{DueAt: it.DueAt.UTC(), WakeAt: wake.UTC(), Partition: it.Partition, Event: ev})
	if err != nil {
		return kafka.Message{}, fmt.Errorf("delaying job %s: %w", it.Event.JobID, err)
	}
	return kafka.Message{
		Key:       it.Event.Key(),
		Value:     value,
		Partition: tier,
		Headers:   []kafka.Header{{Key: HeaderWakeAt, Value: strconv.AppendInt(nil, ceilMillis(wake), 10)}},
	}, nil
}

func ceilMillis(t time.Time) int64 {
	ms := t.UnixMilli()
	if time.UnixMilli(ms).Before(t) {
		ms++
	}
	return ms
}

// decode reads a delay record; an error means it is not one.
func decode(m kafka.Message) (Item, time.Time, error) {
	var r record
	if err := json.Unmarshal(m.Value, &r); err != nil {
		return Item{}, time.Time{}, fmt.Errorf("record %s/%d@%d is not a delayed job: %w", m.Topic, m.Partition, m.Offset, err)
	}
	if r.DueAt.IsZero() || len(r.Event) == 0 {
		return Item{}, time.Time{}, fmt.Errorf("record %s/%d@%d is not a delayed job: due_at or event missing", m.Topic, m.Partition, m.Offset)
	}
	if r.Partition < 0 {
		return Item{}, time.Time{}, fmt.Errorf("record %s/%d@%d: partition %d is negative", m.Topic, m.Partition, m.Offset, r.Partition)
	}
	e, err := job.Decode(r.Event)
	if err != nil {
		return Item{}, time.Time{}, fmt.Errorf("record %s/%d@%d holds no valid job event: %w", m.Topic, m.Partition, m.Offset, err)
	}
	return Item{DueAt: r.DueAt, Partition: r.Partition, Event: e}, r.WakeAt, nil
}

// wakeOf is when m wakes, read from its header; a record without one is
// decoded, and one that cannot be decoded wakes now (and is then skipped).
func wakeOf(m kafka.Message) time.Time {
	for _, h := range m.Headers {
		if h.Key == HeaderWakeAt {
			if ms, err := strconv.ParseInt(string(h.Value), 10, 64); err == nil {
				return time.UnixMilli(ms)
			}
		}
	}
	if it, wake, err := decode(m); err == nil {
		if wake.IsZero() {
			return it.DueAt
		}
		return wake
	}
	return time.Time{}
}

// toPartition writes a message to the partition set on it; kafka-go's
// Writer otherwise ignores Message.Partition.
type toPartition struct{}

func (toPartition) Balance(m kafka.Message, _ ...int) int { return m.Partition }
