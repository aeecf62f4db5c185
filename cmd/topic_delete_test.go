package cmd

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"testing"

	"github.com/jobctl/jobctl/pkg/admin"
	"github.com/jobctl/jobctl/pkg/config"
)

// fakeTopicAdmin holds topics in memory and records deletions.
type fakeTopicAdmin struct {
	topicAdmin // the methods topic delete does not call
	sizes      map[string]admin.TopicSize
	deleted    []string
}

func (f *fakeTopicAdmin) Size(_ context.Context, topic string) (admin.TopicSize, error) {
	s, ok := f.sizes[topic]
	if !ok {
		return admin.TopicSize{Topic: topic}, fmt.Errorf("topic %q: %w", topic, admin.ErrUnknownTopic)
	}
	return s, nil
}

func (f *fakeTopicAdmin) ListTopics(context.Context, bool) ([]admin.TopicSummary, error) {
	var out []admin.TopicSummary
	for name, s := range f.sizes {
		out = append(out, admin.TopicSummary{Topic: name, Partitions: s.Partitions})
	}
	return out, nil
}

func (f *fakeTopicAdmin) DeleteTopics(_ context.Context, topics ...string) error {
	f.deleted = append(f.deleted, topics...)
	return nil
}

// runTopicDelete deletes topic as `topic delete` does, with stdin as the
// answer, on a terminal or not, and returns the exit code, stdout, stderr
// and the topics deleted.
func runTopicDelete(t *testing.T, stdin string, terminal, yes, withAux bool, topic string) (int, string, string, []string) {
	t.Helper()
	fake := &fakeTopicAdmin{sizes: map[string]admin.TopicSize{
		"jobs":         {Topic: "jobs", Partitions: 4, Records: 1200},
		"jobs.dlq":     {Topic: "jobs.dlq", Partitions: 1, Records: 3},
		"jobs.control": {Topic: "jobs.control", Partitions: 1, Records: 0},
		"unrelated":    {Topic: "unrelated", Partitions: 1},
	}}
	var out, errOut bytes.Buffer
	app := &App{IO: IOStreams{In: strings.NewReader(stdin), Out: &out, ErrOut: &errOut}, Logger: slog.New(slog.DiscardHandler),
		cfg: &config.Config{Topic: "job-status"}, outFormat: "table"}
	opts := &topicDeleteOptions{topicOptions: &topicOptions{app: app}, Yes: yes, WithAux: withAux,
		stdinTerminal: func() bool { return terminal }}
	code := 0
	if err := opts.delete(context.Background(), fake, topic); err != nil {
		var usage *usageError
		var silent *silentError
		switch {
		case errors.As(err, &usage):
			code = ExitUsage
		case errors.As(err, &silent):
			code = silent.code
		default:
			code = ExitFailure
		}
		fmt.Fprintf(&errOut, "Error: %v\n", err)
	}
	return code, out.String(), errOut.String(), fake.deleted
}

// The confirmation: only y/yes deletes; no answer, another answer or the
// end of input deletes nothing (exit 1); without a terminal --yes is
// required (exit 2); --with-aux asks about and deletes the auxiliary
// topics that exist, each named.
func TestTopicDeleteConfirmation(t *testing.T) {
	prompt := "Delete topic jobs with 4 partitions and 1200 records? [y/N] "
	for _, tc := range []struct {
		name, stdin        string
		terminal, yes, aux bool
		topic              string
		code               int
		deleted            []string
		stderr             string
	}{
		{"yes", "y\n", true, false, false, "jobs", 0, []string{"jobs"}, prompt},
		{"YES in capitals", "YES\n", true, false, false, "jobs", 0, []string{"jobs"}, prompt},
		{"no", "n\n", true, false, false, "jobs", 1, nil, "nothing deleted"},
		{"just enter", "\n", true, false, false, "jobs", 1, nil, "nothing deleted"},
		{"end of input", "", true, false, false, "jobs", 1, nil, "nothing deleted"},
		{"not a terminal", "y\n", false, false, false, "jobs", 2, nil, "pass --yes"},
		{"--yes without a terminal", "", false, true, false, "jobs", 0, []string{"jobs"}, ""},
		{"with aux asks about all", "y\n", true, false, true, "jobs", 0, []string{"jobs", "jobs.dlq", "jobs.control"},
			"Delete topic jobs with 4 partitions and 1200 records, and its auxiliary topics jobs.dlq (1 partitions, 3 records), jobs.control (1 partitions, 0 records)? [y/N] "},
		{"missing topic", "", false, true, false, "nope", 1, nil, `topic "nope"`},
		{"internal topic", "", false, true, false, "__consumer_offsets", 2, nil, "Kafka's internal topics"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errOut, deleted := runTopicDelete(t, tc.stdin, tc.terminal, tc.yes, tc.aux, tc.topic)
			if code != tc.code || !slices.Equal(deleted, tc.deleted) || !strings.Contains(errOut, tc.stderr) {
				t.Fatalf("exit %d (want %d), deleted %v (want %v)\nstdout:\n%s\nstderr:\n%s", code, tc.code, deleted, tc.deleted, out, errOut)
			}
			for _, d := range deleted {
				if !strings.Contains(out, fmt.Sprintf("Deleted topic %q", d)) {
					t.Fatalf("%s deleted but not named:\n%s", d, out)
				}
			}
			if !tc.aux && tc.code == 0 && !strings.Contains(out, "Kept its auxiliary topics jobs.dlq, jobs.control") {
				t.Fatalf("kept auxiliary topics not listed:\n%s", out)
			}
		})
	}
}
