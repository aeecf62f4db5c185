// Package backoff is how jobctl waits between tries: a sleep that ends
// with its context, and capped exponential delays with jitter. It is a
// leaf package.
package backoff

import (
	"context"
	"math/rand/v2"
	"time"
)

// Sleep waits d, or until ctx ends; it reports whether all of d passed.
func Sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// Exponential is base * 2^(attempt-1), capped at limit; attempt counts
// from 1.
func Exponential(attempt int, base, limit time.Duration) time.Duration {
	if attempt < 1 {
		attempt = 1
	}
	if shift := attempt - 1; shift < 40 {
		if d := base << shift; d > 0 && d < limit {
			return d
		}
	}
	return limit
}

// Jitter returns a uniformly random duration in [d/2, d] ("equal
// jitter"): retries of many clients spread out instead of arriving
// together, and the fixed half still backs off.
func Jitter(d time.Duration) time.Duration {
	if d <= 0 {
		return 0
	}
	half := d / 2
	return half + rand.N(d-half+1)
}
