package cmd

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/jobctl/jobctl/pkg/admin"
	"github.com/jobctl/jobctl/pkg/embedded"
	"github.com/jobctl/jobctl/pkg/ledger"
	"github.com/jobctl/jobctl/pkg/producer"
	"github.com/spf13/cobra"
)

type devOptions struct {
	DataDir    string
	BrokerAddr string
	Partitions int
	DemoRate   float64
}

func newDevCmd(app *App) *cobra.Command {
	opts := &devOptions{}
	cmd := &cobra.Command{
		Use:   "dev",
		Short: "Run the whole system in one process: embedded broker, workers, API, dashboard, demo jobs",
		Long: `Run everything jobctl does in one process, with nothing else installed:

  - the embedded Kafka-protocol broker on --broker-addr, keeping its data
    in --data-dir, so a restart keeps every job;
  - the topic (--partitions), created if missing;
  - 'jobctl serve': the API and the dashboard on --addr (api.addr);
  - 'jobctl consume': a worker in group --group (group.id) with the
    configured handler and concurrency;
  - with --demo-rate R > 0, a producer of R mock jobs per second.

It prints the dashboard URL. Other jobctl commands reach its broker with
--brokers set to --broker-addr (the default, 127.0.0.1:9092, is also
theirs). Ctrl-C stops everything cleanly.

The embedded broker is for development and demos, not production.`,
		Example: `  go run . dev
  jobctl dev --demo-rate 20 --concurrency 8
  jobctl dev --data-dir /tmp/jobs --broker-addr 127.0.0.1:19092 --addr 127.0.0.1:8081 --demo-rate 0`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runDev(cmd.Context(), app, opts) },
	}
	f := cmd.Flags()
	f.StringVar(&opts.DataDir, "data-dir", "data", "directory that keeps the embedded broker's data across restarts")
	f.StringVar(&opts.BrokerAddr, "broker-addr", "127.0.0.1:9092", "address of the embedded broker")
	f.IntVar(&opts.Partitions, "partitions", 4, "partitions of the topic when dev creates it")
	f.Float64Var(&opts.DemoRate, "demo-rate", 2, "mock jobs per second from the demo producer (0 = none)")
	addKeyFlag(f, "api.addr", "addr", "")
	addKeyFlag(f, "consume.concurrency", "concurrency", "c")
	return cmd
}

func runDev(ctx context.Context, app *App, opts *devOptions) error {
	if opts.Partitions < 1 {
		return usageErrorf("--partitions must be at least 1, got %d", opts.Partitions)
	}
	if opts.DemoRate < 0 {
		return usageErrorf("--demo-rate must not be negative, got %g", opts.DemoRate)
	}
	b, err := embedded.Start(embedded.Options{Addr: opts.BrokerAddr, DataDir: opts.DataDir, Logger: app.Logger})
	if err != nil {
		return fmt.Errorf("%w (is another broker on %s? pass --broker-addr)", err, opts.BrokerAddr)
	}
	defer b.Close()

	// Everything below talks to the embedded broker, and the worker runs
	// until Ctrl-C rather than stopping when the demo is idle.
	cfg := app.Config()
	cfg.Brokers = []string{b.Addr()}
	cfg.Timeout = 0
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
	run("consume", func(ctx context.Context) error { return runConsume(ctx, app) })
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
	src := producer.NewMockSource(1<<30, "demo", nil)
	_, err = producer.Run(ctx, w, src, producer.Options{Rate: rate, Logger: app.Logger})
	return err
}
