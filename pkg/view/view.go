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
// count still says how many there were), in the compact layout described
// at entry and in history.go. Measured at 1,000,000 jobs as `jobctl
// produce` and `jobctl consume` make them (a NEW and a DONE each, no
// payload): 140 bytes of heap per job (TestBytesPerJob) and about 180
// bytes of process RSS once `jobctl serve` has caught up
// (scripts/view-rebuild.sh; docs/benchmarks.md, "View"). Payloads,
// results and error texts add their own length.
package view

import (
	"encoding/json"
	"errors"
	"log/slog"
	"strconv"
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
	// StartedAt, on an event that ends an attempt, is when the attempt
	// started (to the microsecond), when the worker said so.
	StartedAt time.Time `json:"started_at,omitzero"`
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
	intJobs  intIndex          // jobs whose id is a canonical integer
	strJobs  map[string]*entry // the others
	slab     entrySlab
	sides    []sideFields // see entry.side
	order    *btree.BTreeG[*entry]
	counts   []int // by index into job.Statuses
	names    nameTable
	rate     rateWindow
	seq      uint64
	subs     map[*Subscription]struct{}
	progress progress
	scratch  []hist // decoded history, reused under mu
	// batchNow is the clock of the batch being applied (0: read the
	// clock per event): time.Now per event was 8% of applying one.
	batchNow int64

	groupIdx   map[string]uint16       // group name -> index into groupNames
	groupNames []string                // index 0 is "" (no group)
	multi      map[*entry][]groupState // jobs touched by more than one group

	durations  durationWindow // see durations.go
	groupRates groupRates     // see grouprate.go

	caughtUp     chan struct{} // closed once every partition present at start is read to its end
	caughtUpOnce sync.Once

	eventsSeen *prometheus.CounterVec // nil without metrics
	// seenBy are eventsSeen's counters by status index, resolved once:
	// a label lookup per event was a measurable part of applying one.
	seenBy []prometheus.Counter
}

// entry is the compact per-job record; see Job for the meaning of fields.
// It holds one pointer (the encoded history, history.go) and no strings:
// ids that are integers are kept as int64, type and worker names as
// indexes into the view's name table, and what most jobs lack (a payload,
// a result, an error, a non-integer id) in View.sides. Entries live in
// chunks (entrySlab), so a million jobs are a few hundred allocations the
// garbage collector barely has to look at. Times are Unix nanoseconds
// (0 = unknown), statuses indexes into job.Statuses.
type entry struct {
	history   []byte
	num       int64 // the id, when flagIntID
	created   int64
	updated   int64
	run       int32
	attempt   int32
	partition int32
	events    uint32
	side      uint32 // 1 + index into View.sides; 0: none
	typ       uint16 // name index; nameInSide: in sideFields.typ
	worker    uint16 // name index; nameInSide: in sideFields.worker
	group     uint16 // the only group that touched the job (0: none); see groups.go
	status    uint8
	flags     uint8
}

const (
	// flagIntID: the id is a canonical integer, held in entry.num.
	flagIntID = 1 << iota
	// flagNumericForm: the id was given as a JSON number (echoed so).
	flagNumericForm
	// flagProbe: a search key of List, not a job (see probe).
	flagProbe
)

// sideFields are the fields most jobs do not have.
type sideFields struct {
	idText  string // the id, when it is no canonical integer
	typ     string // a type the name table had no room for
	worker  string // a worker the name table had no room for
	payload string
	result  string // the latest DONE result, up to ResultLimit bytes
	err     string
	runAt   int64 // a delayed job's run_at
}

// entrySlab allocates entries in chunks: pointers to them stay valid,
// and an entry has a number (for intIndex).
type entrySlab struct {
	chunks [][]entry
	n      uint32
}

const slabChunkBits = 12

func (s *entrySlab) alloc() (*entry, uint32) {
	if s.n&(1<<slabChunkBits-1) == 0 {
		s.chunks = append(s.chunks, make([]entry, 1<<slabChunkBits))
	}
	k := s.n
	s.n++
	return s.at(k), k
}

// at returns entry number k.
func (s *entrySlab) at(k uint32) *entry {
	return &s.chunks[k>>slabChunkBits][k&(1<<slabChunkBits-1)]
}

// nameTable interns type and worker names: they repeat across jobs. It
// is bounded (maxInterned): a producer inventing a new type per job must
// not grow it forever; names past the bound are kept per job.
type nameTable struct {
	idx   map[string]uint16
	names []string // index 0 is ""
}

// maxInterned bounds the name table.
const maxInterned = 4096

// nameInSide marks a name the table had no room for.
const nameInSide = 0xFFFF

func (t *nameTable) index(s string) (uint16, bool) {
	if s == "" {
		return 0, true
	}
	if i, ok := t.idx[s]; ok {
		return i, true
	}
	if len(t.names) >= maxInterned {
		return nameInSide, false
	}
	if len(t.names) == 0 {
		t.names = append(t.names, "")
		t.idx = make(map[string]uint16)
	}
	i := uint16(len(t.names))
	t.names = append(t.names, s)
	t.idx[s] = i
	return i, true
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
		strJobs:  make(map[string]*entry),
		counts:   make([]int, len(job.Statuses)),
		subs:     make(map[*Subscription]struct{}),
		caughtUp: make(chan struct{}),
		groupIdx: make(map[string]uint16),
		multi:    make(map[*entry][]groupState),
	}
	v.order = btree.NewG(32, v.less)
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

// less is the list order of order.go, without formatting integer ids
// except against a non-integer id of integer shape (out of int64 range).
func (v *View) less(a, b *entry) bool {
	ai, bi := a.flags&flagIntID != 0, b.flags&flagIntID != 0
	switch {
	case ai && bi:
		return a.num < b.num
	case ai:
		bt := v.textKey(b)
		if !isCanonicalInt(bt) {
			return true
		}
		return compareIDText(strconv.FormatInt(a.num, 10), bt) < 0
	case bi:
		at := v.textKey(a)
		if !isCanonicalInt(at) {
			return false
		}
		return compareIDText(at, strconv.FormatInt(b.num, 10)) < 0
	}
	return compareIDText(v.textKey(a), v.textKey(b)) < 0
}

// textKey is the id text of a non-integer entry or probe.
func (v *View) textKey(e *entry) string {
	if e.flags&flagProbe != 0 {
		return string(e.history)
	}
	return v.sideOf(e).idText
}

// intID returns the int64 of an id text that is a canonical integer.
func intID(text string) (int64, bool) {
	if !isCanonicalInt(text) {
		return 0, false
	}
	n, err := strconv.ParseInt(text, 10, 64)
	return n, err == nil
}

// lookupLocked finds the job with id text.
func (v *View) lookupLocked(text string) *entry {
	if n, ok := intID(text); ok {
		return v.intJobs.get(&v.slab, n)
	}
	return v.strJobs[text]
}

var emptySide sideFields

func (v *View) sideOf(e *entry) *sideFields {
	if e.side == 0 {
		return &emptySide
	}
	return &v.sides[e.side-1]
}

// sideFor returns e's side fields, adding them if it has none.
func (v *View) sideFor(e *entry) *sideFields {
	if e.side == 0 {
		v.sides = append(v.sides, sideFields{})
		e.side = uint32(len(v.sides))
	}
	return &v.sides[e.side-1]
}

func (v *View) idOf(e *entry) job.ID {
	if e.flags&flagIntID == 0 {
		id, _ := job.StringID(v.sideOf(e).idText)
		return id
	}
	if e.flags&flagNumericForm != 0 {
		return job.NumericID(e.num)
	}
	id, _ := job.StringID(strconv.FormatInt(e.num, 10))
	return id
}

func (v *View) typOf(e *entry) string {
	if e.typ == nameInSide {
		return v.sideOf(e).typ
	}
	return v.names.names0(e.typ)
}

func (v *View) workerOf(e *entry) string {
	if e.worker == nameInSide {
		return v.sideOf(e).worker
	}
	return v.names.names0(e.worker)
}

func (t *nameTable) names0(i uint16) string {
	if i == 0 || int(i) >= len(t.names) {
		return ""
	}
	return t.names[i]
}

func (v *View) setWorker(e *entry, w string) {
	i, ok := v.names.index(w)
	e.worker = i
	if !ok {
		v.sideFor(e).worker = w
	}
}

func (v *View) setErr(e *entry, msg string) {
	if msg == "" && e.side == 0 {
		return
	}
	v.sideFor(e).err = msg
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

// nameRef is the history reference of a worker name.
func (v *View) nameRef(s string) strRef {
	i, ok := v.names.index(s)
	if !ok {
		return strRef{idx: -1, name: s}
	}
	return strRef{idx: int32(i)}
}

// groupRef is the history reference of a group name.
func (v *View) groupRef(s string) strRef {
	if s == "" {
		return strRef{}
	}
	if i := v.groupIndex(s); i != 0 {
		return strRef{idx: int32(i)}
	}
	return strRef{idx: -1, name: s}
}

func (v *View) applyLocked(ev job.Event, rec Record) {
	st := statusIndex(ev.Status)
	if v.eventsSeen != nil {
		if v.seenBy == nil {
			v.seenBy = make([]prometheus.Counter, len(job.Statuses))
			for i, s := range job.Statuses {
				v.seenBy[i] = v.eventsSeen.WithLabelValues(string(s))
			}
		}
		v.seenBy[st].Inc()
	}
	at := unixNano(ev.UpdatedAt)
	h := hist{at: at, group: v.groupRef(ev.Group), worker: v.nameRef(ev.Worker), err: []byte(ev.Error), run: int32(ev.Run), attempt: int32(ev.Attempt), status: st}
	if started := unixNano(ev.StartedAt); started != 0 && at >= started {
		h.took = (at-started)/int64(time.Microsecond) + 1
	}

	text := ev.JobID.String()
	num, isInt := intID(text)
	var e *entry
	if isInt {
		e = v.intJobs.get(&v.slab, num)
	} else {
		e = v.strJobs[text]
	}
	isNew := e == nil
	if isNew {
		var k uint32
		e, k = v.slab.alloc()
		e.partition, e.status, e.run, e.attempt, e.updated = int32(rec.Partition), st, int32(ev.Run), int32(ev.Attempt), at
		e.group = v.groupIndex(ev.Group)
		v.setWorker(e, ev.Worker)
		v.setErr(e, ev.Error)
		if isInt {
			e.num, e.flags = num, flagIntID
			if ev.JobID.Numeric() {
				e.flags |= flagNumericForm
			}
			v.intJobs.put(&v.slab, num, k)
		} else {
			v.sideFor(e).idText = text
			v.strJobs[text] = e
		}
		v.order.ReplaceOrInsert(e)
		v.counts[st]++
	} else if v.seenLocked(e, &h) {
		return // a replayed or retried write of an event already merged
	}
	e.events++
	e.history = appendEvent(e.history, &h, v.opts.HistoryLimit)

	// Descriptive fields come from whichever event has them first
	// (normally the NEW); workers' events need not repeat them.
	if e.typ == 0 && ev.Type != "" {
		i, ok := v.names.index(ev.Type)
		e.typ = i
		if !ok {
			v.sideFor(e).typ = ev.Type
		}
	}
	if len(ev.Payload) > 0 && v.sideOf(e).payload == "" {
		v.sideFor(e).payload = string(ev.Payload)
	}
	if ev.Status == job.StatusDone && len(ev.Result) > 0 {
		v.sideFor(e).result = keptResult(ev.Result)
	}
	created := unixNano(ev.CreatedAt)
	if created == 0 && ev.Status == job.StatusNew {
		created = at
	}
	if created != 0 && (e.created == 0 || created < e.created) {
		e.created = created
	}
	if !ev.RunAt.IsZero() && (ev.Status == job.StatusNew || ev.Status == job.StatusScheduled) {
		v.sideFor(e).runAt = ev.RunAt.UnixNano()
	}

	v.recordFinishLocked(e, ev, at)

	if !isNew && !v.mergeLocked(e, ev) {
		return
	}
	v.seq++
	nowSec := v.applyNowLocked()
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

// applyNowLocked is the current Unix second for the event being applied.
func (v *View) applyNowLocked() int64 {
	if v.batchNow != 0 {
		return v.batchNow
	}
	return v.now().Unix()
}

// historyLocked decodes e's history into the view's scratch slice (valid
// until the next call).
func (v *View) historyLocked(e *entry) []hist {
	v.scratch = v.scratch[:0]
	r := histReader{b: e.history}
	var h hist
	for r.next(&h) {
		v.scratch = append(v.scratch, h)
	}
	return v.scratch
}

// seenLocked reports whether h is already in the job's history.
func (v *View) seenLocked(e *entry, h *hist) bool {
	r := histReader{b: e.history}
	var x hist
	for r.next(&x) {
		if x.equal(h) {
			return true
		}
	}
	return false
}

// runningAtLocked returns the time of the job's RUNNING event of group,
// run and attempt, if its history still holds it.
func (v *View) runningAtLocked(e *entry, group string, run, attempt int32) (int64, bool) {
	running := statusIndex(job.StatusRunning)
	g := v.groupRef(group)
	var at int64
	found := false
	r := histReader{b: e.history}
	var h hist
	for r.next(&h) {
		if h.status == running && h.run == run && h.attempt == attempt && h.group.equal(g) && h.at != 0 {
			at, found = h.at, true
		}
	}
	return at, found
}

// current is the job's state as an event, for Supersedes.
func (v *View) current(e *entry) job.Event {
	return job.Event{JobID: v.idOf(e), Status: job.Statuses[e.status], Run: int(e.run), Attempt: int(e.attempt), UpdatedAt: fromNano(e.updated)}
}

// refName resolves a history reference; table is the name table it
// indexes.
func refName(r strRef, table []string) string {
	switch {
	case r.idx < 0:
		return string(r.rawBytes())
	case r.idx == 0 || int(r.idx) >= len(table):
		return ""
	}
	return table[r.idx]
}

func (v *View) toJob(e *entry, withHistory bool) Job {
	side := v.sideOf(e)
	j := Job{
		ID:        v.idOf(e),
		Status:    job.Statuses[e.status],
		Type:      v.typOf(e),
		CreatedAt: fromNano(e.created),
		RunAt:     fromNano(side.runAt),
		UpdatedAt: fromNano(e.updated),
		Run:       int(e.run),
		Attempt:   int(e.attempt),
		Worker:    v.workerOf(e),
		Error:     side.err,
		Partition: int(e.partition),
		Events:    int(e.events),
	}
	if side.payload != "" {
		j.Payload = json.RawMessage(side.payload)
	}
	if side.result != "" {
		j.Result = json.RawMessage(side.result)
	}
	if withHistory {
		r := histReader{b: e.history}
		var h hist
		j.History = make([]HistoryEntry, 0, histCount(e.history))
		for r.next(&h) {
			he := HistoryEntry{Status: job.Statuses[h.status], At: fromNano(h.at), Run: int(h.run), Attempt: int(h.attempt),
				Group: refName(h.group, v.groupNames), Worker: refName(h.worker, v.names.names), Error: string(h.err)}
			if h.took > 0 && h.at != 0 {
				he.StartedAt = fromNano(h.at - (h.took-1)*int64(time.Microsecond))
			}
			j.History = append(j.History, he)
		}
	}
	return j
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
	e := v.lookupLocked(id)
	if e == nil {
		return Job{}, false
	}
	j := v.toJob(e, true)
	j.Groups = v.groupsLocked(e)
	return j, true
}

// Has reports whether the view knows job id.
func (v *View) Has(id string) bool {
	v.mu.RLock()
	defer v.mu.RUnlock()
	return v.lookupLocked(id) != nil
}

// Len is the number of jobs.
func (v *View) Len() int {
	v.mu.RLock()
	defer v.mu.RUnlock()
	return v.intJobs.n + len(v.strJobs)
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
		limit = v.intJobs.n + len(v.strJobs)
	}
	jobs = make([]Job, 0, min(limit, 1024))
	since, until := !q.Since.IsZero(), !q.Until.IsZero()
	gi, knownGroup := v.groupIdx[q.Group]
	if q.Group != "" && !knownGroup {
		return jobs, false
	}
	visit := func(e *entry) bool {
		if q.After != "" && v.idText(e) == q.After {
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
		if q.Type != "" && v.typOf(e) != q.Type {
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
		j := v.toJob(e, false)
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

// probe is a search key for the ordered index; only its id matters. A
// non-integer probe carries its text in history (flagProbe), as it has no
// side fields.
func probe(idText string) (*entry, bool) {
	if _, err := job.StringID(idText); err != nil {
		return nil, false
	}
	if n, ok := intID(idText); ok {
		return &entry{num: n, flags: flagIntID}, true
	}
	return &entry{history: []byte(idText), flags: flagProbe}, true
}

// idText is e's id as text.
func (v *View) idText(e *entry) string {
	if e.flags&flagIntID != 0 {
		return strconv.FormatInt(e.num, 10)
	}
	return v.sideOf(e).idText
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
