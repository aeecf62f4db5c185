package view

import (
	"os"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/jobctl/jobctl/pkg/job"
)

// TestBytesPerJob measures the view's heap per job for the jobs `jobctl
// produce` makes and `jobctl consume` runs: a NEW (type "mock", no
// payload, a 16-digit numeric id) and a DONE (group, worker), fed straight
// into Apply.
// JOBCTL_VIEW_JOBS sets the number of jobs (default 100000; the figure in
// the package comment is from 1000000):
//
//	JOBCTL_VIEW_JOBS=1000000 go test ./pkg/view -run TestBytesPerJob -v
func TestBytesPerJob(t *testing.T) {
	n := 100_000
	if s := os.Getenv("JOBCTL_VIEW_JOBS"); s != "" {
		var err error
		if n, err = strconv.Atoi(s); err != nil {
			t.Fatal(err)
		}
	} else if testing.Short() {
		n = 10_000
	}
	events := func(i int) (job.Event, job.Event) {
		at := t0.Add(time.Duration(i) * time.Microsecond)
		id := job.NumericID(int64(4_503_599_627_370_496 + i))
		return job.Event{JobID: id, Status: job.StatusNew, Type: "mock", CreatedAt: at, UpdatedAt: at},
			job.Event{JobID: id, Status: job.StatusDone, Type: "mock", Attempt: 1, Worker: "vm-18820-" + strconv.Itoa(i%8), Group: "job-workers", CreatedAt: at, UpdatedAt: at.Add(20 * time.Second)}
	}
	before := heapInUse()
	v := New(Options{})
	for i := range n {
		a, b := events(i)
		// IDs come from decoding in real use: give each its own string.
		a.JobID, _ = job.ParseID(string([]byte(a.JobID.String())))
		v.Apply(a, Record{Partition: i % 12})
		v.Apply(b, Record{Partition: i % 12})
	}
	after := heapInUse()
	runtime.KeepAlive(v)
	if v.Len() != n {
		t.Fatalf("view holds %d jobs, want %d", v.Len(), n)
	}
	per := float64(after-before) / float64(n)
	t.Logf("%d jobs (2 events each): %.0f bytes per job, %.1f MiB in all", n, per, float64(after-before)/(1<<20))
	if per > 200 {
		t.Errorf("%.0f bytes per job: the compact layout regressed", per)
	}
}

func heapInUse() uint64 {
	var m runtime.MemStats
	for range 3 {
		runtime.GC()
	}
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// BenchmarkApply measures merging one NEW and one DONE event.
func BenchmarkApply(b *testing.B) {
	v := New(Options{})
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		id := job.NumericID(int64(i))
		v.Apply(job.Event{JobID: id, Status: job.StatusNew, Type: "mock", UpdatedAt: t0}, Record{})
		v.Apply(job.Event{JobID: id, Status: job.StatusDone, Attempt: 1, UpdatedAt: t0.Add(time.Second)}, Record{})
	}
}
