package cmd

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

type probeOptions struct {
	HTTPTimeout time.Duration
}

// newProbeCmd is a health check that needs nothing but the jobctl binary:
// the container image (debian:bookworm-slim) has no curl or wget, and a
// compose healthcheck runs a command inside the container.
func newProbeCmd(app *App) *cobra.Command {
	opts := &probeOptions{}
	cmd := &cobra.Command{
		Use:   "probe [URL]",
		Short: "Check that a jobctl serve answers its health endpoint (exit 0 healthy, 1 not)",
		Long: `GET URL and exit 0 when it answers 2xx (and, for a JSON answer with a
"status", when that status is "ok" or "ready"); otherwise print why and
exit 1. For container health checks: it needs nothing but this binary.

URL defaults to /healthz on api.addr (--addr), with 127.0.0.1 for an
unspecified host such as 0.0.0.0. A URL without a path gets /healthz; use
/readyz to require that the job view has read the whole topic. When
api.token is set it is sent as the bearer token.`,
		Example: `  jobctl probe
  jobctl probe http://127.0.0.1:8080/healthz
  jobctl probe http://127.0.0.1:8080/readyz --http-timeout 2s`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			target := ""
			if len(args) == 1 {
				target = args[0]
			}
			return runProbe(cmd.Context(), app, opts, target)
		},
	}
	cmd.Flags().DurationVar(&opts.HTTPTimeout, "http-timeout", 5*time.Second, "how long to wait for the answer")
	addKeyFlag(cmd.Flags(), "api.addr", "addr", "")
	return cmd
}

// probeURL is target with a scheme and a path filled in, or /healthz on
// addr when target is empty.
func probeURL(target, addr string) (string, error) {
	if target == "" {
		host, port, err := net.SplitHostPort(addr)
		if err != nil {
			return "", usageErrorf("api.addr %q is not host:port: %v", addr, err)
		}
		if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
			host = "127.0.0.1"
		}
		return "http://" + net.JoinHostPort(host, port) + "/healthz", nil
	}
	if !strings.Contains(target, "://") {
		target = "http://" + target
	}
	u, err := url.Parse(target)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", usageErrorf("probe: %q is not an http(s) URL such as http://127.0.0.1:8080/healthz", target)
	}
	if u.Path == "" || u.Path == "/" {
		u.Path = "/healthz"
	}
	return u.String(), nil
}

func runProbe(ctx context.Context, app *App, opts *probeOptions, target string) error {
	if opts.HTTPTimeout <= 0 {
		return usageErrorf("--http-timeout must be positive, got %s", opts.HTTPTimeout)
	}
	cfg := app.Config()
	u, err := probeURL(target, cfg.API.Addr)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, opts.HTTPTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return fmt.Errorf("probing %s: %w", u, err)
	}
	if cfg.API.Token != "" {
		req.Header.Set("Authorization", "Bearer "+cfg.API.Token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return &probeError{url: u, err: err}
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return fmt.Errorf("probing %s: reading the answer: %w", u, err)
	}
	text := strings.TrimSpace(string(body))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("probing %s: %s: %s", u, resp.Status, text)
	}
	var health struct {
		Status *string `json:"status"`
	}
	if json.Unmarshal(body, &health) == nil && health.Status != nil && *health.Status != "ok" && *health.Status != "ready" {
		return fmt.Errorf("probing %s: status %q: %s", u, *health.Status, text)
	}
	fmt.Fprintf(app.IO.Out, "%s: %s %s\n", u, resp.Status, text)
	return nil
}

// probeError is a probe that got no answer. It does not unwrap to the
// network error on purpose: the exit-code site reads a refused dial as an
// unreachable Kafka broker (see brokerUnreachable), and here it is the
// HTTP server that did not answer.
type probeError struct {
	url string
	err error
}

func (e *probeError) Error() string {
	return fmt.Sprintf("probing %s: no answer from a jobctl serve there: %v", e.url, e.err)
}
