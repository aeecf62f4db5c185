package cmd

import (
	"context"
	"errors"
	"fmt"
	"net"

	"github.com/jobctl/jobctl/pkg/admin"
	"github.com/jobctl/jobctl/pkg/api"
	"github.com/jobctl/jobctl/pkg/control"
	"github.com/jobctl/jobctl/pkg/deadletter"
	"github.com/jobctl/jobctl/pkg/ledger"
	"github.com/jobctl/jobctl/pkg/metrics"
	"github.com/jobctl/jobctl/pkg/producer"
	"github.com/jobctl/jobctl/pkg/schedule"
	"github.com/jobctl/jobctl/pkg/view"
	"github.com/spf13/cobra"
)

const serveLong = `Serve the job view over HTTP: a JSON API, live Server-Sent Events, a
dashboard at /, Prometheus metrics and an OpenAPI document.

serve reads the whole topic (every partition from its first offset, no
consumer group) into a view of every job's current state, then follows
it. Events are merged so a job never moves backwards: a late NEW never
overwrites DONE. A restarted serve rebuilds the same view from the topic.
/readyz answers 200 once the broker is reachable and the view has read
every partition to the end it had at start.

Endpoints (full reference: GET /openapi.json):
  GET  /                 dashboard (counts, live jobs, submit form, throughput, lag)
  GET  /jobs             jobs; ?status= ?type= ?limit= (<=1000) ?after= ?order=desc;
                         next page in the Link header
  GET  /jobs/{id}        one job with its history
  POST /jobs             submit {"job_id": 1234, "status": "NEW"} or {"type": ..., "payload": ...};
                         202 once all in-sync replicas have the NEW event
  GET  /jobs/events      live status changes (Server-Sent Events)
  GET  /stats            counts, throughput, consumer lag per group and partition, durations
  GET  /groups           consumer groups: state, members and their partitions, paused,
                         pending jobs per partition, jobs/s; GET /groups/{group} for one
  GET  /dlq              dead letters; ?type= ?error= ?since= ?until= ?group= ?kind= ?limit=
  POST /dlq/replay       replay dead jobs: {"ids": [...]} or {"all": true, filters..., "dry_run": true}
  GET  /healthz          {"status":"ok","topic":...,"version":...}, 200 even while loading
  GET  /readyz /metrics /openapi.json

Until the view has read the whole topic, GET /jobs, GET /stats and GET
/jobs/{id} of a job not read yet answer 503 {"loading": true, "progress":
...} with Retry-After: 1, never a partial answer. POST /jobs on a topic
that does not exist answers 404.

Security: serve listens on 127.0.0.1:8080 unless told otherwise. Set
api.token (env JOBCTL_API_TOKEN) to require 'Authorization: Bearer <token>'
for POST, and api.token_reads to require it for reads too. Browsers from
other origins are refused unless listed in api.cors_origins. On a
loopback address only the Host names localhost, 127.0.0.1, [::1] and
api.addr are answered (DNS rebinding guard; add names with
api.allowed_hosts). Bodies in flight, event streams and requests per
client are capped (api.max_inflight_bytes, api.max_sse_clients,
api.max_client_requests).

Profiling: --metrics-addr ADDR (off by default) opens a second listener,
as consume's does, with Prometheus metrics at /metrics and Go profiles at
/debug/pprof/ (go tool pprof http://ADDR/debug/pprof/profile?seconds=10).
Give it a loopback address such as 127.0.0.1:9101: profiles show the
process's internals.

Memory: once the view has caught up, serve keeps a soft memory limit
(Go's GOMEMLIMIT) just above the view's live heap and moves it as the
view grows, so the heap does not drift to twice the view under
continued traffic. GOGC or GOMEMLIMIT set in the environment wins.

Ctrl-C (SIGINT) or SIGTERM stops serve gracefully: event streams close,
requests in flight finish.`

const serveExample = `  jobctl serve
  jobctl serve --addr 0.0.0.0:8080          # with JOBCTL_API_TOKEN set
  curl -s localhost:8080/jobs?status=DONE
  curl -s -XPOST -H 'Content-Type: application/json' -d '{"job_id": 1234, "status": "NEW"}' localhost:8080/jobs
  curl -N localhost:8080/jobs/events
  jobctl serve --metrics-addr 127.0.0.1:9101 & go tool pprof http://127.0.0.1:9101/debug/pprof/profile?seconds=10`

func newServeCmd(app *App) *cobra.Command {
	var opts serveOptions
	cmd := &cobra.Command{
		Use:     "serve",
		Short:   "Serve the job view: HTTP API, live events and a dashboard",
		Long:    serveLong,
		Example: serveExample,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			opts.MetricsAddr = app.Config().API.MetricsAddr
			return runServe(cmd.Context(), app, opts)
		},
	}
	addKeyFlag(cmd.Flags(), "api.addr", "addr", "")
	addKeyFlag(cmd.Flags(), "api.metrics_addr", "metrics-addr", "")
	return cmd
}

// serveOptions are what serve does beyond serving the API (jobctl dev
// serves the API without them).
type serveOptions struct {
	// MetricsAddr, when set, is the listener of /metrics and /debug/pprof/.
	MetricsAddr string
}

func runServe(ctx context.Context, app *App, opts serveOptions) error {
	ln, err := net.Listen("tcp", app.Config().API.Addr)
	if err != nil {
		return fmt.Errorf("listening on %s (api.addr): %w", app.Config().API.Addr, err)
	}
	return serveOnWith(ctx, app, ln, opts)
}

// serveOn runs the view and the API on ln until ctx ends; `jobctl dev`
// calls it with a listener it opened itself, to print the real URL.
func serveOn(ctx context.Context, app *App, ln net.Listener) error {
	return serveOnWith(ctx, app, ln, serveOptions{})
}

func serveOnWith(ctx context.Context, app *App, ln net.Listener, opts serveOptions) error {
	cfg := app.Config()
	conn, err := app.Conn()
	if err != nil {
		ln.Close()
		return err
	}
	m := metrics.New()
	if opts.MetricsAddr != "" {
		stop, err := serveMetrics(app, opts.MetricsAddr, m)
		if err != nil {
			ln.Close()
			return err
		}
		defer stop()
		if host, _, _ := net.SplitHostPort(opts.MetricsAddr); !isLoopback(host) {
			app.Logger.Warn("--metrics-addr listens beyond loopback: anyone who reaches it can read profiles of this process", "addr", opts.MetricsAddr)
		}
	}
	v := view.New(view.Options{Conn: conn, Topic: cfg.Topic, WaitForBroker: true, Logger: app.Logger, Metrics: m})
	w := ledger.NewWriter(conn, cfg.Topic)
	defer w.Close()
	// POST /jobs: a lone job is sent at once, jobs arriving during a write go in the next one.
	enq := producer.NewCoalescer(w, producer.CoalescerOptions{})
	defer enq.Close()
	ctl := control.NewController(conn, cfg.Topic)
	defer ctl.Close()
	controlState := control.NewTail(conn, cfg.Topic, control.TailOptions{Logger: app.Logger})

	adm := admin.New(conn.Client())
	srv := api.New(api.Options{
		Topic:        cfg.Topic,
		Version:      buildVersion().Version,
		Store:        v,
		Enqueuer:     enq,
		Lag:          topicLag{admin: adm, topic: cfg.Topic},
		Groups:       topicGroups{admin: adm, topic: cfg.Topic},
		DeadLetters:  deadletter.NewService(conn, cfg.Topic, 0),
		Schedules:    schedule.NewStore(conn, cfg.Topic),
		Control:      ctl,
		Paused:       controlState,
		Metrics:      m,
		Logger:       app.Logger,
		Token:        cfg.API.Token,
		TokenReads:   cfg.API.TokenReads,
		MaxBodyBytes: int64(cfg.API.MaxBodyBytes),
		CORSOrigins:  cfg.API.CORSOrigins,
		ReadTimeout:  cfg.API.ReadTimeout,
		WriteTimeout: cfg.API.WriteTimeout,
		IdleTimeout:  cfg.API.IdleTimeout,

		ListenAddr:        ln.Addr().String(),
		AllowedHosts:      cfg.API.AllowedHosts,
		MaxInflightBytes:  noLimitIfZero(int64(cfg.API.MaxInflightBytes)),
		MaxSSEClients:     int(noLimitIfZero(int64(cfg.API.MaxSSEClients))),
		MaxClientRequests: int(noLimitIfZero(int64(cfg.API.MaxClientRequests))),
	})

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	viewDone := make(chan error, 1)
	go func() { viewDone <- v.Run(ctx) }()
	memDone := make(chan struct{})
	go func() {
		defer close(memDone)
		limitMemoryToView(ctx, func() bool { return v.Progress().CaughtUp }, app.Logger)
	}()
	defer func() { cancel(); <-memDone }()
	controlDone := make(chan struct{})
	go func() {
		defer close(controlDone)
		if err := controlState.Run(ctx); err != nil {
			app.Logger.Warn("reading the control topic stopped", "err", err)
		}
	}()
	defer func() { cancel(); <-controlDone }()
	serveDone := make(chan error, 1)
	go func() { serveDone <- srv.Serve(ctx, ln) }()

	url := "http://" + ln.Addr().String()
	app.Logger.Info("serving the jobctl API and dashboard", "url", url, "topic", cfg.Topic, "token", cfg.API.Token != "")
	if host, _, _ := net.SplitHostPort(ln.Addr().String()); !isLoopback(host) && cfg.API.Token == "" {
		app.Logger.Warn("listening beyond loopback without api.token: anyone who reaches this address can submit jobs", "addr", ln.Addr().String())
	}

	var runErr error
	select {
	case err := <-serveDone:
		runErr = err
		cancel()
		<-viewDone
	case err := <-viewDone:
		// Run only returns early on ctx end (it waits for the broker).
		runErr = err
		cancel()
		if serr := <-serveDone; runErr == nil {
			runErr = serr
		}
	}
	app.Logger.Info("serve stopped")
	if runErr != nil && !errors.Is(runErr, context.Canceled) {
		return fmt.Errorf("serving the API: %w", runErr)
	}
	return nil
}

// noLimitIfZero maps a config limit (0 = none) to api.Options' (0 =
// default, negative = none).
func noLimitIfZero(n int64) int64 {
	if n == 0 {
		return -1
	}
	return n
}

func isLoopback(host string) bool {
	ip := net.ParseIP(host)
	return host == "localhost" || ip != nil && ip.IsLoopback()
}

// topicLag adapts pkg/admin's topic description to the API's lag view.
type topicLag struct {
	admin *admin.Admin
	topic string
}

func (t topicLag) GroupLag(ctx context.Context) ([]api.GroupLag, error) {
	d, err := t.admin.DescribeTopic(ctx, t.topic)
	if d == nil {
		return nil, err
	}
	out := make([]api.GroupLag, 0, len(d.Groups))
	for _, g := range d.Groups {
		gl := api.GroupLag{Group: g.Group, Lag: g.Lag, Partitions: make([]api.PartitionLag, 0, len(g.Partitions))}
		for _, p := range g.Partitions {
			gl.Partitions = append(gl.Partitions, api.PartitionLag{Partition: p.Partition, Committed: p.Committed, EndOffset: p.HighWatermark, Lag: p.Lag})
		}
		out = append(out, gl)
	}
	return out, err
}

// topicGroups adapts pkg/admin's group descriptions to the API's.
type topicGroups struct {
	admin *admin.Admin
	topic string
}

func (t topicGroups) DescribeGroups(ctx context.Context, groups []string) ([]api.GroupDescription, error) {
	descs, err := t.admin.DescribeGroups(ctx, t.topic, groups)
	out := make([]api.GroupDescription, 0, len(descs))
	for _, d := range descs {
		g := api.GroupDescription{Group: d.Group, State: d.State, Protocol: d.Protocol, Error: d.Error, Members: make([]api.GroupMember, 0, len(d.Members))}
		for _, m := range d.Members {
			g.Members = append(g.Members, api.GroupMember{MemberID: m.MemberID, InstanceID: m.InstanceID, ClientID: m.ClientID, Host: m.Host, Partitions: m.Partitions})
		}
		out = append(out, g)
	}
	return out, err
}
