package cmd

import (
	"strings"

	"github.com/spf13/cobra"
)

// Flags that only some commands use are defined on those commands, not
// on the root: --group names the consumer group the workers join, and
// --timeout is how long a consumer waits for new jobs; on 'jobs list' or
// 'topic create' they would be accepted and do nothing. Their
// configuration keys (group.id, timeout) and environment variables stay
// the same for every command.
//
// groupFlagCommands and timeoutFlagCommands list the commands, by path
// below the root, that get the flag. 'config show' has both so it can
// show what a consumer started with them would use.
var (
	groupFlagCommands   = []string{"consume", "dev", "config show"}
	timeoutFlagCommands = []string{"consume", "config show"}
)

// addScopedKeyFlags defines --group/-g and --timeout on the commands that
// use them (see groupFlagCommands).
func addScopedKeyFlags(root *cobra.Command) {
	add := func(paths []string, key, name, shorthand string) {
		for _, path := range paths {
			// A command that defines the flag itself keeps its own
			// (pflag panics on a second definition).
			if c := findSubcommand(root, path); c != nil && c.Flags().Lookup(name) == nil {
				addKeyFlag(c.Flags(), key, name, shorthand)
			}
		}
	}
	add(groupFlagCommands, "group.id", "group", "g")
	add(timeoutFlagCommands, "timeout", "timeout", "")
}

// findSubcommand returns the command at path ("config show") below root,
// or nil when there is none.
func findSubcommand(root *cobra.Command, path string) *cobra.Command {
	c, rest, err := root.Find(strings.Fields(path))
	if err != nil || len(rest) > 0 || c == root {
		return nil
	}
	return c
}
