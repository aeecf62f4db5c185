package api

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/jobctl/jobctl/pkg/job"
	"github.com/jobctl/jobctl/pkg/view"
)

// FuzzPostJobs sends POST /jobs any body with any Content-Type and checks
// that the API never panics, never answers 5xx except the 503 of a
// failing write, and that whatever it accepts is a valid NEW job that was
// written exactly as answered.
func FuzzPostJobs(f *testing.F) {
	for _, seed := range []struct {
		body, ctype string
		fail        bool
	}{
		{`{"job_id": 1234, "status": "NEW"}`, "application/json", false},
		{`{"type": "resize", "payload": {"w": 64}}`, "application/json; charset=utf-8", false},
		{`{"job_id": "a", "status": "DONE"}`, "application/json", false},
		{`{"job_id": ".."}`, "application/json", false},
		{`{"job_id": "events"}`, "application/json", false},
		{`{"job_id": 7, "payload": [[[[[[[[[[]]]]]]]]]]}`, "application/json", false},
		{`{"job_id": 8}`, "application/json", true},
		{`{"job_id": 9, "attempt": 2}`, "application/json", false},
		{`{"job_id": 1e3}`, "APPLICATION/JSON", false},
		{`{}{}`, "application/json", false},
		{"{\"job_id\": \"\\ud800\"}", "application/json", false},
		{``, "", false},
		{`x`, "text/plain; boundary=\"", false},
	} {
		f.Add([]byte(seed.body), seed.ctype, seed.fail)
	}
	v := view.New(view.Options{})
	st := &store{View: v}
	st.ready.Store(true)
	enq := &enqueuer{v: v}
	srv := New(Options{Store: st, Enqueuer: enq, MaxBodyBytes: 64 << 10})
	h := srv.Handler()
	f.Fuzz(func(t *testing.T, body []byte, ctype string, fail bool) {
		enq.fail.Store(fail)
		req := httptest.NewRequest("POST", "http://localhost/jobs", bytes.NewReader(body))
		if ctype != "" {
			req.Header.Set("Content-Type", ctype)
		}
		before := enq.count()
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		code := rec.Code
		written := enq.count() - before
		switch {
		case code == http.StatusServiceUnavailable && fail:
		case code == http.StatusMisdirectedRequest:
			t.Fatalf("the fuzzer's requests must reach the handler: %s", rec.Body.Bytes())
		case code >= 500:
			t.Fatalf("status %d for body %q (%s): %s", code, body, ctype, rec.Body.Bytes())
		case code == http.StatusAccepted:
			got, err := job.Decode(rec.Body.Bytes())
			if err != nil {
				t.Fatalf("accepted, but the answer %s is not a job: %v", rec.Body.Bytes(), err)
			}
			if got.Status != job.StatusNew || got.Attempt != 0 || got.Worker != "" || got.Error != "" || got.Run != 0 {
				t.Fatalf("accepted a job that is not a fresh NEW one: %+v", got)
			}
			if _, err := job.ParseID(got.JobID.String()); err != nil || got.JobID.String() == reservedID {
				t.Fatalf("accepted job id %q: %v", got.JobID, err)
			}
			if written != 1 {
				t.Fatalf("accepted, but %d events were written", written)
			}
			enq.mu.Lock()
			last := enq.events[len(enq.events)-1]
			enq.mu.Unlock()
			want, _ := json.Marshal(last)
			if !bytes.Equal(bytes.TrimSpace(rec.Body.Bytes()), want) {
				t.Fatalf("answered %s but wrote %s", rec.Body.Bytes(), want)
			}
			return
		}
		if written != 0 {
			t.Fatalf("status %d, but %d events were written", code, written)
		}
		var e apiError
		if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil || e.Error == "" {
			t.Fatalf("status %d with a body that is not a JSON error: %q", code, rec.Body.Bytes())
		}
	})
}
