package cmd

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/jobctl/jobctl/pkg/apiclient"
	"github.com/jobctl/jobctl/pkg/config"
	"github.com/jobctl/jobctl/pkg/view"
	"github.com/spf13/cobra"
)

// probeTimeout bounds the look for a serve at api.addr when no server.url
// is configured: on a machine without one, a read command must not wait
// noticeably longer than before.
const probeTimeout = 300 * time.Millisecond

// serverRequestTimeout bounds one request to a server.
const serverRequestTimeout = 30 * time.Second

// readSourceOptions are the flags of the read commands that can ask a
// running 'jobctl serve' instead of reading the topic.
type readSourceOptions struct {
	NoServer bool
}

const readSourceHelp = `
Where the data comes from: with server.url configured (JOBCTL_SERVER_URL)
the command asks that 'jobctl serve' (server.token, else api.token, as
its bearer token), and an unreachable server is an error. Without it, a
serve answering at api.addr within 300 ms for the same topic (and letting
this user read) is asked;
otherwise the command reads the topic itself, showing its progress on a
terminal. --no-server always reads the topic. The output is the same
either way; -v logs which source was used.`

func (o *readSourceOptions) addFlags(cmd *cobra.Command) {
	cmd.Flags().BoolVar(&o.NoServer, "no-server", false, "read the topic directly, even when a 'jobctl serve' is configured (server.url) or running at api.addr")
	if cmd.Long == "" {
		cmd.Long = cmd.Short + "."
	}
	cmd.Long += "\n" + readSourceHelp
}

// server returns the client of the serve a read command should ask, or
// nil when it should read the topic itself.
func (a *App) server(ctx context.Context, o *readSourceOptions) (*apiclient.Client, error) {
	if o.NoServer {
		return nil, nil
	}
	cfg := a.cfg
	if cfg.Server.URL != "" {
		return a.configuredServer(ctx, cfg)
	}
	return a.probeServer(ctx, cfg), nil
}

// serverToken is server.token, else api.token: one config file usually
// serves both the server and the CLI next to it.
func serverToken(cfg *config.Config) string {
	if cfg.Server.Token != "" {
		return cfg.Server.Token
	}
	return cfg.API.Token
}

func (a *App) newServerClient(url string, cfg *config.Config) (*apiclient.Client, error) {
	return apiclient.New(apiclient.Options{
		URL:        url,
		Token:      serverToken(cfg),
		HTTPClient: &http.Client{Timeout: serverRequestTimeout},
		OnLoading: func(read, total int64) {
			a.progressLine(fmt.Sprintf("the server at %s is still reading topic %s: %d of %d records", url, cfg.Topic, read, total))
		},
	})
}

// configuredServer is the server of server.url. It must answer: the user
// asked for it, so falling back to a replay that may take minutes would
// hide a problem.
func (a *App) configuredServer(ctx context.Context, cfg *config.Config) (*apiclient.Client, error) {
	c, err := a.newServerClient(cfg.Server.URL, cfg)
	if err != nil {
		return nil, &usageError{err: fmt.Errorf("server.url (from %s): %w", describeSource(a.sources["server.url"], "server.url"), err)}
	}
	hctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	h, err := c.Health(hctx)
	if err != nil {
		return nil, &serverError{url: c.URL(), source: string(describeSource(a.sources["server.url"], "server.url")), err: err}
	}
	if h.Topic != "" && h.Topic != cfg.Topic {
		return nil, fmt.Errorf("the jobctl server at %s serves topic %s, not %s: point server.url at a serve of %s, or use --no-server", c.URL(), h.Topic, cfg.Topic, cfg.Topic)
	}
	a.noteSource(c.URL())
	return c, nil
}

// probeServer looks for a serve at api.addr. Only one that answers
// /healthz at once and names the same topic is trusted; anything else
// (nothing listening, another program, an older serve that does not say
// its topic, a serve of another topic) means: read the topic.
func (a *App) probeServer(ctx context.Context, cfg *config.Config) *apiclient.Client {
	host, port, err := net.SplitHostPort(cfg.API.Addr)
	if err != nil {
		return nil
	}
	if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
		host = "127.0.0.1" // a serve listening on every address answers on loopback
	}
	url := "http://" + net.JoinHostPort(host, port)
	c, err := a.newServerClient(url, cfg)
	if err != nil {
		return nil
	}
	pctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	h, err := c.Health(pctx)
	if err != nil {
		a.Logger.Debug("no jobctl server at api.addr; reading the topic", "url", url, "err", err)
		return nil
	}
	if h.Topic != cfg.Topic {
		a.Logger.Info("the jobctl server at api.addr serves another topic; reading the topic", "url", url, "server_topic", h.Topic, "topic", cfg.Topic)
		return nil
	}
	// A serve that wants a token for reads we do not have (or a wrong
	// one) is not one this user set up to ask: read the topic instead of
	// failing on it.
	if err := c.CheckReadAccess(pctx); err != nil {
		a.Logger.Info("the jobctl server at api.addr does not let us read; reading the topic", "url", url, "err", err)
		return nil
	}
	a.noteSource(url)
	return c
}

// noteSource says, unobtrusively, that the answer comes from a server:
// logged (shown with -v), and a line on a terminal's stderr when the
// output is a table.
func (a *App) noteSource(url string) {
	a.Logger.Info("asking the jobctl server", "url", url)
	if a.IO.ErrTTY && a.Printer().Format != "json" {
		fmt.Fprintf(a.IO.ErrOut, "(from the jobctl server at %s; --no-server reads the topic)\n", url)
	}
}

// serverError is a configured server that did not answer.
type serverError struct {
	url, source string
	err         error
}

func (e *serverError) Error() string {
	return fmt.Sprintf("cannot reach the jobctl server at %s (server.url from %s): %v; is 'jobctl serve' running there? Use --no-server to read the topic directly", e.url, e.source, e.err)
}

func (e *serverError) Unwrap() error { return e.err }

// askServer wraps an error of a request to a server with what was asked.
func askServer(c *apiclient.Client, what string, err error) error {
	if err == nil {
		return nil
	}
	var se *apiclient.StatusError
	if errors.As(err, &se) {
		return fmt.Errorf("%s from the jobctl server at %s: it answered %d: %s", what, c.URL(), se.Code, se.Message)
	}
	return fmt.Errorf("%s from the jobctl server at %s: %w", what, c.URL(), err)
}

// progressLine shows a progress line on a terminal's stderr, overwriting
// the one before; nothing when stderr is not a terminal.
func (a *App) progressLine(s string) {
	if !a.IO.ErrTTY {
		return
	}
	a.progressMu.Lock()
	defer a.progressMu.Unlock()
	fmt.Fprintf(a.IO.ErrOut, "\r\033[K%s", s)
	a.progressShown = true
}

// clearProgress removes the progress line, so the output starts clean.
func (a *App) clearProgress() {
	a.progressMu.Lock()
	defer a.progressMu.Unlock()
	if a.progressShown {
		fmt.Fprint(a.IO.ErrOut, "\r\033[K")
		a.progressShown = false
	}
}

// watchViewProgress shows how far v has read its topic, on a terminal,
// until stop is closed.
func (a *App) watchViewProgress(v *view.View, topic string, stop <-chan struct{}) {
	if !a.IO.ErrTTY {
		return
	}
	t := time.NewTicker(250 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			read, total := viewProgress(v.Progress())
			if total > 0 {
				a.progressLine(fmt.Sprintf("reading topic %s: %d of %d records (%d%%)", topic, read, total, read*100/total))
			}
		}
	}
}

// viewProgress sums a view's progress over partitions as records read of
// records to read (offsets: the count is exact on a topic whose records
// were never deleted by retention, and an estimate otherwise).
func viewProgress(p view.Progress) (read, total int64) {
	for _, pp := range p.Partitions {
		if pp.EndOffsetAtStart < 0 {
			continue // added later; not part of the catch-up
		}
		read += min(pp.NextOffset, pp.EndOffsetAtStart)
		total += pp.EndOffsetAtStart
	}
	return read, total
}
