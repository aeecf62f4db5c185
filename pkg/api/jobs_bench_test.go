package api

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/jobctl/jobctl/pkg/job"
	"github.com/jobctl/jobctl/pkg/metrics"
	"github.com/jobctl/jobctl/pkg/view"
)

// discardEnqueuer accepts every event and keeps nothing.
type discardEnqueuer struct{}

func (discardEnqueuer) Append(context.Context, ...job.Event) error { return nil }

// BenchmarkPostJob is one POST /jobs through the whole handler chain
// (limits, metrics, decode, reservation, answer) with a Kafka write that
// costs nothing: the API's own share of a submission.
//
//	go test ./pkg/api -run '^$' -bench BenchmarkPostJob -benchmem
func BenchmarkPostJob(b *testing.B) {
	st := &store{View: view.New(view.Options{})}
	st.ready.Store(true)
	benchmarkPostJob(b, st)
}

// benchmarkPostJob sends b.N POST /jobs to a server over st.
func benchmarkPostJob(b *testing.B, st JobStore) {
	srv := New(Options{Store: st, Enqueuer: discardEnqueuer{}, Metrics: metrics.New(), ListenAddr: "127.0.0.1:8080"})
	h := srv.Handler()
	const body = `{"type": "email", "payload": {"to": "someone@example.com", "subject": "hello"}}`
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		req := httptest.NewRequest("POST", "http://127.0.0.1:8080/jobs", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.RemoteAddr = "127.0.0.1:50000"
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if w.Code != http.StatusAccepted {
			b.Fatalf("POST /jobs: %d %s", w.Code, w.Body)
		}
	}
}
