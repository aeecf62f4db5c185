package cmd

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/jobctl/jobctl/pkg/producer"
)

// The progress line shows a slow rate (not "0 jobs/s") and is erased at
// the end, so the summary is the only report left on the terminal.
func TestProgressLine(t *testing.T) {
	var buf bytes.Buffer
	p := &progressLine{w: &buf}
	p.finish()
	if buf.Len() != 0 {
		t.Fatalf("finish without a progress line wrote %q", buf.String())
	}
	p.update(producer.Progress{Sent: 1, Total: 4, Elapsed: 2 * time.Second})
	if !strings.Contains(buf.String(), "0.50 jobs/s") || !strings.Contains(buf.String(), "1/4") {
		t.Fatalf("progress line %q", buf.String())
	}
	p.finish()
	if !strings.HasSuffix(buf.String(), "\r\033[K") {
		t.Fatalf("finish did not erase the line: %q", buf.String())
	}
}
