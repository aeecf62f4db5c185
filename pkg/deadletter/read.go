package deadletter

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/jobctl/jobctl/pkg/kafkaconn"
	"github.com/jobctl/jobctl/pkg/ledger"
	"github.com/segmentio/kafka-go"
)

// ErrTopicNotFound means the dead-letter topic does not exist yet: no job
// has died (`jobctl consume` creates it).
var ErrTopicNotFound = ledger.ErrTopicNotFound

// Entry is a letter as read from the dead-letter topic.
type Entry struct {
	Letter
	// Partition and Offset are where the letter is in the DLQ.
	Partition int   `json:"dlq_partition"`
	Offset    int64 `json:"dlq_offset"`
	// Replayed is true when a replay marker for this job id and run
	// exists; ReplayedAt is when it was written.
	Replayed   bool      `json:"replayed"`
	ReplayedAt time.Time `json:"replayed_at,omitzero"`
}

// List reads the whole dead-letter topic of jobTopic, as far as its end
// when List was called, and returns the job and poison letters that pass
// f, oldest first (by dead_at, then position), at most f.Limit. A missing
// topic is an error wrapping ErrTopicNotFound.
func List(ctx context.Context, conn *kafkaconn.Conn, jobTopic string, f Filter) ([]Entry, error) {
	if err := f.Check(); err != nil {
		return nil, err
	}
	all, err := readAll(ctx, conn, Topic(jobTopic))
	if err != nil {
		return nil, err
	}
	return filterEntries(all, f), nil
}

// filterEntries keeps the entries f selects, at most f.Limit.
func filterEntries(all []Entry, f Filter) []Entry {
	out := []Entry{}
	for _, e := range all {
		if !f.Match(e.Letter) {
			continue
		}
		if f.Limit > 0 && len(out) >= f.Limit {
			break
		}
		out = append(out, e)
	}
	return out
}

// collate turns decoded records into entries: markers are folded into
// the Replayed flag of the letters of their job id and run, and the
// letters are sorted oldest first.
func collate(records []Entry) []Entry {
	type runKey struct {
		id  string
		run int
	}
	replayed := map[runKey]time.Time{}
	var letters []Entry
	for _, r := range records {
		if r.Kind == KindReplayed {
			k := runKey{r.JobID.String(), r.Run}
			if at, ok := replayed[k]; !ok || r.ReplayedAt.Before(at) {
				replayed[k] = r.ReplayedAt
			}
			continue
		}
		letters = append(letters, r)
	}
	for i := range letters {
		e := &letters[i]
		if e.Kind != KindJob {
			continue
		}
		if at, ok := replayed[runKey{e.JobID.String(), e.Run}]; ok {
			e.Replayed, e.ReplayedAt = true, at
		}
	}
	slices.SortStableFunc(letters, func(a, b Entry) int {
		return cmp.Or(a.DeadAt.Compare(b.DeadAt), cmp.Compare(a.Partition, b.Partition), cmp.Compare(a.Offset, b.Offset))
	})
	return letters
}

// readAll reads every record of topic up to the end offsets it had at
// the start and returns the collated entries. Records that are not
// letters are skipped.
func readAll(ctx context.Context, conn *kafkaconn.Conn, topic string) ([]Entry, error) {
	client := conn.Client()
	defer func() {
		if t, ok := client.Transport.(*kafka.Transport); ok {
			t.CloseIdleConnections()
		}
	}()
	n, err := ledger.Partitions(ctx, client, topic)
	if err != nil {
		return nil, err
	}
	parts := make([]int, n)
	for i := range parts {
		parts[i] = i
	}
	first, err := ledger.ListOffsets(ctx, client, topic, parts, kafka.FirstOffset)
	if err != nil {
		return nil, err
	}
	end, err := ledger.ListOffsets(ctx, client, topic, parts, kafka.LastOffset)
	if err != nil {
		return nil, err
	}
	var (
		mu      sync.Mutex
		records []Entry
		errs    []error
		wg      sync.WaitGroup
	)
	for _, p := range parts {
		if first[p] >= end[p] {
			continue // empty: caught up at once
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			got, err := readPartition(ctx, conn, topic, p, first[p], end[p])
			mu.Lock()
			defer mu.Unlock()
			records = append(records, got...)
			if err != nil {
				errs = append(errs, err)
			}
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return collate(records), nil
}

// readPartition reads partition p from offset from until end.
func readPartition(ctx context.Context, conn *kafkaconn.Conn, topic string, p int, from, end int64) ([]Entry, error) {
	r := kafka.NewReader(kafka.ReaderConfig{
		Brokers:   conn.Brokers,
		Dialer:    conn.Dialer(),
		Topic:     topic,
		Partition: p,
		MinBytes:  1,
		MaxBytes:  8 << 20,
		// MaxWait bounds how long Close waits for an in-flight fetch.
		MaxWait:        200 * time.Millisecond,
		ReadBackoffMin: 50 * time.Millisecond,
		ReadBackoffMax: time.Second,
	})
	defer r.Close()
	if err := r.SetOffset(from); err != nil {
		return nil, fmt.Errorf("reading %s/%d: %w", topic, p, err)
	}
	var out []Entry
	for {
		m, err := r.FetchMessage(ctx)
		if err != nil {
			return out, fmt.Errorf("reading %s/%d at offset %d of %d: %w", topic, p, from, end, err)
		}
		from = m.Offset + 1
		if l, err := Decode(m.Value); err == nil {
			e := Entry{Letter: l, Partition: m.Partition, Offset: m.Offset}
			if l.Kind == KindReplayed {
				e.ReplayedAt = m.Time
			}
			out = append(out, e)
		}
		// Lag 0: the rest up to end (if any) are not records a reader
		// gets, such as transaction markers.
		if m.Offset+1 >= end || r.Lag() == 0 {
			return out, nil
		}
	}
}
