package server_test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mlx-moe/mlx-moe/server"
	"github.com/mlx-moe/mlx-moe/server/servertest"
)

// gatedRender is a backend whose RenderChat waits at a gate, so a test can
// hold requests in the parse stage and count them there.
type gatedRender struct {
	*servertest.Backend
	gate chan struct{}

	mu                 sync.Mutex
	inside, peak, seen int
}

func newGatedRender() *gatedRender {
	return &gatedRender{Backend: fake("qwen3"), gate: make(chan struct{})}
}

func (g *gatedRender) RenderChat(p server.ChatPrompt) (string, []int, error) {
	g.mu.Lock()
	g.inside++
	g.seen++
	g.peak = max(g.peak, g.inside)
	g.mu.Unlock()
	<-g.gate
	g.mu.Lock()
	g.inside--
	g.mu.Unlock()
	return g.Backend.RenderChat(p)
}

func (g *gatedRender) counts() (inside, peak, seen int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.inside, g.peak, g.seen
}

// until polls cond (the server's state, read through the test's hooks).
func until(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(2 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("never reached: %s", what)
}

func health(t *testing.T, url string) map[string]any {
	t.Helper()
	status, _, v := send(t, "GET", url+"/health", "", "")
	if status != 200 {
		t.Fatalf("health: %d", status)
	}
	return v
}

// Requests are admitted before their bodies are parsed: only as many as
// the parse budget holds are rendered and tokenized at once, up to
// --max-queue more wait (bodies unread), and the rest are turned away at
// once with 429 (OpenAI) or 529 (Anthropic).
func TestAdmissionBeforeParsing(t *testing.T) {
	g := newGatedRender()
	ts := start(t, g, server.Config{MaxParseBytes: 128 << 10, MaxQueue: 2}) // two small requests at a time
	statuses := make(chan int, 4)
	for range 4 {
		go func() {
			resp := post(t, ts.URL+"/v1/messages/count_tokens", messageBody)
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			statuses <- resp.StatusCode
		}()
	}
	until(t, "two parsing, two waiting", func() bool {
		inside, _, _ := g.counts()
		return inside == 2 && num(health(t, ts.URL)["waiting_to_read"]) == 2
	})
	v := postJSON(t, ts.URL+"/v1/chat/completions", chatBody, 429)
	checkShape(t, "/v1/chat/completions", v, "rate_limit_error", "")
	v = postJSON(t, ts.URL+"/v1/messages", messageBody, 529)
	checkShape(t, "/v1/messages", v, "", "overloaded_error")
	close(g.gate)
	for range 4 {
		if s := <-statuses; s != 200 {
			t.Errorf("an admitted request got %d", s)
		}
	}
	if _, peak, seen := g.counts(); peak != 2 || seen != 4 {
		t.Errorf("%d renders at once (want 2), %d rendered (want 4: the turned-away ones are never parsed)", peak, seen)
	}
}

// A large body takes a large share: while one is being parsed, a small
// request behind it waits rather than doubling the peak.
func TestAdmissionWeighsBodies(t *testing.T) {
	g := newGatedRender()
	ts := start(t, g, server.Config{MaxParseBytes: 256 << 10})
	big := `{"model":"Tiny-MoE-4bit","messages":[{"role":"user","content":"` + strings.Repeat("x", 200<<10) + `"}]}`
	bigDone := postAsync(t, ts.URL+"/v1/messages/count_tokens", big)
	until(t, "the big body parsing", func() bool { inside, _, _ := g.counts(); return inside == 1 })
	smallDone := postAsync(t, ts.URL+"/v1/messages/count_tokens", messageBody)
	until(t, "the small one waiting", func() bool { return num(health(t, ts.URL)["waiting_to_read"]) == 1 })
	close(g.gate)
	if a := <-bigDone; a.status != 400 || !strings.Contains(a.body, "prompt is too long") {
		t.Errorf("the big request (over the fake's context): %d %s", a.status, a.body)
	}
	if a := <-smallDone; a.status != 200 {
		t.Errorf("the small request: %d %s", a.status, a.body)
	}
	if _, peak, _ := g.counts(); peak != 1 {
		t.Errorf("%d renders at once, want 1", peak)
	}
}

// A body that does not arrive within BodyTimeout is answered 408 in the
// API's shape and frees its place; a stream that outlasts the timeout after
// its body arrived is not cut.
func TestBodyTimeout(t *testing.T) {
	b := fake("qwen3")
	b.TokenDelay = 20 * time.Millisecond
	ts := start(t, b, server.Config{BodyTimeout: 100 * time.Millisecond})
	status, raw, err := rawPost(ts, "/v1/messages", 1000, `{"model":`)
	if err != nil {
		t.Fatalf("a trickled body got no answer: %v", err)
	}
	if status != 408 || !strings.Contains(raw, `"timeout_error"`) {
		t.Errorf("trickled body: %d %s, want 408 timeout_error", status, raw)
	}
	events := streamEvents(t, ts.URL+"/v1/chat/completions", `{"messages":[{"role":"user","content":"hi"}],"stream":true}`)
	if last := events[len(events)-1]; last.data != "[DONE]" {
		t.Errorf("a stream longer than the body timeout ended with %q", last.data)
	}
	if waiting := num(health(t, ts.URL)["waiting_to_read"]); waiting != 0 {
		t.Errorf("%d requests still wait to be read", waiting)
	}
}

// A body declared larger than the limit is refused before it is read or
// admitted: the answer comes without the client sending any of it.
func TestDeclaredTooLargeRefusedUnread(t *testing.T) {
	ts := start(t, fake("qwen3"), server.Config{MaxBodyBytes: 1 << 20})
	status, raw, err := rawPost(ts, "/v1/messages/count_tokens", 1<<30, "")
	if err != nil {
		t.Fatalf("no answer before the body: %v", err)
	}
	if status != 413 || !strings.Contains(raw, `"request_too_large"`) {
		t.Errorf("declared 1 GiB body: %d %s, want 413 request_too_large", status, raw)
	}
	if waiting := num(health(t, ts.URL)["waiting_to_read"]); waiting != 0 {
		t.Errorf("%d requests wait to be read", waiting)
	}
}

// rawPost sends a POST declaring a body of length bytes but sending only
// sent, and reads the answer (which must come within 10 s).
func rawPost(ts *httptest.Server, path string, length int, sent string) (int, string, error) {
	conn, err := net.Dial("tcp", ts.Listener.Addr().String())
	if err != nil {
		return 0, "", err
	}
	defer conn.Close()
	fmt.Fprintf(conn, "POST %s HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", path, length, sent)
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		return 0, "", err
	}
	raw, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(raw), nil
}
