package cmd

import (
	"bytes"
	"context"
	"io"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"
)

// A command whose context a signal ended exits 128+signal and does not
// speak of "context canceled".
func TestInterruptedCommandExitCode(t *testing.T) {
	for _, c := range []struct {
		sig  os.Signal
		code int
	}{{os.Interrupt, 130}, {syscall.SIGTERM, 143}} {
		ctx, cancel := context.WithCancelCause(context.Background())
		cancel(&interruptedError{sig: c.sig})
		var out, errOut bytes.Buffer
		pr, pw := io.Pipe() // stdin that never ends
		start := time.Now()
		code := Execute(ctx, []string{"--brokers", "127.0.0.1:1", "produce", "-f", "-"}, IOStreams{In: pr, Out: &out, ErrOut: &errOut})
		pw.Close()
		if code != c.code {
			t.Errorf("%v: exit %d, want %d; stderr %q", c.sig, code, c.code, errOut.String())
		}
		if all := out.String() + errOut.String(); strings.Contains(all, "context canceled") || !strings.Contains(all, "interrupted") {
			t.Errorf("%v: output %q: want \"interrupted\" and no \"context canceled\"", c.sig, all)
		}
		if d := time.Since(start); d > time.Minute { // a hang guard, not a timing assertion
			t.Errorf("%v: took %s", c.sig, d)
		}
	}
}

// Without a signal, a cancelled context is an ordinary failure.
func TestCancelledWithoutSignalIsAFailure(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var out, errOut bytes.Buffer
	code := Execute(ctx, []string{"--brokers", "127.0.0.1:1", "topic", "list"}, IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut})
	if code != ExitFailure {
		t.Fatalf("exit %d, want %d; stderr %q", code, ExitFailure, errOut.String())
	}
}
