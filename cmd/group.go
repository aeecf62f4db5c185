package cmd

import (
	"fmt"

	"github.com/jobctl/jobctl/pkg/control"
	"github.com/spf13/cobra"
)

func newGroupCmd(app *App) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "group",
		Short: "Pause and resume a consumer group",
		Long: `Pause and resume a consumer group. The state is a record in the compacted
control topic <topic>.control, read by every worker: it survives restarts
of workers and of the broker.`,
	}
	cmd.AddCommand(newGroupPauseCmd(app, true), newGroupPauseCmd(app, false))
	return cmd
}

func newGroupPauseCmd(app *App, pause bool) *cobra.Command {
	use, short, long, example := "pause GROUP", "Stop a group's workers from starting new jobs",
		`Stop the members of GROUP from starting new jobs within about a second:
queued jobs wait, running jobs finish. Each worker logs "group paused", and
/stats of 'jobctl serve' lists the group. A paused worker's idle timeout
(consume --timeout) does not run: idle time counts only while not paused.
A worker started while its group is paused stays paused.`, `  jobctl group pause emails`
	if !pause {
		use, short, long, example = "resume GROUP", "Let a paused group's workers start jobs again",
			`Let the members of GROUP start jobs again; each logs "group resumed".`, `  jobctl group resume emails`
	}
	return &cobra.Command{
		Use: use, Short: short, Long: long, Example: example,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if args[0] == "" {
				return usageErrorf("a group name is required")
			}
			conn, err := app.Conn()
			if err != nil {
				return err
			}
			c := control.NewController(conn, app.Config().Topic)
			defer c.Close()
			do, done := c.Pause, "paused"
			if !pause {
				do, done = c.Resume, "resumed"
			}
			if err := do(cmd.Context(), args[0]); err != nil {
				return err
			}
			fmt.Fprintf(app.IO.Out, "group %s %s\n", args[0], done)
			return nil
		},
	}
}
