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
	values := app.Config().Values()
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
