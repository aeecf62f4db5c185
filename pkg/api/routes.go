package api

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// access says who may call a route.
type access int

const (
	open  access = iota // always, even with a token configured
	read                // with the token when api.token_reads is set
	write               // with the token whenever one is configured
)

type route struct {
	method, path string // a Go 1.22 ServeMux pattern, split
	access       access
	handler      http.HandlerFunc
}

// routeTable lists every route; the OpenAPI document is checked against
// it by a unit test.
func (s *Server) routeTable() []route {
	return []route{
		{"GET", "/{$}", open, s.handleDashboard},
		{"GET", "/jobs", read, s.handleListJobs},
		{"POST", "/jobs", write, s.handlePostJob},
		{"GET", "/jobs/events", read, s.handleEvents},
		{"GET", "/jobs/{id}", read, s.handleGetJob},
		{"GET", "/stats", read, s.handleStats},
		{"GET", "/healthz", open, s.handleHealthz},
		{"GET", "/readyz", open, s.handleReadyz},
		{"GET", "/metrics", read, s.handleMetrics},
		{"GET", "/openapi.json", open, s.handleOpenAPI},
		{"GET", "/dlq", read, s.handleListDeadLetters},
		{"POST", "/dlq/replay", write, s.handleReplayDeadLetters},
		{"GET", "/schedules", read, s.handleListSchedules},
		{"POST", "/schedules", write, s.handlePutSchedule},
		{"GET", "/schedules/{name}", read, s.handleGetSchedule},
		{"DELETE", "/schedules/{name}", write, s.handleDeleteSchedule},
		{"POST", "/schedules/{name}/pause", write, s.handlePauseSchedule},
		{"POST", "/schedules/{name}/resume", write, s.handleResumeSchedule},
		{"POST", "/jobs/{id}/cancel", write, s.handleCancelJob},
		{"POST", "/jobs/{id}/retry", write, s.handleRetryJob},
		{"GET", "/groups", read, s.handleListGroups},
		{"GET", "/groups/{group}", read, s.handleGetGroup},
		{"POST", "/groups/{group}/pause", write, s.handlePauseGroup},
		{"POST", "/groups/{group}/resume", write, s.handleResumeGroup},
	}
}

func (s *Server) buildHandler() http.Handler {
	mux := http.NewServeMux()
	for _, rt := range s.routes {
		h := http.Handler(rt.handler)
		if rt.access == write && s.opts.Token != "" || rt.access == read && s.opts.TokenReads {
			h = s.requireToken(h)
		}
		mux.Handle(rt.method+" "+rt.path, s.instrument(rt.path, h))
	}
	var h http.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// The mux answers unknown paths and wrong methods in plain text;
		// every answer of this API is JSON.
		if _, pattern := mux.Handler(r); pattern == "" {
			s.instrument("unmatched", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				rec := &statusRecorder{header: http.Header{}}
				mux.ServeHTTP(rec, r)
				if allow := rec.header.Get("Allow"); allow != "" {
					w.Header().Set("Allow", allow)
				}
				code := rec.code
				if loc := rec.header.Get("Location"); loc != "" && code >= 300 && code < 400 {
					// The mux's redirects to a cleaned path.
					w.Header().Set("Location", loc)
					writeError(w, code, "moved to "+loc)
					return
				}
				if code == 0 || code == http.StatusOK {
					code = http.StatusNotFound
				}
				msg := "no such endpoint: " + r.Method + " " + r.URL.Path + " (see /openapi.json)"
				if code == http.StatusMethodNotAllowed {
					msg = "method " + r.Method + " is not allowed on " + r.URL.Path + "; allowed: " + rec.header.Get("Allow")
				}
				writeError(w, code, msg)
			})).ServeHTTP(w, r)
			return
		}
		mux.ServeHTTP(w, r)
	})
	h = s.limitBody(h)
	h = s.cors(h)
	// securityHeaders is added once, around everything, by New.
	return h
}

// statusRecorder captures what the mux would answer, to rewrite it as
// JSON.
type statusRecorder struct {
	header http.Header
	code   int
}

func (r *statusRecorder) Header() http.Header         { return r.header }
func (r *statusRecorder) Write(b []byte) (int, error) { return len(b), nil }
func (r *statusRecorder) WriteHeader(code int)        { r.code = code }

// writeJSON answers v as JSON with code.
func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header()["Content-Type"] = jsonContentType
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	_ = enc.Encode(v)
}

// apiError is the body of every error answer.
type apiError struct {
	Error string `json:"error"`
}

func writeError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, apiError{Error: msg})
}

// requireToken answers 401 unless the request carries the bearer token.
// Both sides are hashed before the constant-time compare, so neither the
// token's bytes nor its length leak through timing.
func (s *Server) requireToken(next http.Handler) http.Handler {
	want := sha256.Sum256([]byte(s.opts.Token))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		auth := r.Header.Get("Authorization")
		scheme, token, ok := strings.Cut(auth, " ")
		got := sha256.Sum256([]byte(strings.TrimSpace(token)))
		if !ok || !strings.EqualFold(scheme, "Bearer") || subtle.ConstantTimeCompare(got[:], want[:]) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="jobctl"`)
			msg := "missing or wrong bearer token: send 'Authorization: Bearer <api.token>'"
			if auth == "" {
				msg = "this endpoint needs the API token: send 'Authorization: Bearer <api.token>'"
			}
			writeError(w, http.StatusUnauthorized, msg)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// limitBody caps every request body at MaxBodyBytes.
func (s *Server) limitBody(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Body != nil {
			r.Body = http.MaxBytesReader(w, r.Body, s.opts.MaxBodyBytes)
		}
		next.ServeHTTP(w, r)
	})
}

// cors adds CORS headers for the configured origins only, and answers
// their preflight requests. With no origins configured it adds nothing,
// so browsers keep the same-origin policy.
func (s *Server) cors(next http.Handler) http.Handler {
	if len(s.opts.CORSOrigins) == 0 {
		return next
	}
	anyOrigin := slices.Contains(s.opts.CORSOrigins, "*")
	allowed := func(origin string) bool {
		return origin != "" && (anyOrigin || slices.Contains(s.opts.CORSOrigins, origin))
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		origin := r.Header.Get("Origin")
		w.Header().Add("Vary", "Origin")
		preflight := r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != ""
		if !allowed(origin) {
			if preflight {
				writeError(w, http.StatusForbidden, "origin "+strconv.Quote(origin)+" is not in api.cors_origins")
				return
			}
			next.ServeHTTP(w, r)
			return
		}
		h := w.Header()
		h.Set("Access-Control-Allow-Origin", origin)
		if preflight {
			h.Set("Access-Control-Allow-Methods", "GET, POST")
			h.Set("Access-Control-Allow-Headers", "Authorization, Content-Type")
			h.Set("Access-Control-Max-Age", "600")
			w.WriteHeader(http.StatusNoContent)
			return
		}
		h.Set("Access-Control-Expose-Headers", "Link, Location")
		next.ServeHTTP(w, r)
	})
}

// Header values every answer carries, shared instead of allocated per
// request (Header.Set makes a new slice each time): net/http only reads
// them, and a later Set or Add on the key replaces or reallocates the
// slice rather than writing into it.
var (
	nosniff         = []string{"nosniff"}
	noReferrer      = []string{"no-referrer"}
	jsonContentType = []string{"application/json"}
	newline         = []byte("\n")
)

func securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h["X-Content-Type-Options"] = nosniff
		h["Referrer-Policy"] = noReferrer
		next.ServeHTTP(w, r)
	})
}

// instrument records the request's duration by route.
func (s *Server) instrument(routeName string, next http.Handler) http.Handler {
	if s.duration == nil {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		cw := &codeWriter{ResponseWriter: w, code: http.StatusOK}
		next.ServeHTTP(cw, r)
		s.duration.WithLabelValues(routeName, r.Method, strconv.Itoa(cw.code)).Observe(time.Since(start).Seconds())
	})
}

// codeWriter remembers the status code; Unwrap keeps
// http.ResponseController (flush, deadlines) working through it.
type codeWriter struct {
	http.ResponseWriter
	code        int
	wroteHeader bool
}

func (c *codeWriter) WriteHeader(code int) {
	if !c.wroteHeader {
		c.code, c.wroteHeader = code, true
	}
	c.ResponseWriter.WriteHeader(code)
}

func (c *codeWriter) Unwrap() http.ResponseWriter { return c.ResponseWriter }
