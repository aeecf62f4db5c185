package config

import (
	"errors"
	"strings"
	"testing"
)

func TestValidateHardeningKeys(t *testing.T) {
	cases := []struct {
		key    string
		mutate func(*Config)
		want   string
	}{
		{"handler.exec.env", func(c *Config) { c.Handler.Exec.Env = []string{"OK", "=x"} }, "NAME or NAME=VALUE"},
		{"handler.exec.env", func(c *Config) { c.Handler.Exec.Env = []string{"A-B=1"} }, "not a variable name"},
		{"handler.exec.env", func(c *Config) { c.Handler.Exec.Env = []string{"9X"} }, "not a variable name"},
		{"api.max_inflight_bytes", func(c *Config) { c.API.MaxInflightBytes = -1 }, "negative"},
		{"api.max_sse_clients", func(c *Config) { c.API.MaxSSEClients = -1 }, "negative"},
		{"api.max_client_requests", func(c *Config) { c.API.MaxClientRequests = -1 }, "negative"},
	}
	for _, c := range cases {
		cfg := defaults()
		c.mutate(cfg)
		err := cfg.Validate(nil)
		var ke *KeyError
		if !errors.As(err, &ke) || ke.Key != c.key || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: want a KeyError for %s saying %q, got %v", c.key, c.key, c.want, err)
		}
	}
	ok := defaults()
	ok.Handler.Exec.Env = []string{"PGHOST", "JOBCTL_BROKERS", "MODE=fast", "EMPTY=", "_x1=a=b"}
	ok.API.AllowedHosts = []string{"jobs.example", "*"}
	if err := ok.Validate(nil); err != nil {
		t.Fatal(err)
	}
}
