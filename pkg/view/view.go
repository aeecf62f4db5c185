// Package view is the job view: it replays the whole job-status topic
// (every partition from its first offset, no consumer group) into the
// current state of every job, then tails the topic to stay current.
//
// Events are merged with job.Event.Supersedes, so a job never moves
// backwards whatever order its events arrive in: a late or duplicated NEW
// never overwrites DONE. Two views that have read the same records hold
// the same jobs, which is why a restarted `jobctl serve` rebuilds exactly
// the view it had.
//
// Memory grows with the number of jobs, not of events: per job the view
// keeps its current state plus a history of at most Options.HistoryLimit
// status events (20 by default; older ones are dropped, the job's Events
// count still says how many there were). Type and worker strings are
// interned. Measured: 347 bytes per job at 1,000,000 jobs with a NEW and
// a DONE each and a 10-byte payload (TestBytesPerJob; payloads and error
// texts add their own length).
package view

import (
	"encoding/json"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/google/btree"
	"github.com/jobctl/jobctl/pkg/job"
	"github.com/jobctl/jobctl/pkg/kafkaconn"
	"github.com/jobctl/jobctl/pkg/metrics"
	"github.com/prometheus/client_golang/prometheus"
)

// DefaultHistoryLimit bounds the status events kept per job.
const DefaultHistoryLimit = 20

// Options configures a View.
type Options struct {
	// Conn and Topic say what to read; both are needed only by Run. A view
	// fed by Apply alone (tests, benchmarks) needs neither.
	Conn  *kafkaconn.Conn
	Topic string
	// HistoryLimit bounds the history kept per job (default 20).
	HistoryLimit int
	// PartitionPoll is how often Run re-reads the topic's metadata to find
	// partitions added later and to check the broker is reachable
	// (default 3 s).
	PartitionPoll time.Duration
	// WaitForBroker makes Run retry until the broker answers and the topic
	// exists (a server), instead of failing at once (a CLI command).
	WaitForBroker bool
	Logger        *slog.Logger
	Metrics       *metrics.Metrics
	// Now is the clock for the throughput window; tests replace it.
	Now func() time.Time
}

// Record says where an event was read from.
type Record struct {
	Partition int
	Offset    int64
	// Time is the record's timestamp; it stands in for the event's
	// updated_at when the producer did not set one (the seed's payload
	// {"job_id": 1234, "status": "NEW"} has no times).
	Time time.Time
}

// Job is one job as the view knows it.
type Job struct {
	ID        job.ID          `json:"job_id"`
	Status    job.Status      `json:"status"`
	Type      string          `json:"type,omitempty"`
	Payload   json.RawMessage `json:"payload,omitempty"`
	CreatedAt time.Time       `json:"created_at,omitzero"`
	UpdatedAt time.Time       `json:"updated_at,omitzero"`
	Run       int             `json:"run,omitempty"`
	Attempt   int             `json:"attempt"`
	Worker    string          `json:"worker,omitempty"`
	Error     string          `json:"error,omitempty"`
	// Result is the latest result a handler returned (a DONE event's
	// result; see ResultLimit).
	Result json.RawMessage `json:"result,omitempty"`
	// RunAt is when the job was asked to run, not before (its NEW's
	// run_at; SCHEDULED until then).
	RunAt time.Time `json:"run_at,omitzero"`
	// Partition holds the job's events (the partition of the first event
	// the view saw for it).
	Partition int `json:"partition"`
	// Events counts the distinct status events seen for the job; History
	// holds only the last HistoryLimit of them.
	Events  int            `json:"events"`
	History []HistoryEntry `json:"history,omitempty"`
	// Groups is the job's state per consumer group that wrote events for
	// it, in the order they first did (see groups.go); Get fills it, List
	// does not.
	Groups []GroupStatus `json:"groups,omitempty"`
}

// HistoryEntry is one status event of a job, in the order the view read
// them.
type HistoryEntry struct {
	Status  job.Status `json:"status"`
	At      time.Time  `json:"at,omitzero"`
	Run     int        `json:"run,omitempty"`
	Attempt int        `json:"attempt"`
	Group   string     `json:"group,omitempty"`
	Worker  string     `json:"worker,omitempty"`
	Error   string     `json:"error,omitempty"`
}

// Counts are the number of jobs per current status.
type Counts struct {
	Total    int                `json:"total"`
	ByStatus map[job.Status]int `json:"by_status"`
}

// View is the job view. All methods are safe for concurrent use.
type View struct {
	opts Options
	now  func() time.Time
	log  *slog.Logger

	mu       sync.RWMutex
	jobs     map[string]*entry
	order    *btree.BTreeG[*entry]
	counts   []int             // by index into job.Statuses
	strs     map[string]string // interned type and worker names
	rate     rateWindow
	seq      uint64
	subs     map[*Subscription]struct{}
	progress progress

	groupIdx   map[string]uint16       // group name -> index into groupNames
	groupNames []string                // index 0 is "" (no group)
	multi      map[*entry][]groupState // jobs touched by more than one group

	durations  durationWindow // see durations.go
	groupRates groupRates     // see grouprate.go

	caughtUp     chan struct{} // closed once every partition present at start is read to its end
	caughtUpOnce sync.Once

	eventsSeen *prometheus.CounterVec // nil without metrics
}

// entry is the compact per-job record; see Job for the meaning of fields.
// Times are Unix nanoseconds (0 = unknown), statuses are indexes into
// job.Statuses, strings that repeat across jobs are interned.
type entry struct {
	id        job.ID
	typ       string
	payload   string
	result    string // the latest DONE result, up to ResultLimit bytes
	worker    string
	err       string
	created   int64
	runAt     int64
	updated   int64
	run       int32
	attempt   int32
	partition int32
	events    uint32
	status    uint8
	group     uint16 // the only group that touched the job (0: none); see groups.go
	history   []hist
}

type hist struct {
	at      int64
	worker  string
	group   string
	err     string
	run     int32
	attempt int32
	status  uint8
}

func statusIndex(s job.Status) uint8 {
	for i, st := range job.Statuses {
		if st == s {
			return uint8(i)
		}
	}
	return 0
}

// New returns an empty view. Run fills it from the topic; Apply feeds it
// events directly.
func New(opts Options) *View {
	if opts.HistoryLimit <= 0 {
		opts.HistoryLimit = DefaultHistoryLimit
	}
	if opts.PartitionPoll <= 0 {
		opts.PartitionPoll = 3 * time.Second
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	v := &View{
		opts:     opts,
		now:      opts.Now,
		log:      opts.Logger,
		jobs:     make(map[string]*entry),
		counts:   make([]int, len(job.Statuses)),
		order:    btree.NewG(32, func(a, b *entry) bool { return compareIDText(a.id.String(), b.id.String()) < 0 }),
		strs:     make(map[string]string),
		subs:     make(map[*Subscription]struct{}),
		caughtUp: make(chan struct{}),
		groupIdx: make(map[string]uint16),
		multi:    make(map[*entry][]groupState),
	}
	if m := opts.Metrics; m != nil && m.Registry != nil {
		v.eventsSeen = prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "jobctl_view_events_total",
			Help: "Job events read from the topic by the view, by status; rate() of NEW is the produce rate, of DONE and FAILED the consume rate.",
		}, []string{"status"})
		if err := m.Registry.Register(v.eventsSeen); err != nil {
			// A second view on one registry (a test) shares the first's counter.
			v.eventsSeen = nil
			var are prometheus.AlreadyRegisteredError
			if errors.As(err, &are) {
				v.eventsSeen, _ = are.ExistingCollector.(*prometheus.CounterVec)
			}
		}
	}
	return v
}

// Apply merges one event into the view. It is the view's only way to
// change, used by Run for every record and directly by tests and
// benchmarks. Replayed duplicates change nothing; an event that does not
// supersede the job's current state is kept in its history only.
func (v *View) Apply(ev job.Event, rec Record) {
	if ev.UpdatedAt.IsZero() {
		ev.UpdatedAt = rec.Time
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	v.applyLocked(ev, rec)
}

func (v *View) applyLocked(ev job.Event, rec Record) {
	if v.eventsSeen != nil {
		v.eventsSeen.WithLabelValues(string(ev.Status)).Inc()
	}
	id := ev.JobID.String()
	st := statusIndex(ev.Status)
	at := unixNano(ev.UpdatedAt)
	h := hist{at: at, worker: v.intern(ev.Worker), group: v.intern(ev.Group), err: ev.Error, run: int32(ev.Run), attempt: int32(ev.Attempt), status: st}

	e := v.jobs[id]
	isNew := e == nil
	if isNew {
		e = &entry{
			id:        ev.JobID,
			partition: int32(rec.Partition),
			status:    st,
			run:       int32(ev.Run),
			attempt:   int32(ev.Attempt),
			updated:   at,
			worker:    h.worker,
			err:       ev.Error,
			group:     v.groupIndex(ev.Group),
			history:   make([]hist, 0, 2),
		}
		v.jobs[id] = e
		v.order.ReplaceOrInsert(e)
		v.counts[st]++
	} else if e.seen(h) {
		return // a replayed or retried write of an event already merged
	}
	e.events++
	if len(e.history) >= v.opts.HistoryLimit {
		copy(e.history, e.history[1:])
		e.history = e.history[:len(e.history)-1]
	}
	e.history = append(e.history, h)

	// Descriptive fields come from whichever event has them first
	// (normally the NEW); workers' events need not repeat them.
	if e.typ == "" && ev.Type != "" {
		e.typ = v.intern(ev.Type)
	}
	if e.payload == "" && len(ev.Payload) > 0 {
		e.payload = string(ev.Payload)
	}
	if ev.Status == job.StatusDone && len(ev.Result) > 0 {
		e.result = keptResult(ev.Result)
	}
	created := unixNano(ev.CreatedAt)
	if created == 0 && ev.Status == job.StatusNew {
		created = at
	}
	if created != 0 && (e.created == 0 || created < e.created) {
		e.created = created
	}
	if !ev.RunAt.IsZero() && (ev.Status == job.StatusNew || ev.Status == job.StatusScheduled) {
		e.runAt = ev.RunAt.UnixNano()
	}

	v.recordFinishLocked(e, ev, at)

	if !isNew && !v.mergeLocked(e, ev, h) {
		return
	}
	v.seq++
	nowSec := v.now().Unix()
	if isNew {
		v.rate.add(rateNew, at, nowSec)
	}
	switch ev.Status {
	case job.StatusDone:
		v.rate.add(rateDone, at, nowSec)
	case job.StatusFailed:
		v.rate.add(rateFailed, at, nowSec)
	}
	v.notifyLocked(e)
}

// seen reports whether h is already in the job's history.
func (e *entry) seen(h hist) bool {
	for _, x := range e.history {
		if x == h {
			return true
		}
	}
	return false
}

// runningAt returns the time of the job's RUNNING event of group, run
// and attempt, if its history still holds it.
func (e *entry) runningAt(group string, run, attempt int32) (int64, bool) {
	running := statusIndex(job.StatusRunning)
	for i := len(e.history) - 1; i >= 0; i-- {
		h := &e.history[i]
		if h.status == running && h.run == run && h.attempt == attempt && h.group == group && h.at != 0 {
			return h.at, true
		}
	}
	return 0, false
}

// current is the job's state as an event, for Supersedes.
func (e *entry) current() job.Event {
	return job.Event{JobID: e.id, Status: job.Statuses[e.status], Run: int(e.run), Attempt: int(e.attempt), UpdatedAt: fromNano(e.updated)}
}

func (e *entry) toJob(withHistory bool) Job {
	j := Job{
		ID:        e.id,
		Status:    job.Statuses[e.status],
		Type:      e.typ,
		CreatedAt: fromNano(e.created),
		RunAt:     fromNano(e.runAt),
		UpdatedAt: fromNano(e.updated),
		Run:       int(e.run),
		Attempt:   int(e.attempt),
		Worker:    e.worker,
		Error:     e.err,
		Partition: int(e.partition),
		Events:    int(e.events),
	}
	if e.payload != "" {
		j.Payload = json.RawMessage(e.payload)
	}
	if e.result != "" {
		j.Result = json.RawMessage(e.result)
	}
	if withHistory {
		j.History = make([]HistoryEntry, len(e.history))
		for i, h := range e.history {
			j.History[i] = HistoryEntry{Status: job.Statuses[h.status], At: fromNano(h.at), Run: int(h.run), Attempt: int(h.attempt), Group: h.group, Worker: h.worker, Error: h.err}
		}
	}
	return j
}

// maxInterned bounds the intern table: type and worker names repeat, but
// a producer inventing a new type per job must not grow it forever.
const maxInterned = 4096

func (v *View) intern(s string) string {
	if s == "" {
		return ""
	}
	if x, ok := v.strs[s]; ok {
		return x
	}
	if len(v.strs) < maxInterned {
		v.strs[s] = s
	}
	return s
}

func unixNano(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func fromNano(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}

// Get returns the job with id (its text form), with its history.
func (v *View) Get(id string) (Job, bool) {
	v.mu.RLock()
	defer v.mu.RUnlock()
	e, ok := v.jobs[id]
	if !ok {
		return Job{}, false
	}
	j := e.toJob(true)
	j.Groups = v.groupsLocked(e)
	return j, true
}

// Has reports whether the view knows job id.
func (v *View) Has(id string) bool {
	v.mu.RLock()
	defer v.mu.RUnlock()
	_, ok := v.jobs[id]
	return ok
}

// Len is the number of jobs.
func (v *View) Len() int {
	v.mu.RLock()
	defer v.mu.RUnlock()
	return len(v.jobs)
}

// Query selects a page of jobs.
type Query struct {
	Status job.Status // empty: any
	Type   string     // empty: any
	// Group, when set, selects the jobs this consumer group wrote events
	// for and shows (and filters by Status on) that group's state.
	Group string
	// After is the id of the last job of the previous page; the page
	// starts with the next job in list order (empty: from the start).
	After string
	// Since and Until, when set, keep the jobs last updated in
	// [Since, Until) (the job's or, with Group, that group's updated time).
	Since, Until time.Time
	Limit        int  // at most this many jobs (<= 0: all)
	Desc         bool // list order reversed
}

// List returns the jobs that match q, in the order described in order.go,
// without their history, and whether more jobs match after the last one.
// Filters are applied while walking the ordered index, so a rare status
// costs a walk over all jobs.
func (v *View) List(q Query) (jobs []Job, more bool) {
	v.mu.RLock()
	defer v.mu.RUnlock()
	limit := q.Limit
	if limit <= 0 {
		limit = len(v.jobs)
	}
	jobs = make([]Job, 0, min(limit, 1024))
	since, until := !q.Since.IsZero(), !q.Until.IsZero()
	gi, knownGroup := v.groupIdx[q.Group]
	if q.Group != "" && !knownGroup {
		return jobs, false
	}
	visit := func(e *entry) bool {
		if q.After != "" && e.id.String() == q.After {
			return true
		}
		status := e.status
		var gs groupState
		if q.Group != "" {
			var ok bool
			if gs, ok = v.groupStateLocked(e, gi); !ok {
				return true
			}
			status = gs.status
		}
		if q.Status != "" && job.Statuses[status] != q.Status {
			return true
		}
		if q.Type != "" && e.typ != q.Type {
			return true
		}
		if since || until {
			updated := e.updated
			if q.Group != "" {
				updated = gs.updated
			}
			if since && updated < q.Since.UnixNano() || until && updated >= q.Until.UnixNano() {
				return true
			}
		}
		if len(jobs) == limit {
			more = true
			return false
		}
		j := e.toJob(false)
		if q.Group != "" {
			j.Status, j.Run, j.Attempt, j.UpdatedAt, j.Worker, j.Error = job.Statuses[gs.status], int(gs.run), int(gs.attempt), fromNano(gs.updated), gs.worker, gs.err
			j.Groups = []GroupStatus{v.groupStatus(gs)}
		}
		jobs = append(jobs, j)
		return true
	}
	switch {
	case q.After == "" && !q.Desc:
		v.order.Ascend(visit)
	case q.After == "":
		v.order.Descend(visit)
	default:
		// An After that is no valid job id has no place in the order.
		p, ok := probe(q.After)
		if !ok {
			return jobs, false
		}
		if q.Desc {
			v.order.DescendLessOrEqual(p, visit)
		} else {
			v.order.AscendGreaterOrEqual(p, visit)
		}
	}
	return jobs, more
}

// probe is a search key for the ordered index; only its id text matters.
func probe(idText string) (*entry, bool) {
	id, err := job.StringID(idText)
	if err != nil {
		return nil, false
	}
	return &entry{id: id}, true
}

// Counts returns the number of jobs per current status.
func (v *View) Counts() Counts {
	v.mu.RLock()
	defer v.mu.RUnlock()
	c := Counts{ByStatus: make(map[job.Status]int, len(job.Statuses))}
	for i, st := range job.Statuses {
		c.ByStatus[st] = v.counts[i]
		c.Total += v.counts[i]
	}
	return c
}
