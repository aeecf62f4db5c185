// Package embedded runs an in-process Kafka-protocol broker (franz-go's
// kfake) for a zero-install start, demos and fast tests. It speaks the
// Kafka protocol well enough for every jobctl feature, but it is not a
// production broker: one process, no replication, best-effort durability.
package embedded

import (
	"fmt"
	"log/slog"
	"net"
	"strconv"

	"github.com/twmb/franz-go/pkg/kfake"
)

// Options configures the embedded broker.
type Options struct {
	// Addr is host:port to listen on; port 0 picks a free one.
	Addr string
	// DataDir keeps topics, offsets and groups across restarts; empty
	// keeps everything in memory.
	DataDir string
	// Logger receives the broker's warnings and errors; nil discards them.
	Logger *slog.Logger
}

// Broker is a running embedded broker.
type Broker struct {
	cluster *kfake.Cluster
	addr    string
}

// Start starts the broker and returns once it accepts connections.
func Start(opts Options) (*Broker, error) {
	if opts.Addr == "" {
		opts.Addr = "127.0.0.1:0"
	}
	host, portText, err := net.SplitHostPort(opts.Addr)
	if err != nil {
		return nil, fmt.Errorf("embedded broker address %q: %w", opts.Addr, err)
	}
	port, err := strconv.Atoi(portText)
	if err != nil || port < 0 || port > 65535 {
		return nil, fmt.Errorf("embedded broker address %q: invalid port", opts.Addr)
	}
	kopts := []kfake.Opt{
		kfake.NumBrokers(1),
		kfake.Ports(port),
		kfake.ClusterID("jobctl-embedded"),
		kfake.DefaultNumPartitions(1),
		// kfake binds 127.0.0.1; honour the host the user asked for.
		kfake.ListenFn(func(network, address string) (net.Listener, error) {
			_, p, _ := net.SplitHostPort(address)
			return net.Listen(network, net.JoinHostPort(host, p))
		}),
	}
	if opts.Logger != nil {
		kopts = append(kopts, kfake.WithLogger(slogLogger{opts.Logger}))
	}
	if opts.DataDir != "" {
		kopts = append(kopts, kfake.DataDir(opts.DataDir))
	}
	c, err := kfake.NewCluster(kopts...)
	if err != nil {
		return nil, fmt.Errorf("starting embedded broker on %s: %w", opts.Addr, err)
	}
	addrs := c.ListenAddrs()
	return &Broker{cluster: c, addr: addrs[0]}, nil
}

// Addr is the broker's host:port.
func (b *Broker) Addr() string { return b.addr }

// Close stops the broker, flushing its data dir if it has one.
func (b *Broker) Close() { b.cluster.Close() }

type slogLogger struct{ l *slog.Logger }

func (s slogLogger) Logf(level kfake.LogLevel, msg string, args ...any) {
	text := fmt.Sprintf(msg, args...)
	switch level {
	case kfake.LogLevelError:
		s.l.Error(text, "component", "embedded-broker")
	case kfake.LogLevelWarn:
		s.l.Warn(text, "component", "embedded-broker")
	default:
		s.l.Debug(text, "component", "embedded-broker")
	}
}
