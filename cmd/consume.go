package cmd

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"time"

	"github.com/jobctl/jobctl/pkg/config"
	"github.com/jobctl/jobctl/pkg/handler"
	"github.com/jobctl/jobctl/pkg/metrics"
	"github.com/jobctl/jobctl/pkg/output"
	"github.com/jobctl/jobctl/pkg/schedule"
	"github.com/jobctl/jobctl/pkg/worker"
	"github.com/spf13/cobra"
)

const consumeLong = `Join consumer group --group and process the NEW jobs of the partitions
Kafka assigns to this process.

For each job the handler runs (--handler sleep simulates work; --handler
exec runs --exec-command with the job's JSON payload on stdin, JOB_ID,
JOB_TYPE, JOB_RUN and JOB_ATTEMPT in an allow-listed environment). Up to
--concurrency jobs run at once; a slow or hung job holds only its own slot
(jobs of one job id run one after another, in order). Each attempt ends
after --job-timeout.

Every outcome is written before the job's offset may be committed:
  DONE     appended to the partition of the job's NEW record;
  FAILED   with retry_at: the attempt failed and the job waits for its next
           attempt in the topic <topic>.delay (not in memory, not on its
           partition, so nothing behind it waits), backing off from
           --retry-backoff, doubling up to --retry-backoff-max, with jitter;
  DEAD     after --max-attempts: the job goes to <topic>.dlq with every
           attempt's error ('jobctl dlq list', 'jobctl dlq replay').
Records that are not jobs (not JSON, no key, unknown status, too large) go
to <topic>.dlq too, with the reason and where they came from.
--type-policy TYPE:timeout=30s,max_attempts=10,retry_backoff=2s,retry_backoff_max=1m
overrides those settings for one job type (repeat the flag per type).

A NEW whose run_at is ahead is not run early: the group records it
SCHEDULED and parks it in <topic>.delay until then (like a retry), so it
survives restarts; it runs within about a second after its time.

Same --group = the work is shared; different groups each process every
job. A group without committed offsets starts at the earliest record of
each partition (--from earliest, the default: every job still in the
topic) or after the latest (--from latest: only jobs produced from now on),
and says so once at start, with how many records that is. A job id the group already ran is not run again when it shows up a
second time (a retried POST, a duplicate line) within --dedup-window
records of its partition. Offsets are committed every --commit-interval,
per partition up to the first unfinished job (at-least-once: a job's
outcome is written before its offset is committed); after a crash the
next owner skips the jobs that had already finished, so only jobs that
were running run again. --instance-id makes the membership static: a restart
within --session-timeout gets the same partitions back and the other
members never pause. Rebalances are cooperative: members keep working on
the partitions they keep.

The first SIGINT/SIGTERM stops starting jobs and waits up to --grace for
running ones (it says how many); a second one stops at once, leaving
unfinished jobs uncommitted for the next owner. The consumer exits 0
after --timeout without new jobs (0 = run until stopped) and prints a
summary (-o json: as JSON on stdout).

--route TYPE=HANDLER (repeatable; handler.routes) runs a handler per job
type: TYPE=exec:COMMAND (a shell command line, with --exec-env),
TYPE=sleep[:DURATION], or TYPE=default (the --handler handler). TYPE '*'
serves every type without a route. With routes and no '*', a job of a
type no route serves is not run: it ends DEAD at once ("no handler for job
type ...") in <topic>.dlq, from where 'jobctl dlq replay' runs it again
once a consumer serves the type.

An exec handler's stdout (up to 64 KiB; more is cut, with a note) is the
job's result, kept in its DONE event and shown by 'jobctl jobs get' and
GET /jobs/{id}: as JSON when it is JSON, else as a string.

Unless --scheduler=false (consume.scheduler), the consumer also runs the
scheduler of periodic schedules ('jobctl schedule'): all consumers of the
topic elect one leader that writes each tick's job.`

const consumeExample = `  jobctl consume --group workers
  jobctl consume -g workers --concurrency 16 --timeout 0 --metrics-addr 127.0.0.1:9100
  jobctl consume -g workers --max-attempts 10 --retry-backoff 2s --job-timeout 1m
  jobctl consume -g mailers --handler exec --exec-command './send-mail.sh' --type-policy 'email:timeout=30s'
  jobctl consume -g workers --route 'email=exec:./send-mail.sh' --route 'report=sleep:2s' --route '*=default'
  jobctl consume -g workers --instance-id "$(hostname)-1" --processed-log '' -o json`

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
	addHandlerFlags(f)
	addKeyFlag(f, "consume.grace", "grace", "")
	addKeyFlag(f, "consume.processed_log", "processed-log", "")
	addKeyFlag(f, "consume.commit_interval", "commit-interval", "")
	addKeyFlag(f, "consume.dedup_window", "dedup-window", "")
	addKeyFlag(f, "consume.from", "from", "")
	addKeyFlag(f, "consume.instance_id", "instance-id", "")
	addKeyFlag(f, "consume.session_timeout", "session-timeout", "")
	addKeyFlag(f, "consume.metrics_addr", "metrics-addr", "")
	addKeyFlag(f, "consume.scheduler", "scheduler", "")
	return cmd
}

func runConsume(ctx context.Context, app *App) error { return runConsumeWith(ctx, app, nil) }

// runConsumeWith is runConsume with wrap, when not nil, around the
// configured handler: dev's demo fails some job types on purpose.
func runConsumeWith(ctx context.Context, app *App, wrap func(handler.Handler) handler.Handler) error {
	cfg := app.Config()
	h, err := newHandler(cfg.Handler, cfg.Group.ID)
	if err != nil {
		return err
	}
	if wrap != nil {
		h = wrap(h)
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
	typePolicies, err := config.ParseTypePolicies(cfg.Consume.TypePolicies)
	if err != nil {
		return usageErrorf("--type-policy: %v", err)
	}
	policies := make(map[string]worker.Policy, len(typePolicies))
	for typ, tp := range typePolicies {
		policies[typ] = worker.Policy{Timeout: tp.Timeout, MaxAttempts: tp.MaxAttempts, Backoff: tp.RetryBackoff, BackoffMax: tp.RetryBackoffMax}
	}
	dedup := cfg.Consume.DedupWindow
	if dedup == 0 {
		dedup = -1 // off
	}
	w, err := worker.New(conn, worker.Config{
		Topic:       cfg.Topic,
		Group:       cfg.Group.ID,
		Concurrency: cfg.Consume.Concurrency,
		Policy: worker.Policy{
			Timeout:     cfg.Consume.JobTimeout,
			MaxAttempts: cfg.Consume.MaxAttempts,
			Backoff:     cfg.Consume.RetryBackoff,
			BackoffMax:  cfg.Consume.RetryBackoffMax,
		},
		Policies:       policies,
		CommitInterval: cfg.Consume.CommitInterval,
		Grace:          cfg.Consume.Grace,
		IdleTimeout:    cfg.Timeout,
		ProcessedLog:   cfg.Consume.ProcessedLog,
		DedupWindow:    dedup,
		From:           cfg.Consume.From,
		InstanceID:     cfg.Consume.InstanceID,
		SessionTimeout: cfg.Consume.SessionTimeout,
	}, h, worker.Options{Logger: app.Logger, Metrics: m, Abort: Abort(ctx)})
	if err != nil {
		return err
	}
	handlerName := cfg.Handler.Name
	if len(cfg.Handler.Routes) > 0 {
		handlerName = "routes"
	}
	app.Logger.Info("consuming", "group", cfg.Group.ID, "topic", cfg.Topic, "worker", w.ID(),
		"handler", handlerName, "routes", cfg.Handler.Routes, "concurrency", cfg.Consume.Concurrency, "timeout", cfg.Timeout)
	// The periodic-schedule scheduler runs beside the worker and stops
	// with it (see pkg/schedule: one of all consumers leads).
	schedCtx, stopScheduler := context.WithCancel(ctx)
	schedDone := make(chan struct{})
	if cfg.Consume.Scheduler {
		sched := schedule.NewScheduler(conn, schedule.SchedulerConfig{JobTopic: cfg.Topic, SessionTimeout: cfg.Consume.SessionTimeout, Logger: app.Logger})
		go func() {
			defer close(schedDone)
			if err := sched.Run(schedCtx); err != nil {
				app.Logger.Error("the scheduler stopped; this process fires no scheduled jobs", "err", err)
			}
		}()
	} else {
		close(schedDone)
	}
	sum, err := w.Run(ctx)
	stopScheduler()
	<-schedDone
	if err != nil {
		return err
	}
	app.Logger.Info("consumer stopped", "reason", sum.StopReason, "processed", sum.Processed, "done", sum.Done,
		"failed", sum.Failed, "dead", sum.Dead, "cancelled", sum.Cancelled, "scheduled", sum.Scheduled,
		"invalid", sum.Invalid, "duplicates_skipped", sum.DuplicatesSkipped,
		"jobs_per_second", round2(sum.JobsPerSecond))
	if app.Printer().Format == output.JSON {
		return output.WriteJSON(app.IO.Out, sum)
	}
	fmt.Fprintf(app.IO.ErrOut, "consumed (%s): %d attempts (%d done, %d failed and retried, %d dead), %d cancelled, %d scheduled, %d invalid records and %d duplicates skipped, %.1f jobs/s over %.1fs active\n",
		sum.StopReason, sum.Processed, sum.Done, sum.Failed, sum.Dead, sum.Cancelled, sum.Scheduled, sum.Invalid, sum.DuplicatesSkipped, sum.JobsPerSecond, sum.ActiveSeconds)
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
	// Profiles, for measuring where a worker's time goes
	// (go tool pprof http://ADDR/debug/pprof/profile?seconds=10).
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
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
