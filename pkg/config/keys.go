package config

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Kind is the type of a key's value.
type Kind int

const (
	KindString Kind = iota
	KindStrings
	KindDuration
	KindInt
	KindFloat
	KindBool
)

// Source says where a key's effective value came from.
type Source string

const (
	SourceFlag    Source = "flag"
	SourceEnv     Source = "env"
	SourceFile    Source = "file"
	SourceDefault Source = "default"
)

// Key describes one configuration key.
type Key struct {
	Name    string
	Kind    Kind
	Default any
	Usage   string
	Secret  bool // never printed by `config show`
}

// EnvPrefix prefixes every environment variable.
const EnvPrefix = "JOBCTL"

// EnvVar is the environment variable for a key: group.id -> JOBCTL_GROUP_ID.
func EnvVar(key string) string {
	return EnvPrefix + "_" + strings.ToUpper(strings.NewReplacer(".", "_", "-", "_").Replace(key))
}

// Keys lists every configuration key. configs/jobctl.example.yaml and the
// README's table are checked against it by tests.
var Keys = []Key{
	{Name: "brokers", Kind: KindStrings, Default: []string{"127.0.0.1:9092"}, Usage: "Kafka bootstrap brokers, host:port, comma separated"},
	{Name: "topic", Kind: KindString, Default: "job-status", Usage: "topic that carries job status events"},
	{Name: "group.id", Kind: KindString, Default: "job-workers", Usage: "consumer group of the workers"},
	{Name: "timeout", Kind: KindDuration, Default: 30 * time.Second, Usage: "consumer exits after this long without new jobs (0 = run until stopped)"},
	{Name: "client_id", Kind: KindString, Default: "jobctl", Usage: "client id sent to the brokers"},

	{Name: "tls.enabled", Kind: KindBool, Default: false, Usage: "connect to the brokers over TLS"},
	{Name: "tls.ca_file", Kind: KindString, Default: "", Usage: "PEM file of CAs to trust (default: system roots)"},
	{Name: "tls.cert_file", Kind: KindString, Default: "", Usage: "PEM client certificate for mutual TLS"},
	{Name: "tls.key_file", Kind: KindString, Default: "", Usage: "PEM key of the client certificate"},
	{Name: "tls.insecure_skip_verify", Kind: KindBool, Default: false, Usage: "skip broker certificate verification (testing only)"},
	{Name: "sasl.mechanism", Kind: KindString, Default: "", Usage: "SASL mechanism: PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512 (empty = none)"},
	{Name: "sasl.username", Kind: KindString, Default: "", Usage: "SASL user name"},
	{Name: "sasl.password", Kind: KindString, Default: "", Usage: "SASL password", Secret: true},

	{Name: "log.level", Kind: KindString, Default: "info", Usage: "log level: debug, info, warn, error"},
	{Name: "log.format", Kind: KindString, Default: "auto", Usage: "log format: auto (text on a terminal, JSON otherwise), text, json"},

	{Name: "produce.count", Kind: KindInt, Default: 10, Usage: "number of mock jobs to produce"},
	{Name: "produce.rate", Kind: KindFloat, Default: 0.0, Usage: "jobs per second (0 = as fast as possible)"},
	{Name: "produce.type", Kind: KindString, Default: "mock", Usage: "type of the produced jobs"},
	{Name: "produce.payload", Kind: KindString, Default: "", Usage: "JSON payload of each mock job"},
	{Name: "produce.file", Kind: KindString, Default: "", Usage: "read jobs as JSON lines from this file (- = stdin) instead of generating them"},
	{Name: "produce.on_error", Kind: KindString, Default: "stop", Usage: "on a bad input line: skip (report and go on) or stop"},

	{Name: "consume.concurrency", Kind: KindInt, Default: 4, Usage: "jobs processed at once by one consumer process"},
	{Name: "consume.grace", Kind: KindDuration, Default: 30 * time.Second, Usage: "on SIGTERM, how long in-flight jobs may take to finish"},
	{Name: "consume.processed_log", Kind: KindString, Default: "processed_jobs.log", Usage: "file that gets one JSON line per processed job (empty = none)"},
	{Name: "consume.commit_interval", Kind: KindDuration, Default: time.Second, Usage: "how often completed offsets are committed"},
	{Name: "consume.max_attempts", Kind: KindInt, Default: 5, Usage: "attempts per job run before it is DEAD (moved to the dead-letter topic)"},
	{Name: "consume.job_timeout", Kind: KindDuration, Default: 5 * time.Minute, Usage: "time limit of one attempt; a timed-out attempt fails and is retried (0 = none)"},
	{Name: "consume.retry_backoff", Kind: KindDuration, Default: time.Second, Usage: "wait before the first retry; doubles per attempt, with jitter"},
	{Name: "consume.retry_backoff_max", Kind: KindDuration, Default: 5 * time.Minute, Usage: "longest wait between two attempts"},
	{Name: "consume.type_policies", Kind: KindStrings, Default: []string{}, Usage: "per job type overrides, TYPE:key=value,... with keys timeout, max_attempts, retry_backoff, retry_backoff_max"},
	{Name: "consume.dedup_window", Kind: KindInt, Default: 100000, Usage: "records per partition within which a job id already run by the group is not run again (0 = off)"},
	{Name: "consume.from", Kind: KindString, Default: "earliest", Usage: "where a group starts on a partition it has no committed offset on: earliest (every job still in the topic) or latest (only jobs produced after it joined)"},
	{Name: "consume.instance_id", Kind: KindString, Default: "", Usage: "static group membership id (unique per process): a restart within the session timeout keeps its partitions without a rebalance"},
	{Name: "consume.session_timeout", Kind: KindDuration, Default: 10 * time.Second, Usage: "how long the group waits for a silent member before giving its partitions away"},
	{Name: "consume.metrics_addr", Kind: KindString, Default: "", Usage: "serve Prometheus metrics at http://ADDR/metrics and Go profiles at /debug/pprof/ while consuming (empty = off)"},
	{Name: "consume.scheduler", Kind: KindBool, Default: true, Usage: "run the periodic-schedule scheduler too (one consumer of all leads and fires ticks)"},

	{Name: "handler.name", Kind: KindString, Default: "sleep", Usage: "job handler: sleep (simulated work) or exec (run a command)"},
	{Name: "handler.sleep.duration", Kind: KindDuration, Default: 100 * time.Millisecond, Usage: "sleep handler: time per job"},
	{Name: "handler.sleep.jitter", Kind: KindDuration, Default: time.Duration(0), Usage: "sleep handler: random extra time per job, up to this"},
	{Name: "handler.sleep.fail_rate", Kind: KindFloat, Default: 0.0, Usage: "sleep handler: fraction of jobs that fail (0-1)"},
	{Name: "handler.exec.command", Kind: KindStrings, Default: []string{}, Usage: "exec handler: command and arguments run per job"},
	{Name: "handler.routes", Kind: KindStrings, Default: []string{}, Usage: "a handler per job type, TYPE=exec:COMMAND, TYPE=sleep[:DURATION] or TYPE=default (the --handler one); TYPE * = every other type; with routes, a job of a type no route serves is DEAD at once"},
	{Name: "handler.exec.env", Kind: KindStrings, Default: []string{}, Usage: "exec handler: extra environment of job programs, NAME (passed through) or NAME=VALUE; JOBCTL_* only when named here"},

	{Name: "api.addr", Kind: KindString, Default: "127.0.0.1:8080", Usage: "address the HTTP API listens on"},
	{Name: "api.token", Kind: KindString, Default: "", Usage: "bearer token required for writes (empty = no auth)", Secret: true},
	{Name: "api.token_reads", Kind: KindBool, Default: false, Usage: "require the token for reads too"},
	{Name: "api.max_body_bytes", Kind: KindInt, Default: 1 << 20, Usage: "largest accepted request body"},
	{Name: "api.cors_origins", Kind: KindStrings, Default: []string{}, Usage: "origins allowed by CORS (empty = no CORS)"},
	{Name: "api.read_timeout", Kind: KindDuration, Default: 10 * time.Second, Usage: "HTTP read timeout"},
	{Name: "api.write_timeout", Kind: KindDuration, Default: 30 * time.Second, Usage: "HTTP write timeout (not applied to live event streams)"},
	{Name: "api.idle_timeout", Kind: KindDuration, Default: 2 * time.Minute, Usage: "HTTP keep-alive idle timeout"},
	{Name: "api.allowed_hosts", Kind: KindStrings, Default: []string{}, Usage: "Host headers answered besides localhost, 127.0.0.1, [::1] and api.addr: NAME, NAME:PORT or * (empty = every host when api.addr is not loopback)"},
	{Name: "api.max_inflight_bytes", Kind: KindInt, Default: 64 << 20, Usage: "request body bytes all requests in flight may hold; more get 503 (0 = no limit)"},
	{Name: "api.max_sse_clients", Kind: KindInt, Default: 1000, Usage: "live event streams open at once; more get 503 (0 = no limit)"},
	{Name: "api.max_client_requests", Kind: KindInt, Default: 32, Usage: "requests in flight per client address, event streams aside; more get 429 (0 = no limit)"},
	{Name: "api.metrics_addr", Kind: KindString, Default: "", Usage: "serve Prometheus metrics at http://ADDR/metrics and Go profiles at /debug/pprof/ on a second listener of jobctl serve (empty = off; keep it on loopback)"},

	{Name: "server.url", Kind: KindString, Default: "", Usage: "URL of a running 'jobctl serve' that read commands (jobs get/list, dlq list, schedule list/get) ask instead of reading the topic; an unreachable one is an error (empty = try api.addr, else read the topic)"},
	{Name: "server.token", Kind: KindString, Default: "", Usage: "bearer token sent to server.url (the server's api.token; empty = api.token)", Secret: true},
}

// LookupKey returns the key called name.
func LookupKey(name string) (Key, bool) {
	for _, k := range Keys {
		if k.Name == name {
			return k, true
		}
	}
	return Key{}, false
}

// CheckValue checks that raw, as read from a flag, the environment or a
// file, can be a value of kind k, and says what is wrong if not.
func (k Key) CheckValue(raw any) error {
	switch k.Kind {
	case KindString:
		switch raw.(type) {
		case string, int, int64, float64, bool:
			return nil
		}
		return fmt.Errorf("want a string, got %s", describe(raw))
	case KindStrings:
		switch v := raw.(type) {
		case string, []string:
			return nil
		case []any:
			for _, e := range v {
				if _, ok := e.(string); !ok {
					return fmt.Errorf("want a list of strings, got an element %s", describe(e))
				}
			}
			return nil
		}
		return fmt.Errorf("want a list of strings, got %s", describe(raw))
	case KindDuration:
		switch v := raw.(type) {
		case time.Duration:
			return nil
		case int, int64:
			// A bare number in YAML is ambiguous (seconds? nanoseconds?).
			return fmt.Errorf("want a duration with a unit such as 30s or 1m, got the number %v", v)
		case string:
			if _, err := time.ParseDuration(strings.TrimSpace(v)); err != nil {
				return fmt.Errorf("%q is not a duration; use a number with a unit such as 500ms, 30s or 1m", v)
			}
			return nil
		}
		return fmt.Errorf("want a duration such as 30s, got %s", describe(raw))
	case KindInt:
		switch v := raw.(type) {
		case int, int64, int32:
			return nil
		case float64:
			if v != float64(int64(v)) {
				return fmt.Errorf("want a whole number, got %v", v)
			}
			return nil
		case string:
			if _, err := strconv.Atoi(strings.TrimSpace(v)); err != nil {
				return fmt.Errorf("%q is not a whole number", v)
			}
			return nil
		}
		return fmt.Errorf("want a whole number, got %s", describe(raw))
	case KindFloat:
		switch v := raw.(type) {
		case int, int64, float64, float32:
			return nil
		case string:
			if _, err := strconv.ParseFloat(strings.TrimSpace(v), 64); err != nil {
				return fmt.Errorf("%q is not a number", v)
			}
			return nil
		}
		return fmt.Errorf("want a number, got %s", describe(raw))
	case KindBool:
		switch v := raw.(type) {
		case bool:
			return nil
		case string:
			if _, err := strconv.ParseBool(strings.TrimSpace(v)); err != nil {
				return fmt.Errorf("%q is not true or false", v)
			}
			return nil
		}
		return fmt.Errorf("want true or false, got %s", describe(raw))
	}
	return nil
}

func describe(v any) string {
	switch v.(type) {
	case map[string]any:
		return "a map"
	case []any:
		return "a list"
	case nil:
		return "nothing"
	}
	return fmt.Sprintf("%T %v", v, v)
}
