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
	Platform  string `json:"platform"`
}

// text is the version as people read it, one fact a line, as
// 'jobctl version' and 'jobctl --version' print it. A development build
// says so in words: "jobctl dev" read like the 'dev' subcommand.
func (v versionInfo) text() string {
	ver := v.Version
	if ver == "dev" {
		ver = "development build (no release version)"
	}
	return fmt.Sprintf("jobctl version: %s\ncommit:         %s\ngo:             %s\nplatform:       %s\n", ver, v.Commit, v.GoVersion, v.Platform)
}

func buildVersion() versionInfo {
	info := versionInfo{Version: version, Commit: commit, GoVersion: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH}
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
		Short:       "Print jobctl's version, commit, Go version and platform (also --version)",
		Args:        cobra.NoArgs,
		Annotations: map[string]string{skipConfigAnnotation: ""},
		RunE: func(cmd *cobra.Command, _ []string) error {
			info := buildVersion()
			if app.Printer().Format == "json" {
				return app.Printer().Print(info, nil, nil)
			}
			_, err := fmt.Fprint(app.IO.Out, info.text())
			return err
		},
	}
}
