package ledger

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"syscall"
	"time"

	"github.com/jobctl/jobctl/pkg/backoff"
	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/protocol"
	metadataAPI "github.com/segmentio/kafka-go/protocol/metadata"
	produceAPI "github.com/segmentio/kafka-go/protocol/produce"
	"github.com/segmentio/kafka-go/protocol/rawproduce"
)

// retryPolicy is how long a write keeps trying; it is read from a
// kafka.Writer so Tune keeps its meaning for the settings that still
// apply (MaxAttempts, WriteBackoffMin/Max, WriteTimeout).
type retryPolicy struct {
	attempts               int
	backoffMin, backoffMax time.Duration
	timeout                time.Duration // one produce request
}

func policyOf(kw *kafka.Writer) retryPolicy {
	p := retryPolicy{attempts: kw.MaxAttempts, backoffMin: kw.WriteBackoffMin, backoffMax: kw.WriteBackoffMax, timeout: kw.WriteTimeout}
	// kafka.Writer's own defaults for zero values.
	if p.attempts <= 0 {
		p.attempts = 10
	}
	if p.backoffMin <= 0 {
		p.backoffMin = 100 * time.Millisecond
	}
	if p.backoffMax <= 0 {
		p.backoffMax = time.Second
	}
	if p.timeout <= 0 {
		p.timeout = 10 * time.Second
	}
	return p
}

// backoff is kafka-go's: attempt² x min, at most max.
func (p retryPolicy) backoff(attempt int) time.Duration {
	return min(time.Duration(attempt*attempt)*p.backoffMin, p.backoffMax)
}

// leaderProducer sends records straight to the partition leaders with
// kafka-go's Transport: one produce request per leader carrying every
// partition of the call, sent at once. kafka.Writer, which this replaces,
// looked up the topic's metadata once per message, spawned a batch and a
// timer goroutine per partition and call, and sent one request per
// partition; for `jobctl produce` that was a fifth of its CPU.
type leaderProducer struct {
	transport *kafka.Transport
	addr      net.Addr
	topic     string
}

// partitions returns the topic's partitions as the transport's metadata
// cache has them (refreshed every few seconds, see kafkaconn.Transport).
func (lp *leaderProducer) partitions(ctx context.Context) ([]metadataAPI.ResponsePartition, error) {
	r, err := lp.transport.RoundTrip(ctx, lp.addr, &metadataAPI.Request{TopicNames: []string{lp.topic}})
	if err != nil {
		return nil, fmt.Errorf("reading the metadata of %s: %w", lp.topic, err)
	}
	for _, t := range r.(*metadataAPI.Response).Topics {
		if t.Name == lp.topic {
			if t.ErrorCode != 0 {
				return nil, fmt.Errorf("reading the metadata of %s: %w", lp.topic, kafka.Error(t.ErrorCode))
			}
			return t.Partitions, nil
		}
	}
	return nil, fmt.Errorf("reading the metadata of %s: %w", lp.topic, kafka.UnknownTopicOrPartition)
}

// maxBatchBytes bounds one partition's record batch in a request, as
// kafka.Writer's BatchBytes default did: Kafka refuses a batch above the
// topic's max.message.bytes (1 MiB by default), and a produce request
// carries one batch per partition, so a call with more for one partition
// (big payloads) is sent as several requests, in order.
const maxBatchBytes = 1 << 20

// write sends msgs[i] to partition parts[i] and waits until all in-sync
// replicas have them. Transient failures (a leader moved, not enough
// replicas, a timeout, a broken connection) are retried per partition
// with policy's backoff, as kafka.Writer retried its batches. The error,
// when some partition failed for good, is a kafka.WriteErrors with one
// entry per message (nil for those written). A partition's records go
// out in order: after a batch failed for good, the partition's later
// batches are not sent and fail with the same error.
func (lp *leaderProducer) write(ctx context.Context, policy retryPolicy, msgs []kafka.Message, parts []int32) error {
	if len(msgs) == 0 {
		return nil
	}
	byPart := groupByPartition(parts)
	batches := encodeRecordSets(msgs, byPart, time.Now(), maxBatchBytes)
	failed := make(map[int32]error)
	failedFrom := make(map[int32]int) // index into byPart[p] of the first message not written
	for round := 0; ; round++ {
		sets := make(map[int32][]byte, len(batches))
		for p, bs := range batches {
			if round < len(bs) && failed[p] == nil {
				sets[p] = bs[round].set
			}
		}
		if len(sets) == 0 {
			break
		}
		errs, err := lp.send(ctx, policy, round == 0, sets)
		if err != nil {
			return err
		}
		for p, perr := range errs {
			failed[p] = perr
			failedFrom[p] = batches[p][round].from
		}
	}
	if len(failed) == 0 {
		return nil
	}
	werr := make(kafka.WriteErrors, len(msgs))
	for p, perr := range failed {
		for _, i := range byPart[p][failedFrom[p]:] {
			werr[i] = perr
		}
	}
	return werr
}

// send writes one batch per partition of sets, retrying what failed
// for a transient reason, and returns the partitions that failed for
// good (or ran out of attempts) with their last error. err is the
// context's error, or, on a call's first request, a topic the metadata
// does not have: kafka.Writer failed such a call at once, as a whole.
func (lp *leaderProducer) send(ctx context.Context, policy retryPolicy, first bool, sets map[int32][]byte) (map[int32]error, error) {
	pending := make([]int32, 0, len(sets))
	for p := range sets {
		pending = append(pending, p)
	}
	failed := make(map[int32]error)
	for attempt := 0; len(pending) > 0 && attempt < policy.attempts; attempt++ {
		if attempt > 0 {
			if !backoff.Sleep(ctx, policy.backoff(attempt)) {
				return nil, ctx.Err()
			}
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		results, err := lp.attempt(ctx, policy, first && attempt == 0, sets, pending)
		if err != nil {
			return nil, err
		}
		pending = pending[:0]
		for p, perr := range results {
			switch {
			case perr == nil:
				delete(failed, p)
			case retriable(perr):
				failed[p] = perr
				pending = append(pending, p)
			default:
				failed[p] = perr
			}
		}
	}
	if len(failed) > 0 {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
	}
	return failed, nil
}

// attempt sends the pending partitions once, one request per leader, and
// returns each partition's outcome. A failure to read the topic's
// metadata on a call's first request (no such topic) is returned as err,
// as kafka.Writer returned it; later, it is every partition's outcome.
func (lp *leaderProducer) attempt(ctx context.Context, policy retryPolicy, first bool, sets map[int32][]byte, pending []int32) (map[int32]error, error) {
	meta, err := lp.partitions(ctx)
	if err != nil {
		if first {
			return nil, err
		}
		res := make(map[int32]error, len(pending))
		for _, p := range pending {
			res[p] = err
		}
		return res, nil
	}
	leaders := make(map[int32]int32, len(meta))
	for _, pm := range meta {
		leaders[pm.PartitionIndex] = pm.LeaderID
	}
	res := make(map[int32]error, len(pending))
	byLeader := map[int32][]int32{}
	for _, p := range pending {
		leader, ok := leaders[p]
		switch {
		case !ok:
			// A partition added a moment ago: the metadata catches up
			// within MetadataTTL.
			res[p] = fmt.Errorf("partition %d of %s: %w", p, lp.topic, kafka.UnknownTopicOrPartition)
		case leader < 0:
			res[p] = fmt.Errorf("partition %d of %s: %w", p, lp.topic, kafka.LeaderNotAvailable)
		default:
			byLeader[leader] = append(byLeader[leader], p)
		}
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, ps := range byLeader {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out := lp.produce(ctx, policy, sets, ps)
			mu.Lock()
			for p, perr := range out {
				res[p] = perr
			}
			mu.Unlock()
		}()
	}
	wg.Wait()
	return res, nil
}

// produce sends one request holding partitions ps (one leader's).
func (lp *leaderProducer) produce(ctx context.Context, policy retryPolicy, sets map[int32][]byte, ps []int32) map[int32]error {
	req := &rawproduce.Request{
		Acks:    int16(kafka.RequireAll),
		Timeout: int32(policy.timeout / time.Millisecond),
		Topics:  []rawproduce.RequestTopic{{Topic: lp.topic, Partitions: make([]rawproduce.RequestPartition, len(ps))}},
	}
	for i, p := range ps {
		req.Topics[0].Partitions[i] = rawproduce.RequestPartition{
			Partition: p,
			RecordSet: protocol.RawRecordSet{Reader: bytes.NewReader(sets[p])},
		}
	}
	out := make(map[int32]error, len(ps))
	rctx, cancel := context.WithTimeout(ctx, policy.timeout)
	defer cancel()
	r, err := lp.transport.RoundTrip(rctx, lp.addr, req)
	if err != nil {
		err = fmt.Errorf("writing to %s: %w", lp.topic, err)
		for _, p := range ps {
			out[p] = err
		}
		return out
	}
	for _, t := range r.(*produceAPI.Response).Topics {
		for _, pr := range t.Partitions {
			if pr.ErrorCode == 0 {
				out[pr.Partition] = nil
				continue
			}
			e := error(kafka.Error(pr.ErrorCode))
			if pr.ErrorMessage != "" {
				e = fmt.Errorf("%w: %s", e, pr.ErrorMessage)
			}
			out[pr.Partition] = fmt.Errorf("writing to %s/%d: %w", lp.topic, pr.Partition, e)
		}
	}
	for _, p := range ps {
		if _, ok := out[p]; !ok {
			out[p] = fmt.Errorf("writing to %s/%d: the broker's answer left the partition out: %w", lp.topic, p, kafka.RequestTimedOut)
		}
	}
	return out
}

// retriable is kafka.Writer's rule (a temporary Kafka error or a broken
// connection), plus the transport's routing errors: they mean its
// metadata was a moment behind the cluster's.
func retriable(err error) bool {
	var temp interface{ Temporary() bool }
	if errors.As(err, &temp) && temp.Temporary() {
		return true
	}
	var routing *rawproduce.Error
	if errors.As(err, &routing) {
		return true
	}
	return errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNREFUSED) ||
		errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, syscall.EPIPE) ||
		errors.Is(err, context.DeadlineExceeded)
}

func groupByPartition(parts []int32) map[int32][]int32 {
	byPart := map[int32][]int32{}
	for i, p := range parts {
		byPart[p] = append(byPart[p], int32(i))
	}
	return byPart
}

// recordBatch is one encoded batch of a partition's records: those of
// byPart[p][from:to].
type recordBatch struct {
	set      []byte
	from, to int
}

// encodeRecordSets encodes each partition's records once (retries send
// the same bytes), all in one allocation, cut into batches of at most
// about limit bytes (a record larger than that is a batch of its own,
// for the broker to refuse).
func encodeRecordSets(msgs []kafka.Message, byPart map[int32][]int32, now time.Time, limit int) map[int32][]recordBatch {
	size := 0
	for _, idx := range byPart {
		size += recordSetSize(msgs, idx)
	}
	buf := make([]byte, 0, size)
	out := make(map[int32][]recordBatch, len(byPart))
	for p, idx := range byPart {
		for from := 0; from < len(idx); {
			to, n := from, recordSetSize(nil, nil)
			for to < len(idx) {
				m := recordSetSize(msgs, idx[to:to+1]) - recordSetSize(nil, nil)
				if to > from && n+m > limit {
					break
				}
				n += m
				to++
			}
			start := len(buf)
			buf = appendRecordSet(buf, msgs, idx[from:to], now)
			out[p] = append(out[p], recordBatch{set: buf[start:len(buf):len(buf)], from: from, to: to})
			from = to
		}
	}
	return out
}
