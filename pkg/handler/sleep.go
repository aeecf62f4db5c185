package handler

import (
	"context"
	"errors"
	"math/rand/v2"
	"time"

	"github.com/jobctl/jobctl/pkg/job"
)

// ErrSimulated is the error of a job the Sleep handler chose to fail.
var ErrSimulated = errors.New("simulated failure (handler.sleep.fail_rate)")

// Sleep simulates work: it waits Duration plus a random extra of up to
// Jitter, then fails a FailRate fraction of jobs. It is the default
// handler, for demos and for measuring jobctl itself.
type Sleep struct {
	Duration time.Duration
	Jitter   time.Duration
	FailRate float64 // 0..1
}

var _ Handler = Sleep{}

// ReturnsPromptly reports that Sleep returns as soon as its context ends,
// whatever the job: a worker may run it without a goroutine of its own.
func (Sleep) ReturnsPromptly(string) bool { return true }

// Handle waits, then succeeds or fails at random.
func (s Sleep) Handle(ctx context.Context, _ job.Event) error {
	d := s.Duration
	if s.Jitter > 0 {
		d += rand.N(s.Jitter + 1)
	}
	if d > 0 {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
	if s.FailRate > 0 && rand.Float64() < s.FailRate {
		return ErrSimulated
	}
	return nil
}
