package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
)

// Defaults of the abuse limits (Options: 0 = default, < 0 = no limit).
const (
	DefaultMaxInflightBytes  = 64 << 20
	DefaultMaxSSEClients     = 1000
	DefaultMaxClientRequests = 32
)

// guard is the API's first line: it refuses, before anything else runs
// and before a byte of the body is read, requests for a host this server
// does not serve (DNS rebinding), clients over their share, and work the
// server has no memory left for.
func (s *Server) guard(next http.Handler) http.Handler {
	hosts := newHostPolicy(s.opts.ListenAddr, s.opts.AllowedHosts)
	clients := newClientLimit(s.opts.MaxClientRequests)
	inflight := &byteBudget{max: s.opts.MaxInflightBytes}
	streams := &slots{max: int64(s.opts.MaxSSEClients)}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		probe := r.Method == http.MethodGet && (r.URL.Path == "/healthz" || r.URL.Path == "/readyz")
		if probe {
			// Probes reveal nothing and change nothing; load balancers
			// send them with whatever Host they like.
			next.ServeHTTP(w, r)
			return
		}
		if !hosts.allowed(r.Host) {
			writeError(w, http.StatusMisdirectedRequest, fmt.Sprintf(
				"host %q is not served here (a DNS rebinding guard); to serve it, add it to api.allowed_hosts (env JOBCTL_API_ALLOWED_HOSTS)", r.Host))
			return
		}
		if r.Method == http.MethodGet && r.URL.Path == "/jobs/events" {
			// Streams are long-lived: capped in total rather than per
			// client, so many dashboards behind one proxy still work.
			if !streams.acquire() {
				w.Header().Set("Retry-After", "5")
				w.Header().Set("Connection", "close") // a refused client keeps no connection either
				writeError(w, http.StatusServiceUnavailable, fmt.Sprintf("too many live event streams are open (api.max_sse_clients = %d); retry later", streams.max))
				return
			}
			defer streams.release()
			next.ServeHTTP(w, r)
			return
		}
		ip := clientIP(r)
		if !clients.acquire(ip) {
			w.Header().Set("Retry-After", "1")
			w.Header().Set("Connection", "close")
			writeError(w, http.StatusTooManyRequests, fmt.Sprintf("too many requests at once from %s (api.max_client_requests = %d); retry shortly", ip, clients.max))
			return
		}
		defer clients.release(ip)
		if r.ContentLength > s.opts.MaxBodyBytes {
			writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("request body is over the %d byte limit (api.max_body_bytes)", s.opts.MaxBodyBytes))
			return
		}
		// A body of unknown length may grow to MaxBodyBytes.
		n := r.ContentLength
		if n < 0 {
			n = s.opts.MaxBodyBytes
		}
		if n > 0 {
			if !inflight.reserve(n) {
				w.Header().Set("Retry-After", "1")
				w.Header().Set("Connection", "close")
				writeError(w, http.StatusServiceUnavailable, fmt.Sprintf("the server is busy reading other request bodies (api.max_inflight_bytes = %d); retry shortly", inflight.max))
				return
			}
			defer inflight.free(n)
		}
		next.ServeHTTP(w, r)
	})
}

// hostPolicy says which Host headers the server answers. A browser tricked
// by DNS rebinding sends the attacker's host name, which is never one of
// these, so a page on evil.example cannot read or write the API even when
// its name resolves to 127.0.0.1.
type hostPolicy struct {
	any   bool            // every host
	names map[string]bool // host names allowed on any port
	exact map[string]bool // "name port" allowed only together
}

// loopbackNames cannot be pointed at another server by a remote attacker,
// so they are always allowed.
var loopbackNames = []string{"localhost", "127.0.0.1", "::1"}

// newHostPolicy builds the policy for a server listening on listen
// (host:port) with the api.allowed_hosts entries allowed: "name" (any
// port), "name:port", or "*" (every host). The loopback names and the
// listen address itself are always allowed. An empty list allows every
// host when listen is not a loopback address. An unknown listen address
// (a handler not served by Serve) counts as loopback: the strict default.
func newHostPolicy(listen string, allowed []string) *hostPolicy {
	p := &hostPolicy{names: map[string]bool{}, exact: map[string]bool{}}
	for _, n := range loopbackNames {
		p.names[n] = true
	}
	if listen != "" {
		name, port := splitHost(listen)
		p.exact[name+" "+port] = true
		ip := net.ParseIP(name)
		if len(allowed) == 0 && name != "localhost" && (ip == nil || !ip.IsLoopback()) {
			p.any = true
		}
	}
	for _, a := range allowed {
		switch name, port := splitHost(a); {
		case name == "":
		case name == "*":
			p.any = true
		case port == "":
			p.names[name] = true
		default:
			p.exact[name+" "+port] = true
		}
	}
	return p
}

// splitHost splits a Host header (or an allowed_hosts entry) into a
// normalised name (lower case, no brackets, no trailing dot) and a port
// ("" when absent).
func splitHost(h string) (name, port string) {
	h = strings.ToLower(strings.TrimSpace(h))
	if n, p, err := net.SplitHostPort(h); err == nil {
		h, port = n, p
	}
	return strings.TrimSuffix(strings.Trim(h, "[]"), "."), port
}

func (p *hostPolicy) allowed(hostHeader string) bool {
	if p.any {
		return true
	}
	name, port := splitHost(hostHeader)
	return name != "" && (p.names[name] || p.exact[name+" "+port])
}

// clientIP is the address the request came from. Forwarding headers are
// not trusted: anyone can send them.
func clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// clientLimit bounds the requests in flight per client address.
type clientLimit struct {
	max int
	mu  sync.Mutex
	n   map[string]int
}

func newClientLimit(max int) *clientLimit {
	return &clientLimit{max: max, n: map[string]int{}}
}

func (c *clientLimit) acquire(ip string) bool {
	if c.max < 0 {
		return true
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n[ip] >= c.max {
		return false
	}
	c.n[ip]++
	return true
}

func (c *clientLimit) release(ip string) {
	if c.max < 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n[ip]--; c.n[ip] <= 0 {
		delete(c.n, ip)
	}
}

// byteBudget bounds the body bytes all requests in flight may hold.
type byteBudget struct {
	max  int64
	used atomic.Int64
}

func (b *byteBudget) reserve(n int64) bool {
	if b.max < 0 {
		return true
	}
	if b.used.Add(n) > b.max {
		b.used.Add(-n)
		return false
	}
	return true
}

func (b *byteBudget) free(n int64) {
	if b.max >= 0 {
		b.used.Add(-n)
	}
}

// slots bounds a count of things, such as open event streams.
type slots struct {
	max  int64
	used atomic.Int64
}

func (s *slots) acquire() bool {
	if s.max < 0 {
		return true
	}
	if s.used.Add(1) > s.max {
		s.used.Add(-1)
		return false
	}
	return true
}

func (s *slots) release() {
	if s.max >= 0 {
		s.used.Add(-1)
	}
}

// readBody reads r's body into a buffer sized from Content-Length, so a
// body held in memory costs its own size and not up to twice that.
func readBody(r *http.Request, max int64) ([]byte, error) {
	size := r.ContentLength
	if size < 0 || size > max {
		size = 512
	}
	buf := make([]byte, 0, size+1)
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := r.Body.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err != nil {
			if errors.Is(err, io.EOF) {
				return buf, nil
			}
			return buf, err
		}
	}
}

// readJSONBody reads a JSON request body into dst, strictly (unknown
// fields are errors), and answers the request itself when it cannot:
// 415 for another content type, 413 over api.max_body_bytes, 400 naming
// what is wrong (what names the thing sent, want shows its shape). It
// reports whether dst was filled.
func (s *Server) readJSONBody(w http.ResponseWriter, r *http.Request, dst any, what, want string) bool {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "application/json" {
		writeError(w, http.StatusUnsupportedMediaType, "Content-Type must be application/json")
		return false
	}
	data, err := readBody(r, s.opts.MaxBodyBytes)
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("request body is over the %d byte limit (api.max_body_bytes)", tooBig.Limit))
			return false
		}
		writeError(w, http.StatusBadRequest, "reading the request body: "+err.Error())
		return false
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil || dec.More() {
		msg := "more than one JSON value"
		if err != nil {
			msg = strings.TrimPrefix(err.Error(), "json: ")
		}
		writeError(w, http.StatusBadRequest, "invalid "+what+": "+msg+" (want "+want+")")
		return false
	}
	return true
}
