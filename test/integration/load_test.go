package integration

import (
	"encoding/json"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
)

var (
	loadToolOnce sync.Once
	loadToolPath string
	loadToolErr  error
	loadToolOut  []byte
)

// loadTool builds test/load once per test binary.
func loadTool(t *testing.T) string {
	t.Helper()
	loadToolOnce.Do(func() {
		loadToolPath = filepath.Join(filepath.Dir(jobctlBin), "jobctl-load")
		build := exec.Command("go", "build", "-o", loadToolPath, "github.com/jobctl/jobctl/test/load")
		loadToolOut, loadToolErr = build.CombinedOutput()
	})
	if loadToolErr != nil {
		t.Fatalf("building test/load: %v\n%s", loadToolErr, loadToolOut)
	}
	return loadToolPath
}

// loadResult is the -json report of test/load.
type loadResult struct {
	Errors    int `json:"errors"`
	Endpoints map[string]struct {
		Requests     int      `json:"requests"`
		Errors       int      `json:"errors"`
		ErrorSamples []string `json:"error_samples"`
	} `json:"endpoints"`
}

// TestLoadSmoke runs the load generator, from a second process, against
// serve for a short while: every GET and POST must succeed. It asserts no
// throughput or latency (the numbers are for people: see test/load).
func TestLoadSmoke(t *testing.T) {
	tool := loadTool(t)
	forEachBroker(t, func(t *testing.T, tgt Target) {
		topic := createTopic(t, tgt, 3)
		s := startServe(t, tgt, topic)
		s.waitReady(t)
		out, err := exec.Command(tool, "-url", s.URL, "-duration", "2s", "-concurrency", "4", "-seed", "20", "-post-ratio", "0.3", "-json").Output()
		var res loadResult
		if jerr := json.Unmarshal(out, &res); jerr != nil {
			t.Fatalf("load tool: %v / %v\n%s", err, jerr, out)
		}
		if err != nil || res.Errors != 0 {
			t.Fatalf("load tool reported errors (%v): %+v", err, res)
		}
		for _, ep := range []string{"GET /jobs/{id}", "POST /jobs"} {
			if res.Endpoints[ep].Requests == 0 {
				t.Errorf("no %s requests were made: %+v", ep, res)
			}
		}
		t.Logf("load smoke: %+v", res.Endpoints)
	})
}
