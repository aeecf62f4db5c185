package cmd

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/jobctl/jobctl/pkg/schedule"
	"github.com/spf13/cobra"
)

// scheduleTimeout bounds one schedule command (reading the schedules
// topic to its end, one write).
const scheduleTimeout = 2 * time.Minute

func newScheduleCmd(app *App) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "schedule",
		Short: "Create, list and pause periodic (cron) schedules",
		Long: `Periodic schedules create a job on every tick of a cron spec. They live in
the compacted topic <topic>.schedules (key: the schedule's name), so every
'jobctl consume' sees them; of all running consumers one leads (the owner
of the one-partition topic <topic>.scheduler in the consumer group of the
same name) and writes one NEW job per tick, with the job id
schedule:<name>:<tick in Unix seconds>. When the leader dies, another takes
over after the session timeout and goes on from the last tick the leader
stored: no tick is fired twice or skipped, except as --catch-up says for
ticks that came due while no leader ran.

Cron specs: 5 fields (minute hour day-of-month month day-of-week), 6 with
seconds first ('*/10 * * * * *'), or descriptors: @hourly, @daily,
@every 90s. --tz is an IANA zone (default UTC).`,
	}
	cmd.AddCommand(newScheduleCreateCmd(app), newScheduleListCmd(app), newScheduleGetCmd(app),
		newScheduleDeleteCmd(app), newSchedulePauseCmd(app, true), newSchedulePauseCmd(app, false))
	return cmd
}

// withStore runs fn with the topic's schedule store and a bounded context.
func withStore(cmd *cobra.Command, app *App, fn func(ctx context.Context, st *schedule.Store) error) error {
	conn, err := app.Conn()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(cmd.Context(), scheduleTimeout)
	defer cancel()
	err = fn(ctx, schedule.NewStore(conn, app.Config().Topic))
	switch {
	case err == nil:
		return nil
	case schedule.IsSpecError(err):
		return usageErrorf("%v", err)
	case errors.Is(err, schedule.ErrNotFound):
		return err
	}
	return fmt.Errorf("schedules of topic %s: %w", app.Config().Topic, err)
}

type scheduleCreateOptions struct {
	Cron    string
	Type    string
	Payload string
	TZ      string
	CatchUp string
}

func newScheduleCreateCmd(app *App) *cobra.Command {
	opts := &scheduleCreateOptions{}
	cmd := &cobra.Command{
		Use:   "create NAME --cron SPEC",
		Short: "Create a schedule, or replace the one of that name",
		Long: `Create a schedule, or replace the one of that name (it keeps its
created_at). Ticks count from now: a new or replaced schedule fires no
tick of the past.

--catch-up says what a new leader does with ticks that came due while no
scheduler led (all consumers stopped, or the leader died and the next one
took over after the session timeout): skip (only future ticks), one (the
latest missed tick, once; the default) or all (every missed tick, at most
1000).

A bad cron spec, time zone or payload exits 2.`,
		Example: `  jobctl schedule create nightly-report --cron '0 2 * * *' --tz Europe/Berlin --type report
  jobctl schedule create heartbeat --cron '@every 30s' --type ping --payload '{"target": "db"}'
  jobctl schedule create ticker --cron '*/1 * * * * *' --catch-up all`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			sc := schedule.Schedule{Name: args[0], Cron: opts.Cron, TZ: opts.TZ, Type: opts.Type, CatchUp: schedule.CatchUp(opts.CatchUp)}
			if opts.Cron == "" {
				return usageErrorf("--cron is required")
			}
			if opts.Payload != "" {
				if !json.Valid([]byte(opts.Payload)) {
					return usageErrorf("--payload is not valid JSON: %s", opts.Payload)
				}
				sc.Payload = json.RawMessage(opts.Payload)
			}
			if err := sc.Validate(); err != nil {
				return usageErrorf("%v", err)
			}
			return withStore(cmd, app, func(ctx context.Context, st *schedule.Store) error {
				saved, err := st.Put(ctx, sc)
				if err != nil {
					return err
				}
				l := schedule.WithNextRun([]schedule.Schedule{saved}, time.Now())[0]
				if app.Printer().Format == "json" {
					return app.Printer().Print(l, nil, nil)
				}
				fmt.Fprintf(app.IO.Out, "schedule %s saved; next run %s\n", saved.Name, formatTime(l.NextRun))
				return nil
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&opts.Cron, "cron", "", "cron spec: 5 fields, 6 with seconds first, or @every DURATION / @hourly ... (required)")
	f.StringVar(&opts.Type, "type", "", "type of the jobs it creates")
	f.StringVar(&opts.Payload, "payload", "", "JSON payload of the jobs it creates")
	f.StringVar(&opts.TZ, "tz", "", "IANA time zone of the spec (default UTC)")
	f.StringVar(&opts.CatchUp, "catch-up", string(schedule.CatchUpOne), "missed ticks after an outage: skip, one or all")
	return cmd
}

func newScheduleListCmd(app *App) *cobra.Command {
	opts := &readSourceOptions{}
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the schedules with their next run",
		Long: `List every schedule (read from <topic>.schedules to its end), sorted by
name, with when it fires next. -o json prints each definition in full
with next_run (absent while paused).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, cancel := context.WithTimeout(cmd.Context(), scheduleTimeout)
			defer cancel()
			srv, err := app.server(ctx, opts)
			if err != nil {
				return err
			}
			if srv != nil {
				ls, err := srv.ListSchedules(ctx)
				app.clearProgress()
				if err != nil {
					return askServer(srv, "listing schedules", err)
				}
				return printSchedules(app, ls)
			}
			return withStore(cmd, app, func(ctx context.Context, st *schedule.Store) error {
				all, err := st.List(ctx)
				if err != nil {
					return err
				}
				return printSchedules(app, schedule.WithNextRun(all, time.Now()))
			})
		},
	}
	opts.addFlags(cmd)
	return cmd
}

func printSchedules(app *App, ls []schedule.Listed) error {
	return app.Printer().Print(ls, []string{"NAME", "CRON", "TZ", "TYPE", "CATCH_UP", "PAUSED", "NEXT_RUN"}, func() [][]string {
		rows := make([][]string, 0, len(ls))
		for _, l := range ls {
			rows = append(rows, []string{l.Name, l.Cron, dash(l.TZ), dash(l.Type), string(l.CatchUp), strconv.FormatBool(l.Paused), formatTime(l.NextRun)})
		}
		return rows
	})
}

func newScheduleGetCmd(app *App) *cobra.Command {
	opts := &readSourceOptions{}
	cmd := &cobra.Command{
		Use:   "get NAME",
		Short: "Show one schedule",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, cancel := context.WithTimeout(cmd.Context(), scheduleTimeout)
			defer cancel()
			srv, err := app.server(ctx, opts)
			if err != nil {
				return err
			}
			if srv != nil {
				l, err := srv.GetSchedule(ctx, args[0])
				app.clearProgress()
				if errors.Is(err, schedule.ErrNotFound) {
					return err
				}
				if err != nil {
					return askServer(srv, "getting schedule "+args[0], err)
				}
				return printSchedule(app, l)
			}
			return withStore(cmd, app, func(ctx context.Context, st *schedule.Store) error {
				sc, err := st.Get(ctx, args[0])
				if err != nil {
					return err
				}
				return printSchedule(app, schedule.WithNextRun([]schedule.Schedule{sc}, time.Now())[0])
			})
		},
	}
	opts.addFlags(cmd)
	return cmd
}

func printSchedule(app *App, l schedule.Listed) error {
	if app.Printer().Format == "json" {
		return app.Printer().Print(l, nil, nil)
	}
	payload := "-"
	if len(l.Payload) > 0 {
		payload = string(l.Payload)
	}
	_, err := fmt.Fprintf(app.IO.Out, "Name:       %s\nCron:       %s\nTZ:         %s\nType:       %s\nPayload:    %s\nCatch-up:   %s\nPaused:     %t\nNext run:   %s\nCreated at: %s\nUpdated at: %s\n",
		l.Name, l.Cron, dash(l.TZ), dash(l.Type), payload, l.CatchUp, l.Paused, formatTime(l.NextRun), formatTime(l.CreatedAt), formatTime(l.UpdatedAt))
	return err
}

func newScheduleDeleteCmd(app *App) *cobra.Command {
	return &cobra.Command{
		Use:   "delete NAME",
		Short: "Delete a schedule: no tick fires after it",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withStore(cmd, app, func(ctx context.Context, st *schedule.Store) error {
				if err := st.Delete(ctx, args[0]); err != nil {
					return err
				}
				fmt.Fprintf(app.IO.Out, "schedule %s deleted\n", args[0])
				return nil
			})
		},
	}
}

func newSchedulePauseCmd(app *App, pause bool) *cobra.Command {
	use, short, done := "resume NAME", "Resume a paused schedule (ticks of the pause are not made up)", "resumed"
	if pause {
		use, short, done = "pause NAME", "Pause a schedule: no tick fires until it is resumed", "paused"
	}
	return &cobra.Command{
		Use:   use,
		Short: short,
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withStore(cmd, app, func(ctx context.Context, st *schedule.Store) error {
				sc, err := st.SetPaused(ctx, args[0], pause)
				if err != nil {
					return err
				}
				if app.Printer().Format == "json" {
					return app.Printer().Print(schedule.WithNextRun([]schedule.Schedule{sc}, time.Now())[0], nil, nil)
				}
				fmt.Fprintf(app.IO.Out, "schedule %s %s\n", sc.Name, done)
				return nil
			})
		},
	}
}
