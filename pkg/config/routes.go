package config

import (
	"fmt"
	"strings"
	"time"
)

// RouteAnyType is the route type that serves every type without a route
// of its own.
const RouteAnyType = "*"

// Route is one handler.routes entry: the handler for jobs of Type.
type Route struct {
	Type string
	// Handler is "exec", "sleep" or "default" (the handler.name handler).
	Handler string
	// Command is the exec handler's shell command line (run by /bin/sh -c).
	Command string
	// Sleep is the sleep handler's time per job; without SleepSet the
	// handler.sleep settings apply.
	Sleep    time.Duration
	SleepSet bool
}

// ParseRoutes reads handler.routes entries of the form TYPE=exec:COMMAND,
// TYPE=sleep[:DURATION] or TYPE=default (the handler.name handler), in
// order; TYPE * serves every type without a route of its own. Each type
// may appear once.
func ParseRoutes(specs []string) ([]Route, error) {
	routes := make([]Route, 0, len(specs))
	seen := make(map[string]bool, len(specs))
	for _, spec := range specs {
		typ, rest, ok := strings.Cut(spec, "=")
		typ = strings.TrimSpace(typ)
		if !ok || typ == "" {
			return nil, fmt.Errorf("%q: want TYPE=exec:COMMAND, TYPE=sleep[:DURATION] or TYPE=default, such as email=exec:./send-mail.sh", spec)
		}
		if seen[typ] {
			return nil, fmt.Errorf("%q: type %q has two routes", spec, typ)
		}
		seen[typ] = true
		r := Route{Type: typ}
		name, arg, hasArg := strings.Cut(strings.TrimLeft(rest, " "), ":")
		switch r.Handler = strings.TrimSpace(name); r.Handler {
		case "exec":
			r.Command = strings.TrimSpace(arg)
			if r.Command == "" {
				return nil, fmt.Errorf("%q: exec needs a command, such as %s=exec:./run.sh", spec, typ)
			}
		case "sleep":
			if hasArg {
				d, err := time.ParseDuration(strings.TrimSpace(arg))
				if err != nil || d < 0 {
					return nil, fmt.Errorf("%q: sleep:%s is not a duration such as 2s", spec, arg)
				}
				r.Sleep, r.SleepSet = d, true
			}
		case "default":
			if hasArg {
				return nil, fmt.Errorf("%q: default takes no argument (it is the --handler handler)", spec)
			}
		default:
			return nil, fmt.Errorf("%q: unknown handler %q (want exec:COMMAND, sleep[:DURATION] or default)", spec, r.Handler)
		}
		routes = append(routes, r)
	}
	return routes, nil
}
