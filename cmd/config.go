package cmd

import (
	"fmt"
	"strings"
	"time"

	"github.com/jobctl/jobctl/pkg/config"
	"github.com/spf13/cobra"
)

func newConfigCmd(app *App) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "config",
		Short: "Inspect jobctl's configuration",
	}
	cmd.AddCommand(newConfigShowCmd(app))
	return cmd
}

// configEntry is one row of `config show`.
type configEntry struct {
	Key    string `json:"key"`
	Value  any    `json:"value"`
	Source string `json:"source"`
	Env    string `json:"env"`
}

func newConfigShowCmd(app *App) *cobra.Command {
	return &cobra.Command{
		Use:   "show",
		Short: "Print every configuration key, its effective value and where it came from",
		Long: `Print every configuration key with its effective value, the source of that
value (flag, env, file PATH or default) and its environment variable.
Secrets (passwords, tokens) are shown as "***" when set.`,
		Example: `  jobctl config show
  JOBCTL_TOPIC=jobs jobctl config show -o json`,
		Args: cobra.NoArgs,
		Annotations: map[string]string{
			// Show the values even when they would not pass validation:
			// this is the command people run to find the bad one.
			noValidateAnnotation: "",
		},
		RunE: func(cmd *cobra.Command, _ []string) error {
			entries := configEntries(app)
			return app.Printer().Print(entries, []string{"KEY", "VALUE", "SOURCE", "ENV"}, func() [][]string {
				rows := make([][]string, 0, len(entries))
				for _, e := range entries {
					rows = append(rows, []string{e.Key, formatValue(e.Value), e.Source, e.Env})
				}
				return rows
			})
		},
	}
}

func configEntries(app *App) []configEntry {
	values := configValues(app.Config())
	entries := make([]configEntry, 0, len(config.Keys))
	for _, k := range config.Keys {
		val := values[k.Name]
		if k.Secret && val != "" {
			val = "***"
		}
		if d, ok := val.(time.Duration); ok {
			val = d.String()
		}
		entries = append(entries, configEntry{Key: k.Name, Value: val, Source: string(app.sources[k.Name]), Env: config.EnvVar(k.Name)})
	}
	return entries
}

// configValues maps each key to its value in the typed config, so what is
// shown is what the program uses.
func configValues(c *config.Config) map[string]any {
	return map[string]any{
		"brokers": c.Brokers, "topic": c.Topic, "group.id": c.Group.ID, "timeout": c.Timeout, "client_id": c.ClientID,
		"tls.enabled": c.TLS.Enabled, "tls.ca_file": c.TLS.CAFile, "tls.cert_file": c.TLS.CertFile, "tls.key_file": c.TLS.KeyFile,
		"tls.insecure_skip_verify": c.TLS.InsecureSkipVerify,
		"sasl.mechanism":           c.SASL.Mechanism, "sasl.username": c.SASL.Username, "sasl.password": c.SASL.Password,
		"log.level": c.Log.Level, "log.format": c.Log.Format,
		"produce.count": c.Produce.Count, "produce.rate": c.Produce.Rate, "produce.type": c.Produce.Type,
		"produce.payload": c.Produce.Payload, "produce.file": c.Produce.File, "produce.on_error": c.Produce.OnError,
		"consume.concurrency": c.Consume.Concurrency, "consume.grace": c.Consume.Grace,
		"consume.processed_log": c.Consume.ProcessedLog, "consume.commit_interval": c.Consume.CommitInterval,
		"consume.max_attempts": c.Consume.MaxAttempts, "consume.metrics_addr": c.Consume.MetricsAddr,
		"handler.name": c.Handler.Name, "handler.sleep.duration": c.Handler.Sleep.Duration,
		"handler.sleep.jitter": c.Handler.Sleep.Jitter, "handler.sleep.fail_rate": c.Handler.Sleep.FailRate,
		"handler.exec.command": c.Handler.Exec.Command, "handler.exec.timeout": c.Handler.Exec.Timeout,
		"api.addr": c.API.Addr, "api.token": c.API.Token, "api.token_reads": c.API.TokenReads,
		"api.max_body_bytes": c.API.MaxBodyBytes, "api.cors_origins": c.API.CORSOrigins,
		"api.read_timeout": c.API.ReadTimeout, "api.write_timeout": c.API.WriteTimeout, "api.idle_timeout": c.API.IdleTimeout,
	}
}

func formatValue(v any) string {
	switch x := v.(type) {
	case []string:
		return strings.Join(x, ",")
	case string:
		if x == "" {
			return `""`
		}
		return x
	}
	return fmt.Sprint(v)
}

func durationDefault(v any) time.Duration { return v.(time.Duration) }
