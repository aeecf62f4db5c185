// Package api is jobctl's HTTP API and dashboard: the job view over HTTP
// (list, get, live Server-Sent Events, stats), job submission (POST
// /jobs appends a NEW event to the topic), health, readiness, Prometheus
// metrics and an OpenAPI document. It depends only on the small
// interfaces below, so it can be tested without Kafka.
package api

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/jobctl/jobctl/pkg/job"
	"github.com/jobctl/jobctl/pkg/metrics"
	"github.com/jobctl/jobctl/pkg/view"
	"github.com/prometheus/client_golang/prometheus"
)

// JobStore is what the API reads jobs from; *view.View implements it.
type JobStore interface {
	Get(id string) (view.Job, bool)
	Has(id string) bool
	List(q view.Query) ([]view.Job, bool)
	Counts() view.Counts
	Throughput() view.Throughput
	Progress() view.Progress
	// Ready reports whether the store has read the whole topic and the
	// broker is reachable.
	Ready() bool
	Subscribe(buffer int) *view.Subscription
}

// Enqueuer appends job events to the topic and returns once every
// in-sync replica has them; *ledger.Writer implements it.
type Enqueuer interface {
	Append(ctx context.Context, events ...job.Event) error
}

// LagReader reports the committed offsets and lag of the consumer groups
// reading the topic.
type LagReader interface {
	GroupLag(ctx context.Context) ([]GroupLag, error)
}

// GroupLag is one consumer group's lag on the topic.
type GroupLag struct {
	Group string `json:"group"`
	// Lag is the record lag: records of every kind not yet read.
	Lag int64 `json:"lag"`
	// Pending is the jobs the group has not finished (docs/runtime.md,
	// "Status per group"), when the store can count them.
	Pending    *int64         `json:"pending,omitempty"`
	Partitions []PartitionLag `json:"partitions"`
}

// PartitionLag is a group's position on one partition. Committed is -1
// and Lag null when the group has committed nothing there.
type PartitionLag struct {
	Partition int    `json:"partition"`
	Committed int64  `json:"committed"`
	EndOffset int64  `json:"end_offset"`
	Lag       *int64 `json:"lag"`
	Pending   *int64 `json:"pending,omitempty"`
}

// Options configures a Server.
type Options struct {
	// Topic is the job topic served, and Version jobctl's version: both
	// are in /healthz, where the CLI checks it talks to a server of its
	// own topic before trusting it.
	Topic   string
	Version string

	Store    JobStore
	Enqueuer Enqueuer
	Lag      LagReader // optional
	Metrics  *metrics.Metrics
	Logger   *slog.Logger
	// DeadLetters serves GET /dlq and POST /dlq/replay (optional:
	// without it they answer 503).
	DeadLetters DeadLetters
	// Schedules serves /schedules (optional: without it those routes
	// answer 503).
	Schedules Schedules
	// Control serves cancel, retry, pause and resume, and Paused the
	// paused groups in /stats (both optional: without Control those
	// routes answer 503).
	Control Controller
	Paused  PausedGroups
	// Groups describes consumer groups' members for GET /groups
	// (optional: without it groups are listed without members).
	Groups GroupDescriber

	// Token, when set, is the bearer token required for POST, and for
	// every read except /, /healthz, /readyz and /openapi.json when
	// TokenReads is set.
	Token      string
	TokenReads bool
	// MaxBodyBytes bounds request bodies (default 1 MiB).
	MaxBodyBytes int64
	// CORSOrigins lists the origins allowed to call the API from a
	// browser ("*" for any); empty means no CORS headers at all.
	CORSOrigins []string
	// ListenAddr is the host:port the server listens on and AllowedHosts
	// the api.allowed_hosts list: together they say which Host headers
	// are answered (see newHostPolicy); others get 421.
	ListenAddr   string
	AllowedHosts []string
	// MaxInflightBytes bounds the body bytes of all requests in flight
	// (default 64 MiB), MaxSSEClients the open event streams (default
	// 1000) and MaxClientRequests the requests in flight per client
	// address, event streams aside (default 32). Negative: no limit.
	MaxInflightBytes  int64
	MaxSSEClients     int
	MaxClientRequests int

	ReadTimeout  time.Duration
	WriteTimeout time.Duration // not applied to /jobs/events
	IdleTimeout  time.Duration
	// ShutdownTimeout bounds how long Serve waits for requests in flight
	// once its context ends (default 10 s).
	ShutdownTimeout time.Duration
	// EnqueueTimeout bounds one POST's write to Kafka (default 15 s).
	EnqueueTimeout time.Duration
	// Heartbeat is the interval of the comment lines that keep event
	// streams open through proxies (default 15 s).
	Heartbeat time.Duration
	// LagCacheTTL is how long a lag reading is reused (default 3 s):
	// every dashboard polls /stats.
	LagCacheTTL time.Duration
	Now         func() time.Time
}

// Server serves the API.
type Server struct {
	opts     Options
	log      *slog.Logger
	handler  http.Handler
	routes   []route
	reserved *reservations
	lag      *lagCache
	duration *prometheus.HistogramVec

	closeOnce sync.Once
	closing   chan struct{} // closed at shutdown: event streams end
}

// New builds a Server.
func New(opts Options) *Server {
	if opts.MaxBodyBytes <= 0 {
		opts.MaxBodyBytes = 1 << 20
	}
	if opts.MaxInflightBytes == 0 {
		opts.MaxInflightBytes = DefaultMaxInflightBytes
	}
	if opts.MaxSSEClients == 0 {
		opts.MaxSSEClients = DefaultMaxSSEClients
	}
	if opts.MaxClientRequests == 0 {
		opts.MaxClientRequests = DefaultMaxClientRequests
	}
	if opts.ShutdownTimeout <= 0 {
		opts.ShutdownTimeout = 10 * time.Second
	}
	if opts.EnqueueTimeout <= 0 {
		opts.EnqueueTimeout = 15 * time.Second
	}
	if opts.Heartbeat <= 0 {
		opts.Heartbeat = 15 * time.Second
	}
	if opts.LagCacheTTL <= 0 {
		opts.LagCacheTTL = 3 * time.Second
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Server{
		opts:     opts,
		log:      opts.Logger,
		reserved: newReservations(opts.Store),
		lag:      &lagCache{reader: opts.Lag, store: opts.Store, ttl: opts.LagCacheTTL, now: opts.Now},
		closing:  make(chan struct{}),
	}
	s.duration = s.registerDuration()
	s.routes = s.routeTable()
	s.handler = securityHeaders(s.guard(s.buildHandler()))
	return s
}

// Handler is the API as an http.Handler.
func (s *Server) Handler() http.Handler { return s.handler }

// CloseStreams ends every open event stream; Serve calls it on shutdown.
func (s *Server) CloseStreams() {
	s.closeOnce.Do(func() { close(s.closing) })
}

// Serve serves the API on ln until ctx ends, then shuts down gracefully:
// event streams are closed, requests in flight get ShutdownTimeout to
// finish.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	hs := &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: s.opts.ReadTimeout,
		ReadTimeout:       s.opts.ReadTimeout,
		WriteTimeout:      s.opts.WriteTimeout,
		IdleTimeout:       s.opts.IdleTimeout,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}
	hs.RegisterOnShutdown(s.CloseStreams)
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), s.opts.ShutdownTimeout)
	defer cancel()
	err := hs.Shutdown(sctx)
	if serr := <-errc; serr != nil && !errors.Is(serr, http.ErrServerClosed) && err == nil {
		err = serr
	}
	return err
}

// registerDuration adds the HTTP request histogram to the metrics
// registry (sharing it when a second server registers on one registry).
func (s *Server) registerDuration() *prometheus.HistogramVec {
	m := s.opts.Metrics
	if m == nil || m.Registry == nil {
		return nil
	}
	h := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "jobctl_http_request_duration_seconds",
		Help:    "Time the API took to answer, by route, method and status code.",
		Buckets: prometheus.ExponentialBuckets(0.0001, 4, 10),
	}, []string{"route", "method", "code"})
	if err := m.Registry.Register(h); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(*prometheus.HistogramVec); ok {
				return existing
			}
		}
		return nil
	}
	return h
}
