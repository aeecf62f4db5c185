package kafkaconn

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jobctl/jobctl/pkg/config"
	"github.com/segmentio/kafka-go"
)

func TestNewPlain(t *testing.T) {
	c, err := New(&config.Config{Brokers: []string{"a:1", "b:2"}, ClientID: "x"})
	if err != nil {
		t.Fatal(err)
	}
	if c.TLS != nil || c.SASL != nil {
		t.Fatalf("no TLS/SASL configured, got %+v", c)
	}
	w := c.Writer("t", nil)
	if w.RequiredAcks != kafka.RequireAll {
		t.Errorf("writers must wait for all in-sync replicas, got %v", w.RequiredAcks)
	}
	if _, ok := w.Balancer.(*kafka.Murmur2Balancer); !ok {
		t.Errorf("default balancer must be murmur2 (Java-compatible), got %T", w.Balancer)
	}
	if w.AllowAutoTopicCreation {
		t.Error("writers must not create topics")
	}
	if w.BatchTimeout >= 100_000_000 {
		t.Errorf("batch timeout %v would delay single writes", w.BatchTimeout)
	}
}

func TestNewSASLMechanisms(t *testing.T) {
	for _, m := range []string{"PLAIN", "scram-sha-256", "SCRAM-SHA-512"} {
		c, err := New(&config.Config{SASL: config.SASLConfig{Mechanism: m, Username: "u", Password: "p"}})
		if err != nil {
			t.Fatalf("%s: %v", m, err)
		}
		if !strings.EqualFold(c.SASL.Name(), m) {
			t.Errorf("%s: got mechanism %s", m, c.SASL.Name())
		}
		if c.Dialer().SASLMechanism == nil || c.Transport().SASL == nil {
			t.Errorf("%s: SASL must reach both the Dialer and the Transport", m)
		}
	}
	if _, err := New(&config.Config{SASL: config.SASLConfig{Mechanism: "GSSAPI"}}); err == nil {
		t.Error("unknown mechanism accepted")
	}
}

func TestNewTLSFiles(t *testing.T) {
	dir := t.TempDir()
	if _, err := New(&config.Config{TLS: config.TLSConfig{Enabled: true, CAFile: filepath.Join(dir, "missing.pem")}}); err == nil || !strings.Contains(err.Error(), "tls.ca_file") {
		t.Errorf("missing CA file: %v", err)
	}
	junk := filepath.Join(dir, "junk.pem")
	os.WriteFile(junk, []byte("not a certificate"), 0o600)
	if _, err := New(&config.Config{TLS: config.TLSConfig{Enabled: true, CAFile: junk}}); err == nil || !strings.Contains(err.Error(), "no PEM certificates") {
		t.Errorf("junk CA file: %v", err)
	}
	if _, err := New(&config.Config{TLS: config.TLSConfig{Enabled: true, CertFile: junk, KeyFile: junk}}); err == nil || !strings.Contains(err.Error(), "tls.cert_file") {
		t.Errorf("junk client cert: %v", err)
	}
	c, err := New(&config.Config{TLS: config.TLSConfig{Enabled: true}})
	if err != nil || c.TLS == nil || c.Dialer().TLS == nil || c.Transport().TLS == nil {
		t.Fatalf("TLS must reach both the Dialer and the Transport: %v", err)
	}
}
