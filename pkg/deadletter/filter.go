package deadletter

import (
	"fmt"
	"strings"
	"time"

	"github.com/jobctl/jobctl/pkg/job"
)

// Filter selects dead letters. Zero fields select everything.
type Filter struct {
	// JobID, when set, keeps only that job's letters (1234 and "1234"
	// are one job, as on the job topic).
	JobID job.ID
	Type  string
	// ErrorContains matches, ignoring case, any attempt's error or the
	// reason.
	ErrorContains string
	// Since (inclusive) and Until (exclusive) bound DeadAt.
	Since, Until time.Time
	Group        string
	// Kind is KindJob or KindPoison (markers are never listed).
	Kind Kind
	// Limit caps the entries listed, or the jobs replayed (0 = no cap).
	Limit int
}

// Check says what is wrong with f, if anything.
func (f Filter) Check() error {
	if f.Kind != "" && f.Kind != KindJob && f.Kind != KindPoison {
		return fmt.Errorf("kind %q: want job or poison", string(f.Kind))
	}
	if f.Limit < 0 {
		return fmt.Errorf("limit %d: want 0 (no limit) or more", f.Limit)
	}
	if !f.Since.IsZero() && !f.Until.IsZero() && !f.Since.Before(f.Until) {
		return fmt.Errorf("since %s is not before until %s", f.Since.Format(time.RFC3339), f.Until.Format(time.RFC3339))
	}
	return nil
}

// Match reports whether letter l passes every filter but Limit.
func (f Filter) Match(l Letter) bool {
	if l.Kind == KindReplayed {
		return false
	}
	if f.Kind != "" && l.Kind != f.Kind {
		return false
	}
	if !f.JobID.IsZero() && l.JobID.String() != f.JobID.String() {
		return false
	}
	if f.Type != "" && l.Type != f.Type {
		return false
	}
	if f.Group != "" && l.Group != f.Group {
		return false
	}
	if !f.Since.IsZero() && l.DeadAt.Before(f.Since) {
		return false
	}
	if !f.Until.IsZero() && !l.DeadAt.Before(f.Until) {
		return false
	}
	if f.ErrorContains != "" {
		want := strings.ToLower(f.ErrorContains)
		found := strings.Contains(strings.ToLower(l.Reason), want)
		for _, e := range l.Errors {
			found = found || strings.Contains(strings.ToLower(e.Error), want)
		}
		if !found {
			return false
		}
	}
	return true
}

// ParseTime reads a --since/--until value: an RFC 3339 time, or a
// duration meaning that long before now ("90m", "1h", "7d" for days).
func ParseTime(s string, now time.Time) (time.Time, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	if days, ok := strings.CutSuffix(s, "d"); ok {
		var n int
		if _, err := fmt.Sscanf(days, "%d", &n); err == nil && fmt.Sprint(n) == days && n >= 0 {
			return now.Add(-time.Duration(n) * 24 * time.Hour), nil
		}
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return time.Time{}, fmt.Errorf("%q is neither an RFC 3339 time (2006-01-02T15:04:05Z) nor a duration ago (1h, 30m, 7d)", s)
	}
	return now.Add(-d), nil
}
