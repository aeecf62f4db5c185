package integration

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
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

// devJob is a job as GET /jobs and GET /jobs/{id} show it; the id stays
// raw since mock ids are JSON numbers.
type devJob struct {
	ID      json.RawMessage `json:"job_id"`
	Status  string          `json:"status"`
	Type    string          `json:"type"`
	Attempt int             `json:"attempt"`
	Error   string          `json:"error"`
	Result  json.RawMessage `json:"result"`
	History []struct {
		Status  string `json:"status"`
		Attempt int    `json:"attempt"`
		Error   string `json:"error"`
	} `json:"history"`
}

func (j devJob) id() string { return strings.Trim(string(j.ID), `"`) }

func getJSON(t *testing.T, url string, v any) bool {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return false // e.g. 503 while the view is loading
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	return true
}

// TestDevRefusesForeignDataDir: dev writes only into a directory of its
// own: a non-empty one without the marker is refused (exit 2, naming the
// directory and the marker) and left as it was; a new one is created and
// marked.
func TestDevRefusesForeignDataDir(t *testing.T) {
	foreign := t.TempDir()
	if err := os.WriteFile(filepath.Join(foreign, "notes.txt"), []byte("mine"), 0o644); err != nil {
		t.Fatal(err)
	}
	r := runBinary(t, t.TempDir(), nil, "dev", "--data-dir", foreign, "--broker-addr", "127.0.0.1:0", "--addr", "127.0.0.1:0")
	if r.Code != 2 || !strings.Contains(r.Stderr, foreign) || !strings.Contains(r.Stderr, ".jobctl-dev") {
		t.Fatalf("dev on a non-empty directory not its own: want exit 2 naming %s and .jobctl-dev, got %s", foreign, r)
	}
	entries, _ := os.ReadDir(foreign)
	if len(entries) != 1 {
		t.Fatalf("dev wrote into a directory it refused: %v", entries)
	}

	// A directory that does not exist yet is created and marked; a
	// restart on it (marked, not empty) is what the restart test covers.
	fresh := filepath.Join(t.TempDir(), "a", "b")
	c, _ := startForFirstLine(t, "dev", "--data-dir", fresh, "--broker-addr", "127.0.0.1:0", "--addr", "127.0.0.1:0", "--demo-rate", "0")
	if _, err := os.Stat(filepath.Join(fresh, ".jobctl-dev")); err != nil {
		t.Fatalf("dev did not mark its new data directory: %v", err)
	}
	stopWithSIGINT(t, c)
}

// TestDevDemoShowsFailures: with no --data-dir, dev keeps its data under
// $XDG_DATA_HOME/jobctl/dev; its demo has broken jobs that end DEAD in the
// dead-letter topic and flaky jobs that fail and then succeed; dev takes
// consume's handler flags (a --route serves the demo's plain jobs) and
// runs the scheduler of periodic schedules.
func TestDevDemoShowsFailures(t *testing.T) {
	xdg := t.TempDir()
	c, line := startForFirstLineEnv(t, []string{"XDG_DATA_HOME=" + xdg, "JOBCTL_CONSUME_PROCESSED_LOG=processed.log"},
		"dev", "--broker-addr", "127.0.0.1:0", "--addr", "127.0.0.1:0",
		"--demo-rate", "20", "--log-format", "json",
		"--route", `demo=exec:echo '{"by": "route"}'`, "--route", "*=default", "--sleep", "0s")
	dataDir := filepath.Join(xdg, "jobctl", "dev")
	if !strings.Contains(line, "data "+dataDir) {
		t.Fatalf("dev's data dir is not %s: %q", dataDir, line)
	}
	if _, err := os.Stat(filepath.Join(dataDir, ".jobctl-dev")); err != nil {
		t.Fatalf("the default data dir is not marked: %v", err)
	}
	var url string
	for _, f := range strings.Fields(line) {
		if strings.HasPrefix(f, "http://") {
			url = f
		}
	}

	var dead, flaky, plain devJob
	waitFor(t, "a broken demo job to be DEAD", func() bool {
		var jobs []devJob
		if !getJSON(t, url+"/jobs?status=DEAD&type=broken&limit=1", &jobs) || len(jobs) == 0 {
			return false
		}
		return getJSON(t, url+"/jobs/"+jobs[0].id(), &dead)
	})
	var failures int
	for _, h := range dead.History {
		if h.Status == "FAILED" || h.Status == "DEAD" {
			failures++
			if !strings.Contains(h.Error, "broken job fails every attempt") {
				t.Errorf("broken job %s: attempt %d failed with %q", dead.id(), h.Attempt, h.Error)
			}
		}
	}
	if failures != 3 || dead.Attempt != 3 {
		t.Errorf("broken job %s: want DEAD after 3 failed attempts, got attempt %d with history %+v", dead.id(), dead.Attempt, dead.History)
	}
	waitFor(t, "the dead job in the dead-letter topic", func() bool {
		resp, err := http.Get(url + "/dlq")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode == http.StatusOK && strings.Contains(string(body), `"job_id":`+string(dead.ID))
	})

	waitFor(t, "a flaky demo job to be DONE after failing", func() bool {
		var jobs []devJob
		if !getJSON(t, url+"/jobs?status=DONE&type=flaky&limit=1", &jobs) || len(jobs) == 0 {
			return false
		}
		return getJSON(t, url+"/jobs/"+jobs[0].id(), &flaky)
	})
	var flakyFailed int
	for _, h := range flaky.History {
		if h.Status == "FAILED" {
			flakyFailed++
		}
	}
	if flakyFailed != 2 || flaky.Attempt != 3 {
		t.Errorf("flaky job %s: want 2 FAILED attempts, then DONE on attempt 3; got attempt %d, history %+v", flaky.id(), flaky.Attempt, flaky.History)
	}

	waitFor(t, "a plain demo job DONE by the --route handler", func() bool {
		var jobs []devJob
		if !getJSON(t, url+"/jobs?status=DONE&type=demo&limit=1", &jobs) || len(jobs) == 0 {
			return false
		}
		return getJSON(t, url+"/jobs/"+jobs[0].id(), &plain)
	})
	if string(plain.Result) != `{"by":"route"}` {
		t.Errorf("demo job %s: result %s, want {\"by\":\"route\"} from the --route exec handler", plain.id(), plain.Result)
	}
	// dev's worker runs the scheduler too: a schedule fires jobs.
	sched, err := http.Post(url+"/schedules", "application/json",
		strings.NewReader(`{"name": "tick", "cron": "* * * * * *", "type": "tick"}`))
	if err != nil {
		t.Fatal(err)
	}
	sched.Body.Close()
	if sched.StatusCode/100 != 2 {
		t.Fatalf("POST /schedules: %s", sched.Status)
	}
	waitFor(t, "a scheduled job to be DONE", func() bool {
		var jobs []devJob
		return getJSON(t, url+"/jobs?status=DONE&type=tick&limit=1", &jobs) && len(jobs) > 0
	})
	stopWithSIGINT(t, c)
	// A relative processed log (consume.processed_log) lands in the data
	// dir, not the working directory.
	if _, err := os.Stat(filepath.Join(dataDir, "processed.log")); err != nil {
		t.Errorf("the processed log is not in the data dir: %v", err)
	}
}
