package control

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/jobctl/jobctl/pkg/backoff"
	"github.com/jobctl/jobctl/pkg/kafkaconn"
	"github.com/jobctl/jobctl/pkg/ledger"
	"github.com/segmentio/kafka-go"
)

// TailOptions are a Tail's optional settings.
type TailOptions struct {
	Logger *slog.Logger // nil discards
	// OnChange is called (from the reading goroutine) after each record
	// is applied to the state.
	OnChange func(Record)
}

// Tail keeps the control topic's State: Run reads the whole topic, then
// follows it; a record written is in the state well within a second
// (one fetch round trip). A process needs one Tail.
type Tail struct {
	*State
	conn  *kafkaconn.Conn
	topic string
	opts  TailOptions
	log   *slog.Logger

	caughtUp     chan struct{}
	caughtUpOnce sync.Once

	mu      sync.Mutex
	changed chan struct{} // closed and replaced at every change
}

// NewTail returns a tail of jobTopic's control topic; its state is empty
// until Run reads the topic.
func NewTail(conn *kafkaconn.Conn, jobTopic string, opts TailOptions) *Tail {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Tail{State: newState(), conn: conn, topic: ledger.ControlTopic(jobTopic), opts: opts, log: log,
		caughtUp: make(chan struct{}), changed: make(chan struct{})}
}

// CaughtUp is closed once the records present when Run started are in
// the state.
func (t *Tail) CaughtUp() <-chan struct{} { return t.caughtUp }

// Changed returns a channel closed at the next change of the state.
func (t *Tail) Changed() <-chan struct{} {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.changed
}

// Apply merges r as if it were read from the topic: the state changes,
// Changed's channel closes, OnChange is called. Run uses it; tests may.
func (t *Tail) Apply(r Record) {
	t.State.Apply(r)
	t.mu.Lock()
	close(t.changed)
	t.changed = make(chan struct{})
	t.mu.Unlock()
	if t.opts.OnChange != nil {
		t.opts.OnChange(r)
	}
}

// Run reads the control topic until ctx ends. A topic that does not exist
// yet (nothing was ever controlled, no worker ran) is waited for.
func (t *Tail) Run(ctx context.Context) error {
	client := t.conn.Client()
	var first, end int64
	for attempt := 0; ; attempt++ {
		var err error
		first, end, err = t.bounds(ctx, client)
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			return nil
		}
		if attempt%30 == 0 {
			t.log.Warn("waiting for the control topic", "topic", t.topic, "err", err)
		}
		if !backoff.Sleep(ctx, time.Second) {
			return nil
		}
	}
	if first >= end {
		t.markCaughtUp()
	}
	r := kafka.NewReader(kafka.ReaderConfig{
		Brokers:        t.conn.Brokers,
		Dialer:         t.conn.Dialer(),
		Topic:          t.topic,
		Partition:      0,
		MinBytes:       1,
		MaxBytes:       4 << 20,
		MaxWait:        500 * time.Millisecond,
		ReadBackoffMin: 100 * time.Millisecond,
		ReadBackoffMax: time.Second,
		ErrorLogger: kafka.LoggerFunc(func(msg string, args ...any) {
			t.log.Debug(fmt.Sprintf(msg, args...), "component", "control-reader")
		}),
	})
	defer r.Close()
	if err := r.SetOffset(kafka.FirstOffset); err != nil {
		return err
	}
	for {
		m, err := r.FetchMessage(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			t.log.Warn("reading the control topic; retrying", "topic", t.topic, "err", err)
			if !backoff.Sleep(ctx, time.Second) {
				return nil
			}
			continue
		}
		if rec, err := decode(m.Value); err != nil {
			t.log.Warn("skipping a control record", "offset", m.Offset, "err", err)
		} else {
			t.Apply(rec)
		}
		if m.Offset+1 >= end || r.Lag() == 0 {
			t.markCaughtUp()
		}
	}
}

func (t *Tail) markCaughtUp() { t.caughtUpOnce.Do(func() { close(t.caughtUp) }) }

// bounds returns the first and end offsets of partition 0.
func (t *Tail) bounds(ctx context.Context, client *kafka.Client) (first, end int64, err error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	resp, err := client.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{
		t.topic: {kafka.FirstOffsetOf(0), kafka.LastOffsetOf(0)},
	}})
	if err != nil {
		return 0, 0, fmt.Errorf("listing offsets of topic %q: %w", t.topic, err)
	}
	for _, po := range resp.Topics[t.topic] {
		if po.Partition != 0 {
			continue
		}
		if po.Error != nil {
			return 0, 0, fmt.Errorf("listing offsets of topic %q: %w", t.topic, po.Error)
		}
		return po.FirstOffset, po.LastOffset, nil
	}
	return 0, 0, fmt.Errorf("listing offsets of topic %q: no answer for partition 0", t.topic)
}
