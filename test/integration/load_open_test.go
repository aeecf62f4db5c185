package integration

import (
	"encoding/json"
	"os/exec"
	"testing"
)

// TestLoadOpenLoop runs the load generator's fixed-rate mode against
// serve with only POSTs, then only GETs: each run makes only its
// endpoint's requests, all of them succeed, and the report says it was
// an open loop. No latency or rate is asserted (see test/load).
func TestLoadOpenLoop(t *testing.T) {
	tool := loadTool(t)
	forEachBroker(t, func(t *testing.T, tgt Target) {
		topic := createTopic(t, tgt, 3)
		s := startServe(t, tgt, topic)
		s.waitReady(t)
		for _, c := range []struct {
			ratio      string
			only, none string
		}{{"1", "POST /jobs", "GET /jobs/{id}"}, {"0", "GET /jobs/{id}", "POST /jobs"}} {
			out, err := exec.Command(tool, "-url", s.URL, "-rate", "100", "-duration", "2s", "-concurrency", "4", "-seed", "10", "-post-ratio", c.ratio, "-json").Output()
			var res struct {
				loadResult
				Mode string `json:"mode"`
				Rate int    `json:"rate"`
			}
			if jerr := json.Unmarshal(out, &res); jerr != nil {
				t.Fatalf("load tool -post-ratio %s: %v / %v\n%s", c.ratio, err, jerr, out)
			}
			if err != nil || res.Errors != 0 {
				t.Fatalf("load tool -post-ratio %s reported errors (%v): %+v", c.ratio, err, res)
			}
			if res.Mode != "open" || res.Rate != 100 {
				t.Errorf("-rate 100 reported mode %q rate %d, want open 100", res.Mode, res.Rate)
			}
			// 100/s for 2 s is 200 requests due: all are sent.
			if n := res.Endpoints[c.only].Requests; n != 200 {
				t.Errorf("-post-ratio %s: %d %s requests, want 200", c.ratio, n, c.only)
			}
			if n := res.Endpoints[c.none].Requests; n != 0 {
				t.Errorf("-post-ratio %s: %d %s requests, want none", c.ratio, n, c.none)
			}
		}
	})
}
