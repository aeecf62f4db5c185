package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/jobctl/jobctl/pkg/control"
	"github.com/jobctl/jobctl/pkg/job"
	"github.com/jobctl/jobctl/pkg/view"
)

// Controller carries out job control; *control.Controller implements it.
// Cancel and Retry return an error wrapping control.ErrConflict when the
// job's status does not allow them.
type Controller interface {
	Cancel(ctx context.Context, j view.Job) error
	Retry(ctx context.Context, j view.Job) (job.Event, error)
	Pause(ctx context.Context, group string) error
	Resume(ctx context.Context, group string) error
}

var _ Controller = (*control.Controller)(nil)

// PausedGroups lists the paused consumer groups; *control.Tail
// implements it.
type PausedGroups interface {
	PausedGroups() []string
}

// controlTimeout bounds one control request's write to Kafka.
const controlTimeout = 15 * time.Second

// controlAnswer is the body of a successful control request.
type controlAnswer struct {
	JobID  job.ID `json:"job_id,omitzero"`
	Run    int    `json:"run"`
	Group  string `json:"group,omitempty"`
	Action string `json:"action"`
}

// controlJob finds the job of a control request, answering 503 or 404
// itself when it cannot.
func (s *Server) controlJob(w http.ResponseWriter, r *http.Request) (view.Job, bool) {
	if s.opts.Control == nil {
		writeError(w, http.StatusServiceUnavailable, "this server does not serve job control")
		return view.Job{}, false
	}
	id := r.PathValue("id")
	j, ok := s.opts.Store.Get(id)
	if !ok {
		// As GET /jobs/{id}: an unknown job may be one not read yet.
		if s.loading(w) {
			return view.Job{}, false
		}
		writeError(w, http.StatusNotFound, fmt.Sprintf("job %q not found", id))
		return view.Job{}, false
	}
	return j, true
}

func (s *Server) controlError(w http.ResponseWriter, what string, err error) {
	if errors.Is(err, control.ErrConflict) {
		writeError(w, http.StatusConflict, err.Error())
		return
	}
	s.log.Warn(what+" failed", "err", err)
	writeError(w, http.StatusServiceUnavailable, what+" failed: "+err.Error())
}

// handleCancelJob answers POST /jobs/{id}/cancel: 202 once the cancel is
// in the control topic; 409 for a job that already finished.
func (s *Server) handleCancelJob(w http.ResponseWriter, r *http.Request) {
	j, ok := s.controlJob(w, r)
	if !ok {
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), controlTimeout)
	defer cancel()
	if err := s.opts.Control.Cancel(ctx, j); err != nil {
		s.controlError(w, "cancelling the job", err)
		return
	}
	writeJSON(w, http.StatusAccepted, controlAnswer{JobID: j.ID, Run: j.Run, Action: "cancel"})
}

// handleRetryJob answers POST /jobs/{id}/retry: 202 with the new run once
// its NEW is written; 409 unless the job is FAILED, DEAD or CANCELED.
func (s *Server) handleRetryJob(w http.ResponseWriter, r *http.Request) {
	j, ok := s.controlJob(w, r)
	if !ok {
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), controlTimeout)
	defer cancel()
	ev, err := s.opts.Control.Retry(ctx, j)
	if err != nil {
		s.controlError(w, "retrying the job", err)
		return
	}
	writeJSON(w, http.StatusAccepted, controlAnswer{JobID: ev.JobID, Run: ev.Run, Action: "retry"})
}

func (s *Server) handlePauseGroup(w http.ResponseWriter, r *http.Request) {
	s.pauseOrResume(w, r, true)
}

func (s *Server) handleResumeGroup(w http.ResponseWriter, r *http.Request) {
	s.pauseOrResume(w, r, false)
}

// pauseOrResume answers POST /groups/{group}/pause and /resume: 202 once
// the state is in the control topic.
func (s *Server) pauseOrResume(w http.ResponseWriter, r *http.Request, pause bool) {
	if s.opts.Control == nil {
		writeError(w, http.StatusServiceUnavailable, "this server does not serve job control")
		return
	}
	group := r.PathValue("group")
	if strings.TrimSpace(group) == "" {
		writeError(w, http.StatusBadRequest, "a group name is required")
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), controlTimeout)
	defer cancel()
	do, action := s.opts.Control.Resume, "resume"
	if pause {
		do, action = s.opts.Control.Pause, "pause"
	}
	if err := do(ctx, group); err != nil {
		s.controlError(w, action+" of group "+group, err)
		return
	}
	writeJSON(w, http.StatusAccepted, controlAnswer{Group: group, Action: action})
}

// pausedGroups is the list for /stats (empty without job control).
func (s *Server) pausedGroups() []string {
	if s.opts.Paused == nil {
		return []string{}
	}
	return s.opts.Paused.PausedGroups()
}
