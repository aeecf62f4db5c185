package cmd

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/jobctl/jobctl/pkg/admin"
	"github.com/jobctl/jobctl/pkg/api"
	"github.com/jobctl/jobctl/pkg/apiclient"
	"github.com/jobctl/jobctl/pkg/control"
	"github.com/jobctl/jobctl/pkg/ledger"
	"github.com/spf13/cobra"
)

// groupReadTimeout bounds reading the topic and the control topic for
// 'group list' and 'group get' without a server.
const groupReadTimeout = 2 * time.Minute

const groupListingHelp = `A group is listed when it has committed offsets on the topic, is paused,
or wrote job events there: its state and members (from the broker), the
partitions each member reads, its pending jobs (unfinished jobs at or
after its committed offsets, per partition) and the jobs it finished per
second over the last minute of events. It is what GET /groups of 'jobctl
serve' answers: without a server the command reads the topic and answers
the same way.`

func newGroupListCmd(app *App) *cobra.Command {
	opts := &readSourceOptions{}
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the topic's consumer groups with members, pending jobs and rate",
		Long:  "List the topic's consumer groups, by name.\n\n" + groupListingHelp,
		Example: `  jobctl group list
  jobctl group list -o json | jq '.[] | {group, pending_total}'`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withGroupsSource(cmd.Context(), app, opts, func(ctx context.Context, c *apiclient.Client) error {
				groups, err := c.ListGroups(ctx)
				if err != nil {
					return askServer(c, "listing consumer groups", err)
				}
				return printGroups(app, groups)
			})
		},
	}
	opts.addFlags(cmd)
	return cmd
}

func newGroupGetCmd(app *App) *cobra.Command {
	opts := &readSourceOptions{}
	cmd := &cobra.Command{
		Use:   "get GROUP",
		Short: "Show one consumer group: members, their partitions, pending jobs",
		Long:  "Show one consumer group. Exits 1 when the topic has no such group.\n\n" + groupListingHelp,
		Example: `  jobctl group get job-workers
  jobctl group get job-workers -o json`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if args[0] == "" {
				return usageErrorf("a group name is required")
			}
			return withGroupsSource(cmd.Context(), app, opts, func(ctx context.Context, c *apiclient.Client) error {
				g, ok, err := c.GetGroup(ctx, args[0])
				if err != nil {
					return askServer(c, "getting consumer group "+args[0], err)
				}
				if !ok {
					return fmt.Errorf("consumer group %q has no committed offsets on topic %s, is not paused, wrote no job events there and has no members reading it", args[0], app.Config().Topic)
				}
				return printGroup(app, g)
			})
		},
	}
	opts.addFlags(cmd)
	return cmd
}

// withGroupsSource runs fn with a client of the server to ask, or,
// without one, of the server's own handler run in this process over the
// topic read to its end: the answer is the same either way.
func withGroupsSource(ctx context.Context, app *App, opts *readSourceOptions, fn func(context.Context, *apiclient.Client) error) error {
	srv, err := app.server(ctx, opts)
	if err != nil {
		return err
	}
	if srv != nil {
		err := fn(ctx, srv)
		app.clearProgress()
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, groupReadTimeout)
	defer cancel()
	local, stop, err := localGroupsServer(ctx, app)
	if err != nil {
		return err
	}
	defer stop()
	c, err := apiclient.New(apiclient.Options{URL: "http://localhost", HTTPClient: apiclient.InProcess(local.Handler())})
	if err != nil {
		return err
	}
	err = fn(ctx, c)
	var se *apiclient.StatusError
	if errors.As(err, &se) { // not a server the user runs: say what failed, not the URL
		return errors.New(se.Message)
	}
	return err
}

// localGroupsServer builds what serve answers GET /groups with: the job
// view read to its end, the broker's group descriptions and committed
// offsets, and the paused groups of the control topic.
func localGroupsServer(ctx context.Context, app *App) (*api.Server, func(), error) {
	cfg := app.Config()
	v, err := loadView(ctx, app)
	if err != nil {
		return nil, nil, err
	}
	conn, err := app.Conn()
	if err != nil {
		return nil, nil, err
	}
	opts := api.Options{Topic: cfg.Topic, Version: buildVersion().Version, Store: v, Logger: app.Logger}
	adm := admin.New(conn.Client())
	opts.Lag = topicLag{admin: adm, topic: cfg.Topic}
	opts.Groups = topicGroups{admin: adm, topic: cfg.Topic}
	stop := func() {}
	// No control topic yet: nothing was ever paused.
	if _, err := ledger.Partitions(ctx, conn.Client(), ledger.ControlTopic(cfg.Topic)); err == nil {
		tail := control.NewTail(conn, cfg.Topic, control.TailOptions{Logger: app.Logger})
		tctx, tcancel := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() {
			defer close(done)
			_ = tail.Run(tctx)
		}()
		stop = func() { tcancel(); <-done }
		select {
		case <-tail.CaughtUp():
		case <-ctx.Done():
			stop()
			return nil, nil, fmt.Errorf("reading the paused groups from %s: %w", ledger.ControlTopic(cfg.Topic), context.Cause(ctx))
		}
		opts.Paused = tail
	}
	return api.New(opts), stop, nil
}

func printGroups(app *App, groups []apiclient.Group) error {
	return app.Printer().Print(groups, []string{"GROUP", "STATE", "MEMBERS", "PAUSED", "PENDING", "JOBS/S", "ERROR"}, func() [][]string {
		rows := make([][]string, 0, len(groups))
		for _, g := range groups {
			rows = append(rows, []string{g.Group, dash(g.State), strconv.Itoa(len(g.Members)), strconv.FormatBool(g.Paused),
				strconv.FormatInt(g.PendingTotal, 10), strconv.FormatFloat(g.JobsPerSecond, 'f', 2, 64), dash(oneLine(g.Error))})
		}
		return rows
	})
}

func printGroup(app *App, g apiclient.Group) error {
	p := app.Printer()
	if p.Format == "json" {
		return p.Print(g, nil, nil)
	}
	parts := make([]string, 0, len(g.Pending))
	for part := range g.Pending {
		parts = append(parts, part)
	}
	sort.Slice(parts, func(i, j int) bool {
		a, _ := strconv.Atoi(parts[i])
		b, _ := strconv.Atoi(parts[j])
		return a < b
	})
	pending := make([]string, 0, len(parts))
	for _, part := range parts {
		pending = append(pending, part+":"+strconv.FormatInt(g.Pending[part], 10))
	}
	fields := [][]string{
		{"Group:", g.Group},
		{"State:", dash(g.State)},
		{"Protocol:", dash(g.Protocol)},
		{"Paused:", strconv.FormatBool(g.Paused)},
		{"Pending:", strconv.FormatInt(g.PendingTotal, 10)},
		{"Pending by partition:", dash(strings.Join(pending, " "))},
		{"Jobs/s (last minute):", strconv.FormatFloat(g.JobsPerSecond, 'f', 2, 64)},
		{"Error:", dash(oneLine(g.Error))},
	}
	if err := p.Print(nil, nil, func() [][]string { return fields }); err != nil {
		return err
	}
	fmt.Fprintln(app.IO.Out)
	return p.Print(nil, []string{"MEMBER", "INSTANCE", "CLIENT", "HOST", "PARTITIONS"}, func() [][]string {
		rows := make([][]string, 0, len(g.Members))
		for _, m := range g.Members {
			ps := make([]string, len(m.Partitions))
			for i, n := range m.Partitions {
				ps[i] = strconv.Itoa(n)
			}
			rows = append(rows, []string{m.MemberID, dash(m.InstanceID), dash(m.ClientID), dash(m.Host), dash(strings.Join(ps, ","))})
		}
		return rows
	})
}

func newGroupCmd(app *App) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "group",
		Short: "List, inspect, pause and resume consumer groups",
		Long: `List and inspect the consumer groups of the topic (members and their
partitions, pending jobs, jobs finished per second), and pause and resume
them. The pause state is a record in the compacted control topic
<topic>.control, read by every worker: it survives restarts of workers
and of the broker.`,
	}
	cmd.AddCommand(newGroupListCmd(app), newGroupGetCmd(app), newGroupPauseCmd(app, true), newGroupPauseCmd(app, false))
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
