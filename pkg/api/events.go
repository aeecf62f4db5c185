package api

import (
	"encoding/json"
	"fmt"
	"net/http"
	"time"
)

// eventBuffer is each stream's backlog of changes; a client that falls
// further behind is told to resync instead of slowing the view down.
const eventBuffer = 64

// handleEvents answers GET /jobs/events: a Server-Sent Events stream with
// one "job" event per change of a job's current state (data: the job as
// JSON, id: the view's change number), a "resync" event when changes had
// to be dropped because the client read too slowly (data:
// {"missed": N}; re-read GET /jobs), and a comment line every Heartbeat.
func (s *Server) handleEvents(w http.ResponseWriter, r *http.Request) {
	rc := http.NewResponseController(w)
	// The server's write timeout would cut every stream after
	// api.write_timeout; each write below gets its own deadline instead,
	// so only a client that stops reading is dropped.
	if err := rc.SetWriteDeadline(time.Time{}); err != nil {
		writeError(w, http.StatusInternalServerError, "this connection cannot stream events: "+err.Error())
		return
	}
	writeTimeout := s.opts.WriteTimeout
	if writeTimeout <= 0 {
		writeTimeout = 30 * time.Second
	}
	sub := s.opts.Store.Subscribe(eventBuffer)
	defer sub.Close()

	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no") // nginx: do not buffer the stream
	w.WriteHeader(http.StatusOK)

	send := func(format string, args ...any) bool {
		_ = rc.SetWriteDeadline(time.Now().Add(writeTimeout))
		if _, err := fmt.Fprintf(w, format, args...); err != nil {
			return false
		}
		return rc.Flush() == nil
	}
	if !send(": connected\nretry: 2000\n\n") {
		return
	}
	heartbeat := time.NewTicker(s.opts.Heartbeat)
	defer heartbeat.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case <-s.closing:
			return
		case <-heartbeat.C:
			if !send(": heartbeat\n\n") {
				return
			}
		case ch, ok := <-sub.C:
			if !ok {
				return
			}
			if ch.Missed > 0 && !send("event: resync\ndata: {\"missed\":%d}\n\n", ch.Missed) {
				return
			}
			data, err := json.Marshal(ch.Job)
			if err != nil {
				continue
			}
			if !send("id: %d\nevent: job\ndata: %s\n\n", ch.Seq, data) {
				return
			}
		}
	}
}
