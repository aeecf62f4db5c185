package api

import (
	"strings"
	"testing"
)

// TestDeadLettersByJobID: GET /dlq?id= and the replay filter form's "id"
// select one job's letters; replay "ids" take numbers and strings.
func TestDeadLettersByJobID(t *testing.T) {
	dl := &fakeDeadLetters{}
	f := newFixture(t, func(o *Options) { o.DeadLetters = dl })
	if resp, body := f.do(t, "GET", "/dlq?id=9007199254740993", ""); resp.StatusCode != 200 {
		t.Fatalf("GET /dlq?id=: %d %s", resp.StatusCode, body)
	}
	if got := dl.filters[0].JobID; got.String() != "9007199254740993" {
		t.Fatalf("filter job id %q", got)
	}
	resp, body := f.do(t, "GET", "/dlq?id=a%2Fb", "")
	wantError(t, resp, body, 400)
	if !strings.HasPrefix(string(body), `{"error":"id: `) {
		t.Errorf("a bad id: %s does not name the parameter", body)
	}

	resp, body = f.do(t, "POST", "/dlq/replay", `{"all": true, "id": "9007199254740993"}`)
	if resp.StatusCode != 200 {
		t.Fatalf("replay all of one id: %d %s", resp.StatusCode, body)
	}
	if req := dl.replays[0]; !req.All || req.Filter.JobID.String() != "9007199254740993" {
		t.Fatalf("replay request %+v", req)
	}
	resp, body = f.do(t, "POST", "/dlq/replay", `{"ids": ["9007199254740993", 12, "x"]}`)
	if resp.StatusCode != 200 {
		t.Fatalf("replay ids: %d %s", resp.StatusCode, body)
	}
	var ids []string
	for _, id := range dl.replays[1].IDs {
		ids = append(ids, id.String())
	}
	if strings.Join(ids, " ") != "9007199254740993 12 x" {
		t.Fatalf("replayed ids %v", ids)
	}
}
