package server_test

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/mlx-moe/mlx-moe/server"
)

// Each API reports errors in its own shape and status.
func TestErrors(t *testing.T) {
	b := fake("qwen3")
	b.Context = 64
	ts := start(t, b, server.Config{MaxBodyBytes: 4096, StrictModel: true})
	long := strings.Repeat("word ", 20)
	for _, c := range []struct {
		name, path, body string
		status           int
		typ, code        string // OpenAI: error.type and error.code; Anthropic: error.type
	}{
		{"oai invalid json", "/v1/chat/completions", `{"messages":`, 400, "invalid_request_error", ""},
		{"oai empty body", "/v1/chat/completions", ``, 400, "invalid_request_error", ""},
		{"oai wrong type", "/v1/chat/completions", `{"messages":"hi"}`, 400, "invalid_request_error", ""},
		{"oai no messages", "/v1/chat/completions", `{"model":"Tiny-MoE-4bit"}`, 400, "invalid_request_error", ""},
		{"oai bad role", "/v1/chat/completions", `{"messages":[{"role":"robot","content":"hi"}]}`, 400, "invalid_request_error", ""},
		{"oai image", "/v1/chat/completions", `{"messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"x"}}]}]}`, 400, "invalid_request_error", ""},
		{"oai unknown model", "/v1/chat/completions", `{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}]}`, 404, "invalid_request_error", "model_not_found"},
		{"oai context", "/v1/chat/completions", `{"messages":[{"role":"user","content":"` + long + `"}]}`, 400, "invalid_request_error", "context_length_exceeded"},
		{"oai temperature", "/v1/chat/completions", `{"messages":[{"role":"user","content":"hi"}],"temperature":5}`, 400, "invalid_request_error", ""},
		{"oai max_tokens", "/v1/chat/completions", `{"messages":[{"role":"user","content":"hi"}],"max_tokens":0}`, 400, "invalid_request_error", ""},
		{"oai tool_choice", "/v1/chat/completions", `{"messages":[{"role":"user","content":"hi"}],"tool_choice":{"type":"function","function":{"name":"nope"}}}`, 400, "invalid_request_error", ""},
		{"oai too large", "/v1/chat/completions", `{"messages":[{"role":"user","content":"` + strings.Repeat("x", 5000) + `"}]}`, 413, "invalid_request_error", ""},
		{"oai n", "/v1/chat/completions", `{"messages":[{"role":"user","content":"hi"}],"n":2}`, 400, "invalid_request_error", ""},
		{"oai completion prompt", "/v1/completions", `{"prompt":5}`, 400, "invalid_request_error", ""},
		{"oai no route", "/v1/embeddings", `{}`, 404, "invalid_request_error", ""},
		{"ant invalid json", "/v1/messages", `{"model":`, 400, "invalid_request_error", ""},
		{"ant no max_tokens", "/v1/messages", `{"model":"Tiny-MoE-4bit","messages":[{"role":"user","content":"hi"}]}`, 400, "invalid_request_error", ""},
		{"ant no model", "/v1/messages", `{"max_tokens":5,"messages":[{"role":"user","content":"hi"}]}`, 400, "invalid_request_error", ""},
		{"ant image", "/v1/messages", `{"model":"Tiny-MoE-4bit","max_tokens":5,"messages":[{"role":"user","content":[{"type":"image","source":{"type":"base64","media_type":"image/png","data":"AA=="}}]}]}`, 400, "invalid_request_error", ""},
		{"ant tool_result image", "/v1/messages", `{"model":"Tiny-MoE-4bit","max_tokens":5,"messages":[{"role":"user","content":[{"type":"tool_result","tool_use_id":"a","content":[{"type":"image"}]}]}]}`, 400, "invalid_request_error", ""},
		{"ant role", "/v1/messages", `{"model":"Tiny-MoE-4bit","max_tokens":5,"messages":[{"role":"robot","content":"hi"}]}`, 400, "invalid_request_error", ""},
		{"ant only system", "/v1/messages", `{"model":"Tiny-MoE-4bit","max_tokens":5,"messages":[{"role":"system","content":"hi"}]}`, 400, "invalid_request_error", ""},
		{"ant context", "/v1/messages", `{"model":"Tiny-MoE-4bit","max_tokens":5,"messages":[{"role":"user","content":"` + long + `"}]}`, 400, "invalid_request_error", ""},
		{"ant count context", "/v1/messages/count_tokens", `{"model":"Tiny-MoE-4bit","messages":[{"role":"user","content":"` + long + `"}]}`, 400, "invalid_request_error", ""},
		{"ant too large", "/v1/messages", `{"model":"Tiny-MoE-4bit","max_tokens":5,"messages":[{"role":"user","content":"` + strings.Repeat("x", 5000) + `"}]}`, 413, "request_too_large", ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			v := postJSON(t, ts.URL+c.path, c.body, c.status)
			if strings.HasPrefix(c.path, "/v1/messages") {
				if v["type"] != "error" || get(v, "error", "type") != c.typ || get(v, "error", "message") == "" {
					t.Errorf("Anthropic error %v", v)
				}
				return
			}
			if get(v, "error", "type") != c.typ || get(v, "error", "message") == "" {
				t.Errorf("OpenAI error %v", v)
			}
			if c.code != "" && get(v, "error", "code") != c.code {
				t.Errorf("code %v, want %s", get(v, "error", "code"), c.code)
			}
		})
	}
}

func TestAPIKey(t *testing.T) {
	ts := start(t, fake("qwen3"), server.Config{APIKey: "sekret"})
	chat := `{"messages":[{"role":"user","content":"hi"}]}`
	msg := `{"model":"Tiny-MoE-4bit","max_tokens":5,"messages":[{"role":"user","content":"hi"}]}`
	if v := postJSON(t, ts.URL+"/v1/chat/completions", chat, 401); get(v, "error", "code") != "invalid_api_key" {
		t.Errorf("OpenAI 401 %v", v)
	}
	if v := postJSON(t, ts.URL+"/v1/messages", msg, 401, "x-api-key", "wrong"); get(v, "error", "type") != "authentication_error" {
		t.Errorf("Anthropic 401 %v", v)
	}
	postJSON(t, ts.URL+"/v1/chat/completions", chat, 200, "Authorization", "Bearer sekret")
	postJSON(t, ts.URL+"/v1/messages", msg, 200, "x-api-key", "sekret")
	resp, err := http.Get(ts.URL + "/health")
	if err != nil || resp.StatusCode != 200 {
		t.Errorf("health needs no key: %v %v", resp.StatusCode, err)
	}
	resp.Body.Close()
}

// By default any model name is answered by the loaded model.
func TestAnyModel(t *testing.T) {
	ts := start(t, fake("qwen3"), server.Config{})
	v := postJSON(t, ts.URL+"/v1/messages", `{"model":"claude-sonnet-4-5","max_tokens":5,"messages":[{"role":"user","content":"hi"}]}`, 200)
	if v["model"] != modelID {
		t.Errorf("model %v", v["model"])
	}
}

// With every slot taken and the queue full, requests are turned away at
// once: 429 for OpenAI, 529 for Anthropic. With Config.Parallel, that many
// generate at once.
func TestOverloaded(t *testing.T) {
	for _, parallel := range []int{1, 2} {
		t.Run(fmt.Sprintf("parallel=%d", parallel), func(t *testing.T) { overloaded(t, parallel) })
	}
}

func overloaded(t *testing.T, parallel int) {
	b := fake("qwen3")
	b.TokenDelay = 20 * time.Millisecond
	ts := start(t, b, server.Config{MaxQueue: 1, Parallel: parallel})
	chat := `{"messages":[{"role":"user","content":"hi"}]}`
	done := make(chan int, parallel+1)
	for range parallel + 1 { // parallel generating, one waiting
		go func() {
			resp := post(t, ts.URL+"/v1/chat/completions", chat)
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			done <- resp.StatusCode
		}()
	}
	waitFor(t, ts.URL, func(h map[string]any) bool { return num(h["running"]) == parallel && num(h["queue"]) == 1 })
	if v := postJSON(t, ts.URL+"/v1/chat/completions", chat, 429); get(v, "error", "code") != "rate_limit_exceeded" {
		t.Errorf("OpenAI overload %v", v)
	}
	if v := postJSON(t, ts.URL+"/v1/messages", `{"model":"Tiny-MoE-4bit","max_tokens":5,"messages":[{"role":"user","content":"hi"}],"stream":true}`, 529); get(v, "error", "type") != "overloaded_error" {
		t.Errorf("Anthropic overload %v", v)
	}
	for range parallel + 1 {
		if code := <-done; code != 200 {
			t.Errorf("queued request got %d", code)
		}
	}
	if b.MaxConcurrent() != parallel {
		t.Errorf("%d generations ran at once, want %d", b.MaxConcurrent(), parallel)
	}
}

// A backend failure is a 500 in the dialect's shape, or an error event once
// a stream has begun.
func TestBackendFailure(t *testing.T) {
	b := fake("qwen3")
	b.Fail = errors.New("disk read failed")
	ts := start(t, b, server.Config{})
	v := postJSON(t, ts.URL+"/v1/chat/completions", `{"messages":[{"role":"user","content":"hi"}]}`, 500)
	if get(v, "error", "type") != "server_error" || !strings.Contains(get(v, "error", "message").(string), "disk read failed") {
		t.Errorf("OpenAI failure %v", v)
	}
	events := streamEvents(t, ts.URL+"/v1/messages", `{"model":"Tiny-MoE-4bit","max_tokens":9,"messages":[{"role":"user","content":"hi"}],"stream":true}`)
	last := events[len(events)-1]
	if last.name != "error" || get(last.json(t), "error", "type") != "api_error" {
		t.Errorf("Anthropic stream ends with %s %s, want an error event", last.name, last.data)
	}
	events = streamEvents(t, ts.URL+"/v1/chat/completions", `{"messages":[{"role":"user","content":"hi"}],"stream":true}`)
	if last := events[len(events)-1]; get(last.json(t), "error", "type") != "server_error" {
		t.Errorf("OpenAI stream ends with %s, want an error chunk", last.data)
	}
}

func TestToolFormatOverride(t *testing.T) {
	b := fake("qwen3")
	b.Template = "" // nothing to detect from
	if _, err := server.New(b, server.Config{ToolFormat: "hermes"}); err == nil {
		t.Error("an unknown --tool-format was accepted")
	}
	ts := start(t, b, server.Config{ToolFormat: "qwen3"})
	v := postJSON(t, ts.URL+"/v1/chat/completions", oaiToolRequest(false), 200)
	if get(v, "choices", 0, "message", "tool_calls", 0, "function", "name") != "get_weather" {
		t.Errorf("message %v", get(v, "choices", 0, "message"))
	}
}
