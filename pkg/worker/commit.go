package worker

import (
	"errors"

	"context"
	"github.com/jobctl/jobctl/pkg/backoff"
	"time"

	"github.com/jobctl/jobctl/pkg/group"
)

// commitLoop commits the completed offsets of every owned partition each
// CommitInterval until ctx ends; giving a partition up commits it once
// more (Revoked).
func (w *Worker) commitLoop(ctx context.Context) {
	t := time.NewTicker(w.cfg.CommitInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			w.commit(ctx, w.ownedPartitions(), false)
		}
	}
}

// commit sends the contiguous low-water mark of each partition in ps that
// moved since its last commit. final marks a hand-over: the metadata then
// says whether jobs finished above the mark (so the next owner looks
// ahead for them) or not. Failures are logged; the next commit carries
// the same offsets (the tracker never moves backwards). A final commit is
// the last chance for these offsets, so it is tried a few times.
func (w *Worker) commit(ctx context.Context, ps []*partition, final bool) {
	offsets := map[int]group.Offset{}
	for _, p := range ps {
		if p.lost.Load() {
			continue
		}
		c := p.tracker.Committable()
		off, moved := c[p.id]
		if !moved {
			if !final {
				continue
			}
			off = p.tracker.LowWater(p.id)
			if off < 0 {
				continue
			}
		}
		offsets[p.id] = group.Offset{Offset: off, Metadata: p.commitMetadata(final, off)}
	}
	if len(offsets) == 0 {
		return
	}
	tries := 1
	if final {
		tries = 5
	}
	for try := 1; ; try++ {
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err := w.member.Commit(cctx, offsets)
		cancel()
		if err == nil {
			break
		}
		if try >= tries || errors.Is(err, group.ErrNotOwned) || !backoff.Sleep(ctx, 200*time.Millisecond) {
			w.log.Warn("committing offsets failed", "partitions", len(offsets), "final", final, "err", err)
			return
		}
	}
	plain := make(map[int]int64, len(offsets))
	for id, o := range offsets {
		plain[id] = o.Offset
	}
	for _, p := range ps {
		p.tracker.MarkCommitted(plain)
	}
	w.log.Debug("committed offsets", "offsets", plain)
}

// commitMetadata is the metadata of a commit of p at off: clean only for
// a hand-over (final) when nothing this owner finished lies above off
// and off is past what earlier owners may have finished (cleanFrom).
func (p *partition) commitMetadata(final bool, off int64) string {
	if final && !p.tracker.DoneAbove(p.id) && off >= p.cleanFrom.Load() {
		return metaClean
	}
	return metaOpen
}
