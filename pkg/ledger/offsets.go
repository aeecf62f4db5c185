package ledger

import (
	"context"
	"fmt"

	"github.com/segmentio/kafka-go"
)

// ListOffsets returns the first (which = kafka.FirstOffset) or the end
// (kafka.LastOffset) offset of each of topic's partitions parts, one kind
// per request: Kafka refuses a partition twice in one request, and
// kafka-go files the answer under FirstOffset or LastOffset by the
// timestamp the broker echoes, which brokers do not agree on, so the
// field that changed from its placeholder is the answer.
func ListOffsets(ctx context.Context, client *kafka.Client, topic string, parts []int, which int64) (map[int]int64, error) {
	reqs := make([]kafka.OffsetRequest, len(parts))
	for i, p := range parts {
		reqs[i] = kafka.OffsetRequest{Partition: p, Timestamp: which}
	}
	resp, err := client.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{topic: reqs}})
	if err != nil {
		return nil, fmt.Errorf("listing offsets of topic %s: %w", topic, err)
	}
	out := make(map[int]int64, len(parts))
	for _, po := range resp.Topics[topic] {
		if po.Error != nil {
			return nil, fmt.Errorf("listing offsets of %s/%d: %w", topic, po.Partition, po.Error)
		}
		off := po.LastOffset
		if which == kafka.FirstOffset {
			// Placeholders: FirstOffset 0, LastOffset -1.
			off = po.FirstOffset
			if po.LastOffset >= 0 {
				off = po.LastOffset
			}
		} else if po.FirstOffset >= 0 {
			// Placeholders: FirstOffset -1, LastOffset 0.
			off = po.FirstOffset
		}
		out[po.Partition] = off
	}
	for _, p := range parts {
		if _, ok := out[p]; !ok {
			return nil, fmt.Errorf("listing offsets of topic %s: no answer for partition %d", topic, p)
		}
	}
	return out, nil
}
