package deadletter

import (
	"context"
	"fmt"

	"github.com/jobctl/jobctl/pkg/kafkaconn"
	"github.com/segmentio/kafka-go"
)

// Writer writes letters to the dead-letter topic of one job topic. Every
// write is acknowledged by all in-sync replicas before it returns.
type Writer struct {
	w *kafka.Writer
}

// NewWriter returns a writer to Topic(jobTopic). Letters are placed by
// key (murmur2, as the Java client), so a job's letters and its replay
// markers share a partition.
func NewWriter(conn *kafkaconn.Conn, jobTopic string) *Writer {
	return &Writer{w: conn.Writer(Topic(jobTopic), &kafka.Murmur2Balancer{})}
}

// Write writes letters, each cut to fit one record if it is too big (see
// Fit). An error is transient (the broker, the network): the caller
// retries. A letter that is not valid (a job letter without a job id) is
// a programming error and fails before anything is written.
func (w *Writer) Write(ctx context.Context, letters ...Letter) error {
	if len(letters) == 0 {
		return nil
	}
	msgs := make([]kafka.Message, len(letters))
	for i, l := range letters {
		m, err := Message(l)
		if err != nil {
			return err
		}
		msgs[i] = m
	}
	if err := w.w.WriteMessages(ctx, msgs...); err != nil {
		return fmt.Errorf("writing %d dead letter(s) to %s: %w", len(msgs), w.w.Topic, err)
	}
	return nil
}

// Close flushes and closes the writer and its connections.
func (w *Writer) Close() error {
	err := w.w.Close()
	// kafka.Writer.Close only closes its default transport, not ours.
	if t, ok := w.w.Transport.(*kafka.Transport); ok {
		t.CloseIdleConnections()
	}
	return err
}
