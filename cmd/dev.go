package cmd

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/jobctl/jobctl/pkg/admin"
	"github.com/jobctl/jobctl/pkg/config"
	"github.com/jobctl/jobctl/pkg/embedded"
	"github.com/jobctl/jobctl/pkg/handler"
	"github.com/jobctl/jobctl/pkg/job"
	"github.com/jobctl/jobctl/pkg/ledger"
	"github.com/jobctl/jobctl/pkg/producer"
	"github.com/spf13/cobra"
)

// devMarker is the file that marks a directory as jobctl dev's own: dev
// writes only into a directory that has it, is empty, or does not exist.
const devMarker = ".jobctl-dev"

// The demo's job types. Most demo jobs succeed; demoFlakyEvery-th ones
// fail their first demoFlakyFailures attempts and then succeed, and
// demoBrokenEvery-th ones fail every attempt and end DEAD, so the retry
// and dead-letter path shows in the first minute.
const (
	demoOKType        = "demo"
	demoFlakyType     = "flaky"
	demoBrokenType    = "broken"
	demoFlakyEvery    = 10
	demoBrokenEvery   = 20
	demoFlakyFailures = 2
)

// demoTypePolicies keep the demo's retries short (the defaults back off
// up to 5 minutes); a --type-policy for the same type wins.
var demoTypePolicies = []string{
	demoFlakyType + ":max_attempts=5,retry_backoff=1s,retry_backoff_max=2s",
	demoBrokenType + ":max_attempts=3,retry_backoff=1s,retry_backoff_max=2s",
}

type devOptions struct {
	DataDir    string
	BrokerAddr string
	Partitions int
	DemoRate   float64
}

func newDevCmd(app *App) *cobra.Command {
	opts := &devOptions{}
	defaultDir, dirErr := defaultDevDataDir()
	cmd := &cobra.Command{
		Use:   "dev",
		Short: "Run the whole system in one process: embedded broker, workers, API, dashboard, demo jobs",
		Long: `Run everything jobctl does in one process, with nothing else installed:

  - the embedded Kafka-protocol broker on --broker-addr, keeping its data
    in --data-dir, so a restart keeps every job;
  - the topic (--partitions), created if missing;
  - 'jobctl serve': the API and the dashboard on --addr (api.addr);
  - 'jobctl consume': a worker in group --group (group.id) with the
    scheduler of periodic schedules, taking consume's handler flags
    (--handler, --route, --exec-command, --type-policy, --max-attempts,
    --retry-backoff, ...);
  - with --demo-rate R > 0, a producer of R mock jobs per second.

The data directory is dev's own: by default $XDG_DATA_HOME/jobctl/dev
(~/.local/share/jobctl/dev). dev marks it with a ` + devMarker + ` file and
refuses a non-empty directory without that file, so it never writes into a
directory of something else. The worker's processed-jobs log
(consume.processed_log) goes there too unless its path is absolute. To
start afresh, stop dev and remove the directory.

The demo shows the failure path too: of the demo jobs, 1 in ` + fmt.Sprint(demoFlakyEvery) + ` has type
"` + demoFlakyType + `" and fails its first ` + fmt.Sprint(demoFlakyFailures) + ` attempts, then succeeds; 1 in ` + fmt.Sprint(demoBrokenEvery) + ` has type
"` + demoBrokenType + `" and fails every attempt, ending DEAD in <topic>.dlq after 3
attempts. Their retries back off 1-2 s. Look at them with
'jobctl jobs list --status DEAD', 'jobctl dlq list', 'jobctl jobs get ID'.
With --demo-rate 0 no demo jobs are sent and every job goes to the
configured handler.

It prints the dashboard URL. Other jobctl commands reach its broker with
--brokers set to --broker-addr (the default, 127.0.0.1:9092, is also
theirs). Ctrl-C stops everything cleanly.

The embedded broker is for development and demos, not production.`,
		Example: `  go run . dev
  jobctl dev --demo-rate 20 --concurrency 8
  jobctl dev --handler exec --exec-command './my-job.sh' --demo-rate 0
  jobctl dev --data-dir /tmp/jobs --broker-addr 127.0.0.1:19092 --addr 127.0.0.1:8081`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if opts.DataDir == "" {
				if dirErr != nil {
					return usageErrorf("no default data directory (%v): pass --data-dir", dirErr)
				}
				return usageErrorf("--data-dir must not be empty")
			}
			return runDev(cmd.Context(), app, opts)
		},
	}
	f := cmd.Flags()
	f.StringVar(&opts.DataDir, "data-dir", defaultDir, "directory of dev's own that keeps the embedded broker's data across restarts (new, empty, or made by dev)")
	f.StringVar(&opts.BrokerAddr, "broker-addr", "127.0.0.1:9092", "address of the embedded broker")
	f.IntVar(&opts.Partitions, "partitions", 4, "partitions of the topic when dev creates it")
	f.Float64Var(&opts.DemoRate, "demo-rate", 2, "mock jobs per second from the demo producer, some of them failing (0 = none)")
	addKeyFlag(f, "api.addr", "addr", "")
	addHandlerFlags(f)
	return cmd
}

// defaultDevDataDir is $XDG_DATA_HOME/jobctl/dev, else the platform's
// per-user data directory: data, not cache, since it holds every job.
func defaultDevDataDir() (string, error) {
	if d := os.Getenv("XDG_DATA_HOME"); d != "" && filepath.IsAbs(d) {
		return filepath.Join(d, "jobctl", "dev"), nil
	}
	if runtime.GOOS == "darwin" || runtime.GOOS == "windows" {
		d, err := os.UserConfigDir() // Application Support, AppData\Roaming
		if err != nil {
			return "", err
		}
		return filepath.Join(d, "jobctl", "dev"), nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(home, ".local", "share", "jobctl", "dev"), nil
}

// prepareDevDataDir makes dir dev's own: it creates it when missing and
// marks it when empty; a non-empty directory must carry the marker
// already, so dev never mixes its files into someone else's.
func prepareDevDataDir(dir string) error {
	entries, err := os.ReadDir(dir)
	switch {
	case errors.Is(err, os.ErrNotExist):
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return fmt.Errorf("creating the data directory %s: %w", dir, err)
		}
	case err != nil:
		return usageErrorf("--data-dir %s: %v", dir, err)
	default:
		for _, e := range entries {
			if e.Name() == devMarker {
				return nil
			}
		}
		if len(entries) > 0 {
			return usageErrorf("--data-dir %s is not empty and is not a jobctl dev data directory (it has no %s file): "+
				"dev does not write into it; pass --data-dir with a new or empty directory "+
				"(or, if it holds an earlier jobctl dev's data, create the file %s in it)",
				dir, devMarker, filepath.Join(dir, devMarker))
		}
	}
	note := "This directory is jobctl dev's data (the embedded broker's topics, offsets and groups).\n" +
		"Stop jobctl dev and remove the directory to start afresh.\n"
	if err := os.WriteFile(filepath.Join(dir, devMarker), []byte(note), 0o644); err != nil {
		return fmt.Errorf("marking the data directory %s: %w", dir, err)
	}
	return nil
}

func runDev(ctx context.Context, app *App, opts *devOptions) error {
	if opts.Partitions < 1 {
		return usageErrorf("--partitions must be at least 1, got %d", opts.Partitions)
	}
	if opts.DemoRate < 0 {
		return usageErrorf("--demo-rate must not be negative, got %g", opts.DemoRate)
	}
	cfg := app.Config()
	// The worker's flags are checked before anything starts, so a bad
	// --route or --type-policy exits 2 without touching the data dir.
	if _, err := newHandler(cfg.Handler, cfg.Group.ID); err != nil {
		return err
	}
	userPolicies, err := config.ParseTypePolicies(cfg.Consume.TypePolicies)
	if err != nil {
		return usageErrorf("--type-policy: %v", err)
	}
	if err := prepareDevDataDir(opts.DataDir); err != nil {
		return err
	}
	b, err := embedded.Start(embedded.Options{Addr: opts.BrokerAddr, DataDir: opts.DataDir, Logger: app.Logger})
	if err != nil {
		return fmt.Errorf("%w (is another broker on %s? pass --broker-addr)", err, opts.BrokerAddr)
	}
	defer b.Close()

	// Everything below talks to the embedded broker, and the worker runs
	// until Ctrl-C rather than stopping when the demo is idle.
	cfg.Brokers = []string{b.Addr()}
	cfg.Timeout = 0
	if p := cfg.Consume.ProcessedLog; p != "" && !filepath.IsAbs(p) {
		cfg.Consume.ProcessedLog = filepath.Join(opts.DataDir, p)
	}
	if opts.DemoRate > 0 {
		for _, p := range demoTypePolicies {
			typ, _, _ := strings.Cut(p, ":")
			if _, set := userPolicies[typ]; !set {
				cfg.Consume.TypePolicies = append(cfg.Consume.TypePolicies, p)
			}
		}
	}
	conn, err := app.Conn()
	if err != nil {
		return err
	}
	createCtx, cancelCreate := context.WithTimeout(ctx, time.Minute)
	created, err := admin.New(conn.Client()).CreateTopic(createCtx, cfg.Topic, opts.Partitions, 1, nil, true)
	cancelCreate()
	if err != nil {
		return fmt.Errorf("creating topic %q on the embedded broker: %w", cfg.Topic, err)
	}

	ln, err := net.Listen("tcp", cfg.API.Addr)
	if err != nil {
		return fmt.Errorf("listening on %s (api.addr, --addr): %w", cfg.API.Addr, err)
	}
	fmt.Fprintf(app.IO.Out, "jobctl dev: dashboard http://%s  broker %s  topic %s (%d partitions)  data %s\n",
		ln.Addr(), b.Addr(), cfg.Topic, created.Partitions, opts.DataDir)
	if opts.DemoRate > 0 {
		fmt.Fprintf(app.IO.Out, "demo: %g jobs/s; 1 in %d is %q (fails %d times, then succeeds), 1 in %d is %q (always fails, DEAD after 3 attempts).\n"+
			"  See them: jobctl jobs list --status DEAD, jobctl dlq list, jobctl jobs get ID (with --brokers %s)\n",
			opts.DemoRate, demoFlakyEvery, demoFlakyType, demoFlakyFailures, demoBrokenEvery, demoBrokenType, b.Addr())
	}
	fmt.Fprintln(app.IO.Out, "Ctrl-C to stop.")

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		firstErr error
	)
	run := func(name string, fn func(context.Context) error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := fn(ctx); err != nil && !errors.Is(err, context.Canceled) {
				mu.Lock()
				if firstErr == nil {
					firstErr = fmt.Errorf("%s: %w", name, err)
				}
				mu.Unlock()
				cancel() // one part failing stops the others
			}
		}()
	}
	run("serve", func(ctx context.Context) error { return serveOn(ctx, app, ln) })
	var wrap func(handler.Handler) handler.Handler
	if opts.DemoRate > 0 {
		wrap = func(h handler.Handler) handler.Handler { return demoHandler{next: h} }
	}
	run("consume", func(ctx context.Context) error { return runConsumeWith(ctx, app, wrap) })
	if opts.DemoRate > 0 {
		run("demo producer", func(ctx context.Context) error { return runDemoProducer(ctx, app, opts.DemoRate) })
	}
	wg.Wait()
	app.Logger.Info("jobctl dev stopped")
	return firstErr
}

// runDemoProducer sends mock jobs at rate until ctx ends.
func runDemoProducer(ctx context.Context, app *App, rate float64) error {
	conn, err := app.Conn()
	if err != nil {
		return err
	}
	w := ledger.NewWriter(conn, app.Config().Topic)
	defer w.Close()
	src := &demoSource{mock: producer.NewMockSource(1<<30, demoOKType, nil)}
	_, err = producer.Run(ctx, w, src, producer.Options{Rate: rate, Logger: app.Logger})
	return err
}

// demoSource is the mock source with some jobs typed to fail.
type demoSource struct {
	mock *producer.MockSource
	n    int
}

func (s *demoSource) Next(ctx context.Context) (job.Event, error) {
	ev, err := s.mock.Next(ctx)
	if err != nil {
		return ev, err
	}
	s.n++
	switch {
	case s.n%demoBrokenEvery == demoBrokenEvery/2:
		ev.Type = demoBrokenType
	case s.n%demoFlakyEvery == 3:
		ev.Type = demoFlakyType
	}
	return ev, nil
}

// demoHandler fails the demo's flaky and broken jobs as their types say
// and hands every other job to the configured handler.
type demoHandler struct{ next handler.Handler }

var _ handler.ResultHandler = demoHandler{}

func (d demoHandler) Handle(ctx context.Context, j job.Event) error {
	_, err := d.HandleResult(ctx, j)
	return err
}

func (d demoHandler) HandleResult(ctx context.Context, j job.Event) (json.RawMessage, error) {
	switch {
	case j.Type == demoBrokenType:
		return nil, errors.New("demo: a broken job fails every attempt")
	case j.Type == demoFlakyType && j.Attempt <= demoFlakyFailures:
		return nil, fmt.Errorf("demo: a flaky job fails its first %d attempts (this was attempt %d)", demoFlakyFailures, j.Attempt)
	}
	if rh, ok := d.next.(handler.ResultHandler); ok {
		return rh.HandleResult(ctx, j)
	}
	return nil, d.next.Handle(ctx, j)
}
