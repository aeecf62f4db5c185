package cmd

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/jobctl/jobctl/pkg/bench"
	"github.com/jobctl/jobctl/pkg/embedded"
	"github.com/jobctl/jobctl/pkg/kafkaconn"
	"github.com/jobctl/jobctl/pkg/output"
	"github.com/spf13/cobra"
)

type benchOptions struct {
	Embedded   bool
	CPUProfile string
	bench.Config
}

func newBenchCmd(app *App) *cobra.Command {
	opts := &benchOptions{}
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Measure produce rate, processing rate and produce-to-DONE latency on a scratch topic",
		Long: `Measure jobctl end to end on the configured brokers (or, with --embedded,
on an in-process embedded broker), the way the commands run:

  1. produce    --count NEW jobs as 'jobctl produce' sends them (batched,
                every job acknowledged by all in-sync replicas): jobs/s.
  2. processed  the same jobs run by --workers workers (group members, in
                this process) of --concurrency each, with a handler that
                does nothing, as 'jobctl consume' runs them: jobs/s from
                the first job handed to a handler to the last DONE event
                acknowledged by Kafka. With a no-op handler this is
                jobctl's own cost per job: one read, one DONE write, the
                commit bookkeeping.
  3. latency    jobs sent one produce call each at --latency-rate jobs/s for
                --latency-duration, as POST /jobs sends them: the time from
                the start of a job's produce call to its DONE event being
                fetched by a reader of the topic, as p50, p90, p99 and max.
                Sending follows a fixed schedule, so a stall shows up as
                latency rather than as a lower rate. A warm-up (until every
                partition has answered, then a second or three at the rate)
                is not measured. --latency-duration 0 skips this phase.

Everything runs on scratch topics (jobctl-bench-<random> and
jobctl-bench-<random>-latency, --partitions and --replication-factor each)
and scratch consumer groups; --topic and --group are not used. They are
deleted at the end, also after Ctrl-C; --keep leaves them for inspection.

Reading the numbers: a bench measures the machine as much as jobctl. The
broker, the producer and the workers share its cores, and other load moves
the figures from run to run. Compare against Kafka's own tools on the same
broker in the same run: scripts/bench-compare.sh does that and prints the
ratios (docs/benchmarks.md keeps the latest table). --embedded measures
jobctl against the embedded broker, which is not Apache Kafka: useful for
jobctl's own overhead, not for capacity planning.

On a terminal a progress line shows each phase. -o json prints the result
for scripts:
  {"embedded": false, "brokers": ["127.0.0.1:9092"], "topics": [...],
   "partitions": 6, "replication_factor": 1, "count": 300000, "workers": 1, "concurrency": 8,
   "latency_rate": 1000, "latency_duration_seconds": 10,
   "produce": {"jobs": 300000, "seconds": 1.4, "jobs_per_second": 214000},
   "processed": {"jobs": 300000, "seconds": 3.9, "jobs_per_second": 77000,
                 "executions": 300000, "committed": true},
   "latency": {"jobs": 10000, "lost": 0, "p50_ms": 4.9, "p90_ms": 6.1,
               "p99_ms": 11.2, "max_ms": 40.3, "new_acked_p50_ms": 2.4,
               "new_acked_p99_ms": 5.1, "done_sent_p50_ms": 3,
               "done_sent_p99_ms": 8},
   "topics_deleted": true}
"executions" above "jobs" means a rebalance made workers run jobs again;
"committed" says the group's offsets covered every job when the workers
stopped; "lost" counts latency jobs whose DONE did not arrive within 10 s.`,
		Example: `  jobctl bench
  jobctl bench --embedded --count 100000
  jobctl bench --count 3000000 --concurrency 16 --latency-duration 0
  jobctl bench --embedded --latency-duration 0 --cpuprofile bench.pprof
  jobctl bench --workers 3 --partitions 12 --latency-rate 5000 -o json
  jobctl -b 127.0.0.1:9094,127.0.0.1:9096,127.0.0.1:9098 bench --replication-factor 3`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withCPUProfile(opts.CPUProfile, func() error { return runBench(cmd.Context(), app, opts) })
		},
	}
	f := cmd.Flags()
	f.BoolVar(&opts.Embedded, "embedded", false, "run against an in-process embedded broker instead of --brokers")
	f.IntVar(&opts.Partitions, "partitions", bench.DefaultPartitions, "partitions of each scratch topic")
	f.IntVar(&opts.ReplicationFactor, "replication-factor", 1, "replication factor of each scratch topic (3 on a 3-node cluster to measure replicated writes)")
	f.IntVarP(&opts.Count, "count", "n", bench.DefaultCount, "jobs to produce and process")
	f.IntVar(&opts.Workers, "workers", bench.DefaultWorkers, "workers (consumer group members) in this process")
	f.IntVarP(&opts.Concurrency, "concurrency", "c", bench.DefaultConcurrency, "jobs each worker runs at once")
	f.Float64Var(&opts.LatencyRate, "latency-rate", bench.DefaultLatencyRate, "jobs per second in the latency phase")
	f.DurationVar(&opts.LatencyDuration, "latency-duration", bench.DefaultLatencyDuration, "how long the latency phase sends jobs (0 = skip it)")
	f.BoolVar(&opts.Keep, "keep", false, "keep the scratch topics and groups")
	f.StringVar(&opts.CPUProfile, "cpuprofile", "", cpuProfileUsage+"; it covers every phase and the process's embedded broker")
	return cmd
}

// benchReport is the -o json output: the run's result and where it ran.
type benchReport struct {
	Embedded bool `json:"embedded"`
	bench.Result
}

func runBench(ctx context.Context, app *App, opts *benchOptions) error {
	if err := opts.Config.Validate(); err != nil {
		return usageErrorf("%v", err)
	}
	var conn *kafkaconn.Conn
	if opts.Embedded {
		b, err := embedded.Start(embedded.Options{Addr: "127.0.0.1:0", Logger: app.Logger})
		if err != nil {
			return err
		}
		defer b.Close()
		conn = &kafkaconn.Conn{Brokers: []string{b.Addr()}, ClientID: app.Config().ClientID}
	} else {
		c, err := app.Conn()
		if err != nil {
			return err
		}
		conn = c
	}
	bopts := bench.Options{Logger: app.Logger}
	if app.IO.ErrTTY {
		bopts.Progress = (&benchProgress{w: app.IO.ErrOut}).update
	}
	res, err := bench.Run(ctx, conn, opts.Config, bopts)
	if err != nil {
		if !res.TopicsDeleted && len(res.Topics) > 0 && !opts.Keep {
			fmt.Fprintf(app.IO.ErrOut, "Scratch topics may be left behind: %s\n", strings.Join(res.Topics, ", "))
		}
		return fmt.Errorf("bench: %w", err)
	}
	report := benchReport{Embedded: opts.Embedded, Result: res}
	p := app.Printer()
	if p.Format == output.JSON {
		return p.Print(report, nil, nil)
	}
	return writeBenchTable(app.IO.Out, report)
}

func writeBenchTable(w io.Writer, r benchReport) error {
	where := strings.Join(r.Brokers, ",")
	if r.Embedded {
		where = "embedded broker " + where
	}
	fmt.Fprintf(w, "jobctl bench on %s: %d partitions (replication factor %d), %d jobs, %d worker(s) x concurrency %d\n\n",
		where, r.Partitions, r.Replication, r.Count, r.Workers, r.Concurrency)
	rows := [][]string{
		{"produce", fmt.Sprintf("%.0f jobs/s", r.Produce.JobsPerSecond),
			fmt.Sprintf("%d jobs in %.2fs, acks=all", r.Produce.Jobs, r.Produce.Seconds)},
		{"processed (no-op handler)", fmt.Sprintf("%.0f jobs/s", r.Processed.JobsPerSecond),
			fmt.Sprintf("%d jobs in %.2fs, first job handled to last DONE acknowledged", r.Processed.Jobs, r.Processed.Seconds)},
	}
	if r.Processed.Executions > r.Processed.Jobs {
		rows = append(rows, []string{"  re-executions", fmt.Sprint(r.Processed.Executions - r.Processed.Jobs), "jobs run again after a rebalance"})
	}
	if !r.Processed.Committed {
		rows = append(rows, []string{"  WARNING", "not committed", "the group's offsets did not cover every job when the workers stopped"})
	}
	if l := r.Latency; l != nil {
		detail := fmt.Sprintf("%d jobs at %.0f jobs/s for %s, one produce call each", l.Jobs, r.LatencyRate, time.Duration(r.LatencyDuration*float64(time.Second)))
		if l.Lost > 0 {
			detail += fmt.Sprintf(", %d LOST (no DONE within 10s)", l.Lost)
		}
		rows = append(rows,
			[]string{"produce->DONE p50", fmt.Sprintf("%.2f ms", l.P50Ms), detail},
			[]string{"produce->DONE p90", fmt.Sprintf("%.2f ms", l.P90Ms), ""},
			[]string{"produce->DONE p99", fmt.Sprintf("%.2f ms", l.P99Ms), ""},
			[]string{"produce->DONE max", fmt.Sprintf("%.2f ms", l.MaxMs), ""},
			[]string{"  until NEW acked p50/p99", fmt.Sprintf("%.1f/%.1f ms", l.NewAckedP50Ms, l.NewAckedP99Ms), "the produce call's own time"},
			[]string{"  until DONE sent p50/p99", fmt.Sprintf("%.0f/%.0f ms", l.DoneSentP50Ms, l.DoneSentP99Ms), "to the DONE record's timestamp (whole ms): the rest is its write and read"},
		)
	}
	state := "deleted"
	if !r.TopicsDeleted {
		state = "kept"
	}
	rows = append(rows, []string{"scratch topics", state, strings.Join(r.Topics, ", ")})
	return output.WriteTable(w, []string{"METRIC", "RESULT", "DETAIL"}, rows)
}

// benchProgress draws one self-updating line per phase on a terminal.
type benchProgress struct {
	w io.Writer
}

func (b *benchProgress) update(p bench.Progress) {
	if p.Phase == bench.PhaseCleanUp {
		return
	}
	line := fmt.Sprintf("%-16s %d", p.Phase, p.Done)
	if p.Total > 0 {
		line += fmt.Sprintf("/%d", p.Total)
	}
	if p.Phase == bench.PhaseWarmUp {
		line += " partitions answered"
	} else if s := p.Elapsed.Seconds(); s > 0 {
		line += fmt.Sprintf("  %.0f jobs/s", float64(p.Done)/s)
	}
	line += fmt.Sprintf("  %.1fs", p.Elapsed.Seconds())
	fmt.Fprintf(b.w, "\r\033[K%s", line)
	if p.Final {
		fmt.Fprintln(b.w)
	}
}
