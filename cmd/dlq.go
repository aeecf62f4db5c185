package cmd

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jobctl/jobctl/pkg/apiclient"
	"github.com/jobctl/jobctl/pkg/deadletter"
	"github.com/jobctl/jobctl/pkg/job"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// dlqReadTimeout bounds reading the dead-letter topic to its end.
const dlqReadTimeout = 2 * time.Minute

func newDLQCmd(app *App) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "dlq",
		Short: "List and replay dead letters (jobs that died, poison records)",
		Long: `Read and replay the dead-letter topic <topic>.dlq (for the default topic:
job-status.dlq). A worker writes a dead letter when a job's last attempt
fails or it fails permanently (kind "job", with every attempt's error),
and when a record of the job topic is not a job at all (kind "poison",
with the raw record). Each command reads the whole dead-letter topic to
its current end; no consumer group is used.

'dlq replay' gives a dead job another run: a NEW event with run+1 (same
id, type and payload, for every group) in the job topic's partition the
job died in, and a "replayed" marker in the dead-letter topic, so a second
replay of the same dead run does nothing. Poison records cannot be
replayed.

When the dead-letter topic does not exist yet (no job has died; 'jobctl
consume' creates it), both commands say so on stderr and exit 0 ('dlq
replay --id' exits 1: the ids have no dead letter).`,
	}
	cmd.AddCommand(newDLQListCmd(app), newDLQReplayCmd(app))
	return cmd
}

// dlqFilterOptions are the filter flags of list and replay. They are
// plain flags, not configuration keys; --from-group is not --group
// because the global --group/-g names the workers' own group.
type dlqFilterOptions struct {
	Type  string
	Error string
	Since string
	Until string
	Group string
	Kind  string
	Limit int
}

func (o *dlqFilterOptions) addFlags(f *pflag.FlagSet, limitDefault int, limitUsage string) {
	f.StringVar(&o.Type, "type", "", "only letters of jobs of this type")
	f.StringVar(&o.Error, "error", "", "only letters whose errors or reason contain this text (ignoring case)")
	f.StringVar(&o.Since, "since", "", "only letters that died at or after this time: RFC 3339, or a duration ago (1h, 30m, 7d)")
	f.StringVar(&o.Until, "until", "", "only letters that died before this time: RFC 3339, or a duration ago")
	f.StringVar(&o.Group, "from-group", "", "only letters written by workers of this consumer group")
	f.StringVar(&o.Kind, "kind", "", "only letters of this kind: job or poison")
	f.IntVar(&o.Limit, "limit", limitDefault, limitUsage)
}

func (o *dlqFilterOptions) filter(now time.Time) (deadletter.Filter, error) {
	f := deadletter.Filter{Type: o.Type, ErrorContains: o.Error, Group: o.Group, Kind: deadletter.Kind(strings.ToLower(o.Kind)), Limit: o.Limit}
	var err error
	if f.Since, err = deadletter.ParseTime(o.Since, now); err != nil {
		return f, usageErrorf("--since: %v", err)
	}
	if f.Until, err = deadletter.ParseTime(o.Until, now); err != nil {
		return f, usageErrorf("--until: %v", err)
	}
	if err := f.Check(); err != nil {
		return f, usageErrorf("%v", err)
	}
	return f, nil
}

// noDeadLetters tells the user why there is nothing to show.
func noDeadLetters(app *App) {
	fmt.Fprintf(app.IO.ErrOut, "no dead letters yet: topic %s does not exist\n", deadletter.Topic(app.Config().Topic))
}

type dlqListOptions struct {
	dlqFilterOptions
	readSourceOptions
}

func newDLQListCmd(app *App) *cobra.Command {
	opts := &dlqListOptions{}
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List dead letters",
		Long: `List dead letters, oldest first, with whether each dead job was replayed.
Replay markers are not listed; they set REPLAYED.

--limit caps the rows (0 for all); when more letters match, a note on
stderr says so. The table cuts long reasons; -o json prints each letter
in full (errors of every attempt, payload, origin, the raw record of a
poison letter in base64) with its position in the dead-letter topic
(dlq_partition, dlq_offset) and replayed / replayed_at.`,
		Example: `  jobctl dlq list
  jobctl dlq list --type resize --since 1h
  jobctl dlq list --error timeout --from-group billing -o json
  jobctl dlq list --kind poison`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			f, err := opts.filter(time.Now())
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), dlqReadTimeout)
			defer cancel()
			limit := f.Limit
			// The server lists at most apiclient.MaxPage letters and has
			// no paging for them: longer listings read the topic.
			if limit > 0 && limit <= apiclient.MaxPage {
				srv, err := app.server(ctx, &opts.readSourceOptions)
				if err != nil {
					return err
				}
				if srv != nil {
					entries, more, err := srv.ListDeadLetters(ctx, f)
					app.clearProgress()
					if err != nil {
						return askServer(srv, "listing dead letters", err)
					}
					return printDeadLetterPage(app, entries, more, limit)
				}
			}
			conn, err := app.Conn()
			if err != nil {
				return err
			}
			if limit > 0 {
				f.Limit++ // one more says whether more match
			}
			entries, err := deadletter.List(ctx, conn, app.Config().Topic, f)
			if errors.Is(err, deadletter.ErrTopicNotFound) {
				noDeadLetters(app)
				if app.Printer().Format == "json" {
					return app.Printer().Print([]deadletter.Entry{}, nil, nil)
				}
				return nil
			}
			if err != nil {
				return fmt.Errorf("reading dead letters: %w", err)
			}
			more := limit > 0 && len(entries) > limit
			if more {
				entries = entries[:limit]
			}
			return printDeadLetterPage(app, entries, more, limit)
		},
	}
	opts.dlqFilterOptions.addFlags(cmd.Flags(), 100, "at most this many letters (0 = all; 0 and more than 1000 read the topic even with a server)")
	opts.readSourceOptions.addFlags(cmd)
	return cmd
}

// printDeadLetterPage prints entries and, when more match, how to see
// them.
func printDeadLetterPage(app *App, entries []deadletter.Entry, more bool, limit int) error {
	if err := printDeadLetters(app, entries); err != nil {
		return err
	}
	if more {
		fmt.Fprintf(app.IO.ErrOut, "(%d shown, more match: --limit 0 for all, or narrow with --since/--type)\n", limit)
	}
	return nil
}

func printDeadLetters(app *App, entries []deadletter.Entry) error {
	return app.Printer().Print(entries, []string{"JOB_ID", "KIND", "TYPE", "GROUP", "RUN", "ATTEMPTS", "DEAD_AT", "REPLAYED", "REASON/LAST ERROR"}, func() [][]string {
		rows := make([][]string, 0, len(entries))
		for _, e := range entries {
			replayed := "no"
			switch {
			case e.Kind != deadletter.KindJob:
				replayed = "-"
			case e.Replayed:
				replayed = "yes"
			}
			rows = append(rows, []string{string(e.RecordKey()), string(e.Kind), dash(e.Type), dash(e.Group), strconv.Itoa(e.Run), strconv.Itoa(e.Attempts),
				formatTime(e.DeadAt), replayed, dash(cutText(oneLine(e.LastError()), 60))})
		}
		return rows
	})
}

// cutText keeps the first n runes of s, marking the cut.
func cutText(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}

type dlqReplayOptions struct {
	dlqFilterOptions
	IDs    []string
	All    bool
	DryRun bool
	Rate   float64
}

func newDLQReplayCmd(app *App) *cobra.Command {
	opts := &dlqReplayOptions{}
	cmd := &cobra.Command{
		Use:   "replay (--id ID ... | --all) [filters]",
		Short: "Replay dead jobs: run them again",
		Long: `Replay dead jobs: for each selected job's last dead run that was not
replayed yet, write a NEW event with run+1 (same id, type and payload; no
group, so every consumer group runs it) to the job topic's partition it
died in, then a "replayed" marker to the dead-letter topic. Replaying the
same dead run again reports it as already replayed and writes nothing.

Select jobs with --id (repeatable) or --all; the filters of 'dlq list'
narrow either, and --limit caps how many jobs are replayed. Poison letters
are skipped (there is no job in them), and so are letters whose payload
was cut to fit the topic. --dry-run writes nothing and shows what would
be replayed. --rate paces the writes (jobs per second) so a large replay
does not flood the workers.

Exits 1 when a requested --id has no dead letter (the others are still
replayed), or when a write fails (replaying again is safe).

JSON output (-o json): {"dry_run": false, "replayed": [...],
"already_replayed": [...], "skipped": [{"why": ...}], "not_found": [...]}`,
		Example: `  jobctl dlq replay --id 1234
  jobctl dlq replay --id 1234 --id 5678 --dry-run
  jobctl dlq replay --all --type resize --since 1h --rate 50
  jobctl dlq replay --all --error "connection refused" -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			f, err := opts.filter(time.Now())
			if err != nil {
				return err
			}
			req := deadletter.ReplayRequest{All: opts.All, Filter: f, DryRun: opts.DryRun, Rate: opts.Rate}
			for _, s := range opts.IDs {
				id, err := job.ParseID(s)
				if err != nil {
					return usageErrorf("--id %q: %v", s, err)
				}
				req.IDs = append(req.IDs, id)
			}
			if err := req.Check(); err != nil {
				return usageErrorf("%v (use --id ID or --all)", err)
			}
			conn, err := app.Conn()
			if err != nil {
				return err
			}
			res, err := deadletter.Replay(cmd.Context(), conn, app.Config().Topic, req)
			if errors.Is(err, deadletter.ErrTopicNotFound) {
				noDeadLetters(app)
				err = nil
			}
			if perr := printReplay(app, res); perr != nil && err == nil {
				err = perr
			}
			if err != nil {
				return fmt.Errorf("replaying dead jobs: %w", err)
			}
			if n := len(res.NotFound); n > 0 {
				ids := make([]string, n)
				for i, id := range res.NotFound {
					ids[i] = id.String()
				}
				return fmt.Errorf("%d job id(s) have no dead letter in %s that passes the filters: %s", n, deadletter.Topic(app.Config().Topic), strings.Join(ids, ", "))
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringArrayVar(&opts.IDs, "id", nil, "replay this job (repeatable)")
	f.BoolVar(&opts.All, "all", false, "replay every dead job the filters select")
	f.BoolVar(&opts.DryRun, "dry-run", false, "write nothing; show what would be replayed")
	f.Float64Var(&opts.Rate, "rate", 0, "replay at most this many jobs per second (0 = no limit)")
	opts.addFlags(f, 0, "replay at most this many jobs (0 = no limit)")
	return cmd
}

func printReplay(app *App, res deadletter.ReplayResult) error {
	p := app.Printer()
	if p.Format == "json" {
		return p.Print(res, nil, nil)
	}
	verb := "replayed"
	if res.DryRun {
		verb = "would replay"
	}
	fmt.Fprintf(app.IO.Out, "%s %d, already replayed %d, skipped %d, not found %d\n", verb, len(res.Replayed), len(res.AlreadyReplayed), len(res.Skipped), len(res.NotFound))
	var rows [][]string
	add := func(action string, items []deadletter.ReplayItem) {
		for _, it := range items {
			id := it.JobID.String()
			if it.JobID.IsZero() {
				id = string(deadletter.Letter{Kind: it.Kind, Origin: it.Origin}.RecordKey())
			}
			newRun := "-"
			if it.NewRun > 0 {
				newRun = strconv.Itoa(it.NewRun)
			}
			rows = append(rows, []string{action, id, dash(it.Type), strconv.Itoa(it.Run), newRun, strconv.Itoa(it.Origin.Partition), dash(it.Why)})
		}
	}
	add(verb, res.Replayed)
	add("already replayed", res.AlreadyReplayed)
	add("skipped", res.Skipped)
	for _, id := range res.NotFound {
		rows = append(rows, []string{"not found", id.String(), "-", "-", "-", "-", "no dead letter"})
	}
	if len(rows) == 0 {
		return nil
	}
	fmt.Fprintln(app.IO.Out)
	return p.Print(nil, []string{"ACTION", "JOB_ID", "TYPE", "RUN", "NEW_RUN", "PARTITION", "WHY"}, func() [][]string { return rows })
}
