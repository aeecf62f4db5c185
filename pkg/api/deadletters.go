package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/jobctl/jobctl/pkg/deadletter"
	"github.com/jobctl/jobctl/pkg/job"
)

// DeadLetters reads and replays the dead-letter topic;
// *deadletter.Service implements it (with a short-lived cache of the
// topic, so a polling client does not re-read it on every request).
type DeadLetters interface {
	List(ctx context.Context, f deadletter.Filter) ([]deadletter.Entry, error)
	Replay(ctx context.Context, req deadletter.ReplayRequest) (deadletter.ReplayResult, error)
}

var _ DeadLetters = (*deadletter.Service)(nil)

// Limits of GET /dlq and POST /dlq/replay.
const (
	DefaultDLQLimit = 100
	// replayTimeout bounds one POST /dlq/replay, under the default
	// api.write_timeout so the answer still reaches the client.
	replayTimeout = 25 * time.Second
)

// deadLetterList is the body of GET /dlq.
type deadLetterList struct {
	DeadLetters []deadletter.Entry `json:"dead_letters"`
	// More is true when more letters match than limit.
	More bool `json:"more"`
}

// handleListDeadLetters answers GET /dlq: dead letters oldest first,
// filtered by ?id= (a job id) ?type= ?error= ?since= ?until= ?group=
// ?kind= and at most
// ?limit= (default 100, at most 1000). A missing dead-letter topic is an
// empty list: no job has died yet.
func (s *Server) handleListDeadLetters(w http.ResponseWriter, r *http.Request) {
	if s.opts.DeadLetters == nil {
		writeError(w, http.StatusServiceUnavailable, "this server does not serve dead letters")
		return
	}
	q := r.URL.Query()
	f, err := dlqFilter(q.Get, s.opts.Now())
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	f.Limit = DefaultDLQLimit
	if l := q.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > MaxLimit {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("limit %q: want a whole number from 1 to %d", l, MaxLimit))
			return
		}
		f.Limit = n
	}
	limit := f.Limit
	f.Limit++
	entries, err := s.opts.DeadLetters.List(r.Context(), f)
	if errors.Is(err, deadletter.ErrTopicNotFound) {
		entries, err = []deadletter.Entry{}, nil
	}
	if err != nil {
		s.log.Warn("reading dead letters failed", "err", err)
		writeError(w, http.StatusServiceUnavailable, "reading the dead-letter topic failed: "+err.Error())
		return
	}
	body := deadLetterList{DeadLetters: entries}
	if len(entries) > limit {
		body.DeadLetters, body.More = entries[:limit], true
	}
	writeJSON(w, http.StatusOK, body)
}

// dlqFilter reads the filter parameters shared by GET /dlq (query) and
// POST /dlq/replay (body) through get.
func dlqFilter(get func(string) string, now time.Time) (deadletter.Filter, error) {
	f := deadletter.Filter{
		Type: get("type"), ErrorContains: get("error"), Group: get("group"),
		Kind: deadletter.Kind(strings.ToLower(get("kind"))),
	}
	var err error
	if id := get("id"); id != "" {
		if f.JobID, err = job.ParseID(id); err != nil {
			return f, fmt.Errorf("id: %v", err)
		}
	}
	if f.Since, err = deadletter.ParseTime(get("since"), now); err != nil {
		return f, fmt.Errorf("since: %v", err)
	}
	if f.Until, err = deadletter.ParseTime(get("until"), now); err != nil {
		return f, fmt.Errorf("until: %v", err)
	}
	return f, f.Check()
}

// replayBody is the body of POST /dlq/replay.
type replayBody struct {
	IDs []job.ID `json:"ids"`
	All bool     `json:"all"`
	// ID is the filter form's job id: with all, that job's letters.
	ID     job.ID `json:"id"`
	DryRun bool   `json:"dry_run"`
	Type   string `json:"type"`
	Error  string `json:"error"`
	Since  string `json:"since"`
	Until  string `json:"until"`
	Group  string `json:"group"`
	Kind   string `json:"kind"`
	Limit  int    `json:"limit"`
}

// replayFailure is the body of a replay that failed part-way: what was
// done before the failure, and the error.
type replayFailure struct {
	Error string `json:"error"`
	deadletter.ReplayResult
}

// handleReplayDeadLetters answers POST /dlq/replay: {"ids": [...]} or
// {"all": true} with the filters of GET /dlq, "limit" (jobs replayed)
// (job ids, in "ids" and "id", are JSON numbers or strings alike)
// and "dry_run". Each selected dead job not yet replayed gets a NEW event
// with run+1 in its origin partition and a replay marker; the answer
// says what was replayed, already replayed, skipped and not found.
func (s *Server) handleReplayDeadLetters(w http.ResponseWriter, r *http.Request) {
	if s.opts.DeadLetters == nil {
		writeError(w, http.StatusServiceUnavailable, "this server does not serve dead letters")
		return
	}
	var body replayBody
	if !s.readJSONBody(w, r, &body, "replay request", `{"ids": [...]} or {"all": true}, with optional id, type, error, since, until, group, kind, limit, dry_run`) {
		return
	}
	vals := url.Values{}
	for k, v := range map[string]string{"type": body.Type, "error": body.Error, "since": body.Since, "until": body.Until, "group": body.Group, "kind": body.Kind} {
		vals.Set(k, v)
	}
	f, err := dlqFilter(vals.Get, s.opts.Now())
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	f.Limit = body.Limit
	f.JobID = body.ID
	req := deadletter.ReplayRequest{IDs: body.IDs, All: body.All, Filter: f, DryRun: body.DryRun, Now: s.opts.Now}
	if err := req.Check(); err != nil {
		writeError(w, http.StatusBadRequest, err.Error()+` (send {"ids": [...]} or {"all": true})`)
		return
	}
	// As for POST /jobs: a client going away must not cut a replay
	// half-way; the result must say what was written.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), replayTimeout)
	defer cancel()
	res, err := s.opts.DeadLetters.Replay(ctx, req)
	if errors.Is(err, deadletter.ErrTopicNotFound) {
		err = nil // nothing has died: every id is not found
	}
	if err != nil {
		s.log.Warn("replaying dead jobs failed", "err", err)
		writeJSON(w, http.StatusServiceUnavailable, replayFailure{Error: "replaying failed part-way (replaying again is safe): " + err.Error(), ReplayResult: res})
		return
	}
	writeJSON(w, http.StatusOK, res)
}
