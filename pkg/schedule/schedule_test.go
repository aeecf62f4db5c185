package schedule

import (
	"log/slog"
	"strings"
	"testing"
	"time"
)

func mustTime(t *testing.T, s string) time.Time {
	t.Helper()
	tm, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		t.Fatal(err)
	}
	return tm
}

func unixes(ts []time.Time) []int64 {
	out := make([]int64, len(ts))
	for i, t := range ts {
		out[i] = t.Unix()
	}
	return out
}

func TestParseAcceptsSecondsMinutesAndDescriptors(t *testing.T) {
	base := mustTime(t, "2026-01-01T10:00:00.5Z")
	for _, c := range []struct {
		spec, tz string
		next     string
	}{
		{"*/1 * * * * *", "", "2026-01-01T10:00:01Z"},
		{"*/10 * * * * *", "", "2026-01-01T10:00:10Z"},
		{"*/5 * * * *", "", "2026-01-01T10:05:00Z"},
		{"0 2 * * *", "Europe/Berlin", "2026-01-02T01:00:00Z"}, // 02:00 CET = 01:00 UTC
		{"@hourly", "", "2026-01-01T11:00:00Z"},
		{"@every 10s", "", "2026-01-01T10:00:10Z"},
	} {
		sc := Schedule{Name: "n", Cron: c.spec, TZ: c.tz}
		if err := sc.Validate(); err != nil {
			t.Errorf("%q: %v", c.spec, err)
			continue
		}
		if got := sc.NextRun(base); !got.Equal(mustTime(t, c.next)) {
			t.Errorf("%q tz %q: next run %s, want %s", c.spec, c.tz, got.UTC(), c.next)
		}
	}
}

func TestValidateNamesWhatIsWrong(t *testing.T) {
	for _, c := range []struct {
		sc   Schedule
		want string
	}{
		{Schedule{Name: "a", Cron: "* * *"}, "bad cron spec"},
		{Schedule{Name: "a", Cron: "61 * * * *"}, "bad cron spec"},
		{Schedule{Name: "a", Cron: "* * * * *", TZ: "Mars/Olympus"}, "unknown time zone \"Mars/Olympus\""},
		{Schedule{Name: "a", Cron: "CRON_TZ=UTC * * * * *"}, "--tz"},
		{Schedule{Name: "a:b", Cron: "* * * * *"}, "contains ':'"},
		{Schedule{Name: "a/b", Cron: "* * * * *"}, "not allowed"},
		{Schedule{Name: "", Cron: "* * * * *"}, "needs a name"},
		{Schedule{Name: "a", Cron: "* * * * *", CatchUp: "some"}, "want skip, one or all"},
		{Schedule{Name: "a", Cron: "* * * * *", Payload: []byte("{")}, "not valid JSON"},
	} {
		err := c.sc.Validate()
		if err == nil || !strings.Contains(err.Error(), c.want) || !IsSpecError(err) {
			t.Errorf("%+v: error %v, want a SpecError containing %q", c.sc, err, c.want)
		}
	}
	sc := Schedule{Name: "a", Cron: "* * * * *"}
	if err := sc.Validate(); err != nil || sc.CatchUp != CatchUpOne {
		t.Errorf("default catch-up: %v %q, want one", err, sc.CatchUp)
	}
}

func TestNextRunOfAPausedScheduleIsZero(t *testing.T) {
	sc := Schedule{Name: "a", Cron: "* * * * *", Paused: true}
	if n := sc.NextRun(time.Now()); !n.IsZero() {
		t.Errorf("paused: next run %s", n)
	}
}

func TestDueByCatchUp(t *testing.T) {
	// A per-second schedule: the last handled tick was :10, the leader
	// took over at :15.4 and now is :17.2.
	since := mustTime(t, "2026-01-01T10:00:10Z")
	lead := mustTime(t, "2026-01-01T10:00:15.4Z")
	now := mustTime(t, "2026-01-01T10:00:17.2Z")
	b := since.Unix()
	for _, c := range []struct {
		policy CatchUp
		want   []int64
	}{
		{CatchUpAll, []int64{b + 1, b + 2, b + 3, b + 4, b + 5, b + 6, b + 7}},
		{CatchUpOne, []int64{b + 5, b + 6, b + 7}},
		{CatchUpSkip, []int64{b + 6, b + 7}},
	} {
		sc := Schedule{Name: "a", Cron: "* * * * * *", CatchUp: c.policy}
		fire, handled := sc.Due(since, lead, now)
		if got := unixes(fire); !equal(got, c.want) {
			t.Errorf("%s: fired %v, want %v", c.policy, got, c.want)
		}
		if handled.Unix() != b+7 {
			t.Errorf("%s: handled up to %d, want %d", c.policy, handled.Unix(), b+7)
		}
		// The next pass a moment later fires nothing again.
		fire, _ = sc.Due(handled, lead, now.Add(300*time.Millisecond))
		if len(fire) != 0 {
			t.Errorf("%s: the next pass fired %v again", c.policy, unixes(fire))
		}
		fire, _ = sc.Due(handled, lead, now.Add(time.Second))
		if got := unixes(fire); !equal(got, []int64{b + 8}) {
			t.Errorf("%s: a second later fired %v, want [%d]", c.policy, got, b+8)
		}
	}
}

func TestDueWhileLeadingFiresEveryTick(t *testing.T) {
	// Ticks that came due while this scheduler led are never dropped, even
	// with skip (a slow pass on a loaded machine).
	lead := mustTime(t, "2026-01-01T10:00:00Z")
	sc := Schedule{Name: "a", Cron: "* * * * * *", CatchUp: CatchUpSkip}
	fire, _ := sc.Due(lead.Add(2*time.Second), lead, lead.Add(5*time.Second+time.Millisecond))
	if got, want := unixes(fire), []int64{lead.Unix() + 3, lead.Unix() + 4, lead.Unix() + 5}; !equal(got, want) {
		t.Errorf("fired %v, want %v", got, want)
	}
}

func TestDueCapsCatchUpAll(t *testing.T) {
	since := mustTime(t, "2026-01-01T00:00:00Z")
	lead := since.Add(2 * time.Hour)
	sc := Schedule{Name: "a", Cron: "* * * * * *", CatchUp: CatchUpAll}
	fire, handled := sc.Due(since, lead, lead)
	if len(fire) != MaxCatchUp || !fire[len(fire)-1].Equal(lead) || !handled.Equal(lead) {
		t.Errorf("fired %d ticks up to %s (handled %s), want the latest %d up to %s", len(fire), fire[len(fire)-1], handled, MaxCatchUp, lead)
	}
}

func TestEveryStaysAnchoredAcrossLeaders(t *testing.T) {
	// @every 10s ticks count from the last handled tick, not from when a
	// new leader took over.
	since := mustTime(t, "2026-01-01T10:00:03Z")
	lead := mustTime(t, "2026-01-01T10:00:27.5Z")
	sc := Schedule{Name: "a", Cron: "@every 10s", CatchUp: CatchUpAll}
	fire, _ := sc.Due(since, lead, lead.Add(10*time.Second))
	b := since.Unix()
	if got, want := unixes(fire), []int64{b + 10, b + 20, b + 30}; !equal(got, want) {
		t.Errorf("fired %v, want %v", got, want)
	}
}

func TestJobIDIsDeterministic(t *testing.T) {
	tick := mustTime(t, "2026-01-01T10:00:03Z")
	sc := Schedule{Name: "report", Cron: "* * * * *", Type: "r", Payload: []byte(`{"a":1}`)}
	e := sc.Job(tick, time.Now())
	if e.JobID.String() != "schedule:report:1767261603" || e.Type != "r" || string(e.Payload) != `{"a":1}` || e.Status != "NEW" {
		t.Errorf("job %+v", e)
	}
}

func TestStateRoundTrip(t *testing.T) {
	in := map[string]int64{"a": 1767261603, "b": 5}
	out, err := decodeState(encodeState(in))
	if err != nil || len(out) != 2 || out["a"] != in["a"] || out["b"] != 5 {
		t.Errorf("%v %v", out, err)
	}
	if m, err := decodeState(""); err != nil || len(m) != 0 {
		t.Errorf("empty: %v %v", m, err)
	}
	if _, err := decodeState("jobctl/1 clean"); err == nil {
		t.Error("foreign metadata decoded")
	}
}

func equal(a, b []int64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestQuietHandlerDemotesInfoOnly(t *testing.T) {
	var b strings.Builder
	log := slog.New(quietHandler{slog.NewTextHandler(&b, &slog.HandlerOptions{Level: slog.LevelInfo})}).With("group", "g")
	log.Info("joined the group")
	log.Warn("heartbeat failed")
	if out := b.String(); strings.Contains(out, "joined") || !strings.Contains(out, "level=WARN msg=\"heartbeat failed\" group=g") {
		t.Errorf("log:\n%s", out)
	}
}
