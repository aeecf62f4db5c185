package deadletter

import (
	"testing"

	"github.com/jobctl/jobctl/pkg/job"
)

func TestFilterByJobID(t *testing.T) {
	l := Letter{Kind: KindJob, JobID: job.NumericID(1234)}
	str, err := job.StringID("1234")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		id   job.ID
		want bool
	}{
		{job.ID{}, true},
		{job.NumericID(1234), true},
		{str, true}, // "1234" and 1234 are one job
		{job.NumericID(123), false},
	} {
		if got := (Filter{JobID: tc.id}).Match(l); got != tc.want {
			t.Errorf("JobID %q: match %v, want %v", tc.id, got, tc.want)
		}
	}
}
