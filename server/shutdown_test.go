package server_test

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/mlx-moe/mlx-moe/server"
)

// startCancellable serves like start, with request contexts derived from
// base (as mlx-moe serve does, to cut generations when grace runs out).
func startCancellable(t *testing.T, b server.Backend, cfg server.Config) (*httptest.Server, *server.Server, context.CancelCauseFunc) {
	t.Helper()
	srv, err := server.New(b, cfg)
	if err != nil {
		t.Fatal(err)
	}
	base, cancel := context.WithCancelCause(context.Background())
	ts := httptest.NewUnstartedServer(srv.Handler())
	ts.Config.BaseContext = func(net.Listener) context.Context { return base }
	ts.Start()
	t.Cleanup(func() { cancel(nil); ts.Close() })
	return ts, srv, cancel
}

// answer is a finished response: its status and body.
type answer struct {
	status int
	body   string
}

func postAsync(t *testing.T, url, body string) chan answer {
	out := make(chan answer, 1)
	go func() {
		resp := post(t, url, body)
		raw, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		out <- answer{resp.StatusCode, string(raw)}
	}()
	return out
}

// lastEvent is the final SSE event of a whole stream.
func lastEvent(t *testing.T, body string) sseEvent {
	t.Helper()
	events := readSSE(t, strings.NewReader(body))
	if len(events) == 0 {
		t.Fatalf("empty stream %q", body)
	}
	return events[len(events)-1]
}

// On shutdown, queued requests are answered 503 in each API's shape at
// once (an error event for streams, whose 200 headers are already sent);
// when grace runs out, the running stream gets the API's error event.
// Nothing ends as an empty 200 or a silent cut.
func TestShutdownAnswers(t *testing.T) {
	for _, running := range []struct{ path, body string }{
		{"/v1/messages", `{"model":"Tiny-MoE-4bit","max_tokens":500,"messages":[{"role":"user","content":"hi"}],"stream":true}`},
		{"/v1/chat/completions", `{"messages":[{"role":"user","content":"hi"}],"stream":true}`},
		{"/v1/responses", `{"input":"hi","stream":true}`},
	} {
		t.Run(running.path, func(t *testing.T) {
			b := fake("qwen3")
			b.TokenDelay = 5 * time.Millisecond
			b.Reply = func(string) []string { return strings.Split(strings.Repeat("tok ", 2000), " ") }
			ts, srv, cancel := startCancellable(t, b, server.Config{})
			run := postAsync(t, ts.URL+running.path, running.body)
			waitFor(t, ts.URL, func(h map[string]any) bool { return h["generating"] == true })
			queued := map[string]chan answer{
				"oai":         postAsync(t, ts.URL+"/v1/chat/completions", chatBody),
				"ant":         postAsync(t, ts.URL+"/v1/messages", messageBody),
				"oai stream":  postAsync(t, ts.URL+"/v1/completions", `{"prompt":"x","stream":true}`),
				"ant stream":  postAsync(t, ts.URL+"/v1/messages", strings.Replace(messageBody, "{", `{"stream":true,`, 1)),
				"resp":        postAsync(t, ts.URL+"/v1/responses", `{"input":"hi"}`),
				"resp stream": postAsync(t, ts.URL+"/v1/responses", `{"input":"hi","stream":true}`),
			}
			waitFor(t, ts.URL, func(h map[string]any) bool { return num(h["queue"]) == len(queued) })
			srv.Drain()
			for name, ch := range queued {
				a := <-ch
				switch name {
				case "oai", "ant", "resp":
					if a.status != 503 {
						t.Errorf("queued %s: %d %s, want 503", name, a.status, a.body)
						continue
					}
					var v map[string]any
					jsonDecode(t, a.body, &v)
					checkShape(t, map[string]string{"oai": "/v1/chat/completions", "ant": "/v1/messages", "resp": "/v1/responses"}[name], v, "server_error", "overloaded_error")
				case "oai stream":
					if e := lastEvent(t, a.body); get(e.json(t), "error", "type") != "server_error" {
						t.Errorf("queued OpenAI stream ends with %q, want an error chunk", e.data)
					}
				case "resp stream":
					if e := lastEvent(t, a.body); e.name != "response.failed" || !strings.Contains(e.data, "shutting down") {
						t.Errorf("queued Responses stream ends with %s %q, want response.failed", e.name, e.data)
					}
				case "ant stream":
					if e := lastEvent(t, a.body); e.name != "error" || get(e.json(t), "error", "type") != "overloaded_error" {
						t.Errorf("queued Anthropic stream ends with %s %q, want event: error", e.name, e.data)
					}
				}
			}
			if v := postJSON(t, ts.URL+"/v1/messages", messageBody, 503); get(v, "error", "type") != "overloaded_error" {
				t.Errorf("a request after the drain: %v", v)
			}
			cancel(server.ErrShuttingDown) // grace is over
			a := <-run
			e := lastEvent(t, a.body)
			switch {
			case running.path == "/v1/responses":
				if e.name != "response.failed" || !strings.Contains(e.data, "shutting down") {
					t.Errorf("cut Responses stream ends with %s %q, want response.failed", e.name, e.data)
				}
			case strings.HasPrefix(running.path, "/v1/messages"):
				if e.name != "error" || get(e.json(t), "error", "type") != "overloaded_error" {
					t.Errorf("cut Anthropic stream ends with %s %q, want event: error overloaded_error", e.name, e.data)
				}
			default:
				if get(e.json(t), "error", "type") != "server_error" || strings.Contains(a.body, "[DONE]") {
					t.Errorf("cut OpenAI stream ends with %q, want an error chunk and no [DONE]", e.data)
				}
			}
		})
	}
}

// A non-streamed generation cut at shutdown is a 503, not an empty 200.
func TestShutdownCutsNonStreamed(t *testing.T) {
	b := fake("qwen3")
	b.TokenDelay = 5 * time.Millisecond
	b.Reply = func(string) []string { return strings.Split(strings.Repeat("tok ", 2000), " ") }
	ts, srv, cancel := startCancellable(t, b, server.Config{})
	run := postAsync(t, ts.URL+"/v1/chat/completions", chatBody)
	waitFor(t, ts.URL, func(h map[string]any) bool { return h["generating"] == true })
	srv.Drain()
	cancel(server.ErrShuttingDown)
	a := <-run
	var v map[string]any
	jsonDecode(t, a.body, &v)
	if a.status != 503 {
		t.Fatalf("cut generation: %d %s, want 503", a.status, a.body)
	}
	checkShape(t, "/v1/chat/completions", v, "server_error", "")
}

func jsonDecode(t *testing.T, s string, v any) {
	t.Helper()
	if err := json.Unmarshal([]byte(s), v); err != nil {
		t.Fatalf("not JSON: %v: %s", err, s)
	}
}
