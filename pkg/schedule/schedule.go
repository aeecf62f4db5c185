// Package schedule is jobctl's periodic (cron) schedules: their
// definitions in the compacted topic <topic>.schedules, the next-run and
// catch-up rules, and the Scheduler that every `jobctl consume` runs, of
// which exactly one (the member owning partition 0 of the one-partition
// topic <topic>.scheduler) fires ticks as NEW jobs on the job topic.
package schedule

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jobctl/jobctl/pkg/job"
	"github.com/robfig/cron/v3"
)

// CatchUp says what a new leader does with the ticks that came due while
// no scheduler was leading (or before the schedule was seen).
type CatchUp string

const (
	// CatchUpSkip fires only ticks that come due from now on.
	CatchUpSkip CatchUp = "skip"
	// CatchUpOne fires the latest missed tick once (the default).
	CatchUpOne CatchUp = "one"
	// CatchUpAll fires every missed tick (at most MaxCatchUp).
	CatchUpAll CatchUp = "all"
)

// MaxCatchUp caps the missed ticks fired at once for one schedule with
// catch_up all (the latest ones are kept), so a schedule per second after
// a week's outage does not flood the job topic.
const MaxCatchUp = 1000

// Schedule is one periodic schedule: the value of its record in the
// schedules topic, keyed by Name.
type Schedule struct {
	Name    string          `json:"name"`
	Cron    string          `json:"cron"`
	TZ      string          `json:"tz,omitempty"`
	Type    string          `json:"type,omitempty"`
	Payload json.RawMessage `json:"payload,omitempty"`
	CatchUp CatchUp         `json:"catch_up"`
	Paused  bool            `json:"paused"`
	// CreatedAt is when the name was first created; UpdatedAt when the
	// definition last changed (create, replace, pause, resume). Ticks at
	// or before UpdatedAt are never fired: a changed or resumed schedule
	// starts afresh, and the ticks of a pause are not made up.
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// parser accepts 5 fields (minute first), 6 fields (seconds first) and
// descriptors such as @hourly or @every 10s.
var parser = cron.NewParser(cron.SecondOptional | cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

// SpecError is a bad cron spec, time zone, name or field of a schedule.
type SpecError struct{ msg string }

func (e *SpecError) Error() string { return e.msg }

// IsSpecError reports whether err is a SpecError (a usage error).
func IsSpecError(err error) bool {
	var se *SpecError
	return errors.As(err, &se)
}

func specErrorf(format string, args ...any) error { return &SpecError{fmt.Sprintf(format, args...)} }

// Parse checks spec and tz and returns the cron schedule in that zone.
func Parse(spec, tz string) (cron.Schedule, *time.Location, error) {
	if t := strings.TrimSpace(spec); strings.HasPrefix(t, "TZ=") || strings.HasPrefix(t, "CRON_TZ=") {
		return nil, nil, specErrorf("cron spec %q: give the time zone with --tz (tz), not in the spec", spec)
	}
	loc := time.UTC
	if tz != "" {
		l, err := time.LoadLocation(tz)
		if err != nil {
			return nil, nil, specErrorf("unknown time zone %q (want an IANA name such as Europe/Berlin, or UTC)", tz)
		}
		loc = l
	}
	s, err := parser.Parse(spec)
	if err != nil {
		return nil, nil, specErrorf("bad cron spec %q: %v (want 5 fields 'min hour dom month dow', 6 with seconds first, or a descriptor such as @hourly or @every 10s)", spec, err)
	}
	return s, loc, nil
}

// maxNameLen keeps a schedule's job ids (schedule:<name>:<unix>) well
// under the job id limit.
const maxNameLen = 200

// Validate checks the definition and fills in the default catch-up.
func (s *Schedule) Validate() error {
	if s.Name == "" {
		return specErrorf("a schedule needs a name")
	}
	if len(s.Name) > maxNameLen {
		return specErrorf("schedule name is %d bytes, over the %d byte limit", len(s.Name), maxNameLen)
	}
	if strings.ContainsAny(s.Name, ":") {
		return specErrorf("schedule name %q contains ':', which is not allowed (it separates the parts of a job id)", s.Name)
	}
	if _, err := job.StringID("schedule:" + s.Name + ":0"); err != nil {
		return specErrorf("schedule name %q: %v", s.Name, err)
	}
	if _, _, err := Parse(s.Cron, s.TZ); err != nil {
		return err
	}
	switch s.CatchUp {
	case "":
		s.CatchUp = CatchUpOne
	case CatchUpSkip, CatchUpOne, CatchUpAll:
	default:
		return specErrorf("catch_up %q: want skip, one or all", s.CatchUp)
	}
	if len(s.Payload) > 0 && !json.Valid(s.Payload) {
		return specErrorf("payload is not valid JSON")
	}
	return nil
}

// Next is the first tick of s strictly after t (zero if it never fires).
func (s Schedule) Next(t time.Time) time.Time {
	cs, loc, err := Parse(s.Cron, s.TZ)
	if err != nil {
		return time.Time{}
	}
	return cs.Next(t.In(loc))
}

// NextRun is when s fires next after now, zero when paused or never.
func (s Schedule) NextRun(now time.Time) time.Time {
	if s.Paused {
		return time.Time{}
	}
	return s.Next(now)
}

// JobID is the id of the job fired for name's tick: the same on every
// scheduler, so a tick fired twice (by two short-lived leaders) is one job
// that workers run once.
func JobID(name string, tick time.Time) job.ID {
	id, _ := job.StringID("schedule:" + name + ":" + strconv.FormatInt(tick.Unix(), 10))
	return id
}

// Job is the NEW event fired for s's tick.
func (s Schedule) Job(tick, now time.Time) job.Event {
	return job.Event{JobID: JobID(s.Name, tick), Status: job.StatusNew, CreatedAt: now.UTC(), Type: s.Type, Payload: s.Payload}
}

// Ticks lists s's ticks in (after, until], at most limit of them, the
// latest ones when there are more (limit <= 0: no limit).
func (s Schedule) Ticks(after, until time.Time, limit int) []time.Time {
	cs, loc, err := Parse(s.Cron, s.TZ)
	if err != nil {
		return nil
	}
	var out []time.Time
	for t := cs.Next(after.In(loc)); !t.IsZero() && !t.After(until); t = cs.Next(t) {
		out = append(out, t)
		if limit > 0 && len(out) > limit {
			out = out[1:]
		}
	}
	return out
}

// Due returns the ticks of s to fire now by the catch-up rule, and the
// last tick handled (fired or skipped on purpose; since when there is
// none), which is the next call's since. since is the last tick already
// handled, or the definition's UpdatedAt when later. Ticks in
// (since, leadStart] were missed (no leader ran, or this leader had not
// seen the schedule yet) and are treated by s.CatchUp; ticks in
// (leadStart, now] came due while this scheduler led and are all fired.
// Ticks are enumerated from since, so an @every schedule stays anchored
// to its own earlier ticks across leaders.
func (s Schedule) Due(since, leadStart, now time.Time) (fire []time.Time, handled time.Time) {
	handled = since
	missed := s.Ticks(since, minTime(leadStart, now), MaxCatchUp)
	if len(missed) > 0 {
		handled = missed[len(missed)-1]
		switch s.CatchUp {
		case CatchUpAll:
			fire = append(fire, missed...)
		case CatchUpOne, "":
			fire = append(fire, handled)
		}
	}
	live := s.Ticks(handled, now, 0)
	if len(live) > 0 {
		handled = live[len(live)-1]
	}
	return append(fire, live...), handled
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// Listed is a schedule as listed (CLI -o json, API): its definition and
// when it fires next (absent when paused or never).
type Listed struct {
	Schedule
	NextRun time.Time `json:"next_run,omitzero"`
}

// WithNextRun pairs each schedule with its next run after now.
func WithNextRun(scs []Schedule, now time.Time) []Listed {
	out := make([]Listed, len(scs))
	for i, sc := range scs {
		out[i] = Listed{Schedule: sc, NextRun: sc.NextRun(now)}
	}
	return out
}
