package delay

import (
	"context"
	"slices"
	"time"

	"github.com/jobctl/jobctl/pkg/kafkaconn"
	"github.com/segmentio/kafka-go"
)

// Writer puts items into the delay topic. Every write is acknowledged by
// all in-sync replicas before Schedule returns.
type Writer struct {
	w     *kafka.Writer
	tiers []time.Duration
}

// NewWriter returns a writer to jobTopic's delay topic.
func NewWriter(conn *kafkaconn.Conn, jobTopic string) *Writer {
	return &Writer{w: conn.Writer(Topic(jobTopic), toPartition{}), tiers: slices.Clone(Tiers)}
}

// Schedule writes items to the tiers for their time left. When only some
// fail, the error is a kafka.WriteErrors with one entry per item, as with
// ledger.Writer. A cancelled ctx can leave items written anyway.
func (w *Writer) Schedule(ctx context.Context, items ...Item) error {
	if len(items) == 0 {
		return nil
	}
	now := time.Now()
	msgs := make([]kafka.Message, len(items))
	for i, it := range items {
		m, err := message(w.tiers, it, now)
		if err != nil {
			return err
		}
		msgs[i] = m
	}
	return w.w.WriteMessages(ctx, msgs...)
}

// Close flushes and closes the writer.
func (w *Writer) Close() error {
	err := w.w.Close()
	// kafka.Writer.Close only closes its default transport, not ours.
	if t, ok := w.w.Transport.(*kafka.Transport); ok {
		t.CloseIdleConnections()
	}
	return err
}
