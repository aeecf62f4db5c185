package cmd

import (
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/spf13/cobra"
)

// version and commit are set at build time with
// -ldflags "-X github.com/jobctl/jobctl/cmd.version=... -X ...cmd.commit=...".
var (
	version = "dev"
	commit  = ""
)

type versionInfo struct {
	Version   string `json:"version"`
	Commit    string `json:"commit"`
	GoVersion string `json:"go_version"`
}

func buildVersion() versionInfo {
	info := versionInfo{Version: version, Commit: commit, GoVersion: runtime.Version()}
	if info.Commit == "" {
		if bi, ok := debug.ReadBuildInfo(); ok {
			for _, s := range bi.Settings {
				if s.Key == "vcs.revision" {
					info.Commit = s.Value
				}
			}
		}
	}
	if info.Commit == "" {
		info.Commit = "unknown"
	}
	return info
}

func newVersionCmd(app *App) *cobra.Command {
	return &cobra.Command{
		Use:         "version",
		Short:       "Print jobctl's version, commit and Go version",
		Args:        cobra.NoArgs,
		Annotations: map[string]string{skipConfigAnnotation: ""},
		RunE: func(cmd *cobra.Command, _ []string) error {
			info := buildVersion()
			if app.Printer().Format == "json" {
				return app.Printer().Print(info, nil, nil)
			}
			_, err := fmt.Fprintf(app.IO.Out, "jobctl %s (commit %s, %s)\n", info.Version, info.Commit, info.GoVersion)
			return err
		},
	}
}
