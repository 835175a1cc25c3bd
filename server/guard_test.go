package server_test

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/mlx-moe/mlx-moe/server"
)

// send makes one request with the given method, Host (empty: the URL's)
// and headers, and returns the status, the headers and the decoded JSON
// body (nil when the body is empty).
func send(t *testing.T, method, url, host, body string, headers ...string) (int, http.Header, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if host != "" {
		req.Host = host
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var v map[string]any
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &v); err != nil {
			t.Fatalf("%s %s: answer is not JSON: %s", method, url, raw)
		}
	}
	return resp.StatusCode, resp.Header, v
}

// checkShape checks an error body in the dialect of path.
func checkShape(t *testing.T, path string, v map[string]any, oaiType, antType string) {
	t.Helper()
	msg, _ := get(v, "error", "message").(string)
	if msg == "" {
		t.Errorf("%s: error without a message: %v", path, v)
	}
	if strings.HasPrefix(path, "/v1/messages") {
		if v["type"] != "error" || get(v, "error", "type") != antType {
			t.Errorf("%s: Anthropic error %v, want type %s", path, v, antType)
		}
		return
	}
	if get(v, "error", "type") != oaiType {
		t.Errorf("%s: OpenAI error %v, want type %s", path, v, oaiType)
	}
}

const (
	completionBody = `{"prompt":"x","max_tokens":2}`
	messageBody    = `{"model":"Tiny-MoE-4bit","max_tokens":5,"messages":[{"role":"user","content":"hi"}]}`
	chatBody       = `{"messages":[{"role":"user","content":"hi"}]}`
)

// No web page can drive the server: a cross-site form post, a simple
// (preflight-free) fetch, and a DNS-rebinding Host are refused in each
// API's error shape before any handler runs; local clients pass.
func TestGuardRefusesBrowserAttacks(t *testing.T) {
	b := fake("qwen3")
	ts := start(t, b, server.Config{})
	for _, c := range []struct {
		name, method, path, host, body string
		headers                        []string
		status                         int
		oaiType, antType               string
	}{
		{"cross-site form post", "POST", "/v1/completions", "", completionBody,
			[]string{"Content-Type", "text/plain", "Origin", "http://evil.example"}, 403, "permission_error", ""},
		{"cross-site form post, urlencoded", "POST", "/v1/messages", "", messageBody,
			[]string{"Content-Type", "application/x-www-form-urlencoded", "Origin", "http://evil.example"}, 403, "", "permission_error"},
		{"cross-site JSON fetch", "POST", "/v1/chat/completions", "", chatBody,
			[]string{"Content-Type", "application/json", "Origin", "http://evil.example"}, 403, "permission_error", ""},
		{"sandboxed page", "POST", "/v1/chat/completions", "", chatBody,
			[]string{"Content-Type", "application/json", "Origin", "null"}, 403, "permission_error", ""},
		{"text/plain without Origin", "POST", "/v1/completions", "", completionBody,
			[]string{"Content-Type", "text/plain"}, 415, "invalid_request_error", ""},
		{"multipart form", "POST", "/v1/messages", "", messageBody,
			[]string{"Content-Type", "multipart/form-data; boundary=x"}, 415, "", "invalid_request_error"},
		{"no Content-Type", "POST", "/v1/messages/count_tokens", "", messageBody, nil, 415, "", "invalid_request_error"},
		{"DNS rebinding read", "GET", "/v1/models", "evil.example:8080", "", nil, 403, "permission_error", ""},
		{"DNS rebinding post", "POST", "/v1/messages", "evil.example", messageBody,
			[]string{"Content-Type", "application/json"}, 403, "", "permission_error"},
		{"rebinding to a lookalike", "GET", "/health", "localhost.evil.example", "", nil, 403, "permission_error", ""},
		{"cross-origin health", "GET", "/health", "", "", []string{"Origin", "https://evil.example"}, 403, "permission_error", ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			status, h, v := send(t, c.method, ts.URL+c.path, c.host, c.body, c.headers...)
			if status != c.status {
				t.Fatalf("status %d, want %d: %v", status, c.status, v)
			}
			checkShape(t, c.path, v, c.oaiType, c.antType)
			if h.Get("Access-Control-Allow-Origin") != "" {
				t.Errorf("a refused origin got Access-Control-Allow-Origin %q", h.Get("Access-Control-Allow-Origin"))
			}
		})
	}
	if n := len(b.Requests()); n != 0 {
		t.Errorf("%d refused requests reached the model", n)
	}
	for _, host := range []string{"localhost:8080", "127.0.0.1", "[::1]:8080", "LOCALHOST", "localhost."} {
		if status, _, v := send(t, "POST", ts.URL+"/v1/completions", host, completionBody,
			"Content-Type", "application/json; charset=utf-8"); status != 200 {
			t.Errorf("Host %q: status %d: %v", host, status, v)
		}
	}
}

// --allowed-host adds names; "*" (a server listening on the network)
// accepts any.
func TestAllowedHosts(t *testing.T) {
	ts := start(t, fake("qwen3"), server.Config{AllowedHosts: []string{"box.lan", "[fd00::1]"}})
	for host, want := range map[string]int{"box.lan:8080": 200, "BOX.LAN": 200, "[fd00::1]:8080": 200, "other.lan": 403} {
		if status, _, v := send(t, "GET", ts.URL+"/v1/models", host, ""); status != want {
			t.Errorf("Host %q: status %d, want %d: %v", host, status, want, v)
		}
	}
	open := start(t, fake("qwen3"), server.Config{AllowedHosts: []string{"*"}})
	if status, _, v := send(t, "GET", open.URL+"/v1/models", "203.0.113.7:8080", ""); status != 200 {
		t.Errorf("any host: status %d: %v", status, v)
	}
}

// An origin given with --cors-origin gets CORS answers: a preflight
// answered 204 with the allowed method and headers, and the origin echoed
// on the real request. Preflights from other origins are refused.
func TestCORSOrigins(t *testing.T) {
	const app = "http://localhost:3000"
	ts := start(t, fake("qwen3"), server.Config{CORSOrigins: []string{app}, APIKey: "k"})
	status, h, _ := send(t, "OPTIONS", ts.URL+"/v1/messages", "", "", "Origin", app,
		"Access-Control-Request-Method", "POST", "Access-Control-Request-Headers", "content-type, x-api-key, anthropic-version")
	if status != 204 {
		t.Fatalf("preflight status %d, want 204", status)
	}
	for k, want := range map[string]string{
		"Access-Control-Allow-Origin":  app,
		"Access-Control-Allow-Headers": "content-type, x-api-key, anthropic-version",
		"Access-Control-Max-Age":       "600",
		"Vary":                         "Origin",
	} {
		if got := h.Get(k); got != want {
			t.Errorf("preflight %s: %q, want %q", k, got, want)
		}
	}
	if !strings.Contains(h.Get("Access-Control-Allow-Methods"), "POST") {
		t.Errorf("preflight allows methods %q", h.Get("Access-Control-Allow-Methods"))
	}
	status, h, v := send(t, "POST", ts.URL+"/v1/messages", "", messageBody,
		"Origin", app, "Content-Type", "application/json", "x-api-key", "k")
	if status != 200 || h.Get("Access-Control-Allow-Origin") != app || v["type"] != "message" {
		t.Errorf("allowed origin: status %d, Allow-Origin %q: %v", status, h.Get("Access-Control-Allow-Origin"), v)
	}
	status, h, v = send(t, "OPTIONS", ts.URL+"/v1/messages", "", "", "Origin", "http://localhost:3001",
		"Access-Control-Request-Method", "POST")
	if status != 403 || h.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("preflight from another origin: status %d, Allow-Origin %q", status, h.Get("Access-Control-Allow-Origin"))
	}
	checkShape(t, "/v1/messages", v, "", "permission_error")
	anyOrigin := start(t, fake("qwen3"), server.Config{CORSOrigins: []string{"*"}})
	if status, h, _ := send(t, "POST", anyOrigin.URL+"/v1/chat/completions", "", chatBody, "Origin", "https://app.example",
		"Content-Type", "application/json"); status != 200 || h.Get("Access-Control-Allow-Origin") != "https://app.example" {
		t.Errorf("--cors-origin '*': status %d, Allow-Origin %q", status, h.Get("Access-Control-Allow-Origin"))
	}
}
