package server

import (
	"fmt"
	"mime"
	"net"
	"net/http"
	"strings"
)

// A server on a laptop's loopback address is reachable by every web page
// the user opens: a page can post a "simple" cross-site request (a form,
// or fetch with Content-Type text/plain) without any preflight, and a page
// on a domain that re-resolves to 127.0.0.1 (DNS rebinding) can even read
// the answers. guard closes both holes before any handler runs:
//
//   - Host must name this machine (localhost, 127.0.0.1, [::1]) or a name in
//     Config.AllowedHosts, so a rebinding domain is refused;
//   - a request that carries an Origin (every cross-site browser request
//     does) is refused unless the origin is in Config.CORSOrigins;
//   - a POST must declare its body as application/json, which no form and
//     no preflight-free fetch can do.
//
// Allowed origins get CORS answers, preflights included, so browser
// clients the user trusts keep working.

// loopbackHosts are the Host names that always mean this machine.
var loopbackHosts = []string{"localhost", "127.0.0.1", "::1"}

// corsMethods and corsMaxAge answer preflights.
const (
	corsMethods = "GET, POST, OPTIONS"
	corsMaxAge  = "600"
)

// guard applies the Host, Origin and Content-Type rules above.
func (s *Server) guard(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		d := dialectOf(r)
		if !s.hostAllowed(r.Host) {
			d.writeError(w, &apiError{kind: errForbidden, msg: fmt.Sprintf(
				"Host %q is not this server's name; add it with --allowed-host if you reach the server by that name", r.Host)})
			return
		}
		origin := r.Header.Get("Origin")
		if origin != "" {
			if !s.originAllowed(origin) {
				d.writeError(w, &apiError{kind: errForbidden, msg: fmt.Sprintf(
					"cross-origin requests from %q are refused; allow the origin with --cors-origin", origin)})
				return
			}
			h := w.Header()
			h.Set("Access-Control-Allow-Origin", origin)
			h.Add("Vary", "Origin")
			if r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != "" {
				h.Set("Access-Control-Allow-Methods", corsMethods)
				if asked := r.Header.Get("Access-Control-Request-Headers"); asked != "" {
					h.Set("Access-Control-Allow-Headers", asked)
				}
				h.Set("Access-Control-Max-Age", corsMaxAge)
				w.WriteHeader(http.StatusNoContent)
				return
			}
		}
		if r.Method == http.MethodPost {
			ct := r.Header.Get("Content-Type")
			if mt, _, err := mime.ParseMediaType(ct); err != nil || mt != "application/json" {
				d.writeError(w, &apiError{kind: errMediaType, msg: fmt.Sprintf(
					"Content-Type %q is not accepted: send the body as application/json", ct)})
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

// hostAllowed reports whether a Host header names this server. An empty
// Host (HTTP/1.0) cannot come from a browser and is let through.
func (s *Server) hostAllowed(host string) bool {
	if host == "" {
		return true
	}
	name := host
	if h, _, err := net.SplitHostPort(host); err == nil {
		name = h
	}
	name = strings.TrimSuffix(strings.Trim(name, "[]"), ".")
	for _, allowed := range [][]string{loopbackHosts, s.cfg.AllowedHosts} {
		for _, a := range allowed {
			if a == "*" || strings.EqualFold(name, strings.Trim(a, "[]")) {
				return true
			}
		}
	}
	return false
}

// originAllowed reports whether a browser origin may use the server.
func (s *Server) originAllowed(origin string) bool {
	for _, o := range s.cfg.CORSOrigins {
		if o == "*" || strings.EqualFold(strings.TrimSuffix(o, "/"), origin) {
			return true
		}
	}
	return false
}
