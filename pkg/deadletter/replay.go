package deadletter

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/jobctl/jobctl/pkg/job"
	"github.com/jobctl/jobctl/pkg/kafkaconn"
	"github.com/jobctl/jobctl/pkg/ledger"
	"golang.org/x/time/rate"
)

// ReplayRequest says which dead jobs to replay: the jobs IDs, or with All
// every dead job; in both cases only letters Filter selects. Filter.Limit
// caps how many jobs are replayed.
type ReplayRequest struct {
	IDs    []job.ID
	All    bool
	Filter Filter
	// DryRun writes nothing and reports what would be replayed.
	DryRun bool
	// Rate caps the jobs replayed per second (0 = no cap).
	Rate float64
	// Now stamps the NEW events (default time.Now).
	Now func() time.Time
}

// Check says what is wrong with r, if anything.
func (r ReplayRequest) Check() error {
	switch {
	case len(r.IDs) == 0 && !r.All:
		return errors.New("nothing to replay: give job ids, or all")
	case len(r.IDs) > 0 && r.All:
		return errors.New("give job ids or all, not both")
	case r.Rate < 0 || math.IsNaN(r.Rate) || math.IsInf(r.Rate, 0):
		return fmt.Errorf("rate %v: want jobs per second, 0 for no limit", r.Rate)
	}
	for _, id := range r.IDs {
		if id.IsZero() {
			return errors.New("an empty job id")
		}
	}
	return r.Filter.Check()
}

// ReplayItem is one dead job (or poison record) and what replay did.
type ReplayItem struct {
	JobID job.ID `json:"job_id,omitzero"`
	Kind  Kind   `json:"kind"`
	Type  string `json:"type,omitempty"`
	// Run is the dead run; NewRun the run the replay starts.
	Run    int    `json:"run"`
	NewRun int    `json:"new_run,omitempty"`
	Origin Origin `json:"origin"`
	// Why says why a job was skipped.
	Why        string    `json:"why,omitempty"`
	ReplayedAt time.Time `json:"replayed_at,omitzero"`
}

// ReplayResult is what a replay did (or, with DryRun, would do).
type ReplayResult struct {
	DryRun bool `json:"dry_run"`
	// Replayed jobs got a NEW event (run+1) in their origin partition.
	Replayed []ReplayItem `json:"replayed"`
	// AlreadyReplayed jobs have a replay marker for their last dead run.
	AlreadyReplayed []ReplayItem `json:"already_replayed"`
	// Skipped letters cannot be replayed (poison records, cut payloads).
	Skipped []ReplayItem `json:"skipped"`
	// NotFound are requested ids without a dead letter (passing Filter).
	NotFound []job.ID `json:"not_found"`
}

func newResult(dry bool) ReplayResult {
	return ReplayResult{DryRun: dry, Replayed: []ReplayItem{}, AlreadyReplayed: []ReplayItem{}, Skipped: []ReplayItem{}, NotFound: []job.ID{}}
}

// Replay replays dead jobs of jobTopic: for each selected job's latest
// dead run that has no replay marker yet, it writes a NEW event (same id,
// type and payload, run+1, no group, so every group runs it) to the
// partition of the job topic the job died in, then a replayed marker to
// the dead-letter topic. A second replay of the same dead run finds the
// marker and writes nothing. Poison letters are skipped.
//
// Two replays racing (two processes) can both write the NEW; the workers'
// duplicate check runs it once. A crash between the NEW and the marker
// leaves the job replayed without a marker: a later replay writes the NEW
// again, which the duplicate check also absorbs.
func Replay(ctx context.Context, conn *kafkaconn.Conn, jobTopic string, req ReplayRequest) (ReplayResult, error) {
	if err := req.Check(); err != nil {
		return ReplayResult{}, err
	}
	all, err := readAll(ctx, conn, Topic(jobTopic))
	if errors.Is(err, ErrTopicNotFound) {
		res := newResult(req.DryRun)
		res.NotFound = append(res.NotFound, req.IDs...)
		return res, err
	}
	if err != nil {
		return ReplayResult{}, err
	}
	res, todo := plan(all, jobTopic, req)
	if req.DryRun || len(todo) == 0 {
		return res, nil
	}
	jobs := ledger.NewWriter(conn, jobTopic)
	defer jobs.Close()
	letters := NewWriter(conn, jobTopic)
	defer letters.Close()
	return res, execute(ctx, &res, todo, req, jobs, letters)
}

// plan sorts the selected letters into replayable, already replayed,
// skipped and not found. Replayed is filled with what would be replayed.
func plan(all []Entry, jobTopic string, req ReplayRequest) (ReplayResult, []Entry) {
	res := newResult(req.DryRun)
	wanted := map[string]bool{}
	for _, id := range req.IDs {
		wanted[id.String()] = true
	}
	// The latest dead run of each job id is the one to replay; earlier
	// runs were replayed (or superseded) already. Filters apply to it.
	latest := map[string]int{} // job id -> index in picked
	var picked []Entry
	for _, e := range all {
		if len(wanted) > 0 && (e.JobID.IsZero() || !wanted[e.JobID.String()]) {
			continue
		}
		if e.Kind != KindJob {
			picked = append(picked, e)
			continue
		}
		id := e.JobID.String()
		if i, ok := latest[id]; ok {
			// Another group's letter for the same run, or another run.
			if e.Run > picked[i].Run || e.Run == picked[i].Run && e.Replayed && !picked[i].Replayed {
				picked[i] = e
			}
			continue
		}
		latest[id] = len(picked)
		picked = append(picked, e)
	}
	found := map[string]bool{}
	picked = slices.DeleteFunc(picked, func(e Entry) bool { return !req.Filter.Match(e.Letter) })
	for _, e := range picked {
		found[e.JobID.String()] = true
	}
	for _, id := range req.IDs {
		if !found[id.String()] {
			res.NotFound = append(res.NotFound, id)
		}
	}
	var todo []Entry
	for _, e := range picked {
		item := ReplayItem{JobID: e.JobID, Kind: e.Kind, Type: e.Type, Run: e.Run, Origin: e.Origin}
		switch {
		case e.Kind == KindPoison:
			item.Why = "a poison record is not a job event: there is nothing to replay (its raw value is in the letter)"
			res.Skipped = append(res.Skipped, item)
		case e.Replayed:
			item.NewRun, item.ReplayedAt = e.Run+1, e.ReplayedAt
			res.AlreadyReplayed = append(res.AlreadyReplayed, item)
		case contains(e.Truncated, "payload"):
			item.Why = "its payload was cut when the letter was written (too big for one record): replaying would run the job with the wrong payload"
			res.Skipped = append(res.Skipped, item)
		case e.Origin.Topic != "" && e.Origin.Topic != jobTopic:
			item.Why = fmt.Sprintf("it died in topic %q, not in job topic %q", e.Origin.Topic, jobTopic)
			res.Skipped = append(res.Skipped, item)
		case req.Filter.Limit > 0 && len(todo) >= req.Filter.Limit:
			// Over the limit: left for a later replay, not reported.
		default:
			item.NewRun = e.Run + 1
			res.Replayed = append(res.Replayed, item)
			todo = append(todo, e)
		}
	}
	return res, todo
}

// replayBatch bounds the jobs written by one write call.
const replayBatch = 100

// execute writes the NEW events and markers of todo, paced by req.Rate.
// res.Replayed is cut to what was written when a write fails.
func execute(ctx context.Context, res *ReplayResult, todo []Entry, req ReplayRequest, jobs *ledger.Writer, letters *Writer) error {
	now := req.Now
	if now == nil {
		now = time.Now
	}
	batch := replayBatch
	var limiter *rate.Limiter
	if req.Rate > 0 {
		batch = min(replayBatch, max(1, int(req.Rate)))
		limiter = rate.NewLimiter(rate.Limit(req.Rate), batch)
	}
	done := 0
	for done < len(todo) {
		chunk := todo[done:min(done+batch, len(todo))]
		if limiter != nil {
			if err := limiter.WaitN(ctx, len(chunk)); err != nil {
				res.Replayed = res.Replayed[:done]
				return fmt.Errorf("replaying: %w", err)
			}
		}
		at := now().UTC()
		byPartition := map[int][]job.Event{}
		var order []int
		markers := make([]Letter, 0, len(chunk))
		for _, e := range chunk {
			p := e.Origin.Partition
			if _, ok := byPartition[p]; !ok {
				order = append(order, p)
			}
			byPartition[p] = append(byPartition[p], job.Event{
				JobID: e.JobID, Status: job.StatusNew, Type: e.Type, Payload: e.Payload,
				Run: e.Run + 1, CreatedAt: at, UpdatedAt: at,
			})
			markers = append(markers, Letter{
				Kind: KindReplayed, JobID: e.JobID, Run: e.Run, Type: e.Type, Origin: e.Origin, DeadAt: e.DeadAt,
				Reason: fmt.Sprintf("replayed as run %d to %s/%d at %s", e.Run+1, e.Origin.Topic, p, at.Format(time.RFC3339Nano)),
			})
		}
		for _, p := range order {
			if err := jobs.AppendTo(ctx, p, byPartition[p]...); err != nil {
				res.Replayed = res.Replayed[:done]
				return fmt.Errorf("writing the NEW events of replayed jobs to partition %d: %w (some of this batch may be written; replaying again is safe)", p, err)
			}
		}
		if err := letters.Write(ctx, markers...); err != nil {
			res.Replayed = res.Replayed[:done]
			return fmt.Errorf("writing replay markers: %w (the NEW events are written; replaying again writes them again, which workers run once)", err)
		}
		for i := range chunk {
			res.Replayed[done+i].ReplayedAt = at
		}
		done += len(chunk)
	}
	return nil
}
