package worker

import (
	"github.com/jobctl/jobctl/pkg/backoff"
	"time"
)

// Policy is how the jobs of one type are run: the time limit of an
// attempt and how often and how far apart attempts are retried.
type Policy struct {
	// Timeout ends an attempt's handler context; 0 = no limit.
	Timeout time.Duration
	// MaxAttempts is how many attempts a run gets before the job is DEAD.
	MaxAttempts int
	// Backoff is the wait before the first retry; it doubles per attempt
	// up to BackoffMax.
	Backoff    time.Duration
	BackoffMax time.Duration
}

// Defaults of a Policy's zero fields.
const (
	DefaultMaxAttempts = 5
	DefaultBackoff     = time.Second
	DefaultBackoffMax  = 5 * time.Minute
)

func (p Policy) withDefaults() Policy {
	if p.MaxAttempts < 1 {
		p.MaxAttempts = DefaultMaxAttempts
	}
	if p.Backoff <= 0 {
		p.Backoff = DefaultBackoff
	}
	if p.BackoffMax <= 0 {
		p.BackoffMax = DefaultBackoffMax
	}
	if p.BackoffMax < p.Backoff {
		p.BackoffMax = p.Backoff
	}
	return p
}

// override returns p with o's non-zero fields.
func (p Policy) override(o Policy) Policy {
	if o.Timeout > 0 {
		p.Timeout = o.Timeout
	}
	if o.MaxAttempts > 0 {
		p.MaxAttempts = o.MaxAttempts
	}
	if o.Backoff > 0 {
		p.Backoff = o.Backoff
	}
	if o.BackoffMax > 0 {
		p.BackoffMax = o.BackoffMax
	}
	return p
}

// policyFor returns the policy of job type typ.
func (w *Worker) policyFor(typ string) Policy {
	if p, ok := w.policies[typ]; ok {
		return p
	}
	return w.defaultPolicy
}

// BackoffAfter returns the wait before the attempt that follows failed
// attempt n: Backoff * 2^(n-1), capped at BackoffMax, then "equal
// jitter": a uniformly random point in its upper half. The jitter spreads
// retries out, so an outage of a dependency does not come back as a
// synchronised storm of retries; the half kept fixed still backs off.
func (p Policy) BackoffAfter(n int) time.Duration {
	return backoff.Jitter(backoff.Exponential(n, p.Backoff, p.BackoffMax))
}
