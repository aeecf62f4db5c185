package cmd

import (
	"context"
	"fmt"

	"github.com/jobctl/jobctl/pkg/control"
	"github.com/jobctl/jobctl/pkg/job"
	"github.com/jobctl/jobctl/pkg/view"
	"github.com/spf13/cobra"
)

func newJobsCancelCmd(app *App) *cobra.Command {
	return &cobra.Command{
		Use:   "cancel ID...",
		Short: "Cancel jobs: queued ones never start, running ones are stopped",
		Long: `Cancel the current run of each job. A worker that has not started it yet
never starts it; a running attempt's handler context is cancelled within
about a second (an exec job's process group is killed). The run ends
CANCELED: it is not retried and not dead-lettered. 'jobctl jobs retry'
starts a new run, which the cancel does not touch.

The cancel is a record in the compacted control topic <topic>.control,
which every worker reads. Cancelling a job that already finished (DONE,
DEAD, CANCELED) or that does not exist is an error: the command exits 1
after trying every id.`,
		Example: `  jobctl jobs cancel 1234
  jobctl jobs cancel 17 18 19`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runJobControl(cmd.Context(), app, args, func(ctx context.Context, c *control.Controller, j view.Job) (string, error) {
				if err := c.Cancel(ctx, j); err != nil {
					return "", err
				}
				return fmt.Sprintf("job %s: cancel requested (run %d, was %s)", j.ID, j.Run, j.Status), nil
			})
		},
	}
}

func newJobsRetryCmd(app *App) *cobra.Command {
	return &cobra.Command{
		Use:   "retry ID...",
		Short: "Run FAILED, DEAD or CANCELED jobs again now, as a new run",
		Long: `Start a new run of each job: a NEW event with run+1 (same id, type and
payload, for every consumer group) in the job's partition. It shows in the
job's history ('jobctl jobs get'). Only FAILED, DEAD and CANCELED jobs can
be retried; for others, and unknown ids, the command exits 1 after trying
every id. Dead jobs can also be replayed from the dead-letter topic
('jobctl dlq replay').`,
		Example: `  jobctl jobs retry 1234
  jobctl jobs retry 17 18`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runJobControl(cmd.Context(), app, args, func(ctx context.Context, c *control.Controller, j view.Job) (string, error) {
				ev, err := c.Retry(ctx, j)
				if err != nil {
					return "", err
				}
				return fmt.Sprintf("job %s: retrying as run %d (was %s)", j.ID, ev.Run, j.Status), nil
			})
		},
	}
}

// runJobControl looks every id up in the job view and applies do to it,
// reporting each; any id that fails makes the command exit 1.
func runJobControl(ctx context.Context, app *App, ids []string, do func(context.Context, *control.Controller, view.Job) (string, error)) error {
	for _, id := range ids {
		if _, err := job.ParseID(id); err != nil {
			return usageErrorf("job id %q: %v", id, err)
		}
	}
	lookup, err := jobLookup(ctx, app)
	if err != nil {
		return err
	}
	conn, err := app.Conn()
	if err != nil {
		return err
	}
	c := control.NewController(conn, app.Config().Topic)
	defer c.Close()
	failed := 0
	for _, id := range ids {
		j, ok, err := lookup(ctx, id)
		if err != nil {
			return err
		}
		if !ok {
			fmt.Fprintf(app.IO.ErrOut, "job %q not found in topic %s\n", id, app.Config().Topic)
			failed++
			continue
		}
		msg, err := do(ctx, c, j)
		if err != nil {
			fmt.Fprintln(app.IO.ErrOut, err)
			failed++
			continue
		}
		fmt.Fprintln(app.IO.Out, msg)
	}
	if failed > 0 {
		return &silentError{code: ExitFailure}
	}
	return nil
}

// jobLookup returns how cancel and retry find the jobs they act on: a
// running serve's view when there is one (as for 'jobs get'), else one
// job view of the whole topic.
func jobLookup(ctx context.Context, app *App) (func(context.Context, string) (view.Job, bool, error), error) {
	srv, err := app.server(ctx, &readSourceOptions{})
	if err != nil {
		return nil, err
	}
	if srv != nil {
		return func(ctx context.Context, id string) (view.Job, bool, error) {
			return findJob(ctx, app, srv, id)
		}, nil
	}
	v, err := loadView(ctx, app)
	if err != nil {
		return nil, err
	}
	return func(_ context.Context, id string) (view.Job, bool, error) {
		j, ok := v.Get(id)
		return j, ok, nil
	}, nil
}
