package api

import (
	_ "embed"
	"net/http"
)

// The dashboard is one self-contained page: inline CSS and JavaScript, no
// CDN, no build step, so it works offline and ships inside the binary.
//
//go:embed dashboard/index.html
var dashboardHTML []byte

// openAPIDoc describes every route in routeTable (checked by a test).
//
//go:embed openapi.json
var openAPIDoc []byte

// dashboardCSP allows the page's own inline code and calls to this
// origin only.
const dashboardCSP = "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data:; connect-src 'self'; form-action 'none'; frame-ancestors 'none'; base-uri 'none'"

func (s *Server) handleDashboard(w http.ResponseWriter, _ *http.Request) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Security-Policy", dashboardCSP)
	h.Set("X-Frame-Options", "DENY")
	h.Set("Cache-Control", "no-cache")
	_, _ = w.Write(dashboardHTML)
}

func (s *Server) handleOpenAPI(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(openAPIDoc)
}
