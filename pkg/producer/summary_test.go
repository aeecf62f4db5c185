package producer

import (
	"strings"
	"testing"
)

func TestFormatRate(t *testing.T) {
	for r, want := range map[float64]string{
		0: "0", 0.5: "0.50", 0.004: "0.004", 3.14159: "3.14", 12.34: "12.3", 2500.4: "2500",
	} {
		if got := FormatRate(r); got != want {
			t.Errorf("FormatRate(%v) = %q, want %q", r, got, want)
		}
	}
	s := Summary{Sent: 2, ElapsedSec: 4, JobsPerSecond: 0.5}.String()
	if !strings.Contains(s, "(0.50 jobs/s)") {
		t.Fatalf("a slow run's summary hides its rate: %s", s)
	}
}
