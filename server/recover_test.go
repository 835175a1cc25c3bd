package server_test

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/mlx-moe/mlx-moe/server"
	"github.com/mlx-moe/mlx-moe/server/servertest"
)

// panicky panics in the phase named by where ("render" or "generate") on
// every request whose prompt mentions "boom".
type panicky struct {
	*servertest.Backend
	where  string
	panics atomic.Int32
}

func (p *panicky) RenderChat(c server.ChatPrompt) (string, []int, error) {
	text, ids, err := p.Backend.RenderChat(c)
	if p.where == "render" && strings.Contains(text, "boom") {
		p.panics.Add(1)
		var m map[string]int
		m["boom"]++ // a nil-map write: a runtime error, as a bug would raise
	}
	return text, ids, err
}

func (p *panicky) Generate(ctx context.Context, req server.GenRequest, emit func(server.Token) error) (server.GenResult, error) {
	if p.where == "generate" && bytes.Contains(idsText(req.Prompt), []byte("boom")) {
		p.panics.Add(1)
		panic("kernel: index out of range [7] with length 7")
	}
	return p.Backend.Generate(ctx, req, emit)
}

// idsText undoes the fake's one-token-per-byte tokenization.
func idsText(ids []int) []byte {
	b := make([]byte, len(ids))
	for i, id := range ids {
		b[i] = byte(id)
	}
	return b
}

// syncBuffer is a log destination safe for the server's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// A request that panics, while preparing its prompt or while generating,
// is answered 500 in the API's shape (an error event once a stream has
// begun), the panic is logged with its stack, and the server keeps serving.
func TestPanicIsAnswered(t *testing.T) {
	for _, where := range []string{"render", "generate"} {
		t.Run(where, func(t *testing.T) {
			p := &panicky{Backend: fake("qwen3"), where: where}
			var log syncBuffer
			ts := start(t, p, server.Config{Logger: slog.New(slog.NewTextHandler(&log, nil))})
			boomChat := strings.Replace(chatBody, "hi", "boom", 1)
			boomMsg := strings.Replace(messageBody, "hi", "boom", 1)
			v := postJSON(t, ts.URL+"/v1/chat/completions", boomChat, 500)
			checkShape(t, "/v1/chat/completions", v, "server_error", "")
			v = postJSON(t, ts.URL+"/v1/messages", boomMsg, 500)
			checkShape(t, "/v1/messages", v, "", "api_error")
			if where == "generate" {
				events := streamEvents(t, ts.URL+"/v1/messages", strings.Replace(boomMsg, "{", `{"stream":true,`, 1))
				if e := events[len(events)-1]; e.name != "error" || get(e.json(t), "error", "type") != "api_error" {
					t.Errorf("panicking Anthropic stream ends with %s %q", e.name, e.data)
				}
				events = streamEvents(t, ts.URL+"/v1/chat/completions", strings.Replace(boomChat, "{", `{"stream":true,`, 1))
				if e := events[len(events)-1]; get(e.json(t), "error", "type") != "server_error" {
					t.Errorf("panicking OpenAI stream ends with %q", e.data)
				}
			}
			if v := postJSON(t, ts.URL+"/v1/messages", messageBody, 200); v["type"] != "message" {
				t.Errorf("after the panics: %v", v)
			}
			logged := log.String()
			if p.panics.Load() == 0 || !strings.Contains(logged, "panic") || !strings.Contains(logged, "goroutine ") {
				t.Errorf("%d panics; the log lacks a panic with its stack:\n%s", p.panics.Load(), logged)
			}
		})
	}
}
