package cmd

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jobctl/jobctl/pkg/apiclient"
	"github.com/jobctl/jobctl/pkg/deadletter"
	"github.com/jobctl/jobctl/pkg/job"
	"github.com/jobctl/jobctl/pkg/view"
	"github.com/spf13/cobra"
)

func newJobsCmd(app *App) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "jobs",
		Short: "List, inspect, cancel and retry jobs",
		Long: `List and inspect jobs. 'list' and 'get', and 'cancel' and 'retry' to find
the jobs they act on, ask a running 'jobctl serve' when one is configured
(server.url) or answers at api.addr for the same topic. Otherwise 'get'
reads the topic decoding only that job's records, and the others read the
whole topic into a job view (the same one 'jobctl serve' keeps); either
waits until it has read every partition to
its current end, prints, and exits. No consumer group is used and nothing
is committed, so it never disturbs the workers.
'cancel' and 'retry' write: a record to the control topic, a new run to
the job topic.

For a server that keeps the view and answers over HTTP, use 'jobctl serve'.`,
	}
	cmd.AddCommand(newJobsListCmd(app), newJobsGetCmd(app), newJobsCancelCmd(app), newJobsRetryCmd(app))
	return cmd
}

type jobsListOptions struct {
	readSourceOptions
	Status string
	Type   string
	Group  string
	Limit  int
	After  string
	Desc   bool
	Since  string
	Until  string
}

func newJobsListCmd(app *App) *cobra.Command {
	opts := &jobsListOptions{}
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List jobs and their current status",
		Long: `List jobs and their current status, in a stable order: ids that are
integers first, numerically, then the other ids by their text (ids assigned
by 'jobctl serve' sort by creation time).

--group G lists only the jobs consumer group G wrote events for, with G's
status (and --status filters on G's status). Without it a job's status is
its overall status: with one group, that group's; with several, the
status of the group furthest behind (see 'jobs get' for every group's).

--since and --until keep the jobs last updated in [since, until).

--limit caps the rows (0 for all); when more jobs match, a note on stderr
says so and gives the --after value for the next page.`,
		Example: `  jobctl jobs list
  jobctl jobs list --status FAILED --limit 0
  jobctl jobs list --type resize -o json | jq '.[].job_id'
  jobctl jobs list --desc --limit 10      # the 10 highest ids
  jobctl jobs list --group audit --status FAILED
  jobctl jobs list --status FAILED --since 1h`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			q := view.Query{Type: opts.Type, Group: opts.Group, Limit: opts.Limit, After: opts.After, Desc: opts.Desc}
			now := time.Now()
			var err error
			if q.Since, err = deadletter.ParseTime(opts.Since, now); err != nil {
				return usageErrorf("--since: %v", err)
			}
			if q.Until, err = deadletter.ParseTime(opts.Until, now); err != nil {
				return usageErrorf("--until: %v", err)
			}
			if !q.Since.IsZero() && !q.Until.IsZero() && !q.Since.Before(q.Until) {
				return usageErrorf("--since %s is not before --until %s", opts.Since, opts.Until)
			}
			if opts.Status != "" {
				q.Status = job.Status(strings.ToUpper(opts.Status))
				if !q.Status.Valid() {
					return usageErrorf("--status %q: want NEW, RUNNING, DONE, FAILED, DEAD or CANCELED", opts.Status)
				}
			}
			if opts.Limit < 0 {
				return usageErrorf("--limit %d: want 0 (all) or more", opts.Limit)
			}
			jobs, more, err := listJobs(cmd.Context(), app, &opts.readSourceOptions, q)
			if err != nil {
				return err
			}
			if err := printJobs(app, jobs); err != nil {
				return err
			}
			if more && len(jobs) > 0 {
				fmt.Fprintf(app.IO.ErrOut, "(%d shown, more match: --limit 0 for all, or --after %s for the next page)\n", len(jobs), jobs[len(jobs)-1].ID)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&opts.Status, "status", "", "only jobs whose current status is this: NEW, RUNNING, DONE, FAILED, DEAD or CANCELED")
	f.StringVar(&opts.Type, "type", "", "only jobs of this type")
	f.StringVarP(&opts.Group, "group", "g", "", "only jobs this consumer group wrote events for, with that group's status")
	f.IntVar(&opts.Limit, "limit", 100, "at most this many jobs (0 = all)")
	f.StringVar(&opts.After, "after", "", "start after this job id (the last id of the previous page)")
	f.BoolVar(&opts.Desc, "desc", false, "list in reverse order")
	f.StringVar(&opts.Since, "since", "", "only jobs last updated at or after this time: RFC 3339, or a duration ago (1h, 30m, 7d)")
	f.StringVar(&opts.Until, "until", "", "only jobs last updated before this time: RFC 3339, or a duration ago")
	opts.addFlags(cmd)
	return cmd
}

// listJobs answers q from a server, else from the topic.
func listJobs(ctx context.Context, app *App, src *readSourceOptions, q view.Query) ([]view.Job, bool, error) {
	srv, err := app.server(ctx, src)
	if err != nil {
		return nil, false, err
	}
	if srv != nil {
		jobs, more, err := srv.ListJobs(ctx, q)
		app.clearProgress()
		if err != nil {
			return nil, false, askServer(srv, "listing jobs", err)
		}
		if jobs == nil {
			jobs = []view.Job{}
		}
		return jobs, more, nil
	}
	v, err := loadView(ctx, app)
	if err != nil {
		return nil, false, err
	}
	jobs, more := v.List(q)
	return jobs, more, nil
}

func newJobsGetCmd(app *App) *cobra.Command {
	opts := &readSourceOptions{}
	cmd := &cobra.Command{
		Use:   "get ID",
		Short: "Show one job with its status history",
		Long: `Show one job: its current state, one row per consumer group that wrote
events for it (that group's status, run, attempt, update time, worker and
error), and its status history (the last 20 events; 'events' counts all
of them). The job's Status is its overall status: with one group, that
group's; with several, the status of the group furthest behind (a group
that has not finished the latest run, else DEAD, then CANCELED, then
DONE). Exits 1 when no such job exists.`,
		Example: `  jobctl jobs get 1234
  jobctl jobs get 1732550000123-9f2c4e1a7b3d -o json`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if _, err := job.ParseID(args[0]); err != nil {
				return usageErrorf("job id %q: %v", args[0], err)
			}
			j, ok, err := getJob(cmd.Context(), app, opts, args[0])
			if err != nil {
				return err
			}
			if !ok {
				return fmt.Errorf("job %q not found in topic %s", args[0], app.Config().Topic)
			}
			return printJob(app, j)
		},
	}
	opts.addFlags(cmd)
	return cmd
}

// getJob looks job id up on a server, else in the topic.
func getJob(ctx context.Context, app *App, src *readSourceOptions, id string) (view.Job, bool, error) {
	srv, err := app.server(ctx, src)
	if err != nil {
		return view.Job{}, false, err
	}
	return findJob(ctx, app, srv, id)
}

// findJob looks job id up on srv, or in the topic when srv is nil.
func findJob(ctx context.Context, app *App, srv *apiclient.Client, id string) (view.Job, bool, error) {
	if srv != nil {
		j, ok, err := srv.GetJob(ctx, id)
		app.clearProgress()
		return j, ok, askServer(srv, "getting job "+id, err)
	}
	conn, err := app.Conn()
	if err != nil {
		return view.Job{}, false, err
	}
	// FindJob decodes only this job's records: no view of every job.
	topic := app.Config().Topic
	var last time.Time
	j, ok, err := view.FindJob(ctx, conn, topic, id, func(read, total int64) {
		if now := time.Now(); total > 0 && now.Sub(last) >= 200*time.Millisecond {
			last = now
			app.progressLine(fmt.Sprintf("reading topic %s for job %s: %d of %d records (%d%%)", topic, id, read, total, read*100/total))
		}
	})
	app.clearProgress()
	return j, ok, err
}

// loadView reads the topic into a job view and returns it once it has
// caught up; its readers are stopped before it returns.
func loadView(ctx context.Context, app *App) (*view.View, error) {
	return loadTopicView(ctx, app, app.Config().Topic)
}

// loadTopicView is loadView for topic.
func loadTopicView(ctx context.Context, app *App, topic string) (*view.View, error) {
	conn, err := app.Conn()
	if err != nil {
		return nil, err
	}
	v := view.New(view.Options{Conn: conn, Topic: topic, Logger: app.Logger})
	ctx, cancel := context.WithCancel(ctx)
	runDone := make(chan error, 1)
	go func() { runDone <- v.Run(ctx) }()
	stopProgress, progressDone := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(progressDone)
		app.watchViewProgress(v, topic, stopProgress)
	}()
	defer func() {
		close(stopProgress)
		<-progressDone
		app.clearProgress()
		cancel()
		<-runDone
	}()
	select {
	case <-v.CaughtUp():
		return v, nil
	case err := <-runDone:
		runDone <- err // for the deferred receive
		if err != nil {
			return nil, err
		}
		return nil, fmt.Errorf("reading topic %s: %w", topic, context.Cause(ctx))
	case <-ctx.Done():
		return nil, fmt.Errorf("reading topic %s: %w", topic, context.Cause(ctx))
	}
}

func printJobs(app *App, jobs []view.Job) error {
	return app.Printer().Print(jobs, []string{"JOB ID", "STATUS", "TYPE", "ATTEMPT", "UPDATED", "WORKER", "ERROR"}, func() [][]string {
		rows := make([][]string, 0, len(jobs))
		for _, j := range jobs {
			rows = append(rows, []string{j.ID.String(), string(j.Status), dash(j.Type), strconv.Itoa(j.Attempt), formatTime(j.UpdatedAt), dash(j.Worker), dash(oneLine(j.Error))})
		}
		return rows
	})
}

func printJob(app *App, j view.Job) error {
	p := app.Printer()
	if p.Format == "json" {
		return p.Print(j, nil, nil)
	}
	payload := "-"
	if len(j.Payload) > 0 {
		payload = string(j.Payload)
	}
	fields := [][]string{
		{"Job ID:", j.ID.String()},
		{"Status:", string(j.Status)},
		{"Type:", dash(j.Type)},
		{"Run:", strconv.Itoa(j.Run)},
		{"Attempt:", strconv.Itoa(j.Attempt)},
		{"Created:", formatTime(j.CreatedAt)},
		{"Updated:", formatTime(j.UpdatedAt)},
		{"Worker:", dash(j.Worker)},
		{"Error:", dash(oneLine(j.Error))},
		{"Partition:", strconv.Itoa(j.Partition)},
		{"Payload:", payload},
		{"Events:", strconv.Itoa(j.Events)},
	}
	if len(j.Result) > 0 { // the whole result is in -o json
		fields = append(fields, []string{"Result:", truncateRunes(oneLine(string(j.Result)), 200)})
	}
	if err := p.Print(nil, nil, func() [][]string { return fields }); err != nil {
		return err
	}
	fmt.Fprintln(app.IO.Out)
	if len(j.Groups) > 0 {
		err := p.Print(nil, []string{"GROUP", "STATUS", "RUN", "ATTEMPT", "UPDATED", "WORKER", "ERROR"}, func() [][]string {
			rows := make([][]string, 0, len(j.Groups))
			for _, g := range j.Groups {
				rows = append(rows, []string{g.Group, string(g.Status), strconv.Itoa(g.Run), strconv.Itoa(g.Attempt), formatTime(g.UpdatedAt), dash(g.Worker), dash(oneLine(g.Error))})
			}
			return rows
		})
		if err != nil {
			return err
		}
		fmt.Fprintln(app.IO.Out)
	}
	return p.Print(nil, []string{"STATUS", "AT", "RUN", "ATTEMPT", "GROUP", "WORKER", "ERROR"}, func() [][]string {
		rows := make([][]string, 0, len(j.History))
		for _, h := range j.History {
			rows = append(rows, []string{string(h.Status), formatTime(h.At), strconv.Itoa(h.Run), strconv.Itoa(h.Attempt), dash(h.Group), dash(h.Worker), dash(oneLine(h.Error))})
		}
		return rows
	})
}

func formatTime(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format("2006-01-02T15:04:05.000Z")
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

// truncateRunes cuts s to at most n runes, marking the cut with "…".
func truncateRunes(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n]) + "…"
}
