package cmd

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/jobctl/jobctl/pkg/config"
	"github.com/jobctl/jobctl/pkg/handler"
	"github.com/jobctl/jobctl/pkg/metrics"
	"github.com/jobctl/jobctl/pkg/output"
	"github.com/jobctl/jobctl/pkg/worker"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

const consumeLong = `Join consumer group --group and process the NEW jobs of the partitions
Kafka assigns to this process.

For each job the handler runs (--handler sleep simulates work; --handler
exec runs --exec-command with the job's JSON payload on stdin and JOB_ID,
JOB_TYPE and JOB_ATTEMPT in its environment). A failing job is tried up to
--max-attempts times. Then a DONE or FAILED event (with the error) is
appended to the partition of the job's NEW record, so every reader sees a
job's events in order; a job still running after a second also gets a
RUNNING event. Only after that event is acknowledged is the job written to
--processed-log and its offset allowed to be committed.

Run several consumers with the same --group to share the work: each job is
processed by one of them. Different groups each process every job. Within
a process, jobs run --concurrency at a time: jobs with the same key (job
id) one after another, others in parallel, even within one partition.
Records that are not NEW are skipped by their status header without being
decoded; records that are not jobs at all are logged and skipped.

Offsets are committed every --commit-interval, per partition up to the
first job not yet finished, so a crash re-runs only unfinished or
uncommitted jobs (at-least-once). On a rebalance, SIGINT or SIGTERM the
consumer stops fetching, lets running jobs finish (for up to --grace on
shutdown; after that they are cancelled and left to the next owner),
writes their events, commits and leaves the group, so others take over at
once. Partitions added to the topic are picked up without a restart.

The consumer exits 0 after --timeout without new jobs (0 = run until
stopped; time spent joining the group or rebalancing does not count) and
prints a summary (-o json: as JSON on stdout), including how many jobs it
ran that another worker had already finished (reexecuted).`

const consumeExample = `  jobctl consume --group workers
  jobctl consume -g workers --concurrency 16 --timeout 0 --metrics-addr 127.0.0.1:9100
  jobctl consume -g workers --sleep 50ms --sleep-jitter 50ms --fail-rate 0.1 --max-attempts 3
  jobctl consume -g mailers --handler exec --exec-command './send-mail.sh' --exec-timeout 30s
  jobctl consume -g workers --processed-log '' -o json`

func newConsumeCmd(app *App) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "consume",
		Short:   "Process NEW jobs as a member of a consumer group",
		Long:    consumeLong,
		Example: consumeExample,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runConsume(cmd.Context(), app)
		},
	}
	f := cmd.Flags()
	addKeyFlag(f, "consume.concurrency", "concurrency", "c")
	addKeyFlag(f, "consume.grace", "grace", "")
	addKeyFlag(f, "consume.processed_log", "processed-log", "")
	addKeyFlag(f, "consume.commit_interval", "commit-interval", "")
	addKeyFlag(f, "consume.max_attempts", "max-attempts", "")
	addKeyFlag(f, "consume.metrics_addr", "metrics-addr", "")
	addKeyFlag(f, "handler.name", "handler", "")
	addKeyFlag(f, "handler.sleep.duration", "sleep", "")
	addKeyFlag(f, "handler.sleep.jitter", "sleep-jitter", "")
	addKeyFlag(f, "handler.sleep.fail_rate", "fail-rate", "")
	addCommandFlag(f, "handler.exec.command", "exec-command")
	return cmd
}

// addCommandFlag is addKeyFlag for a command line: repeatable and never
// split at commas, so --exec-command 'sh -c "echo a,b"' stays one value.
func addCommandFlag(fs *pflag.FlagSet, key, name string) {
	k, _ := config.LookupKey(key)
	fs.StringArray(name, nil, fmt.Sprintf("%s; one value is a shell command line (run by /bin/sh -c), repeat the flag to give the argv instead (env %s)", k.Usage, config.EnvVar(key)))
	_ = fs.SetAnnotation(name, keyAnnotation, []string{key})
}

func newHandler(hc config.HandlerConfig) (handler.Handler, error) {
	switch hc.Name {
	case "sleep":
		return handler.Sleep{Duration: hc.Sleep.Duration, Jitter: hc.Sleep.Jitter, FailRate: hc.Sleep.FailRate}, nil
	case "exec":
		return handler.Exec{Command: hc.Exec.Command}, nil
	}
	return nil, usageErrorf("unknown handler %q", hc.Name)
}

func runConsume(ctx context.Context, app *App) error {
	cfg := app.Config()
	h, err := newHandler(cfg.Handler)
	if err != nil {
		return err
	}
	conn, err := app.Conn()
	if err != nil {
		return err
	}
	var m *metrics.Metrics
	if addr := cfg.Consume.MetricsAddr; addr != "" {
		m = metrics.New()
		stop, err := serveMetrics(app, addr, m)
		if err != nil {
			return err
		}
		defer stop()
	}
	w, err := worker.New(conn, worker.Config{
		Topic:          cfg.Topic,
		Group:          cfg.Group.ID,
		Concurrency:    cfg.Consume.Concurrency,
		MaxAttempts:    cfg.Consume.MaxAttempts,
		CommitInterval: cfg.Consume.CommitInterval,
		Grace:          cfg.Consume.Grace,
		IdleTimeout:    cfg.Timeout,
		ProcessedLog:   cfg.Consume.ProcessedLog,
	}, h, worker.Options{Logger: app.Logger, Metrics: m})
	if err != nil {
		return err
	}
	app.Logger.Info("consuming", "group", cfg.Group.ID, "topic", cfg.Topic, "worker", w.ID(),
		"handler", cfg.Handler.Name, "concurrency", cfg.Consume.Concurrency, "timeout", cfg.Timeout)
	sum, err := w.Run(ctx)
	if err != nil {
		return err
	}
	app.Logger.Info("consumer stopped", "reason", sum.StopReason, "processed", sum.Processed, "done", sum.Done,
		"failed", sum.Failed, "invalid", sum.Invalid, "jobs_per_second", round2(sum.JobsPerSecond))
	if app.Printer().Format == output.JSON {
		return output.WriteJSON(app.IO.Out, sum)
	}
	fmt.Fprintf(app.IO.ErrOut, "consumed (%s): %d processed (%d done, %d failed), %d invalid records skipped, %.1f jobs/s over %.1fs active\n",
		sum.StopReason, sum.Processed, sum.Done, sum.Failed, sum.Invalid, sum.JobsPerSecond, sum.ActiveSeconds)
	return nil
}

// serveMetrics serves m on addr until the returned func is called.
func serveMetrics(app *App, addr string, m *metrics.Metrics) (func(), error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listening for --metrics-addr %s: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", m.Handler())
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			app.Logger.Error("serving metrics", "err", err)
		}
	}()
	app.Logger.Info("serving metrics", "url", "http://"+ln.Addr().String()+"/metrics")
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	}, nil
}

func round2(f float64) float64 { return float64(int64(f*100+0.5)) / 100 }
