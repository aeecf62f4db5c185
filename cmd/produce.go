package cmd

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/jobctl/jobctl/pkg/job"
	"github.com/jobctl/jobctl/pkg/ledger"
	"github.com/jobctl/jobctl/pkg/producer"
	"github.com/spf13/cobra"
)

func newProduceCmd(app *App) *cobra.Command {
	var when produceWhen
	cmd := &cobra.Command{
		Use:   "produce",
		Short: "Emit NEW jobs onto the topic: mock jobs, or JSON lines from a file or stdin",
		Long: `Emit jobs with status NEW onto the job-status topic.

By default produce generates --count mock jobs with numeric ids (like the
seed's producer). With -f it reads one job per line instead, from a file or
from stdin (-f -); each line is a JSON job such as the seed's payload
{"job_id": 1234, "status": "NEW"}, optionally with "type" and "payload".
A line without job_id gets a unique id; a status other than NEW is refused.

--delay 5m or --at 2026-12-24T18:00:00Z makes the jobs wait: they are
SCHEDULED until then and run within about a second of it (a line's own
"run_at" wins over both). A time in the past means now; more than a year
ahead is refused.

Records are keyed by job id and partitioned like the Java client (murmur2).
A job counts as sent only when all in-sync replicas acknowledged it; each
job that could not be sent is logged with its id. A bad input line is
reported with its line number and, per --on-error, skipped (the run goes on
but still exits 1) or fatal (stop: nothing after it is read).

On a terminal a progress line shows long runs; a summary ends every run
(-o json prints it as JSON on stdout). Exit 0 only when every job was sent.`,
		Example: `  jobctl produce --count 1000
  jobctl produce --count 100000 --rate 500 --type email --payload '{"to":"a@b.c"}'
  echo '{"job_id": 1234, "status": "NEW"}' | jobctl produce -f -
  jobctl produce --count 10 --delay 5m
  echo '{"type": "report", "run_at": "2026-12-24T18:00:00Z"}' | jobctl produce -f -
  jobctl produce -f jobs.jsonl --on-error skip -o json
  jobctl produce --count 3000000 --cpuprofile produce.pprof && go tool pprof -top produce.pprof`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withCPUProfile(when.cpuProfile, func() error { return runProduce(cmd, app, when) })
		},
	}
	f := cmd.Flags()
	addKeyFlag(f, "produce.count", "count", "n")
	addKeyFlag(f, "produce.rate", "rate", "")
	addKeyFlag(f, "produce.type", "type", "")
	addKeyFlag(f, "produce.payload", "payload", "")
	addKeyFlag(f, "produce.file", "file", "f")
	addKeyFlag(f, "produce.on_error", "on-error", "")
	f.DurationVar(&when.delay, "delay", 0, "run the jobs this long after they are sent (e.g. 30s, 5m, 2h); they are SCHEDULED until then")
	f.StringVar(&when.at, "at", "", "run the jobs at this time (RFC 3339, e.g. 2026-12-24T18:00:00Z); they are SCHEDULED until then")
	f.StringVar(&when.cpuProfile, "cpuprofile", "", cpuProfileUsage)
	return cmd
}

// produceWhen holds --delay and --at, which apply to one run only (no
// config keys: a default delay for every produce would surprise), and
// --cpuprofile, which is as much one run's.
type produceWhen struct {
	delay      time.Duration
	at         string
	cpuProfile string
}

// options checks the flags and sets them on opts.
func (pw produceWhen) options(opts *producer.Options, delaySet bool) error {
	if delaySet && pw.at != "" {
		return usageErrorf("--delay and --at exclude each other: give one")
	}
	if delaySet {
		if pw.delay < 0 {
			return usageErrorf("--delay %s is negative", pw.delay)
		}
		if pw.delay > job.MaxRunAhead {
			return usageErrorf("--delay %s is more than a year", pw.delay)
		}
		opts.Delay = pw.delay
	}
	if pw.at != "" {
		at, err := time.Parse(time.RFC3339, pw.at)
		if err != nil {
			return usageErrorf("--at %q is not an RFC 3339 time such as 2026-12-24T18:00:00Z", pw.at)
		}
		if time.Until(at) > job.MaxRunAhead {
			return usageErrorf("--at %s is more than a year ahead", pw.at)
		}
		opts.RunAt = at
	}
	return nil
}

func runProduce(cmd *cobra.Command, app *App, when produceWhen) error {
	opts := producer.Options{}
	if err := when.options(&opts, cmd.Flags().Changed("delay")); err != nil {
		return err
	}
	cfg := app.Config().Produce
	var payload json.RawMessage
	if cfg.Payload != "" {
		if !json.Valid([]byte(cfg.Payload)) {
			return usageErrorf("--payload is not valid JSON: %s", cfg.Payload)
		}
		payload = json.RawMessage(cfg.Payload)
	}
	var src producer.Source
	total := 0
	switch cfg.File {
	case "":
		src = producer.NewMockSource(cfg.Count, cfg.Type, payload)
		total = cfg.Count
	case "-":
		src = producer.NewLineSource(app.IO.In)
	default:
		file, err := os.Open(cfg.File)
		if err != nil {
			return usageErrorf("--file: %v", err)
		}
		defer file.Close()
		src = producer.NewLineSource(file)
	}

	conn, err := app.Conn()
	if err != nil {
		return err
	}
	if _, err := ledger.Partitions(cmd.Context(), conn.Client(), app.Config().Topic); err != nil {
		return err
	}
	w := ledger.NewWriter(conn, app.Config().Topic)
	defer w.Close()

	opts.Rate, opts.OnError, opts.Total, opts.Logger = cfg.Rate, producer.OnError(cfg.OnError), total, app.Logger
	bar := &progressLine{w: app.IO.ErrOut}
	if app.IO.ErrTTY {
		opts.Progress = bar.update
	}
	summary, err := producer.Run(cmd.Context(), w, src, opts)
	bar.finish()
	if err != nil {
		return fmt.Errorf("producing to %s: %w", app.Config().Topic, err)
	}
	if app.Printer().Format == "json" {
		if err := app.Printer().Print(summary, nil, nil); err != nil {
			return err
		}
	} else {
		fmt.Fprintln(app.IO.Out, summary.String())
	}
	// The summary above is the one report of the run; the log line is for
	// --log-level debug only, else a terminal shows it twice.
	app.Logger.Debug("produce finished", "sent", summary.Sent, "failed", summary.Failed, "bad_lines", summary.BadLines, "jobs_per_second", summary.JobsPerSecond)
	if !summary.OK() {
		return &silentError{code: ExitFailure}
	}
	return nil
}

// progressLine draws one self-updating progress line on a terminal.
type progressLine struct {
	w     io.Writer
	drawn bool
}

func (p *progressLine) update(pr producer.Progress) {
	rate := 0.0
	if s := pr.Elapsed.Seconds(); s > 0 {
		rate = float64(pr.Sent) / s
	}
	line := fmt.Sprintf("%d sent", pr.Sent)
	if pr.Total > 0 {
		const width = 30
		done := min(width, width*(pr.Sent+pr.Failed)/pr.Total)
		line = fmt.Sprintf("[%s%s] %d/%d", strings.Repeat("#", done), strings.Repeat(".", width-done), pr.Sent, pr.Total)
	}
	line += "  " + producer.FormatRate(rate) + " jobs/s"
	if pr.Failed > 0 || pr.BadLines > 0 {
		line += fmt.Sprintf("  %d failed, %d bad lines", pr.Failed, pr.BadLines)
	}
	fmt.Fprintf(p.w, "\r\033[K%s", line)
	p.drawn = true
}

// finish erases the progress line: the summary printed next is the run's
// one report, not a second copy of the last progress.
func (p *progressLine) finish() {
	if p.drawn {
		fmt.Fprint(p.w, "\r\033[K")
	}
}
