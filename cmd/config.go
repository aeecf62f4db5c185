package cmd

import (
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/jobctl/jobctl/pkg/config"
	"github.com/spf13/cobra"
	"github.com/spf13/viper"
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
	// Unknown marks a key of the config file that jobctl does not know;
	// every other command refuses the file until it is fixed.
	Unknown    bool   `json:"unknown,omitempty"`
	DidYouMean string `json:"did_you_mean,omitempty"`
}

func newConfigShowCmd(app *App) *cobra.Command {
	return &cobra.Command{
		Use:   "show",
		Short: "Print every configuration key, its effective value and where it came from",
		Long: `Print every configuration key with its effective value, the source of that
value (flag, env, file PATH or default) and its environment variable.
Secrets (passwords, tokens) are shown as "***" when set.

It runs even when the config file has keys jobctl does not know (which
every other command refuses, exit 2): they are listed after the known
keys, marked UNKNOWN with the key most likely meant, and a warning says
so on stderr ("unknown": true and "did_you_mean" in JSON).`,
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
			unknown, err := unknownConfigEntries(app)
			if err != nil {
				return err
			}
			entries = append(entries, unknown...)
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

// unknownConfigEntries are the keys of the config file jobctl does not
// know, marked, with the file's values (masked where the key looks like a
// secret: a misspelt password is still a password). A warning on stderr
// names them, since the table alone is easy to misread as fine.
func unknownConfigEntries(app *App) ([]configEntry, error) {
	file, err := app.findConfigFile()
	if err != nil || file == "" {
		return nil, err
	}
	v := viper.New()
	v.SetConfigFile(file)
	if filepath.Ext(file) == "" {
		v.SetConfigType("yaml")
	}
	if err := v.ReadInConfig(); err != nil {
		return nil, &usageError{err: fmt.Errorf("reading config file %s: %w", file, err)}
	}
	unknown := config.UnknownKeys(v.AllKeys())
	if len(unknown) == 0 {
		return nil, nil
	}
	fmt.Fprintf(app.IO.ErrOut, "Warning: %v: other commands refuse this file until it is fixed\n",
		&config.UnknownKeysError{File: file, Keys: unknown})
	entries := make([]configEntry, 0, len(unknown))
	for _, u := range unknown {
		val := v.Get(u.Key)
		if looksSecret(u) {
			val = "***"
		}
		source := "file " + file + ": UNKNOWN KEY"
		if u.Suggestion != "" {
			source += ", did you mean " + u.Suggestion + "?"
		}
		entries = append(entries, configEntry{Key: u.Key, Value: val, Source: source, Unknown: true, DidYouMean: u.Suggestion})
	}
	return entries, nil
}

func looksSecret(u config.UnknownKey) bool {
	if k, ok := config.LookupKey(u.Suggestion); ok && k.Secret {
		return true
	}
	name := strings.ToLower(u.Key)
	return strings.Contains(name, "password") || strings.Contains(name, "token") || strings.Contains(name, "secret")
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
