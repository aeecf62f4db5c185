// Package admin creates, grows and inspects topics over kafka-go's
// kafka.Client. Every call is context-first, returns kafka-go's per-topic
// and per-partition error codes folded into one error (so errors.Is with
// kafka.TopicAlreadyExists and friends keeps working), and waits for
// changes to be visible before it returns, because real Kafka applies
// them asynchronously.
package admin

import (
	"context"
	"github.com/jobctl/jobctl/pkg/backoff"
	"net"
	"time"

	"github.com/segmentio/kafka-go"
	metadataAPI "github.com/segmentio/kafka-go/protocol/metadata"
)

// Admin administers topics on one cluster.
type Admin struct {
	client *kafka.Client

	// PollInterval is how often a wait for metadata re-reads it.
	PollInterval time.Duration
}

// New returns an Admin that talks to the cluster client points at, with
// client's address, timeout and transport settings (TLS, SASL, client id).
func New(client *kafka.Client) *Admin {
	return &Admin{client: client, PollInterval: 100 * time.Millisecond}
}

// session returns a client with a connection pool of its own, and the
// function that closes it.
//
// kafka-go's Transport answers Metadata requests from a cache it refreshes
// every MetadataTTL, and routes ListOffsets by that cached layout. A
// long-lived client therefore reports the partition count from before a
// CreatePartitions for seconds and cannot route to the new partitions.
// Admin answers must describe the cluster as it is now, so every call (and
// every poll of a wait) starts from a fresh pool, whose first metadata
// request goes to the broker.
func (a *Admin) session() (*kafka.Client, func()) {
	t := &kafka.Transport{}
	if tmpl, ok := a.client.Transport.(*kafka.Transport); ok && tmpl != nil {
		t = &kafka.Transport{
			Dial:        tmpl.Dial,
			DialTimeout: tmpl.DialTimeout,
			IdleTimeout: tmpl.IdleTimeout,
			MetadataTTL: tmpl.MetadataTTL,
			ClientID:    tmpl.ClientID,
			TLS:         tmpl.TLS,
			SASL:        tmpl.SASL,
			Resolver:    tmpl.Resolver,
			Context:     tmpl.Context,
		}
	}
	c := &kafka.Client{Addr: a.client.Addr, Timeout: a.client.Timeout, Transport: t}
	return c, t.CloseIdleConnections
}

// metadata reads raw metadata for topics (nil = all) from the broker at
// addr (nil = the client's bootstrap address). The raw response keeps the
// broker ids as sent: kafka.Client.Metadata maps an unknown leader (-1) or
// an offline replica to broker 0, which is a real broker id.
func metadata(ctx context.Context, c *kafka.Client, addr net.Addr, topics []string) (*metadataAPI.Response, error) {
	if c.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.Timeout)
		defer cancel()
	}
	if addr == nil {
		addr = c.Addr
	}
	m, err := c.Transport.RoundTrip(ctx, addr, &metadataAPI.Request{TopicNames: topics})
	if err != nil {
		return nil, err
	}
	return m.(*metadataAPI.Response), nil
}

// sleep waits d or until ctx ends, then returns ctx's error.
func sleep(ctx context.Context, d time.Duration) error {
	backoff.Sleep(ctx, d)
	return ctx.Err()
}
