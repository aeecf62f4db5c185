package cmd

import (
	"fmt"

	"github.com/jobctl/jobctl/pkg/config"
	"github.com/jobctl/jobctl/pkg/handler"
	"github.com/spf13/pflag"
)

// addHandlerFlags defines the flags that say how a worker runs jobs: the
// handler, its routes, the concurrency and the attempt policy. consume
// and dev both run a worker, and one definition keeps their flags, help
// texts and config keys the same.
func addHandlerFlags(f *pflag.FlagSet) {
	addKeyFlag(f, "consume.concurrency", "concurrency", "c")
	addKeyFlag(f, "consume.max_attempts", "max-attempts", "")
	addKeyFlag(f, "consume.job_timeout", "job-timeout", "")
	addKeyFlag(f, "consume.retry_backoff", "retry-backoff", "")
	addKeyFlag(f, "consume.retry_backoff_max", "retry-backoff-max", "")
	addArrayFlag(f, "consume.type_policies", "type-policy")
	addKeyFlag(f, "handler.name", "handler", "")
	addKeyFlag(f, "handler.sleep.duration", "sleep", "")
	addKeyFlag(f, "handler.sleep.jitter", "sleep-jitter", "")
	addKeyFlag(f, "handler.sleep.fail_rate", "fail-rate", "")
	addCommandFlag(f, "handler.exec.command", "exec-command")
	addArrayFlag(f, "handler.exec.env", "exec-env")
	addArrayFlag(f, "handler.routes", "route")
}

// addCommandFlag is addKeyFlag for a command line: repeatable and never
// split at commas, so --exec-command 'sh -c "echo a,b"' stays one value.
func addCommandFlag(fs *pflag.FlagSet, key, name string) {
	k, _ := config.LookupKey(key)
	fs.StringArray(name, nil, fmt.Sprintf("%s; one value is a shell command line (run by /bin/sh -c), repeat the flag to give the argv instead (env %s)", k.Usage, config.EnvVar(key)))
	_ = fs.SetAnnotation(name, keyAnnotation, []string{key})
}

// addArrayFlag is addKeyFlag for a list whose values contain commas:
// repeatable and never split.
func addArrayFlag(fs *pflag.FlagSet, key, name string) {
	k, _ := config.LookupKey(key)
	fs.StringArray(name, nil, fmt.Sprintf("%s; repeat the flag for more (env %s)", k.Usage, config.EnvVar(key)))
	_ = fs.SetAnnotation(name, keyAnnotation, []string{key})
}

// newHandler is the --handler handler, or with --route a handler.Mux of
// the routes; it serves unrouted types only through a '*' route.
func newHandler(hc config.HandlerConfig, group string) (handler.Handler, error) {
	routes, err := config.ParseRoutes(hc.Routes)
	if err != nil {
		return nil, usageErrorf("--route: %v", err)
	}
	if len(routes) == 0 {
		return newDefaultHandler(hc, group)
	}
	mux := handler.NewMux()
	for _, r := range routes {
		var h handler.Handler
		switch r.Handler {
		case "exec":
			h = handler.Exec{Command: []string{r.Command}, Env: hc.Exec.Env, Group: group}
		case "sleep":
			s := handler.Sleep{Duration: hc.Sleep.Duration, Jitter: hc.Sleep.Jitter, FailRate: hc.Sleep.FailRate}
			if r.SleepSet {
				s = handler.Sleep{Duration: r.Sleep}
			}
			h = s
		default: // "default"
			if h, err = newDefaultHandler(hc, group); err != nil {
				return nil, err
			}
		}
		if r.Type == config.RouteAnyType {
			mux.Fallback(h)
		} else {
			mux.Route(r.Type, h)
		}
	}
	return mux, nil
}

func newDefaultHandler(hc config.HandlerConfig, group string) (handler.Handler, error) {
	switch hc.Name {
	case "sleep":
		return handler.Sleep{Duration: hc.Sleep.Duration, Jitter: hc.Sleep.Jitter, FailRate: hc.Sleep.FailRate}, nil
	case "exec":
		return handler.Exec{Command: hc.Exec.Command, Env: hc.Exec.Env, Group: group}, nil
	}
	return nil, usageErrorf("unknown handler %q", hc.Name)
}
