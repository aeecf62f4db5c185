package cmd

import (
	"bytes"
	"context"
	"log/slog"
	"net"
	"strings"
	"testing"

	"github.com/jobctl/jobctl/pkg/config"
)

func TestReadableFlagError(t *testing.T) {
	for in, want := range map[string]string{
		`invalid argument "x" for "--rate" flag: strconv.ParseFloat: parsing "x": invalid syntax`:          `invalid argument "x" for "--rate" flag: "x" is not a number`,
		`invalid argument "1.5" for "-n, --count" flag: strconv.ParseInt: parsing "1.5": invalid syntax`:   `invalid argument "1.5" for "-n, --count" flag: "1.5" is not a whole number`,
		`invalid argument "soon" for "--grace" flag: time: invalid duration "soon"`:                        `invalid argument "soon" for "--grace" flag: "soon" is not a duration such as 500ms, 30s or 1m`,
		`invalid argument "9e99" for "--limit" flag: strconv.ParseInt: parsing "9e99": value out of range`: `invalid argument "9e99" for "--limit" flag: "9e99" is out of range`,
		`unknown flag: --nope`: `unknown flag: --nope`,
	} {
		if got := readableFlagError(in); got != want {
			t.Errorf("readableFlagError(%q)\n got %q\nwant %q", in, got, want)
		}
	}
}

func TestBrokerUnreachable(t *testing.T) {
	app := &App{cfg: &config.Config{Brokers: []string{"127.0.0.1:1"}}, sources: map[string]config.Source{"brokers": config.SourceEnv}}
	err := &net.OpError{Op: "dial", Net: "tcp", Err: &net.AddrError{Err: "connect: connection refused"}}
	msg, ok := brokerUnreachable(app, wrapTwice(err))
	if !ok || !strings.Contains(msg, "cannot reach a Kafka broker at 127.0.0.1:1: connection refused (brokers from env JOBCTL_BROKERS)") || !strings.Contains(msg, "jobctl broker") {
		t.Errorf("brokerUnreachable = %q, %v", msg, ok)
	}
	// The bootstrap broker answered; the address it advertises did not.
	adv := &net.OpError{Op: "dial", Net: "tcp", Addr: &net.TCPAddr{IP: net.IPv4(10, 9, 9, 9), Port: 9092}, Err: &net.AddrError{Err: "connect: connection refused"}}
	if msg, _ := brokerUnreachable(app, wrapTwice(adv)); !strings.Contains(msg, "advertises, 10.9.9.9:9092, did not") || !strings.Contains(msg, "advertised.listeners") {
		t.Errorf("advertised address unreachable: %q", msg)
	}
	local := &net.OpError{Op: "dial", Net: "tcp", Addr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 1}, Err: &net.AddrError{Err: "connect: connection refused"}}
	if msg, _ := brokerUnreachable(app, local); strings.Contains(msg, "advertises") {
		t.Errorf("the configured broker itself taken for an advertised one: %q", msg)
	}
	if _, ok := brokerUnreachable(app, context.Canceled); ok {
		t.Error("a cancelled context was taken for an unreachable broker")
	}
	if _, ok := brokerUnreachable(app, &serverError{url: "http://x", err: err}); ok {
		t.Error("an unreachable jobctl server was taken for an unreachable broker")
	}
}

func wrapTwice(err error) error {
	return &wrapped{msg: "reading metadata of topic \"t\": kafka.(*Client).Metadata", err: err}
}

type wrapped struct {
	msg string
	err error
}

func (w *wrapped) Error() string { return w.msg + ": " + w.err.Error() }
func (w *wrapped) Unwrap() error { return w.err }

// TestScopedFlagsAndQuietCommandsExist keeps the command paths of
// flags.go and root.go true when commands are renamed.
func TestScopedFlagsAndQuietCommandsExist(t *testing.T) {
	root := NewRootCmd(&App{})
	for _, path := range append(append(append([]string{}, groupFlagCommands...), timeoutFlagCommands...), quietCommands...) {
		if findSubcommand(root, path) == nil {
			t.Errorf("no command %q", path)
		}
	}
	if root.PersistentFlags().Lookup("group") != nil || root.PersistentFlags().Lookup("timeout") != nil {
		t.Error("--group or --timeout is a global flag again")
	}
}

// TestReadCommandsLogWarningsOnly: a read command's info logs are
// hidden unless -v or --log-level asks for them.
func TestReadCommandsLogWarningsOnly(t *testing.T) {
	for _, tc := range []struct {
		args  []string
		quiet bool
	}{
		{[]string{"config", "show"}, true},
		{[]string{"-v", "config", "show"}, false},
		{[]string{"--log-level", "info", "config", "show"}, false},
	} {
		var out, errOut bytes.Buffer
		app := &App{IO: IOStreams{Out: &out, ErrOut: &errOut}}
		root := NewRootCmd(app)
		root.SetArgs(tc.args)
		root.SetOut(&out)
		if err := root.ExecuteContext(context.Background()); err != nil {
			t.Fatalf("%v: %v", tc.args, err)
		}
		if got := app.Logger.Enabled(context.Background(), slog.LevelInfo); got == tc.quiet {
			t.Errorf("%v: info logging enabled = %v, want %v", tc.args, got, !tc.quiet)
		}
	}
}
