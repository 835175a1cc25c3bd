package server_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/mlx-moe/mlx-moe/server"
)

func TestChatCompletion(t *testing.T) {
	b := fake("qwen3")
	ts := start(t, b, server.Config{})
	body := `{"model":"Tiny-MoE-4bit","messages":[{"role":"system","content":"Be brief."},
		{"role":"user","content":[{"type":"text","text":"hi there"}]}],"temperature":0.2,"top_k":20,"seed":7,"max_tokens":100}`
	v := postJSON(t, ts.URL+"/v1/chat/completions", body, 200)
	if get(v, "object") != "chat.completion" || get(v, "model") != modelID || !strings.HasPrefix(get(v, "id").(string), "chatcmpl-") {
		t.Errorf("envelope: %v", v)
	}
	if c := get(v, "choices", 0, "message", "content"); c != "Hello! You said: hi there" {
		t.Errorf("content %q", c)
	}
	if f := get(v, "choices", 0, "finish_reason"); f != "stop" {
		t.Errorf("finish_reason %v, want stop", f)
	}
	prompt := "<|system|>Be brief.\n<|user|>hi there\n<|assistant|>"
	if n := num(get(v, "usage", "prompt_tokens")); n != len(prompt) {
		t.Errorf("prompt_tokens %d, want %d", n, len(prompt))
	}
	if n := num(get(v, "usage", "completion_tokens")); n != 9 { // 25 characters in pieces of 3
		t.Errorf("completion_tokens %d, want 9", n)
	}
	req := b.Requests()[0]
	if req.Sampling.Temperature != 0.2 || req.Sampling.TopK != 20 || *req.Sampling.Seed != 7 || req.Sampling.TopP != 1 || req.MaxTokens != 100 {
		t.Errorf("generation request %+v", req)
	}
}

func TestChatCompletionStream(t *testing.T) {
	ts := start(t, fake("qwen3"), server.Config{})
	events := streamEvents(t, ts.URL+"/v1/chat/completions",
		`{"model":"`+modelID+`","messages":[{"role":"user","content":"hi"}],"stream":true,"stream_options":{"include_usage":true}}`)
	if events[len(events)-1].data != "[DONE]" {
		t.Fatalf("last event %q, want [DONE]", events[len(events)-1].data)
	}
	var text strings.Builder
	chunks := events[:len(events)-1]
	for i, e := range chunks {
		c := e.json(t)
		if get(c, "object") != "chat.completion.chunk" {
			t.Fatalf("chunk %d: object %v", i, get(c, "object"))
		}
		if _, ok := c["usage"]; !ok {
			t.Fatalf("chunk %d: include_usage chunks carry usage (null until the end)", i)
		}
		if d, ok := get(c, "choices", 0, "delta", "content").(string); ok {
			text.WriteString(d)
		}
	}
	if get(chunks[0].json(t), "choices", 0, "delta", "role") != "assistant" {
		t.Errorf("first chunk has no role: %s", chunks[0].data)
	}
	last, usage := chunks[len(chunks)-2].json(t), chunks[len(chunks)-1].json(t)
	if get(last, "choices", 0, "finish_reason") != "stop" {
		t.Errorf("final chunk %s", chunks[len(chunks)-2].data)
	}
	if len(usage["choices"].([]any)) != 0 || num(get(usage, "usage", "completion_tokens")) != 7 {
		t.Errorf("usage chunk %s", chunks[len(chunks)-1].data)
	}
	if text.String() != "Hello! You said: hi" {
		t.Errorf("streamed %q", text.String())
	}
}

func TestStopStrings(t *testing.T) {
	ts := start(t, fake("qwen3"), server.Config{})
	// "You said" is split over the tokens "llo", "! Y", "ou ", "sai", ...
	body := `{"messages":[{"role":"user","content":"hi"}],"stop":["zzz","ou sa"]%s}`
	v := postJSON(t, ts.URL+"/v1/chat/completions", fmt.Sprintf(body, ""), 200)
	if c := get(v, "choices", 0, "message", "content"); c != "Hello! Y" {
		t.Errorf("content %q, want text before the stop string", c)
	}
	if get(v, "choices", 0, "finish_reason") != "stop" {
		t.Errorf("finish_reason %v", get(v, "choices", 0, "finish_reason"))
	}
	var text string
	for _, e := range streamEvents(t, ts.URL+"/v1/chat/completions", fmt.Sprintf(body, `,"stream":true`)) {
		if e.data != "[DONE]" {
			d, _ := get(e.json(t), "choices", 0, "delta", "content").(string)
			text += d
		}
	}
	if text != "Hello! Y" {
		t.Errorf("streamed %q, want text before the stop string", text)
	}
	// A prefix of a stop string that does not complete is released.
	v = postJSON(t, ts.URL+"/v1/completions", `{"prompt":"x","stop":"d: X"}`, 200)
	if get(v, "choices", 0, "text") != "Hello! You said: " {
		t.Errorf("completion %v", get(v, "choices", 0, "text"))
	}
}

func TestCompletions(t *testing.T) {
	b := fake("qwen3")
	ts := start(t, b, server.Config{})
	v := postJSON(t, ts.URL+"/v1/completions", `{"model":"`+modelID+`","prompt":"<|user|>abc","max_tokens":2}`, 200)
	if get(v, "object") != "text_completion" || get(v, "choices", 0, "text") != "Hello!" || get(v, "choices", 0, "finish_reason") != "length" {
		t.Errorf("completion %v", v)
	}
	if num(get(v, "usage", "prompt_tokens")) != len("<|user|>abc") {
		t.Errorf("usage %v", get(v, "usage"))
	}
	var text string
	events := streamEvents(t, ts.URL+"/v1/completions", `{"prompt":["<|user|>abc"],"stream":true}`)
	for _, e := range events[:len(events)-1] {
		text += get(e.json(t), "choices", 0, "text").(string)
	}
	if text != "Hello! You said: abc" || events[len(events)-1].data != "[DONE]" {
		t.Errorf("streamed %q", text)
	}
}

func TestModels(t *testing.T) {
	ts := start(t, fake("qwen3"), server.Config{CachedModels: func() []string { return []string{"org/Other-MoE", modelID} }})
	resp, err := ts.Client().Get(ts.URL + "/v1/models")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var v map[string]any
	json.NewDecoder(resp.Body).Decode(&v)
	data := v["data"].([]any)
	if len(data) != 2 || get(data, 0, "id") != modelID || get(data, 1, "id") != "org/Other-MoE" || get(data, 0, "object") != "model" {
		t.Errorf("models %v", v)
	}
}

func oaiToolRequest(stream bool) string {
	return fmt.Sprintf(`{"messages":[{"role":"user","content":"Weather in Paris?"}],"tools":[%s],"stream":%v}`, weatherTool, stream)
}

func TestOpenAIToolCalls(t *testing.T) {
	for _, format := range formats {
		t.Run(format, func(t *testing.T) {
			ts := start(t, fake(format), server.Config{})
			v := postJSON(t, ts.URL+"/v1/chat/completions", oaiToolRequest(false), 200)
			msg := get(v, "choices", 0, "message")
			if get(msg, "content") != "Let me check." || get(v, "choices", 0, "finish_reason") != "tool_calls" {
				t.Fatalf("message %v, finish %v", msg, get(v, "choices", 0, "finish_reason"))
			}
			call := get(msg, "tool_calls", 0)
			if get(call, "type") != "function" || get(call, "function", "name") != "get_weather" || !strings.HasPrefix(get(call, "id").(string), "call_") {
				t.Fatalf("tool call %v", call)
			}
			jsonEqual(t, get(call, "function", "arguments").(string), `{"city":"Paris"}`)

			var text, args, name, id string
			var finish any
			for _, e := range streamEvents(t, ts.URL+"/v1/chat/completions", oaiToolRequest(true)) {
				if e.data == "[DONE]" {
					continue
				}
				c := e.json(t)
				d := get(c, "choices", 0, "delta")
				if s, ok := get(d, "content").(string); ok {
					text += s
				}
				if tc := get(d, "tool_calls", 0); tc != nil {
					if n, ok := get(tc, "function", "name").(string); ok {
						name, id = n, get(tc, "id").(string)
					}
					args += get(tc, "function", "arguments").(string)
				}
				if f := get(c, "choices", 0, "finish_reason"); f != nil {
					finish = f
				}
			}
			if text != "Let me check." || name != "get_weather" || id == "" || finish != "tool_calls" {
				t.Fatalf("streamed text %q, call %q %q, finish %v", text, name, id, finish)
			}
			jsonEqual(t, args, `{"city":"Paris"}`)
		})
	}
}

// A tool-call round trip: the assistant's call and the tool's result reach
// the template, and the answer uses it.
func TestOpenAIToolResult(t *testing.T) {
	b := fake("qwen3")
	ts := start(t, b, server.Config{})
	body := `{"messages":[{"role":"user","content":"Weather in Paris?"},
		{"role":"assistant","content":null,"tool_calls":[{"id":"call_1","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Paris\"}"}}]},
		{"role":"tool","tool_call_id":"call_1","content":"sunny"}],"tools":[` + weatherTool + `]}`
	v := postJSON(t, ts.URL+"/v1/chat/completions", body, 200)
	if get(v, "choices", 0, "message", "content") != "It is sunny in Paris." {
		t.Errorf("answer %v", get(v, "choices", 0, "message"))
	}
}

func TestOpenAIThinking(t *testing.T) {
	ts := start(t, fake("qwen3"), server.Config{})
	v := postJSON(t, ts.URL+"/v1/chat/completions",
		`{"messages":[{"role":"user","content":"hi"}],"chat_template_kwargs":{"enable_thinking":true}}`, 200)
	msg := get(v, "choices", 0, "message")
	if get(msg, "reasoning_content") != "The user greets me." || get(msg, "content") != "Hello! You said: hi" {
		t.Errorf("message %v", msg)
	}
}
