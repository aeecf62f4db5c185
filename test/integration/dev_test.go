package integration

import (
	"encoding/json"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// startDev runs `jobctl dev` on free ports and returns the dashboard URL.
func startDev(t *testing.T, dataDir string) (*exec.Cmd, string) {
	t.Helper()
	c, line := startForFirstLine(t, "dev", "--data-dir", dataDir, "--broker-addr", "127.0.0.1:0",
		"--addr", "127.0.0.1:0", "--demo-rate", "20", "--log-format", "json")
	// "jobctl dev: dashboard http://127.0.0.1:PORT  broker ..."
	for _, f := range strings.Fields(line) {
		if strings.HasPrefix(f, "http://") {
			return c, f
		}
	}
	t.Fatalf("no URL in %q", line)
	return nil, ""
}

type devStats struct {
	Jobs struct {
		Total    int            `json:"total"`
		ByStatus map[string]int `json:"by_status"`
	} `json:"jobs"`
}

func getStats(t *testing.T, url string) devStats {
	t.Helper()
	resp, err := http.Get(url + "/stats")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var s devStats
	if err := json.NewDecoder(resp.Body).Decode(&s); err != nil {
		t.Fatal(err)
	}
	return s
}

// waitFor polls cond until it holds; the deadline is a hang guard only.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// TestDevRunsEverythingAndKeepsJobs: `jobctl dev` serves the dashboard,
// its demo producer's jobs reach DONE, Ctrl-C stops it cleanly, and a
// restart on the same data dir still has every job.
func TestDevRunsEverythingAndKeepsJobs(t *testing.T) {
	dataDir := t.TempDir()
	c, url := startDev(t, dataDir)
	resp, err := http.Get(url + "/")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("dashboard: %v %v", err, resp)
	}
	resp.Body.Close()
	waitFor(t, "demo jobs to reach DONE", func() bool { return getStats(t, url).Jobs.ByStatus["DONE"] >= 10 })
	id := uniqueName(t, "keep")
	post, err := http.Post(url+"/jobs", "application/json", strings.NewReader(`{"job_id": "`+id+`", "type": "kept"}`))
	if err != nil || post.StatusCode != http.StatusAccepted {
		t.Fatalf("POST /jobs: %v %v", err, post)
	}
	post.Body.Close()
	waitFor(t, "the posted job to reach DONE", func() bool { return jobStatus(t, url, id) == "DONE" })
	stopWithSIGINT(t, c)

	c2, url2 := startDev(t, dataDir)
	waitFor(t, "the restarted view to be ready", func() bool {
		r, err := http.Get(url2 + "/readyz")
		if err != nil {
			return false
		}
		r.Body.Close()
		return r.StatusCode == http.StatusOK
	})
	if got := jobStatus(t, url2, id); got != "DONE" {
		t.Fatalf("after a restart on the same data dir, job %s is %q, want DONE", id, got)
	}
	stopWithSIGINT(t, c2)
}

func jobStatus(t *testing.T, url, id string) string {
	t.Helper()
	resp, err := http.Get(url + "/jobs/" + id)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var j struct{ Status string }
	json.NewDecoder(resp.Body).Decode(&j)
	return j.Status
}
