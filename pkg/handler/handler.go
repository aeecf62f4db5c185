// Package handler is the work a jobctl worker does per job. A Handler is
// to a job what net/http's Handler is to a request: one method, a
// HandlerFunc adapter for plain functions, and built-ins (Sleep for demos
// and load tests, Exec to run any program per job).
package handler

import (
	"context"

	"github.com/jobctl/jobctl/pkg/job"
)

// Handler processes one job. A nil error means the job is DONE; an error
// means this attempt FAILED, with the error's text recorded on the job.
// The context is cancelled when the worker shuts down and its grace
// period is over: a handler should give up then, and the job is left for
// another worker rather than recorded as failed.
type Handler interface {
	Handle(ctx context.Context, j job.Event) error
}

// HandlerFunc lets a plain function be a Handler.
type HandlerFunc func(ctx context.Context, j job.Event) error

// Handle calls f.
func (f HandlerFunc) Handle(ctx context.Context, j job.Event) error { return f(ctx, j) }
