package server_test

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/mlx-moe/mlx-moe/server"
)

// renderedPrompt is the text the scripted backend saw for the last request.
func renderedPrompt(t *testing.T, reqs []server.GenRequest) string {
	t.Helper()
	if len(reqs) == 0 {
		t.Fatal("no generation ran")
	}
	ids := reqs[len(reqs)-1].Prompt
	b := make([]byte, len(ids))
	for i, id := range ids {
		b[i] = byte(id)
	}
	return string(b)
}

// A request shaped like Claude Code's: system messages inside messages,
// adaptive thinking, unknown fields and beta headers.
const claudeCodeBody = `{"model":"claude-sonnet-4-5-20250929","max_tokens":32000,
	"system":[{"type":"text","text":"You are Claude Code.","cache_control":{"type":"ephemeral"}}],
	"messages":[
		{"role":"system","content":"Agents: general-purpose."},
		{"role":"user","content":[{"type":"text","text":"hi","cache_control":{"type":"ephemeral"}}]},
		{"role":"assistant","content":"Hello."},
		{"role":"system","content":[{"type":"text","text":"Skills: none."}]},
		{"role":"user","content":"again"}],
	"thinking":{"type":"adaptive","display":"summarized"},
	"metadata":{"user_id":"u"},"output_config":{"effort":"high"},
	"context_management":{"edits":[{"type":"clear_thinking_20251015","keep":"all"}]},
	"stream":false}`

func TestClaudeCodeRequest(t *testing.T) {
	b := fake("qwen3")
	ts := start(t, b, server.Config{})
	v := postJSON(t, ts.URL+"/v1/messages", claudeCodeBody, 200, "anthropic-version", "2023-06-01",
		"anthropic-beta", "claude-code-20250219,interleaved-thinking-2025-05-14,mid-conversation-system-2026-04-07")
	if v["model"] != modelID {
		t.Errorf("answered as model %v, want the served %s", v["model"], modelID)
	}
	// A leading system message joins the system prompt; a later one stays
	// in place as a system turn; adaptive thinking opens <think>.
	want := "<|system|>You are Claude Code.\n\nAgents: general-purpose.\n<|user|>hi\n<|assistant|>Hello.\n<|system|>Skills: none.\n<|user|>again\n<|assistant|><think>\n"
	if got := renderedPrompt(t, b.Requests()); got != want {
		t.Errorf("rendered\n%q\nwant\n%q", got, want)
	}
}

// A template that refuses a mid-conversation system turn gets it as a
// <system-reminder> note on the next user turn.
func TestLateSystemAsNote(t *testing.T) {
	b := fake("qwen3")
	b.RefuseLateSystem = true
	ts := start(t, b, server.Config{})
	postJSON(t, ts.URL+"/v1/messages", claudeCodeBody, 200)
	want := "<|system|>You are Claude Code.\n\nAgents: general-purpose.\n<|user|>hi\n<|assistant|>Hello.\n<|user|><system-reminder>\nSkills: none.\n</system-reminder>\nagain\n<|assistant|><think>\n"
	if got := renderedPrompt(t, b.Requests()); got != want {
		t.Errorf("rendered\n%q\nwant\n%q", got, want)
	}
	// A trailing system turn becomes a user note of its own.
	postJSON(t, ts.URL+"/v1/chat/completions", `{"messages":[{"role":"user","content":"a"},{"role":"assistant","content":"b"},{"role":"system","content":"c"}]}`, 200)
	want = "<|user|>a\n<|assistant|>b\n<|user|><system-reminder>\nc\n</system-reminder>\n<|assistant|>"
	if got := renderedPrompt(t, b.Requests()); got != want {
		t.Errorf("rendered\n%q\nwant\n%q", got, want)
	}
}

func TestStrictModel(t *testing.T) {
	ts := start(t, fake("qwen3"), server.Config{StrictModel: true})
	v := postJSON(t, ts.URL+"/v1/messages", `{"model":"claude-sonnet-4-5","max_tokens":5,"messages":[{"role":"user","content":"hi"}]}`, 404)
	if get(v, "error", "type") != "not_found_error" || !strings.Contains(get(v, "error", "message").(string), "--strict-model") {
		t.Errorf("strict 404 %v", v)
	}
	postJSON(t, ts.URL+"/v1/messages", `{"model":"tiny-moe-4bit","max_tokens":5,"messages":[{"role":"user","content":"hi"}]}`, 200)
	getJSON(t, ts.URL+"/v1/models/gpt-4o", 404)
}

func getJSON(t *testing.T, url string, wantStatus int, headers ...string) map[string]any {
	t.Helper()
	code, _, v := send(t, "GET", url, "", "", headers...)
	if code != wantStatus {
		t.Fatalf("GET %s: status %d, want %d: %v", url, code, wantStatus, v)
	}
	return v
}

func TestRootAndModel(t *testing.T) {
	ts := start(t, fake("qwen3"), server.Config{CachedModels: func() []string { return []string{"org/Other-MoE"} }})
	resp, err := http.Head(ts.URL + "/")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("HEAD /: %v %v", resp, err)
	}
	resp.Body.Close()
	if v := getJSON(t, ts.URL+"/", 200); v["model"] != modelID {
		t.Errorf("GET / %v", v)
	}
	// OpenAI shape: the served model, a cached one by its id, any other
	// name answered as the served model.
	if v := getJSON(t, ts.URL+"/v1/models/"+modelID, 200); v["id"] != modelID || v["object"] != "model" {
		t.Errorf("model %v", v)
	}
	if v := getJSON(t, ts.URL+"/v1/models/org/Other-MoE", 200); v["id"] != "org/Other-MoE" {
		t.Errorf("cached model %v", v)
	}
	if v := getJSON(t, ts.URL+"/v1/models/claude-opus-4-1", 200); v["id"] != modelID {
		t.Errorf("other name %v", v)
	}
	// Anthropic shape when the request carries anthropic-version.
	v := getJSON(t, ts.URL+"/v1/models/claude-opus-4-1", 200, "anthropic-version", "2023-06-01")
	if v["type"] != "model" || v["id"] != modelID || v["display_name"] == nil || !strings.HasSuffix(v["created_at"].(string), "Z") {
		t.Errorf("Anthropic model %v", v)
	}
	l := getJSON(t, ts.URL+"/v1/models", 200, "anthropic-version", "2023-06-01")
	if l["has_more"] != false || l["first_id"] != modelID || l["last_id"] != "org/Other-MoE" || get(l, "data", 1, "type") != "model" {
		t.Errorf("Anthropic list %v", l)
	}
}

// The server names the end of the system prompt and tools as a cache
// point, and /metrics counts generations that reused cached tokens.
func TestCachePoint(t *testing.T) {
	b := fake("qwen3")
	ts := start(t, b, server.Config{})
	body := `{"model":"m","max_tokens":5,"system":"Be brief.","tools":[` + antWeatherTool + `],"messages":[{"role":"user","content":"hi"}]}`
	postJSON(t, ts.URL+"/v1/messages", body, 200)
	postJSON(t, ts.URL+"/v1/messages", body, 200)
	reqs := b.Requests()
	prefix := len(`<|tools|>get_weather({"properties":{"city":{"type":"string"}},"required":["city"],"type":"object"}) ` + "\n<|system|>Be brief.\n")
	if got := reqs[0].CachePoints; len(got) != 1 || got[0] != prefix {
		t.Errorf("cache points %v, want [%d]", got, prefix)
	}
	if got := postJSON(t, ts.URL+"/v1/chat/completions", `{"messages":[{"role":"user","content":"hi"}]}`, 200); got == nil || b.Requests()[2].CachePoints != nil {
		t.Errorf("no system or tools: cache points %v", b.Requests()[2].CachePoints)
	}
	resp, err := http.Get(ts.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	m, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	// The fake counts any common prefix as cached: the repeat, and the
	// chat request's leading "<|".
	if !strings.Contains(string(m), "mlxmoe_prompt_cache_hits_total 2\n") {
		t.Errorf("metrics:\n%s", m)
	}
}
