package group

import (
	"context"
	"errors"
	"fmt"
	"github.com/jobctl/jobctl/pkg/backoff"
	"sort"
	"time"

	"github.com/segmentio/kafka-go"
)

// Commit stores offsets (partition -> next offset to process, with
// metadata) under the current generation and member id. Partitions the
// member does not own are refused with ErrNotOwned. Errors are returned
// for the caller to retry later; during a rebalance the coordinator
// answers kafka.RebalanceInProgress. Safe to call concurrently with Run.
func (m *Member) Commit(ctx context.Context, offsets map[int]Offset) error {
	if len(offsets) == 0 {
		return nil
	}
	m.mu.Lock()
	id, gen := m.memberID, m.generation
	var notOwned []int
	for p := range offsets {
		if !m.owned[p] {
			notOwned = append(notOwned, p)
		}
	}
	m.mu.Unlock()
	if len(notOwned) > 0 {
		sort.Ints(notOwned)
		return fmt.Errorf("committing offsets of group %q, partitions %v: %w", m.cfg.Group, notOwned, ErrNotOwned)
	}
	commits := make([]kafka.OffsetCommit, 0, len(offsets))
	for p, o := range offsets {
		commits = append(commits, kafka.OffsetCommit{Partition: p, Offset: o.Offset, Metadata: o.Metadata})
	}
	sort.Slice(commits, func(i, j int) bool { return commits[i].Partition < commits[j].Partition })
	resp, err := m.client.OffsetCommit(ctx, &kafka.OffsetCommitRequest{
		GroupID:      m.cfg.Group,
		GenerationID: gen,
		MemberID:     id,
		InstanceID:   m.cfg.InstanceID,
		Topics:       map[string][]kafka.OffsetCommit{m.cfg.Topic: commits},
	})
	if err != nil {
		return fmt.Errorf("committing offsets of group %q: %w", m.cfg.Group, err)
	}
	var errs []error
	for _, p := range resp.Topics[m.cfg.Topic] {
		if p.Error != nil {
			errs = append(errs, fmt.Errorf("partition %d: %w", p.Partition, p.Error))
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("committing offsets of group %q (generation %d): %w", m.cfg.Group, gen, errors.Join(errs...))
	}
	return nil
}

// fetchOffsets reads the committed offsets of newly assigned partitions,
// retrying until ctx (the session) ends.
func (m *Member) fetchOffsets(ctx context.Context, parts []int) ([]Partition, error) {
	b := newRetryWait()
	for {
		out, err := m.fetchOffsetsOnce(ctx, parts)
		if err == nil {
			return out, nil
		}
		d := b.next(err)
		m.log.Warn("reading committed offsets failed, retrying", "error", err, "retry_in", d.Round(time.Millisecond).String())
		if !backoff.Sleep(ctx, d) {
			return nil, err
		}
	}
}

func (m *Member) fetchOffsetsOnce(ctx context.Context, parts []int) ([]Partition, error) {
	resp, err := m.client.OffsetFetch(ctx, &kafka.OffsetFetchRequest{
		GroupID: m.cfg.Group,
		Topics:  map[string][]int{m.cfg.Topic: parts},
	})
	if err != nil {
		return nil, fmt.Errorf("reading committed offsets of group %q: %w", m.cfg.Group, err)
	}
	if resp.Error != nil {
		return nil, fmt.Errorf("reading committed offsets of group %q: %w", m.cfg.Group, resp.Error)
	}
	got := map[int]kafka.OffsetFetchPartition{}
	for _, p := range resp.Topics[m.cfg.Topic] {
		if p.Error != nil {
			return nil, fmt.Errorf("reading committed offset of group %q partition %d: %w", m.cfg.Group, p.Partition, p.Error)
		}
		got[p.Partition] = p
	}
	out := make([]Partition, 0, len(parts))
	for _, id := range parts {
		p, ok := got[id]
		if !ok {
			out = append(out, Partition{ID: id, Offset: -1})
			continue
		}
		out = append(out, Partition{ID: id, Offset: p.CommittedOffset, Metadata: p.Metadata})
	}
	return out, nil
}
