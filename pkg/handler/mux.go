package handler

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"

	"github.com/jobctl/jobctl/pkg/job"
)

// ErrNoHandler is the cause of every NoHandlerError: a worker treats it
// as final (no retry) since another attempt would meet the same routes.
var ErrNoHandler = errors.New("no handler for the job type")

// NoHandlerError is the error of a job whose type a Mux does not serve.
type NoHandlerError struct{ Type string }

func (e NoHandlerError) Error() string { return fmt.Sprintf("no handler for job type %q", e.Type) }

// Is makes errors.Is(err, ErrNoHandler) true.
func (e NoHandlerError) Is(target error) bool { return target == ErrNoHandler }

// Mux routes each job to the handler of its type, as asynq's ServeMux
// does by task type and River by job kind. A job of a type without a
// route goes to the fallback, if one is set, and otherwise fails with a
// NoHandlerError. A Mux is built before use and not changed after.
type Mux struct {
	routes   map[string]Handler
	fallback Handler
}

var _ ResultHandler = (*Mux)(nil)

// NewMux returns a Mux with no routes and no fallback.
func NewMux() *Mux { return &Mux{routes: map[string]Handler{}} }

// Route makes h the handler of jobs of type typ.
func (m *Mux) Route(typ string, h Handler) { m.routes[typ] = h }

// Fallback makes h the handler of every type without a route.
func (m *Mux) Fallback(h Handler) { m.fallback = h }

// Types are the routed types, sorted.
func (m *Mux) Types() []string {
	types := make([]string, 0, len(m.routes))
	for t := range m.routes {
		types = append(types, t)
	}
	sort.Strings(types)
	return types
}

// HandlerFor is the handler of jobs of type typ, or false if none.
func (m *Mux) HandlerFor(typ string) (Handler, bool) {
	if h, ok := m.routes[typ]; ok {
		return h, true
	}
	return m.fallback, m.fallback != nil
}

// ReturnsPromptly reports whether the handler of jobs of type typ says it
// returns as soon as its context ends (see handler.Sleep). A type with no
// handler fails at once, so it returns promptly too.
func (m *Mux) ReturnsPromptly(typ string) bool {
	h, ok := m.HandlerFor(typ)
	if !ok {
		return true
	}
	p, ok := h.(interface{ ReturnsPromptly(string) bool })
	return ok && p.ReturnsPromptly(typ)
}

// Handle runs the handler of j's type.
func (m *Mux) Handle(ctx context.Context, j job.Event) error {
	_, err := m.HandleResult(ctx, j)
	return err
}

// HandleResult runs the handler of j's type and returns its result if it
// is a ResultHandler.
func (m *Mux) HandleResult(ctx context.Context, j job.Event) (json.RawMessage, error) {
	h, ok := m.HandlerFor(j.Type)
	if !ok {
		return nil, NoHandlerError{Type: j.Type}
	}
	if rh, ok := h.(ResultHandler); ok {
		return rh.HandleResult(ctx, j)
	}
	return nil, h.Handle(ctx, j)
}
