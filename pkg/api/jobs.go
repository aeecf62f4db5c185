package api

import (
	"context"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jobctl/jobctl/pkg/job"
	"github.com/jobctl/jobctl/pkg/view"
)

// Page sizes of GET /jobs.
const (
	DefaultLimit = 100
	MaxLimit     = 1000
)

// handleListJobs answers GET /jobs: a JSON array of jobs (without
// history) in the view's stable order (see pkg/view/order.go: numeric ids
// numerically, then other ids by text), filtered by ?status= and ?type=
// (and ?group=: the jobs that consumer group wrote events for, with its
// status, which ?status= then filters on), last updated in [?since=,
// ?until=) (RFC 3339),
// ?limit= per page, from after the job id ?after=, reversed with
// ?order=desc. The next page's URL is in the Link header (rel="next").
func (s *Server) handleListJobs(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	vq := view.Query{Limit: DefaultLimit}
	// Parameters are checked first: a bad request is bad whether or not
	// the view has loaded.
	if st := q.Get("status"); st != "" {
		vq.Status = job.Status(strings.ToUpper(st))
		if !vq.Status.Valid() {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("status %q is not one of %s", st, statusList()))
			return
		}
	}
	vq.Type = q.Get("type")
	vq.Group = q.Get("group")
	if l := q.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > MaxLimit {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("limit %q: want a whole number from 1 to %d", l, MaxLimit))
			return
		}
		vq.Limit = n
	}
	if a := q.Get("after"); a != "" {
		if _, err := job.ParseID(a); err != nil {
			writeError(w, http.StatusBadRequest, "after: "+err.Error())
			return
		}
		vq.After = a
	}
	for _, b := range []struct {
		name string
		to   *time.Time
	}{{"since", &vq.Since}, {"until", &vq.Until}} {
		if v := q.Get(b.name); v != "" {
			t, err := time.Parse(time.RFC3339Nano, v)
			if err != nil {
				writeError(w, http.StatusBadRequest, fmt.Sprintf("%s %q: want an RFC 3339 time such as 2026-11-26T06:00:00Z", b.name, v))
				return
			}
			*b.to = t
		}
	}
	if !vq.Since.IsZero() && !vq.Until.IsZero() && !vq.Since.Before(vq.Until) {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("since %s is not before until %s", q.Get("since"), q.Get("until")))
		return
	}
	switch o := q.Get("order"); o {
	case "", "asc":
	case "desc":
		vq.Desc = true
	default:
		writeError(w, http.StatusBadRequest, fmt.Sprintf("order %q: want asc or desc", o))
		return
	}
	if s.loading(w) {
		return
	}
	jobs, more := s.opts.Store.List(vq)
	if more && len(jobs) > 0 {
		next := url.Values{}
		for k, v := range q {
			next[k] = v
		}
		next.Set("after", jobs[len(jobs)-1].ID.String())
		next.Set("limit", strconv.Itoa(vq.Limit))
		w.Header().Set("Link", fmt.Sprintf(`</jobs?%s>; rel="next"`, next.Encode()))
	}
	writeJSON(w, http.StatusOK, jobs)
}

// handleGetJob answers GET /jobs/{id}: the job with its history and its
// state per consumer group.
func (s *Server) handleGetJob(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	j, ok := s.opts.Store.Get(id)
	if !ok {
		// A job the view has not read yet may well exist.
		if s.loading(w) {
			return
		}
		writeError(w, http.StatusNotFound, fmt.Sprintf("job %q not found", id))
		return
	}
	writeJSON(w, http.StatusOK, j)
}

// reservedID cannot be a job id: GET /jobs/events is the event stream.
const reservedID = "events"

// handlePostJob answers POST /jobs: it appends the job's NEW event to the
// topic and answers 202 once all in-sync replicas have it. A rejected
// request writes nothing.
func (s *Server) handlePostJob(w http.ResponseWriter, r *http.Request) {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "application/json" {
		writeError(w, http.StatusUnsupportedMediaType, "Content-Type must be application/json")
		return
	}
	body, err := readBody(r, s.opts.MaxBodyBytes)
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("request body is over the %d byte limit (api.max_body_bytes)", tooBig.Limit))
			return
		}
		writeError(w, http.StatusBadRequest, "reading the request body: "+err.Error())
		return
	}
	ev, err := job.DecodeSubmission(body)
	if err != nil {
		code := http.StatusBadRequest
		switch {
		case job.IsStatusError(err), job.IsRunAtError(err):
			code = http.StatusUnprocessableEntity
		case job.IsTooLarge(err):
			code = http.StatusRequestEntityTooLarge
		}
		writeError(w, code, err.Error())
		return
	}
	if ev.Attempt != 0 || ev.Run != 0 || ev.Worker != "" || ev.Error != "" || ev.Group != "" || !ev.RetryAt.IsZero() || len(ev.Errors) > 0 {
		writeError(w, http.StatusUnprocessableEntity, "run, attempt, group, worker, error, errors and retry_at are recorded by workers; a new job cannot set them")
		return
	}
	if ev.JobID.IsZero() {
		ev.JobID = job.NewID()
	}
	id := ev.JobID.String()
	if id == reservedID {
		writeError(w, http.StatusUnprocessableEntity, `job_id "events" is reserved (GET /jobs/events is the event stream)`)
		return
	}
	// The server's clock stamps the job: a client's clock is not
	// trusted to order events.
	now := s.opts.Now().UTC()
	ev.CreatedAt, ev.UpdatedAt = now, now

	// Until the view has read the whole topic it cannot know whether id
	// exists, and accepting it could start a job a second time.
	if p := s.progressUnlessCaughtUp(); !p.CaughtUp {
		if topicMissing(p) {
			writeError(w, http.StatusNotFound, s.missingTopicMessage())
			return
		}
		w.Header().Set("Retry-After", "1")
		writeError(w, http.StatusServiceUnavailable, "the job view is still reading the topic, so a duplicate job_id could not be detected yet; retry shortly")
		return
	}
	if !s.reserved.reserve(id) {
		writeError(w, http.StatusConflict, fmt.Sprintf("job %q already exists", id))
		return
	}
	// A client that goes away must not cancel a write half-way: kafka-go
	// keeps retrying a cancelled batch in the background anyway, and the
	// reservation must reflect what really happened.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), s.opts.EnqueueTimeout)
	err = s.opts.Enqueuer.Append(ctx, ev)
	cancel()
	if err != nil {
		s.reserved.release(id)
		if m := s.opts.Metrics; m != nil {
			m.JobsProduced.WithLabelValues("failed").Inc()
		}
		s.log.Warn("writing a submitted job failed", "job_id", id, "err", err)
		writeError(w, http.StatusServiceUnavailable, fmt.Sprintf("writing job %q to Kafka failed (it may or may not have been stored; retrying with the same job_id is safe): %v", id, err))
		return
	}
	if m := s.opts.Metrics; m != nil {
		m.JobsProduced.WithLabelValues("ok").Inc()
	}
	w.Header().Set("Location", "/jobs/"+url.PathEscape(id))
	// The event's own encoder writes what encoding/json would, byte for
	// byte (job.TestAppendJSONMatchesMarshal), without its reflection.
	b, err := ev.Encode()
	if err != nil {
		writeJSON(w, http.StatusAccepted, ev)
		return
	}
	w.Header()["Content-Type"] = jsonContentType
	w.WriteHeader(http.StatusAccepted)
	_, _ = w.Write(b)
	_, _ = w.Write(newline)
}

// caughtUpSignal is implemented by a store that says it has caught up
// without a lock: *view.View closes a channel.
type caughtUpSignal interface {
	CaughtUp() <-chan struct{}
}

// progressUnlessCaughtUp is the store's Progress, or just CaughtUp when
// the store can say so cheaply. Every POST asks: Progress takes the
// view's read lock, which waits while the reader applies a batch of
// records, and allocates a slice of partitions, for an answer that
// never changes once true.
func (s *Server) progressUnlessCaughtUp() view.Progress {
	if c, ok := s.opts.Store.(caughtUpSignal); ok {
		select {
		case <-c.CaughtUp():
			return view.Progress{Started: true, CaughtUp: true}
		default:
		}
	}
	return s.opts.Store.Progress()
}

// topicMissing reports whether the view found that its topic does not
// exist: the view marks the broker reachable after a metadata answer
// that names the topic unknown, records that error, and starts only once
// the topic is there. Retrying would not help, so POST says so.
func topicMissing(p view.Progress) bool {
	return !p.Started && p.BrokerReachable && p.LastError != ""
}

func (s *Server) missingTopicMessage() string {
	return fmt.Sprintf("topic %q does not exist: create it with `jobctl topic create`", s.opts.Topic)
}

// reservations are job ids being written or written but not yet read back
// by the view: they close the window in which a second POST of the same
// new id would pass the view's check.
type reservations struct {
	store JobStore

	mu      sync.Mutex
	ids     map[string]struct{}
	sweepAt int
}

const minSweep = 1024

func newReservations(store JobStore) *reservations {
	return &reservations{store: store, ids: map[string]struct{}{}, sweepAt: minSweep}
}

// reserve claims id for one writer; false means it exists or is claimed.
func (r *reservations) reserve(id string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.ids[id]; ok {
		return false
	}
	if r.store.Has(id) {
		return false
	}
	r.ids[id] = struct{}{}
	if len(r.ids) >= r.sweepAt {
		// Ids the view has read are guarded by the view itself.
		for k := range r.ids {
			if r.store.Has(k) {
				delete(r.ids, k)
			}
		}
		r.sweepAt = max(minSweep, 2*len(r.ids))
	}
	return true
}

func (r *reservations) release(id string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.ids, id)
}

// statusList is the valid statuses, for error messages.
func statusList() string {
	names := make([]string, len(job.Statuses))
	for i, st := range job.Statuses {
		names[i] = string(st)
	}
	return strings.Join(names, ", ")
}
