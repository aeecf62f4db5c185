package cmd

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

func TestServeBadMetricsAddrExit2(t *testing.T) {
	isolateConfig(t)
	var out, errOut bytes.Buffer
	args := []string{"serve", "--brokers", "127.0.0.1:1", "--metrics-addr", "nohostport"}
	code := Execute(context.Background(), args, IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut})
	if code != ExitUsage {
		t.Fatalf("jobctl %s: exit %d, want %d\n%s", strings.Join(args, " "), code, ExitUsage, errOut.String())
	}
	if !strings.Contains(errOut.String(), "api.metrics_addr") || !strings.Contains(errOut.String(), "nohostport") {
		t.Errorf("the error should name api.metrics_addr and the value:\n%s", errOut.String())
	}
}
