// Command viewbench rebuilds the job view of a topic in-process and
// reports the rate, the Go heap and the process's RSS, optionally with
// CPU and heap profiles. `jobctl serve` timed by scripts/view-rebuild.sh
// is the figure that counts; this is for finding out why.
//
//	go run ./test/viewbench -topic T [-brokers 127.0.0.1:9092] [-cpuprofile f] [-memprofile f]
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"runtime"
	"runtime/pprof"
	"strings"
	"time"

	"github.com/jobctl/jobctl/pkg/kafkaconn"
	"github.com/jobctl/jobctl/pkg/metrics"
	"github.com/jobctl/jobctl/pkg/view"
)

func main() {
	brokers := flag.String("brokers", "127.0.0.1:9092", "bootstrap brokers")
	topic := flag.String("topic", "", "job topic to read")
	cpu := flag.String("cpuprofile", "", "write a CPU profile of the rebuild here")
	mem := flag.String("memprofile", "", "write a heap profile after the rebuild here")
	find := flag.String("find", "", "instead of rebuilding the view, time view.FindJob of this job id")
	flag.Parse()
	var err error
	if *find != "" {
		err = findJob(*brokers, *topic, *find)
	} else {
		err = run(*brokers, *topic, *cpu, *mem)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "viewbench:", err)
		os.Exit(1)
	}
}

func run(brokers, topic, cpu, mem string) error {
	if topic == "" {
		return fmt.Errorf("-topic is required")
	}
	if cpu != "" {
		f, err := os.Create(cpu)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	v := view.New(view.Options{Conn: &kafkaconn.Conn{Brokers: strings.Split(brokers, ","), ClientID: "viewbench"}, Topic: topic, Metrics: metrics.New()}) // as serve has
	start := time.Now()
	done := make(chan error, 1)
	go func() { done <- v.Run(ctx) }()
	select {
	case <-v.CaughtUp():
	case err := <-done:
		return fmt.Errorf("view stopped: %v", err)
	}
	secs := time.Since(start).Seconds()
	if cpu != "" {
		pprof.StopCPUProfile()
	}
	var records int64
	for _, p := range v.Progress().Partitions {
		records += p.NextOffset
	}
	time.Sleep(2 * time.Second)
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	rss := statusKB("VmRSS")
	jobs := v.Len()
	fmt.Printf("caught up in %.2f s: %d records, %.0f events/s, %d jobs; heap in use %.0f MiB, RSS %.0f MiB (%.0f B/job), peak RSS %.0f MiB\n",
		secs, records, float64(records)/secs, jobs, float64(ms.HeapInuse)/(1<<20), float64(rss)/1024, float64(rss*1024)/float64(max(jobs, 1)), float64(statusKB("VmHWM"))/1024)
	runtime.GC()
	runtime.ReadMemStats(&ms)
	fmt.Printf("after GC: heap alloc %.0f MiB (%.0f B/job)\n", float64(ms.HeapAlloc)/(1<<20), float64(ms.HeapAlloc)/float64(max(jobs, 1)))
	if mem != "" {
		f, err := os.Create(mem)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.WriteHeapProfile(f); err != nil {
			return err
		}
	}
	cancel()
	<-done
	return nil
}

func findJob(brokers, topic, id string) error {
	conn := &kafkaconn.Conn{Brokers: strings.Split(brokers, ","), ClientID: "viewbench"}
	start := time.Now()
	var records int64
	j, ok, err := view.FindJob(context.Background(), conn, topic, id, func(read, total int64) { records = read })
	if err != nil {
		return err
	}
	secs := time.Since(start).Seconds()
	fmt.Printf("FindJob %s: found %v (%s, %d events) after reading %d records in %.2f s (%.0f records/s), RSS peak %.0f MiB\n",
		id, ok, j.Status, j.Events, records, secs, float64(records)/secs, float64(statusKB("VmHWM"))/1024)
	return nil
}

// statusKB reads a "Name: N kB" line of /proc/self/status (0 elsewhere).
func statusKB(name string) int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, name+":"); ok {
			var n int64
			fmt.Sscan(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), &n)
			return n
		}
	}
	return 0
}
