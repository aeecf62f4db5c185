package api

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"time"

	"github.com/jobctl/jobctl/pkg/schedule"
)

// Schedules reads and writes periodic schedules; *schedule.Store
// implements it.
type Schedules interface {
	List(ctx context.Context) ([]schedule.Schedule, error)
	Get(ctx context.Context, name string) (schedule.Schedule, error)
	Put(ctx context.Context, sc schedule.Schedule) (schedule.Schedule, error)
	Delete(ctx context.Context, name string) error
	SetPaused(ctx context.Context, name string, paused bool) (schedule.Schedule, error)
}

var _ Schedules = (*schedule.Store)(nil)

// scheduleTimeout bounds one schedules request (a read of the schedules
// topic to its end and a write), under the default api.write_timeout.
const scheduleTimeout = 25 * time.Second

// scheduleList is the body of GET /schedules.
type scheduleList struct {
	Schedules []schedule.Listed `json:"schedules"`
}

// scheduleBody is the body of POST /schedules.
type scheduleBody struct {
	Name    string          `json:"name"`
	Cron    string          `json:"cron"`
	TZ      string          `json:"tz"`
	Type    string          `json:"type"`
	Payload json.RawMessage `json:"payload"`
	CatchUp string          `json:"catch_up"`
	Paused  bool            `json:"paused"`
}

// withSchedules runs fn with the schedules dependency and a context a
// client going away does not cut short (a write must complete or fail as
// a whole), and answers its error: a SpecError 400, ErrNotFound 404,
// anything else 503.
func (s *Server) withSchedules(w http.ResponseWriter, r *http.Request, fn func(ctx context.Context, sch Schedules) (any, error)) {
	if s.opts.Schedules == nil {
		writeError(w, http.StatusServiceUnavailable, "this server does not serve schedules")
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), scheduleTimeout)
	defer cancel()
	v, err := fn(ctx, s.opts.Schedules)
	switch {
	case err == nil:
		writeJSON(w, http.StatusOK, v)
	case schedule.IsSpecError(err):
		writeError(w, http.StatusBadRequest, err.Error())
	case errors.Is(err, schedule.ErrNotFound):
		writeError(w, http.StatusNotFound, err.Error())
	default:
		s.log.Warn("schedules request failed", "path", r.URL.Path, "err", err)
		writeError(w, http.StatusServiceUnavailable, "reading or writing the schedules topic failed: "+err.Error())
	}
}

func (s *Server) listed(sc schedule.Schedule) schedule.Listed {
	return schedule.WithNextRun([]schedule.Schedule{sc}, s.opts.Now())[0]
}

// handleListSchedules answers GET /schedules: every schedule by name,
// with its next run.
func (s *Server) handleListSchedules(w http.ResponseWriter, r *http.Request) {
	s.withSchedules(w, r, func(ctx context.Context, sch Schedules) (any, error) {
		all, err := sch.List(ctx)
		if err != nil {
			return nil, err
		}
		return scheduleList{Schedules: schedule.WithNextRun(all, s.opts.Now())}, nil
	})
}

// handleGetSchedule answers GET /schedules/{name}.
func (s *Server) handleGetSchedule(w http.ResponseWriter, r *http.Request) {
	s.withSchedules(w, r, func(ctx context.Context, sch Schedules) (any, error) {
		sc, err := sch.Get(ctx, r.PathValue("name"))
		return s.listed(sc), err
	})
}

// handlePutSchedule answers POST /schedules: creates the schedule or
// replaces the one of that name.
func (s *Server) handlePutSchedule(w http.ResponseWriter, r *http.Request) {
	var body scheduleBody
	if !s.readJSONBody(w, r, &body, "schedule", `{"name": ..., "cron": ..., with optional tz, type, payload, catch_up, paused}`) {
		return
	}
	sc := schedule.Schedule{Name: body.Name, Cron: body.Cron, TZ: body.TZ, Type: body.Type, CatchUp: schedule.CatchUp(body.CatchUp), Paused: body.Paused}
	if len(body.Payload) > 0 && string(body.Payload) != "null" {
		sc.Payload = body.Payload
	}
	s.withSchedules(w, r, func(ctx context.Context, sch Schedules) (any, error) {
		saved, err := sch.Put(ctx, sc)
		return s.listed(saved), err
	})
}

// deletedSchedule is the body of DELETE /schedules/{name}.
type deletedSchedule struct {
	Deleted string `json:"deleted"`
}

// handleDeleteSchedule answers DELETE /schedules/{name}.
func (s *Server) handleDeleteSchedule(w http.ResponseWriter, r *http.Request) {
	s.withSchedules(w, r, func(ctx context.Context, sch Schedules) (any, error) {
		name := r.PathValue("name")
		return deletedSchedule{Deleted: name}, sch.Delete(ctx, name)
	})
}

// handlePauseSchedule answers POST /schedules/{name}/pause.
func (s *Server) handlePauseSchedule(w http.ResponseWriter, r *http.Request) {
	s.setSchedulePaused(w, r, true)
}

// handleResumeSchedule answers POST /schedules/{name}/resume.
func (s *Server) handleResumeSchedule(w http.ResponseWriter, r *http.Request) {
	s.setSchedulePaused(w, r, false)
}

func (s *Server) setSchedulePaused(w http.ResponseWriter, r *http.Request, paused bool) {
	s.withSchedules(w, r, func(ctx context.Context, sch Schedules) (any, error) {
		sc, err := sch.SetPaused(ctx, r.PathValue("name"), paused)
		return s.listed(sc), err
	})
}
