// Package cmd wires jobctl's cobra commands to the packages under pkg/.
// Commands are built by constructors; configuration is loaded once, by
// one viper instance, into a typed config.Config before any command runs.
package cmd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"

	"github.com/jobctl/jobctl/pkg/config"
	"github.com/jobctl/jobctl/pkg/kafkaconn"
	"github.com/jobctl/jobctl/pkg/output"
	"github.com/spf13/cobra"
	"golang.org/x/term"
)

// Exit codes, documented in `jobctl --help`.
const (
	ExitOK      = 0
	ExitFailure = 1
	ExitUsage   = 2
	// ExitInterrupted is for Ctrl-C (SIGINT); a command ended by another
	// signal exits 128 + its number, as shells report it.
	ExitInterrupted = 130
)

// IOStreams are where a command reads and writes; tests swap in buffers.
type IOStreams struct {
	In     io.Reader
	Out    io.Writer
	ErrOut io.Writer
	// OutTTY and ErrTTY say whether Out and ErrOut are terminals: tables
	// and progress bars for people, JSON and quiet for pipes.
	OutTTY bool
	ErrTTY bool
}

// StdIOStreams are the process's standard streams.
func StdIOStreams() IOStreams {
	return IOStreams{
		In: os.Stdin, Out: os.Stdout, ErrOut: os.Stderr,
		OutTTY: term.IsTerminal(int(os.Stdout.Fd())),
		ErrTTY: term.IsTerminal(int(os.Stderr.Fd())),
	}
}

// App is what every command shares: streams, the loaded configuration and
// the things built from it.
type App struct {
	IO     IOStreams
	Logger *slog.Logger

	cfg        *config.Config
	sources    map[string]config.Source
	configFile string
	outFormat  string
	// verbose is -v: log at info on the read commands, which otherwise
	// log warnings and errors only (see quietCommands).
	verbose bool

	progressMu    sync.Mutex
	progressShown bool // a progress line is on stderr (see progressLine)
}

// Config is the loaded configuration; valid inside a command's RunE.
func (a *App) Config() *config.Config { return a.cfg }

// Conn builds the Kafka connection description from the configuration.
func (a *App) Conn() (*kafkaconn.Conn, error) { return kafkaconn.New(a.cfg) }

// Printer prints results in the -o format.
func (a *App) Printer() output.Printer {
	return output.Printer{W: a.IO.Out, Format: output.Format(a.outFormat)}
}

// Main runs jobctl with args on the standard streams and returns the exit
// code. SIGINT and SIGTERM cancel the command's context; commands shut
// down gracefully on that.
//
// A second signal ends the abort context (see Abort): long-running
// commands stop at once on it instead of finishing their work.
func Main(args []string) int {
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sigs)
	ctx, interrupt := context.WithCancelCause(context.Background())
	abortCtx, abort := context.WithCancelCause(context.Background())
	defer interrupt(nil)
	defer abort(nil)
	go func() {
		sig := <-sigs
		interrupt(&interruptedError{sig: sig})
		sig = <-sigs
		abort(&interruptedError{sig: sig})
	}()
	return Execute(withAbort(ctx, abortCtx), args, StdIOStreams())
}

// interruptedError is the cause of a context ended by a signal.
type interruptedError struct{ sig os.Signal }

func (e *interruptedError) Error() string { return "interrupted by " + e.sig.String() }

// interruptedExit decides the exit code of a command that failed after a
// signal ended its context: 128 + the signal's number (130 for Ctrl-C),
// as shells do. The cancellation itself is not an error worth a message
// ("context canceled"): a command that already said why it stopped adds
// nothing, others print one "interrupted" line.
func interruptedExit(ctx context.Context, err error, errOut io.Writer) (int, bool) {
	var ie *interruptedError
	if !errors.As(context.Cause(ctx), &ie) {
		return 0, false
	}
	var silent *silentError
	switch {
	case errors.As(err, &silent):
	case errors.Is(err, context.Canceled) || strings.Contains(err.Error(), context.Canceled.Error()):
		fmt.Fprintln(errOut, "interrupted")
	default:
		fmt.Fprintf(errOut, "Error: %v\n", err)
	}
	code := ExitInterrupted
	if sig, ok := ie.sig.(syscall.Signal); ok {
		code = 128 + int(sig)
	}
	return code, true
}

type abortKey struct{}

func withAbort(ctx, abort context.Context) context.Context {
	return context.WithValue(ctx, abortKey{}, abort)
}

// Abort returns the context that ends at the second interrupt (the first
// ends ctx itself): a command finishing its work after the first stops on
// it at once. Without one (tests), it never ends.
func Abort(ctx context.Context) context.Context {
	if a, ok := ctx.Value(abortKey{}).(context.Context); ok {
		return a
	}
	return context.Background()
}

// Execute runs jobctl with args and returns the exit code. It is the one
// place where errors become exit codes.
func Execute(ctx context.Context, args []string, streams IOStreams) int {
	app := &App{IO: streams, Logger: slog.New(slog.DiscardHandler)}
	root := NewRootCmd(app)
	root.SetArgs(args)
	root.SetIn(streams.In)
	root.SetOut(streams.Out)
	root.SetErr(streams.ErrOut)
	err := root.ExecuteContext(ctx)
	if err == nil {
		// Ctrl-C is an interruption even when the command then stopped
		// cleanly (130, as shells report it); SIGTERM is how a service
		// manager stops a service, and a clean stop after it is success.
		var ie *interruptedError
		if errors.As(context.Cause(ctx), &ie) && ie.sig == os.Interrupt {
			return ExitInterrupted
		}
		return ExitOK
	}
	if code, ok := interruptedExit(ctx, err, streams.ErrOut); ok {
		return code
	}
	var silent *silentError
	if errors.As(err, &silent) {
		return silent.code
	}
	if msg, ok := brokerUnreachable(app, err); ok {
		fmt.Fprintf(streams.ErrOut, "Error: %s\n", msg)
		return ExitFailure
	}
	fmt.Fprintf(streams.ErrOut, "Error: %s\n", readableError(err))
	if hint := connectionHint(app.cfg, err); hint != "" {
		fmt.Fprintln(streams.ErrOut, hint)
	}
	var usage *usageError
	var keyErr *config.KeyError
	if errors.As(err, &usage) || errors.As(err, &keyErr) || isCobraUsageError(err) {
		if usage != nil && usage.hint != "" {
			fmt.Fprintln(streams.ErrOut, usage.hint)
		}
		return ExitUsage
	}
	return ExitFailure
}

const rootLong = `jobctl processes jobs asynchronously over Apache Kafka.

Jobs are events on one topic (job-status by default), keyed by job id:
producers and the API append NEW events, workers in a consumer group
process them and append DONE or FAILED, and serve replays the topic into a
live view with an HTTP API and a dashboard.

Every global flag can also be set by its environment variable (shown with
the flag) or in a config file (--config, else ./jobctl.yaml, else
$XDG_CONFIG_HOME/jobctl/config.yaml). Precedence: flag > env > file >
default. See the effective values with 'jobctl config show'. The
workers' consumer group and idle timeout are flags of the commands that
use them ('consume --group', JOBCTL_GROUP_ID; 'consume --timeout',
JOBCTL_TIMEOUT).

Read commands (jobs, dlq list, schedule list/get) ask a running 'jobctl
serve' when one is configured (server.url) or answers at api.addr, and
otherwise read the topic. They log warnings only; -v shows more.

Exit codes: 0 success, 1 failure, 2 usage error (bad flag, argument or
configuration value), 130 interrupted by Ctrl-C (also when the command
then stopped cleanly). SIGTERM is a service's normal stop: 0 when the
command stopped cleanly, 143 when it failed.`

// NewRootCmd builds the jobctl command tree.
func NewRootCmd(app *App) *cobra.Command {
	root := &cobra.Command{
		Use:           "jobctl",
		Short:         "Process jobs asynchronously over Apache Kafka",
		Long:          rootLong,
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			return app.load(cmd)
		},
	}
	root.SetFlagErrorFunc(func(cmd *cobra.Command, err error) error {
		return &usageError{err: errors.New(readableFlagError(err.Error())), hint: fmt.Sprintf("Run '%s --help' for usage.", cmd.CommandPath())}
	})
	pf := root.PersistentFlags()
	pf.StringVar(&app.configFile, "config", "", "config file (env JOBCTL_CONFIG; default ./jobctl.yaml, then the user config dir)")
	pf.StringVarP(&app.outFormat, "output", "o", "table", "output format: table or json")
	addKeyFlag(pf, "brokers", "brokers", "b")
	addKeyFlag(pf, "topic", "topic", "t")
	addKeyFlag(pf, "log.level", "log-level", "")
	addKeyFlag(pf, "log.format", "log-format", "")
	pf.BoolVarP(&app.verbose, "verbose", "v", false, "log at info level on read commands (jobs, dlq list, schedule list/get, topic list/describe, config show), which log only warnings otherwise")

	root.AddCommand(
		newConfigCmd(app),
		newVersionCmd(app),
		newBrokerCmd(app),
		newTopicCmd(app),
		newProduceCmd(app),
		newConsumeCmd(app),
		newServeCmd(app),
		newJobsCmd(app),
		newDevCmd(app),
		newProbeCmd(app),
		newDLQCmd(app),
		newGroupCmd(app),
		newScheduleCmd(app),
		newBenchCmd(app),
	)
	addScopedKeyFlags(root)
	registerCompletions(app, root)
	markQuietCommands(root)
	// --version prints what 'jobctl version' prints.
	root.Version = buildVersion().text()
	root.SetVersionTemplate("{{.Version}}")
	// Completion scripts must work even where the configuration is broken.
	root.InitDefaultCompletionCmd()
	for _, c := range root.Commands() {
		if c.Name() == "completion" {
			markSkipConfig(c)
		}
	}
	return root
}

// quietCommands print a table or a line people read: info logs before
// it (the view caught up, a server was found) are noise unless asked for
// with -v or --log-level. Paths below the root; a path covers its
// subcommands.
var quietCommands = []string{
	"jobs", "dlq list", "schedule list", "schedule get",
	"topic list", "topic describe", "config show", "group",
}

// quietAnnotation marks a command of quietCommands.
const quietAnnotation = "jobctl_quiet"

func markQuietCommands(root *cobra.Command) {
	var mark func(c *cobra.Command)
	mark = func(c *cobra.Command) {
		if c.Annotations == nil {
			c.Annotations = map[string]string{}
		}
		c.Annotations[quietAnnotation] = ""
		for _, sub := range c.Commands() {
			mark(sub)
		}
	}
	for _, path := range quietCommands {
		if c := findSubcommand(root, path); c != nil {
			mark(c)
		}
	}
}

func markSkipConfig(c *cobra.Command) {
	if c.Annotations == nil {
		c.Annotations = map[string]string{}
	}
	c.Annotations[skipConfigAnnotation] = ""
	for _, sub := range c.Commands() {
		markSkipConfig(sub)
	}
}

// usageError is a mistake in how jobctl was called: exit code 2.
type usageError struct {
	err  error
	hint string
}

func (e *usageError) Error() string { return e.err.Error() }
func (e *usageError) Unwrap() error { return e.err }

func usageErrorf(format string, args ...any) error {
	return &usageError{err: fmt.Errorf(format, args...)}
}

// silentError ends a command with code after it already told the user why.
type silentError struct{ code int }

func (e *silentError) Error() string { return fmt.Sprintf("exit status %d", e.code) }

func isCobraUsageError(err error) bool {
	msg := err.Error()
	for _, prefix := range []string{"unknown command", "unknown flag", "unknown shorthand flag", "accepts ", "requires at least", "requires at most", "invalid argument"} {
		if len(msg) >= len(prefix) && msg[:len(prefix)] == prefix {
			return true
		}
	}
	return false
}

// connectionHint explains errors whose text says little. A broker that
// rejects SASL credentials or a TLS handshake often just closes the
// connection, which kafka-go reports as an unexpected EOF.
func connectionHint(cfg *config.Config, err error) string {
	if cfg == nil || !(errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF)) {
		return ""
	}
	switch {
	case cfg.SASL.Mechanism != "":
		return fmt.Sprintf("Hint: the broker closed the connection. With SASL %s configured this usually means it rejected the credentials: check sasl.username, sasl.password and sasl.mechanism.", cfg.SASL.Mechanism)
	case !cfg.TLS.Enabled:
		return "Hint: the broker closed the connection. If it requires TLS or SASL, set tls.enabled or sasl.mechanism."
	}
	return "Hint: the broker closed the connection; check its TLS and SASL requirements."
}
