package cmd

import (
	"context"
	"io"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/jobctl/jobctl/pkg/admin"
	"github.com/jobctl/jobctl/pkg/view"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// completionTimeout bounds one dynamic completion: a shell waits for it
// on every Tab, so an unreachable broker or server must cost little.
const completionTimeout = 2 * time.Second

// completionJobLimit is how many job ids a completion asks a server for
// (the newest first): enough to find a recent job, little to transfer.
const completionJobLimit = 1000

// Which completion each flag name and each command's arguments get. Flags
// are matched by name wherever they are defined, so a command that later
// adds --topic or --group completes it without being listed here.
var (
	flagCompletions = map[string]func(*App) cobra.CompletionFunc{
		"topic": completeTopics,
		"group": completeGroups,
	}
	argCompletions = map[string]func(*App) cobra.CompletionFunc{
		"topic alter":    oneArg(completeTopics),
		"topic describe": oneArg(completeTopics),
		"topic delete":   oneArg(completeTopics),
		"group pause":    oneArg(completeGroups),
		"group resume":   oneArg(completeGroups),
		"jobs get":       oneArg(completeJobIDs),
		"jobs cancel":    completeJobIDs,
		"jobs retry":     completeJobIDs,
	}
)

// registerCompletions attaches the dynamic completions (topic names and
// consumer groups from the broker, job ids from a running serve) to the
// command tree under root: by flag name on every command, by command path
// for arguments. Commands that complete their arguments themselves keep
// their own function.
func registerCompletions(app *App, root *cobra.Command) {
	// cobra's hidden __complete command is a subcommand of root, so root's
	// PersistentPreRunE would load the configuration for it, without the
	// flags typed for the completed command, and fail a Tab with an error
	// where the configuration is broken. Each completion function loads it
	// itself, for its command.
	if load := root.PersistentPreRunE; load != nil {
		root.PersistentPreRunE = func(cmd *cobra.Command, args []string) error {
			if cmd.Name() == cobra.ShellCompRequestCmd {
				return nil
			}
			return load(cmd, args)
		}
	}
	done := map[*pflag.Flag]bool{}
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		c.LocalFlags().VisitAll(func(f *pflag.Flag) {
			complete, ok := flagCompletions[f.Name]
			if !ok || done[f] {
				return
			}
			done[f] = true
			_ = c.RegisterFlagCompletionFunc(f.Name, complete(app))
		})
		if c != root && c.ValidArgsFunction == nil {
			path := strings.TrimPrefix(c.CommandPath(), root.Name()+" ")
			if complete, ok := argCompletions[path]; ok {
				c.ValidArgsFunction = complete(app)
			}
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(root)
}

// oneArg completes only a command's first argument.
func oneArg(complete func(*App) cobra.CompletionFunc) func(*App) cobra.CompletionFunc {
	return func(app *App) cobra.CompletionFunc {
		f := complete(app)
		return func(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
			if len(args) > 0 {
				return nil, cobra.ShellCompDirectiveNoFileComp
			}
			return f(cmd, args, toComplete)
		}
	}
}

// completionContext loads the configuration for cmd, the command being
// completed, and silences the app: whatever goes wrong, a completion
// prints no error or progress into the user's command line. ok is false
// when the configuration cannot be loaded.
//
// The root's PersistentPreRunE has loaded it already, but for cobra's
// __complete command, without the flags typed for cmd (--brokers, -t).
func completionContext(app *App, cmd *cobra.Command) (ctx context.Context, cancel context.CancelFunc, ok bool) {
	app.IO.ErrOut, app.IO.ErrTTY = io.Discard, false
	if err := app.load(cmd); err != nil {
		return nil, nil, false
	}
	app.Logger = slog.New(slog.DiscardHandler)
	ctx, cancel = context.WithTimeout(cmd.Context(), completionTimeout)
	return ctx, cancel, true
}

// completeFromBroker completes with the names list asks the cluster for
// (nothing when the broker does not answer within completionTimeout).
func completeFromBroker(app *App, list func(ctx context.Context, a *admin.Admin, toComplete string) []string) cobra.CompletionFunc {
	return func(cmd *cobra.Command, _ []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
		ctx, cancel, ok := completionContext(app, cmd)
		if !ok {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		defer cancel()
		conn, err := app.Conn()
		if err != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		return withPrefix(list(ctx, admin.New(conn.Client()), toComplete), toComplete, nil), cobra.ShellCompDirectiveNoFileComp
	}
}

// completeTopics completes the cluster's topic names (internal ones
// only when asked for with "__").
func completeTopics(app *App) cobra.CompletionFunc {
	return completeFromBroker(app, func(ctx context.Context, a *admin.Admin, toComplete string) []string {
		topics, _ := a.ListTopics(ctx, strings.HasPrefix(toComplete, "__"))
		names := make([]string, len(topics))
		for i, t := range topics {
			names[i] = t.Topic
		}
		return names
	})
}

// completeGroups completes the cluster's consumer group ids.
func completeGroups(app *App) cobra.CompletionFunc {
	return completeFromBroker(app, func(ctx context.Context, a *admin.Admin, _ string) []string {
		ids, _ := a.GroupIDs(ctx)
		return ids
	})
}

// completeJobIDs completes job ids from a running serve (server.url, or
// one at api.addr for the same topic, as the read commands find it), the
// newest first. Without one it completes nothing: replaying the topic
// would take far longer than anyone waits for a Tab.
func completeJobIDs(app *App) cobra.CompletionFunc {
	return func(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
		ctx, cancel, ok := completionContext(app, cmd)
		if !ok {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		defer cancel()
		srv, err := app.server(ctx, &readSourceOptions{})
		if err != nil || srv == nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		jobs, _, err := srv.ListJobs(ctx, view.Query{Limit: completionJobLimit, Desc: true})
		if err != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		ids := make([]string, len(jobs))
		for i, j := range jobs {
			ids[i] = j.ID.String()
		}
		// cancel and retry take several ids: do not offer one twice.
		return withPrefix(ids, toComplete, args), cobra.ShellCompDirectiveNoFileComp | cobra.ShellCompDirectiveKeepOrder
	}
}

// withPrefix keeps the candidates that start with prefix and are not in
// exclude, in their order.
func withPrefix(candidates []string, prefix string, exclude []string) []cobra.Completion {
	out := make([]cobra.Completion, 0, len(candidates))
	for _, c := range candidates {
		if strings.HasPrefix(c, prefix) && !slices.Contains(exclude, c) {
			out = append(out, c)
		}
	}
	return out
}
