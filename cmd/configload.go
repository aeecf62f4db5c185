package cmd

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/go-viper/mapstructure/v2"
	"github.com/jobctl/jobctl/pkg/config"
	"github.com/jobctl/jobctl/pkg/output"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"github.com/spf13/viper"
)

// keyAnnotation marks a flag as the flag source of a config key.
const keyAnnotation = "jobctl_config_key"

// skipConfigAnnotation marks commands that read no configuration at all
// (version, completion, the embedded broker): they must work even where
// the configuration is broken.
const skipConfigAnnotation = "jobctl_skip_config"

// noValidateAnnotation marks commands that load the configuration but do
// not reject invalid values (config show, which people run to find them).
const noValidateAnnotation = "jobctl_no_validate"

// addKeyFlag defines flag name for config key, typed, defaulted and
// documented from the key table, with its environment variable in the help.
func addKeyFlag(fs *pflag.FlagSet, key, name, shorthand string) {
	k, ok := config.LookupKey(key)
	if !ok {
		panic("no config key " + key)
	}
	usage := fmt.Sprintf("%s (env %s)", k.Usage, config.EnvVar(key))
	switch k.Kind {
	case config.KindString:
		fs.StringP(name, shorthand, k.Default.(string), usage)
	case config.KindStrings:
		fs.StringSliceP(name, shorthand, k.Default.([]string), usage)
	case config.KindDuration:
		fs.DurationP(name, shorthand, durationDefault(k.Default), usage)
	case config.KindInt:
		fs.IntP(name, shorthand, k.Default.(int), usage)
	case config.KindFloat:
		fs.Float64P(name, shorthand, k.Default.(float64), usage)
	case config.KindBool:
		fs.BoolP(name, shorthand, k.Default.(bool), usage)
	}
	_ = fs.SetAnnotation(name, keyAnnotation, []string{key})
}

// load reads the configuration for cmd: defaults, then the config file,
// then JOBCTL_* variables, then cmd's flags, each over the one before.
func (a *App) load(cmd *cobra.Command) error {
	if _, err := output.ParseFormat(a.outFormat); err != nil {
		return &usageError{err: err}
	}
	if _, skip := cmd.Annotations[skipConfigAnnotation]; skip {
		a.Logger = newLogger(a.IO, config.LogConfig{Level: "info", Format: "auto"})
		return nil
	}
	v := viper.New()
	v.SetEnvPrefix(config.EnvPrefix)
	// A variable set to "" is a choice (and an error for most keys), not
	// the same as an unset one.
	v.AllowEmptyEnv(true)
	v.SetEnvKeyReplacer(strings.NewReplacer(".", "_", "-", "_"))
	for _, k := range config.Keys {
		v.SetDefault(k.Name, k.Default)
		_ = v.BindEnv(k.Name, config.EnvVar(k.Name))
	}
	flagOf := map[string]*pflag.Flag{}
	bind := func(f *pflag.Flag) {
		if keys, ok := f.Annotations[keyAnnotation]; ok {
			flagOf[keys[0]] = f
			_ = v.BindPFlag(keys[0], f)
		}
	}
	cmd.Flags().VisitAll(bind)
	cmd.InheritedFlags().VisitAll(bind)

	file, err := a.findConfigFile()
	if err != nil {
		return err
	}
	if file != "" {
		_, showOnly := cmd.Annotations[noValidateAnnotation]
		if err := readConfigFile(v, file, showOnly); err != nil {
			return err
		}
	}
	sourceOf := func(key string) config.Source {
		if f := flagOf[key]; f != nil && f.Changed {
			return config.SourceFlag
		}
		if _, ok := os.LookupEnv(config.EnvVar(key)); ok {
			return config.SourceEnv
		}
		if file != "" && v.InConfig(key) {
			return config.Source("file " + file)
		}
		return config.SourceDefault
	}
	for _, k := range config.Keys {
		if err := k.CheckValue(v.Get(k.Name)); err != nil {
			return &config.KeyError{Key: k.Name, Source: describeSource(sourceOf(k.Name), k.Name), Err: err}
		}
	}
	cfg := &config.Config{}
	if err := v.Unmarshal(cfg, viper.DecodeHook(mapstructure.ComposeDecodeHookFunc(
		mapstructure.StringToTimeDurationHookFunc(),
		mapstructure.StringToSliceHookFunc(","),
	))); err != nil {
		return fmt.Errorf("loading configuration: %w", err)
	}
	cfg.Brokers = cleanList(cfg.Brokers)
	cfg.API.CORSOrigins = cleanList(cfg.API.CORSOrigins)
	a.cfg = cfg
	a.sources = map[string]config.Source{}
	for _, k := range config.Keys {
		a.sources[k.Name] = sourceOf(k.Name)
	}
	a.Logger = newLogger(a.IO, a.logConfig(cmd, cfg.Log))
	if _, skip := cmd.Annotations[noValidateAnnotation]; skip {
		return nil
	}
	return cfg.Validate(func(key string) config.Source { return describeSource(sourceOf(key), key) })
}

// logConfig is lc with the level read commands log at: warnings only,
// unless log.level was set (flag, env, file) or -v asks for info.
func (a *App) logConfig(cmd *cobra.Command, lc config.LogConfig) config.LogConfig {
	if _, quiet := cmd.Annotations[quietAnnotation]; quiet && a.sources["log.level"] == config.SourceDefault {
		lc.Level = "warn"
	}
	if a.verbose && (lc.Level == "warn" || lc.Level == "error") {
		lc.Level = "info"
	}
	return lc
}

// describeSource names the environment variable or flag in errors, so the
// user knows exactly what to fix.
func describeSource(s config.Source, key string) config.Source {
	switch s {
	case config.SourceEnv:
		return config.Source("env " + config.EnvVar(key))
	case config.SourceFlag:
		return config.Source("flag")
	}
	return s
}

func (a *App) findConfigFile() (string, error) {
	explicit := a.configFile
	if explicit == "" {
		explicit = os.Getenv("JOBCTL_CONFIG")
	}
	if explicit != "" {
		if _, err := os.Stat(explicit); err != nil {
			return "", &usageError{err: fmt.Errorf("config file %s: %w", explicit, errors.Unwrap(err))}
		}
		return explicit, nil
	}
	candidates := []string{"jobctl.yaml"}
	if dir, err := os.UserConfigDir(); err == nil {
		candidates = append(candidates, filepath.Join(dir, "jobctl", "config.yaml"))
	}
	for _, c := range candidates {
		if _, err := os.Stat(c); err == nil {
			return c, nil
		}
	}
	return "", nil
}

// readConfigFile reads file into v and refuses keys jobctl does not know,
// so a misspelt key is an error instead of a silently ignored setting;
// with allowUnknown (config show, which marks them) they are read.
func readConfigFile(v *viper.Viper, file string, allowUnknown bool) error {
	v.SetConfigFile(file)
	if ext := filepath.Ext(file); ext == "" {
		v.SetConfigType("yaml")
	}
	if err := v.ReadInConfig(); err != nil {
		return &usageError{err: fmt.Errorf("reading config file %s: %w", file, err)}
	}
	fileOnly := viper.New()
	fileOnly.SetConfigFile(file)
	if filepath.Ext(file) == "" {
		fileOnly.SetConfigType("yaml")
	}
	_ = fileOnly.ReadInConfig()
	if unknown := config.UnknownKeys(fileOnly.AllKeys()); len(unknown) > 0 && !allowUnknown {
		return &usageError{err: &config.UnknownKeysError{File: file, Keys: unknown},
			hint: "'jobctl config show' lists every key, the unknown ones marked."}
	}
	return nil
}

func cleanList(in []string) []string {
	out := make([]string, 0, len(in))
	for _, s := range in {
		for _, part := range strings.Split(s, ",") {
			if part = strings.TrimSpace(part); part != "" {
				out = append(out, part)
			}
		}
	}
	return out
}

func newLogger(io IOStreams, lc config.LogConfig) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(lc.Level))
	opts := &slog.HandlerOptions{Level: level, ReplaceAttr: readableDurations}
	format := lc.Format
	if format == "auto" || format == "" {
		format = "json"
		if io.ErrTTY {
			format = "text"
		}
	}
	if format == "text" {
		return slog.New(slog.NewTextHandler(io.ErrOut, opts))
	}
	return slog.New(slog.NewJSONHandler(io.ErrOut, opts))
}

// readableDurations logs durations as "30s" rather than nanoseconds.
func readableDurations(_ []string, a slog.Attr) slog.Attr {
	if a.Value.Kind() == slog.KindDuration {
		a.Value = slog.StringValue(a.Value.Duration().String())
	}
	return a
}
