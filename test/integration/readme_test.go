package integration

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/jobctl/jobctl/pkg/config"
)

// The README test runs the README's examples, in order, against every
// broker target, so the README cannot drift from the code:
//   - every ```sh block is run with bash -e -o pipefail (blocks tagged
//     ```bash or ```console are for reading only: long-running commands
//     such as `go run . dev`);
//   - a ```output block right after an ```sh block is the documented
//     output: each of its lines must appear in the block's output, in
//     order ("..." lines stand for anything).
// `jobctl` is the binary under test; JOBCTL_BROKERS points at the target
// and JOBCTL_TOPIC at a fresh topic, so the examples run unmodified, but
// for the consumer groups' names, which get a suffix per run (groups are
// cluster-wide; see readmeGroups).

type readmeBlock struct {
	Line   int
	Script string
	Output []string
}

func parseReadme(t *testing.T, path string) []readmeBlock {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var blocks []readmeBlock
	var cur *strings.Builder
	var lang string
	start := 0
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if cur == nil {
			if strings.HasPrefix(line, "```") {
				lang = strings.TrimSpace(strings.TrimPrefix(line, "```"))
				cur, start = &strings.Builder{}, n
			}
			continue
		}
		if strings.TrimSpace(line) == "```" {
			switch lang {
			case "sh":
				blocks = append(blocks, readmeBlock{Line: start, Script: cur.String()})
			case "output":
				if len(blocks) == 0 || blocks[len(blocks)-1].Output != nil {
					t.Fatalf("README.md:%d: an output block must follow an sh block", start)
				}
				var lines []string
				for _, l := range strings.Split(strings.TrimRight(cur.String(), "\n"), "\n") {
					if l = strings.TrimSpace(l); l != "" && l != "..." {
						lines = append(lines, l)
					}
				}
				blocks[len(blocks)-1].Output = lines
			}
			cur = nil
			continue
		}
		cur.WriteString(line + "\n")
	}
	return blocks
}

// missingOutput returns the first documented line not found, in order.
// Runs of spaces count as one: table columns are as wide as their widest
// cell, and the groups' names differ per run (see readmeGroups).
func missingOutput(want []string, got string) string {
	rest := squeezeSpaces(got)
	for _, w := range want {
		w = squeezeSpaces(w)
		i := strings.Index(rest, w)
		if i < 0 {
			return w
		}
		rest = rest[i+len(w):]
	}
	return ""
}

var spaces = regexp.MustCompile(`[ \t]+`)

func squeezeSpaces(s string) string { return spaces.ReplaceAllString(s, " ") }

// readmeGroups are the consumer groups the README's examples use.
// Groups are cluster-wide, so on a shared Kafka two runs at once (two
// people running the suite) would be members of one group and take each
// other's partitions: each run renames them with a suffix of its own in
// the scripts and back in their output.
var readmeGroups = regexp.MustCompile(`\b(job-workers|billing|audit)\b`)

func renameGroups(script, suffix string) string {
	return readmeGroups.ReplaceAllString(script, "${1}"+suffix)
}

func restoreGroups(out, suffix string) string {
	return regexp.MustCompile(`\b(job-workers|billing|audit)`+regexp.QuoteMeta(suffix)).ReplaceAllString(out, "$1")
}

func TestReadmeExamples(t *testing.T) {
	blocks := parseReadme(t, "../../README.md")
	if len(blocks) < 5 {
		t.Fatalf("README.md has only %d runnable examples", len(blocks))
	}
	binDir := filepath.Dir(jobctlBin)
	forEachBroker(t, func(t *testing.T, tgt Target) {
		work := t.TempDir()
		var rnd [4]byte
		_, _ = rand.Read(rnd[:])
		suffix := "-" + hex.EncodeToString(rnd[:])
		env := append(os.Environ(),
			"JOBCTL_GROUP_ID=job-workers"+suffix,
			"PATH="+binDir+":"+os.Getenv("PATH"),
			"JOBCTL_BROKERS="+strings.Join(tgt.Brokers, ","),
			"JOBCTL_TOPIC="+uniqueName(t, "readme"),
			"JOBCTL_LOG_FORMAT=text",
			"HOME="+work, "XDG_CONFIG_HOME="+filepath.Join(work, "xdg"),
		)
		for _, b := range blocks {
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			c := exec.CommandContext(ctx, "bash", "-e", "-o", "pipefail", "-c", renameGroups(b.Script, suffix))
			c.Dir, c.Env = work, env
			c.WaitDelay = 5 * time.Second
			raw, err := c.CombinedOutput()
			cancel()
			out := restoreGroups(string(raw), suffix)
			if err != nil {
				t.Fatalf("README.md:%d: example failed: %v\n--- script\n%s--- output\n%s", b.Line, err, b.Script, out)
			}
			if miss := missingOutput(b.Output, out); miss != "" {
				t.Fatalf("README.md:%d: documented output %q not found\n--- script\n%s--- output\n%s", b.Line, miss, b.Script, out)
			}
		}
	})
}

// TestReadmeConfigTable keeps the README's configuration table complete.
func TestReadmeConfigTable(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range config.Keys {
		row := "| `" + k.Name + "` | `" + config.EnvVar(k.Name) + "` |"
		if !strings.Contains(string(readme), row) {
			t.Errorf("README.md's configuration table has no row for %s (%s)", k.Name, config.EnvVar(k.Name))
		}
	}
}
