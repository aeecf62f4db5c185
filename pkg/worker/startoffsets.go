package worker

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/jobctl/jobctl/pkg/group"
	"github.com/jobctl/jobctl/pkg/ledger"
	"github.com/segmentio/kafka-go"
)

// Where a group starts reading a partition it has no committed offset on
// (Config.From).
const (
	// FromEarliest reads every record still in the partition: a new
	// group sees every job of the topic (the seed's broadcast behaviour).
	FromEarliest = "earliest"
	// FromLatest starts after the partition's last record when the group
	// first gets it: only jobs produced from then on run.
	FromLatest = "latest"
)

// freshStarts returns where each partition of parts without a committed
// offset starts, and says so once per process: how many partitions, from
// where, how many records that is. A group that starts from the latest
// record starts at the end offset read here, and commits it at the next
// commit even before any job arrives, so that a restart does not move its
// start further on and skip what was produced in between.
func (w *Worker) freshStarts(ctx context.Context, parts []group.Partition) map[int]int64 {
	var fresh []int
	for _, gp := range parts {
		if gp.Offset < 0 {
			fresh = append(fresh, gp.ID)
		}
	}
	if len(fresh) == 0 {
		return nil
	}
	latest := w.cfg.From == FromLatest
	lctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	ranges, err := w.offsetRanges(lctx, fresh)
	cancel()
	starts := make(map[int]int64, len(fresh))
	var records int64
	for _, id := range fresh {
		r, ok := ranges[id]
		switch {
		case !ok && latest:
			starts[id] = kafka.LastOffset
		case !ok:
			starts[id] = kafka.FirstOffset
		case latest:
			starts[id] = r[1]
		default:
			starts[id] = r[0]
		}
		records += r[1] - r[0]
	}
	if w.announced.CompareAndSwap(false, true) {
		where := fmt.Sprintf("no committed offsets on %d of its %d assigned partitions", len(fresh), len(parts))
		if len(fresh) == len(parts) {
			where = "no committed offsets"
		}
		count := fmt.Sprintf("%s records", thousands(records))
		if err != nil {
			count = "record count unknown: " + err.Error()
		}
		msg := fmt.Sprintf("group %s has %s: starting from the earliest record of %d partitions (%s to read; --from latest would skip them)", w.cfg.Group, where, len(fresh), count)
		if latest {
			msg = fmt.Sprintf("group %s has %s: starting after the latest record of %d partitions (--from latest: %s already there are skipped; only jobs produced from now on run)", w.cfg.Group, where, len(fresh), count)
		}
		w.log.Info(msg, "partitions", fresh, "from", w.from(), "records", records)
	}
	return starts
}

func (w *Worker) from() string {
	if w.cfg.From == FromLatest {
		return FromLatest
	}
	return FromEarliest
}

// offsetRanges returns the first and end offset of each partition in ids.
func (w *Worker) offsetRanges(ctx context.Context, ids []int) (map[int][2]int64, error) {
	first, err := ledger.ListOffsets(ctx, w.client, w.cfg.Topic, ids, kafka.FirstOffset)
	if err != nil {
		return nil, err
	}
	end, err := ledger.ListOffsets(ctx, w.client, w.cfg.Topic, ids, kafka.LastOffset)
	if err != nil {
		return nil, err
	}
	out := make(map[int][2]int64, len(ids))
	for _, id := range ids {
		out[id] = [2]int64{first[id], end[id]}
	}
	return out, nil
}

// startAt makes offset where a partition without a committed offset
// resumes while nothing of it has been fetched, so the next commit names
// it.
func (t *OffsetTracker) startAt(partition int, offset int64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if p := t.parts[partition]; p != nil && p.last < 0 && offset >= 0 {
		p.next = offset
	}
}

// thousands writes n with comma separators: 1,234,567.
func thousands(n int64) string {
	s := strconv.FormatInt(n, 10)
	if n < 0 {
		return "-" + thousands(-n)
	}
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}
