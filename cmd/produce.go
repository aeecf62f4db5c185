package cmd

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/jobctl/jobctl/pkg/ledger"
	"github.com/jobctl/jobctl/pkg/producer"
	"github.com/spf13/cobra"
)

func newProduceCmd(app *App) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "produce",
		Short: "Emit NEW jobs onto the topic: mock jobs, or JSON lines from a file or stdin",
		Long: `Emit jobs with status NEW onto the job-status topic.

By default produce generates --count mock jobs with numeric ids (like the
seed's producer). With -f it reads one job per line instead, from a file or
from stdin (-f -); each line is a JSON job such as the seed's payload
{"job_id": 1234, "status": "NEW"}, optionally with "type" and "payload".
A line without job_id gets a unique id; a status other than NEW is refused.

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
  jobctl produce -f jobs.jsonl --on-error skip -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runProduce(cmd, app) },
	}
	f := cmd.Flags()
	addKeyFlag(f, "produce.count", "count", "n")
	addKeyFlag(f, "produce.rate", "rate", "")
	addKeyFlag(f, "produce.type", "type", "")
	addKeyFlag(f, "produce.payload", "payload", "")
	addKeyFlag(f, "produce.file", "file", "f")
	addKeyFlag(f, "produce.on_error", "on-error", "")
	return cmd
}

func runProduce(cmd *cobra.Command, app *App) error {
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

	opts := producer.Options{
		Rate: cfg.Rate, OnError: producer.OnError(cfg.OnError), Total: total, Logger: app.Logger,
	}
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
	app.Logger.Info("produce finished", "sent", summary.Sent, "failed", summary.Failed, "bad_lines", summary.BadLines, "jobs_per_second", int(summary.JobsPerSecond))
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
	line += fmt.Sprintf("  %.0f jobs/s", rate)
	if pr.Failed > 0 || pr.BadLines > 0 {
		line += fmt.Sprintf("  %d failed, %d bad lines", pr.Failed, pr.BadLines)
	}
	fmt.Fprintf(p.w, "\r\033[K%s", line)
	p.drawn = true
}

func (p *progressLine) finish() {
	if p.drawn {
		fmt.Fprintln(p.w)
	}
}
