// Package config is jobctl's typed configuration: every key, its default,
// its environment variable, and the checks a loaded value must pass. It
// knows nothing of flags or files; cmd/ loads values from those (with one
// viper instance) and hands them here. It is a leaf package.
package config

import (
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Config is the whole configuration, one field per key in Keys.
type Config struct {
	Brokers  []string      `mapstructure:"brokers"`
	Topic    string        `mapstructure:"topic"`
	Group    GroupConfig   `mapstructure:"group"`
	Timeout  time.Duration `mapstructure:"timeout"`
	ClientID string        `mapstructure:"client_id"`
	TLS      TLSConfig     `mapstructure:"tls"`
	SASL     SASLConfig    `mapstructure:"sasl"`
	Log      LogConfig     `mapstructure:"log"`
	Produce  ProduceConfig `mapstructure:"produce"`
	Consume  ConsumeConfig `mapstructure:"consume"`
	Handler  HandlerConfig `mapstructure:"handler"`
	API      APIConfig     `mapstructure:"api"`
	Server   ServerConfig  `mapstructure:"server"`
}

// ServerConfig says where the CLI's read commands find a running
// 'jobctl serve' to ask instead of replaying the topic themselves.
type ServerConfig struct {
	URL   string `mapstructure:"url"`
	Token string `mapstructure:"token"`
}

// GroupConfig names the consumer group.
type GroupConfig struct {
	ID string `mapstructure:"id"`
}

// TLSConfig enables TLS to the brokers.
type TLSConfig struct {
	Enabled            bool   `mapstructure:"enabled"`
	CAFile             string `mapstructure:"ca_file"`
	CertFile           string `mapstructure:"cert_file"`
	KeyFile            string `mapstructure:"key_file"`
	InsecureSkipVerify bool   `mapstructure:"insecure_skip_verify"`
}

// SASLConfig enables SASL authentication to the brokers.
type SASLConfig struct {
	Mechanism string `mapstructure:"mechanism"`
	Username  string `mapstructure:"username"`
	Password  string `mapstructure:"password"`
}

// LogConfig sets up structured logging.
type LogConfig struct {
	Level  string `mapstructure:"level"`
	Format string `mapstructure:"format"`
}

// ProduceConfig tunes `jobctl produce`.
type ProduceConfig struct {
	Count   int     `mapstructure:"count"`
	Rate    float64 `mapstructure:"rate"`
	Type    string  `mapstructure:"type"`
	Payload string  `mapstructure:"payload"`
	File    string  `mapstructure:"file"`
	OnError string  `mapstructure:"on_error"`
}

// ConsumeConfig tunes `jobctl consume`.
type ConsumeConfig struct {
	Concurrency     int           `mapstructure:"concurrency"`
	Grace           time.Duration `mapstructure:"grace"`
	ProcessedLog    string        `mapstructure:"processed_log"`
	CommitInterval  time.Duration `mapstructure:"commit_interval"`
	MaxAttempts     int           `mapstructure:"max_attempts"`
	MetricsAddr     string        `mapstructure:"metrics_addr"`
	Scheduler       bool          `mapstructure:"scheduler"`
	JobTimeout      time.Duration `mapstructure:"job_timeout"`
	RetryBackoff    time.Duration `mapstructure:"retry_backoff"`
	RetryBackoffMax time.Duration `mapstructure:"retry_backoff_max"`
	// TypePolicies are "TYPE:key=value,..." overrides; ParseTypePolicies
	// reads them.
	TypePolicies   []string      `mapstructure:"type_policies"`
	DedupWindow    int           `mapstructure:"dedup_window"`
	From           string        `mapstructure:"from"`
	InstanceID     string        `mapstructure:"instance_id"`
	SessionTimeout time.Duration `mapstructure:"session_timeout"`
}

// HandlerConfig selects and tunes the job handler.
type HandlerConfig struct {
	Name  string             `mapstructure:"name"`
	Sleep SleepHandlerConfig `mapstructure:"sleep"`
	Exec  ExecHandlerConfig  `mapstructure:"exec"`
	// Routes are "TYPE=exec:COMMAND" or "TYPE=sleep[:DURATION]" entries;
	// ParseRoutes reads them.
	Routes []string `mapstructure:"routes"`
}

// SleepHandlerConfig tunes the simulated-work handler.
type SleepHandlerConfig struct {
	Duration time.Duration `mapstructure:"duration"`
	Jitter   time.Duration `mapstructure:"jitter"`
	FailRate float64       `mapstructure:"fail_rate"`
}

// ExecHandlerConfig tunes the handler that runs a command per job.
type ExecHandlerConfig struct {
	Command []string `mapstructure:"command"`
	Env     []string `mapstructure:"env"`
}

// APIConfig tunes `jobctl serve`.
type APIConfig struct {
	Addr         string        `mapstructure:"addr"`
	Token        string        `mapstructure:"token"`
	TokenReads   bool          `mapstructure:"token_reads"`
	MaxBodyBytes int           `mapstructure:"max_body_bytes"`
	CORSOrigins  []string      `mapstructure:"cors_origins"`
	ReadTimeout  time.Duration `mapstructure:"read_timeout"`
	WriteTimeout time.Duration `mapstructure:"write_timeout"`
	IdleTimeout  time.Duration `mapstructure:"idle_timeout"`

	AllowedHosts      []string `mapstructure:"allowed_hosts"`
	MaxInflightBytes  int      `mapstructure:"max_inflight_bytes"`
	MaxSSEClients     int      `mapstructure:"max_sse_clients"`
	MaxClientRequests int      `mapstructure:"max_client_requests"`
	MetricsAddr       string   `mapstructure:"metrics_addr"`
}

// KeyError says which key has a bad value and where the value came from.
type KeyError struct {
	Key    string
	Source Source
	Err    error
}

func (e *KeyError) Error() string {
	if e.Source == "" {
		return fmt.Sprintf("config key %q: %v", e.Key, e.Err)
	}
	return fmt.Sprintf("config key %q (from %s): %v", e.Key, e.Source, e.Err)
}

func (e *KeyError) Unwrap() error { return e.Err }

// Validate checks the values that types alone cannot. sourceOf says where
// each key's value came from, for the error message; it may be nil.
func (c *Config) Validate(sourceOf func(key string) Source) error {
	fail := func(key, format string, args ...any) error {
		var src Source
		if sourceOf != nil {
			src = sourceOf(key)
		}
		return &KeyError{Key: key, Source: src, Err: fmt.Errorf(format, args...)}
	}
	if len(c.Brokers) == 0 {
		return fail("brokers", "the broker list is empty; give at least one host:port")
	}
	for _, b := range c.Brokers {
		host, port, err := net.SplitHostPort(b)
		if err != nil || host == "" {
			return fail("brokers", "%q is not host:port", b)
		}
		if p, err := strconv.Atoi(port); err != nil || p < 1 || p > 65535 {
			return fail("brokers", "%q has an invalid port", b)
		}
	}
	if strings.TrimSpace(c.Topic) == "" {
		return fail("topic", "the topic name is empty")
	}
	if err := checkTopicName(c.Topic); err != nil {
		return fail("topic", "%v", err)
	}
	if strings.TrimSpace(c.Group.ID) == "" {
		return fail("group.id", "the group id is empty")
	}
	checks := []struct {
		key string
		bad bool
		msg string
	}{
		{"timeout", c.Timeout < 0, "must not be negative (0 means run until stopped)"},
		{"log.level", !oneOf(c.Log.Level, "debug", "info", "warn", "error"), "must be debug, info, warn or error"},
		{"log.format", !oneOf(c.Log.Format, "auto", "text", "json"), "must be auto, text or json"},
		{"sasl.mechanism", !oneOf(strings.ToUpper(c.SASL.Mechanism), "", "PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"), "must be PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512 (or empty for none)"},
		{"sasl.username", c.SASL.Mechanism != "" && c.SASL.Username == "", "is required when sasl.mechanism is set"},
		{"produce.count", c.Produce.Count < 0, "must not be negative"},
		{"produce.rate", c.Produce.Rate < 0, "must not be negative (0 means as fast as possible)"},
		{"produce.on_error", !oneOf(c.Produce.OnError, "skip", "stop"), "must be skip or stop"},
		{"consume.concurrency", c.Consume.Concurrency < 1, "must be at least 1"},
		{"consume.grace", c.Consume.Grace < 0, "must not be negative"},
		{"consume.commit_interval", c.Consume.CommitInterval <= 0, "must be positive"},
		{"consume.max_attempts", c.Consume.MaxAttempts < 1, "must be at least 1"},
		{"handler.name", !oneOf(c.Handler.Name, "sleep", "exec"), "must be sleep or exec"},
		{"handler.sleep.duration", c.Handler.Sleep.Duration < 0, "must not be negative"},
		{"handler.sleep.jitter", c.Handler.Sleep.Jitter < 0, "must not be negative"},
		{"handler.sleep.fail_rate", c.Handler.Sleep.FailRate < 0 || c.Handler.Sleep.FailRate > 1, "must be between 0 and 1"},
		{"handler.exec.command", c.Handler.Name == "exec" && len(c.Handler.Exec.Command) == 0, "is required when handler.name is exec"},
		{"consume.job_timeout", c.Consume.JobTimeout < 0, "must not be negative (0 means no limit)"},
		{"consume.retry_backoff", c.Consume.RetryBackoff <= 0, "must be positive"},
		{"consume.retry_backoff_max", c.Consume.RetryBackoffMax < c.Consume.RetryBackoff, "must not be less than consume.retry_backoff"},
		{"consume.dedup_window", c.Consume.DedupWindow < 0, "must not be negative (0 turns duplicate detection off)"},
		{"consume.from", !oneOf(c.Consume.From, "earliest", "latest"), "must be earliest or latest"},
		{"consume.session_timeout", c.Consume.SessionTimeout < 6*time.Second || c.Consume.SessionTimeout > 5*time.Minute, "must be between 6s and 5m (the broker's group.min/max.session.timeout.ms defaults)"},
		{"api.max_body_bytes", c.API.MaxBodyBytes < 1, "must be at least 1"},
		{"api.read_timeout", c.API.ReadTimeout <= 0, "must be positive"},
		{"api.write_timeout", c.API.WriteTimeout < 0, "must not be negative"},
		{"api.idle_timeout", c.API.IdleTimeout <= 0, "must be positive"},
		{"api.max_inflight_bytes", c.API.MaxInflightBytes < 0, "must not be negative (0 means no limit)"},
		{"api.max_sse_clients", c.API.MaxSSEClients < 0, "must not be negative (0 means no limit)"},
		{"api.max_client_requests", c.API.MaxClientRequests < 0, "must not be negative (0 means no limit)"},
	}
	for _, ck := range checks {
		if ck.bad {
			return fail(ck.key, "%s", ck.msg)
		}
	}
	if c.TLS.CertFile != "" && c.TLS.KeyFile == "" || c.TLS.CertFile == "" && c.TLS.KeyFile != "" {
		return fail("tls.cert_file", "tls.cert_file and tls.key_file go together")
	}
	if _, _, err := net.SplitHostPort(c.API.Addr); err != nil {
		return fail("api.addr", "%q is not host:port", c.API.Addr)
	}
	for key, addr := range map[string]string{"consume.metrics_addr": c.Consume.MetricsAddr, "api.metrics_addr": c.API.MetricsAddr} {
		if addr == "" {
			continue
		}
		if _, _, err := net.SplitHostPort(addr); err != nil {
			return fail(key, "%q is not host:port", addr)
		}
	}
	if _, err := ParseTypePolicies(c.Consume.TypePolicies); err != nil {
		return fail("consume.type_policies", "%v", err)
	}
	if _, err := ParseRoutes(c.Handler.Routes); err != nil {
		return fail("handler.routes", "%v", err)
	}
	for _, e := range c.Handler.Exec.Env {
		if err := checkEnvEntry(e); err != nil {
			return fail("handler.exec.env", "%v", err)
		}
	}
	if c.Server.URL != "" {
		if err := checkServerURL(c.Server.URL); err != nil {
			return fail("server.url", "%v", err)
		}
	}
	if c.API.TokenReads && c.API.Token == "" {
		return fail("api.token_reads", "needs api.token to be set")
	}
	return nil
}

// checkServerURL accepts http(s)://host[:port][/path] only: a URL
// without a scheme or host would otherwise fail later with a less clear
// error from net/http.
func checkServerURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("%q is not a URL: %v", raw, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
		return fmt.Errorf("%q: want http://HOST:PORT or https://HOST:PORT (the address 'jobctl serve' listens on)", raw)
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return fmt.Errorf("%q: want no query or fragment", raw)
	}
	return nil
}

// checkEnvEntry checks a handler.exec.env entry: NAME or NAME=VALUE.
func checkEnvEntry(entry string) error {
	name, _, _ := strings.Cut(entry, "=")
	if name == "" {
		return fmt.Errorf("%q: want NAME or NAME=VALUE", entry)
	}
	for i, r := range name {
		if !(r == '_' || r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z' || i > 0 && r >= '0' && r <= '9') {
			return fmt.Errorf("%q: %q is not a variable name (letters, digits and _, not starting with a digit)", entry, name)
		}
	}
	return nil
}

// checkTopicName applies Kafka's own rules for topic names.
func checkTopicName(name string) error {
	if name == "." || name == ".." {
		return fmt.Errorf("%q is not a valid topic name", name)
	}
	if len(name) > 249 {
		return fmt.Errorf("topic name is %d characters, over Kafka's limit of 249", len(name))
	}
	for _, r := range name {
		ok := r == '.' || r == '_' || r == '-' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9'
		if !ok {
			return fmt.Errorf("topic name %q has %q; Kafka allows only letters, digits, '.', '_' and '-'", name, r)
		}
	}
	return nil
}

func oneOf(v string, allowed ...string) bool {
	for _, a := range allowed {
		if v == a {
			return true
		}
	}
	return false
}

// CheckTopicName applies Kafka's rules for topic names to a name given
// other than through the topic key, such as a command's argument.
func CheckTopicName(name string) error {
	if name == "" {
		return fmt.Errorf("the topic name is empty")
	}
	return checkTopicName(name)
}

// TypePolicy overrides the consume settings for one job type; a zero
// field keeps the general value.
type TypePolicy struct {
	Timeout         time.Duration
	MaxAttempts     int
	RetryBackoff    time.Duration
	RetryBackoffMax time.Duration
}

// ParseTypePolicies reads consume.type_policies entries of the form
// "TYPE:key=value,key=value" (keys timeout, max_attempts, retry_backoff,
// retry_backoff_max) into a map by type.
func ParseTypePolicies(specs []string) (map[string]TypePolicy, error) {
	out := make(map[string]TypePolicy, len(specs))
	for _, spec := range specs {
		typ, rest, ok := strings.Cut(spec, ":")
		typ = strings.TrimSpace(typ)
		if !ok || typ == "" || strings.TrimSpace(rest) == "" {
			return nil, fmt.Errorf("%q: want TYPE:key=value,... such as email:timeout=30s,max_attempts=10", spec)
		}
		if _, dup := out[typ]; dup {
			return nil, fmt.Errorf("type %q has two entries", typ)
		}
		var p TypePolicy
		for _, kv := range strings.Split(rest, ",") {
			k, v, ok := strings.Cut(strings.TrimSpace(kv), "=")
			if !ok {
				return nil, fmt.Errorf("%q: %q is not key=value", spec, kv)
			}
			var err error
			switch k {
			case "timeout":
				p.Timeout, err = parsePositiveDuration(v)
			case "retry_backoff":
				p.RetryBackoff, err = parsePositiveDuration(v)
			case "retry_backoff_max":
				p.RetryBackoffMax, err = parsePositiveDuration(v)
			case "max_attempts":
				p.MaxAttempts, err = strconv.Atoi(v)
				if err == nil && p.MaxAttempts < 1 {
					err = fmt.Errorf("must be at least 1")
				}
			default:
				return nil, fmt.Errorf("%q: unknown key %q (want timeout, max_attempts, retry_backoff or retry_backoff_max)", spec, k)
			}
			if err != nil {
				return nil, fmt.Errorf("%q: %s=%s: %v", spec, k, v, err)
			}
		}
		out[typ] = p
	}
	return out, nil
}

func parsePositiveDuration(v string) (time.Duration, error) {
	d, err := time.ParseDuration(strings.TrimSpace(v))
	if err != nil {
		return 0, fmt.Errorf("not a duration such as 30s")
	}
	if d <= 0 {
		return 0, fmt.Errorf("must be positive")
	}
	return d, nil
}
