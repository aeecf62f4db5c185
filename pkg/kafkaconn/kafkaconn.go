// Package kafkaconn builds kafka-go's connection pieces (Dialer for
// readers and consumer groups, Transport for writers and the admin Client)
// from one plain description of the cluster, so TLS and SASL are set up
// the same way everywhere.
package kafkaconn

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"time"

	"github.com/jobctl/jobctl/pkg/config"
	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/sasl"
	"github.com/segmentio/kafka-go/sasl/plain"
	"github.com/segmentio/kafka-go/sasl/scram"
)

// Conn describes how to reach the cluster.
type Conn struct {
	Brokers  []string
	ClientID string
	TLS      *tls.Config
	SASL     sasl.Mechanism
}

// New builds a Conn from the configuration, loading TLS files and setting
// up the SASL mechanism.
func New(cfg *config.Config) (*Conn, error) {
	c := &Conn{Brokers: cfg.Brokers, ClientID: cfg.ClientID}
	if cfg.TLS.Enabled {
		t, err := tlsConfig(cfg.TLS)
		if err != nil {
			return nil, err
		}
		c.TLS = t
	}
	if cfg.SASL.Mechanism != "" {
		m, err := saslMechanism(cfg.SASL)
		if err != nil {
			return nil, err
		}
		c.SASL = m
	}
	return c, nil
}

func tlsConfig(tc config.TLSConfig) (*tls.Config, error) {
	t := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: tc.InsecureSkipVerify} //nolint:gosec // opt-in for tests
	if tc.CAFile != "" {
		pem, err := os.ReadFile(tc.CAFile)
		if err != nil {
			return nil, fmt.Errorf("reading tls.ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("tls.ca_file %s: no PEM certificates found", tc.CAFile)
		}
		t.RootCAs = pool
	}
	if tc.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(tc.CertFile, tc.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("loading tls.cert_file/tls.key_file: %w", err)
		}
		t.Certificates = []tls.Certificate{cert}
	}
	return t, nil
}

func saslMechanism(sc config.SASLConfig) (sasl.Mechanism, error) {
	switch strings.ToUpper(sc.Mechanism) {
	case "PLAIN":
		return plain.Mechanism{Username: sc.Username, Password: sc.Password}, nil
	case "SCRAM-SHA-256":
		m, err := scram.Mechanism(scram.SHA256, sc.Username, sc.Password)
		if err != nil {
			return nil, fmt.Errorf("setting up SCRAM-SHA-256: %w", err)
		}
		return m, nil
	case "SCRAM-SHA-512":
		m, err := scram.Mechanism(scram.SHA512, sc.Username, sc.Password)
		if err != nil {
			return nil, fmt.Errorf("setting up SCRAM-SHA-512: %w", err)
		}
		return m, nil
	}
	return nil, fmt.Errorf("unknown sasl.mechanism %q", sc.Mechanism)
}

// Dialer is for kafka.Reader and kafka.ConsumerGroup.
func (c *Conn) Dialer() *kafka.Dialer {
	return &kafka.Dialer{
		ClientID:      c.ClientID,
		Timeout:       10 * time.Second,
		DualStack:     true,
		TLS:           c.TLS,
		SASLMechanism: c.SASL,
	}
}

// Transport is for kafka.Writer and kafka.Client. Metadata is refreshed
// every few seconds so writers see partitions added by `topic alter`.
func (c *Conn) Transport() *kafka.Transport {
	return &kafka.Transport{
		Dial:        (&net.Dialer{Timeout: 10 * time.Second}).DialContext,
		ClientID:    c.ClientID,
		TLS:         c.TLS,
		SASL:        c.SASL,
		MetadataTTL: 3 * time.Second,
		IdleTimeout: 30 * time.Second,
	}
}

// Client is the admin and metadata client.
func (c *Conn) Client() *kafka.Client {
	return &kafka.Client{Addr: kafka.TCP(c.Brokers...), Transport: c.Transport(), Timeout: 15 * time.Second}
}

// Writer returns a writer to topic that waits for all in-sync replicas
// and keys records with the Java client's murmur2 partitioner, so jobctl
// and Java producers agree on where a job id lives. The batch timeout is
// short so a single write (an API POST, a DONE event) is not held for a
// second, kafka-go's default.
func (c *Conn) Writer(topic string, balancer kafka.Balancer) *kafka.Writer {
	if balancer == nil {
		balancer = &kafka.Murmur2Balancer{}
	}
	return &kafka.Writer{
		Addr:         kafka.TCP(c.Brokers...),
		Topic:        topic,
		Balancer:     balancer,
		RequiredAcks: kafka.RequireAll,
		BatchTimeout: 2 * time.Millisecond,
		BatchSize:    1000,
		// About a minute of retries (the Java producer's delivery.timeout.ms
		// is two): a SIGKILLed leader is only fenced after KRaft's
		// broker.session.timeout.ms (9 s), and the writer sees the new
		// leader at its next metadata refresh; 15 s of retries proved too
		// short for that in the broker-loss test. Callers that must answer
		// sooner (the API) bound the write with a context.
		MaxAttempts:            30,
		WriteBackoffMin:        100 * time.Millisecond,
		WriteBackoffMax:        2 * time.Second,
		AllowAutoTopicCreation: false,
		Transport:              c.Transport(),
	}
}

// Unwrap returns the errors of a WriteErrors, or err alone.
func Unwrap(err error) []error {
	var we kafka.WriteErrors
	if errors.As(err, &we) {
		return we
	}
	return []error{err}
}
