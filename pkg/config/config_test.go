package config

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// defaults returns the configuration made of every key's default.
func defaults() *Config {
	return &Config{
		Brokers: []string{"127.0.0.1:9092"}, Topic: "job-status", Group: GroupConfig{ID: "job-workers"},
		Timeout: 30 * time.Second, ClientID: "jobctl",
		Log:     LogConfig{Level: "info", Format: "auto"},
		Produce: ProduceConfig{Count: 10, Type: "mock", OnError: "stop"},
		Consume: ConsumeConfig{Concurrency: 4, Grace: 30 * time.Second, CommitInterval: time.Second, MaxAttempts: 5,
			JobTimeout: 5 * time.Minute, RetryBackoff: time.Second, RetryBackoffMax: 5 * time.Minute, DedupWindow: 100000, SessionTimeout: 10 * time.Second, From: "earliest"},
		Handler: HandlerConfig{Name: "sleep", Sleep: SleepHandlerConfig{Duration: 100 * time.Millisecond}},
		API:     APIConfig{Addr: "127.0.0.1:8080", MaxBodyBytes: 1 << 20, ReadTimeout: 10 * time.Second, WriteTimeout: 30 * time.Second, IdleTimeout: time.Minute},
	}
}

func TestDefaultsAreValid(t *testing.T) {
	if err := defaults().Validate(nil); err != nil {
		t.Fatal(err)
	}
}

func TestValidateNamesKeyAndSource(t *testing.T) {
	cases := []struct {
		key    string
		mutate func(*Config)
		want   string
	}{
		{"brokers", func(c *Config) { c.Brokers = nil }, "empty"},
		{"brokers", func(c *Config) { c.Brokers = []string{"localhost"} }, "host:port"},
		{"brokers", func(c *Config) { c.Brokers = []string{"localhost:99999"} }, "invalid port"},
		{"topic", func(c *Config) { c.Topic = "a b" }, "letters, digits"},
		{"consume.from", func(c *Config) { c.Consume.From = "newest" }, "earliest or latest"},
		{"topic", func(c *Config) { c.Topic = strings.Repeat("x", 250) }, "249"},
		{"group.id", func(c *Config) { c.Group.ID = " " }, "empty"},
		{"timeout", func(c *Config) { c.Timeout = -time.Second }, "negative"},
		{"log.level", func(c *Config) { c.Log.Level = "loud" }, "debug, info"},
		{"sasl.mechanism", func(c *Config) { c.SASL.Mechanism = "GSSAPI" }, "PLAIN"},
		{"sasl.username", func(c *Config) { c.SASL.Mechanism = "PLAIN" }, "required"},
		{"consume.concurrency", func(c *Config) { c.Consume.Concurrency = 0 }, "at least 1"},
		{"handler.sleep.fail_rate", func(c *Config) { c.Handler.Sleep.FailRate = 1.5 }, "between 0 and 1"},
		{"handler.exec.command", func(c *Config) { c.Handler.Name = "exec" }, "required"},
		{"tls.cert_file", func(c *Config) { c.TLS.CertFile = "c.pem" }, "go together"},
		{"api.addr", func(c *Config) { c.API.Addr = "8080" }, "host:port"},
		{"api.token_reads", func(c *Config) { c.API.TokenReads = true }, "api.token"},
	}
	for _, c := range cases {
		cfg := defaults()
		c.mutate(cfg)
		err := cfg.Validate(func(key string) Source { return Source("env " + EnvVar(key)) })
		var ke *KeyError
		if !errors.As(err, &ke) || ke.Key != c.key {
			t.Errorf("%s: want a KeyError for %s, got %v", c.key, c.key, err)
			continue
		}
		msg := err.Error()
		if !strings.Contains(msg, c.want) || !strings.Contains(msg, EnvVar(c.key)) {
			t.Errorf("%s: message %q should contain %q and the source", c.key, msg, c.want)
		}
	}
}

func TestCheckValue(t *testing.T) {
	dur, _ := LookupKey("timeout")
	for raw, ok := range map[any]bool{"30s": true, "1m30s": true, "soon": false, 30: false, true: false} {
		if err := dur.CheckValue(raw); (err == nil) != ok {
			t.Errorf("timeout %v: err %v", raw, err)
		}
	}
	list, _ := LookupKey("brokers")
	for _, raw := range []any{"a:1,b:2", []string{"a:1"}, []any{"a:1"}} {
		if err := list.CheckValue(raw); err != nil {
			t.Errorf("brokers %v: %v", raw, err)
		}
	}
	if err := list.CheckValue([]any{1}); err == nil {
		t.Error("a list of numbers accepted as brokers")
	}
	n, _ := LookupKey("consume.concurrency")
	for raw, ok := range map[any]bool{"8": true, 8: true, 8.0: true, 8.5: false, "eight": false} {
		if err := n.CheckValue(raw); (err == nil) != ok {
			t.Errorf("concurrency %v: err %v", raw, err)
		}
	}
}

func TestEnvVarAndKeyTable(t *testing.T) {
	if got := EnvVar("group.id"); got != "JOBCTL_GROUP_ID" {
		t.Errorf("EnvVar(group.id) = %s", got)
	}
	seen := map[string]bool{}
	for _, k := range Keys {
		if seen[k.Name] {
			t.Errorf("key %s listed twice", k.Name)
		}
		seen[k.Name] = true
		if k.Usage == "" {
			t.Errorf("key %s has no usage text", k.Name)
		}
		if err := k.CheckValue(k.Default); err != nil {
			t.Errorf("key %s: its own default does not pass its check: %v", k.Name, err)
		}
	}
}

func TestValuesCoverEveryKey(t *testing.T) {
	values := defaults().Values()
	for _, k := range Keys {
		if _, ok := values[k.Name]; !ok {
			t.Errorf("key %s has no field in Config", k.Name)
		}
	}
	if len(values) != len(Keys) {
		t.Errorf("Config has %d fields, the key table %d keys", len(values), len(Keys))
	}
	if values["group.id"] != "job-workers" || values["api.addr"] != "127.0.0.1:8080" {
		t.Errorf("values %v", values)
	}
}
