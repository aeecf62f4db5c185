package cmd

import (
	"context"
	"errors"
	"fmt"
	"net"
	"regexp"
	"slices"
	"strings"
	"time"
)

// brokerUnreachable turns an error that means "no broker answered at the
// configured address" into one sentence that says what to do, without the
// client's internals (kafka.(*Client).Metadata, dial tcp ...).
func brokerUnreachable(app *App, err error) (string, bool) {
	if app.cfg == nil {
		return "", false
	}
	var se *serverError
	if errors.As(err, &se) {
		return "", false // a jobctl server, not a broker: its own message says what to do
	}
	var opErr *net.OpError
	var dnsErr *net.DNSError
	why := ""
	switch {
	case errors.As(err, &dnsErr):
		why = fmt.Sprintf("the host %q is unknown", dnsErr.Name)
	case errors.As(err, &opErr) && opErr.Op == "dial":
		why = describeDialError(opErr)
	case errors.As(err, &opErr) && opErr.Timeout():
		why = "no answer in time"
	default:
		return "", false
	}
	brokers := strings.Join(app.cfg.Brokers, ",")
	src := describeSource(app.sources["brokers"], "brokers")
	if opErr != nil && opErr.Addr != nil && !isConfiguredBroker(app.cfg.Brokers, opErr.Addr.String()) {
		// The bootstrap broker answered, but the address it advertises
		// for itself or another broker did not (a classic with Docker).
		return fmt.Sprintf("the Kafka broker at %s answered, but the broker address it advertises, %s, did not: %s. Check the brokers' advertised.listeners, or point --brokers / JOBCTL_BROKERS at an address that reaches them.", brokers, opErr.Addr, why), true
	}
	return fmt.Sprintf("cannot reach a Kafka broker at %s: %s (brokers from %s). Is one running? Start one with 'jobctl broker', or point --brokers / JOBCTL_BROKERS at yours.", brokers, why, src), true
}

// isConfiguredBroker reports whether addr (an IP:port dialled) is one of
// brokers, by name or by one of the addresses the name resolves to.
func isConfiguredBroker(brokers []string, addr string) bool {
	if slices.Contains(brokers, addr) {
		return true
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	for _, b := range brokers {
		host, port, err := net.SplitHostPort(b)
		if err != nil {
			continue
		}
		ips, err := net.DefaultResolver.LookupHost(ctx, host)
		if err != nil {
			return true // cannot tell: do not blame the advertised address
		}
		for _, ip := range ips {
			if net.JoinHostPort(ip, port) == addr {
				return true
			}
		}
	}
	return false
}

func describeDialError(e *net.OpError) string {
	msg := e.Err.Error()
	switch {
	case e.Timeout():
		return "no answer in time"
	case strings.Contains(msg, "connection refused"):
		return "connection refused"
	case strings.Contains(msg, "no route to host"), strings.Contains(msg, "network is unreachable"):
		return "no route to the host"
	}
	return strings.TrimPrefix(msg, "connect: ")
}

var (
	// kafka-go prefixes its errors with the method that failed.
	clientMethodPrefix = regexp.MustCompile(`kafka\.\(\*\w+\)\.\w+: `)
	// strconv's errors quote the function and the input twice.
	strconvError  = regexp.MustCompile(`strconv\.Parse(\w+): parsing "((?:[^"\\]|\\.)*)": (invalid syntax|value out of range)`)
	durationError = regexp.MustCompile(`time: (?:invalid|unknown unit \S+ in) duration "((?:[^"\\]|\\.)*)"`)
)

// readableError is err's message without client internals: kafka-go's
// method names, strconv's function names, and Go's "context canceled" /
// "context deadline exceeded" in words.
func readableError(err error) string {
	msg := clientMethodPrefix.ReplaceAllString(err.Error(), "")
	msg = readableFlagError(msg)
	if errors.Is(err, context.DeadlineExceeded) {
		msg = strings.ReplaceAll(msg, context.DeadlineExceeded.Error(), "timed out")
	}
	if errors.Is(err, context.Canceled) {
		msg = strings.ReplaceAll(msg, context.Canceled.Error(), "cancelled")
	}
	return msg
}

// readableFlagError rewrites the parse errors pflag passes on from strconv
// and time ("strconv.ParseFloat: parsing \"x\": invalid syntax").
func readableFlagError(msg string) string {
	msg = strconvError.ReplaceAllStringFunc(msg, func(m string) string {
		sub := strconvError.FindStringSubmatch(m)
		kind := map[string]string{"Float": "a number", "Int": "a whole number", "Uint": "a whole number not below 0", "Bool": "true or false"}[sub[1]]
		if kind == "" {
			kind = "a valid value"
		}
		if sub[3] == "value out of range" {
			return fmt.Sprintf("%q is out of range", sub[2])
		}
		return fmt.Sprintf("%q is not %s", sub[2], kind)
	})
	return durationError.ReplaceAllString(msg, `"$1" is not a duration such as 500ms, 30s or 1m`)
}
