package server_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/mlx-moe/mlx-moe/server"
)

func TestMessages(t *testing.T) {
	b := fake("qwen3")
	ts := start(t, b, server.Config{})
	body := `{"model":"` + modelID + `","max_tokens":50,"system":[{"type":"text","text":"Be brief."}],
		"messages":[{"role":"user","content":"hi"}],"temperature":0.5,"top_p":0.9,"top_k":5}`
	v := postJSON(t, ts.URL+"/v1/messages", body, 200)
	if get(v, "type") != "message" || get(v, "role") != "assistant" || get(v, "stop_reason") != "end_turn" || get(v, "stop_sequence") != nil {
		t.Errorf("message %v", v)
	}
	if get(v, "content", 0, "type") != "text" || get(v, "content", 0, "text") != "Hello! You said: hi" || get(v, "content", 1) != nil {
		t.Errorf("content %v", get(v, "content"))
	}
	count := postJSON(t, ts.URL+"/v1/messages/count_tokens", body, 200)
	in := num(get(v, "usage", "input_tokens")) + num(get(v, "usage", "cache_read_input_tokens"))
	if n := num(count["input_tokens"]); n != in || n != len("<|system|>Be brief.\n<|user|>hi\n<|assistant|>") {
		t.Errorf("count_tokens %d, usage input %d", n, in)
	}
	if num(get(v, "usage", "output_tokens")) != 7 {
		t.Errorf("usage %v", get(v, "usage"))
	}
	req := b.Requests()[0]
	if req.MaxTokens != 50 || req.Sampling.Temperature != 0.5 || req.Sampling.TopP != 0.9 || req.Sampling.TopK != 5 {
		t.Errorf("generation request %+v", req)
	}
}

// eventNames lists the stream's event names with consecutive deltas and
// pings folded, for comparing sequences.
func eventNames(t *testing.T, events []sseEvent) string {
	var names []string
	for _, e := range events {
		if got := get(e.json(t), "type"); got != e.name {
			t.Fatalf("event %q carries type %v", e.name, got)
		}
		if e.name == "ping" || len(names) > 0 && names[len(names)-1] == e.name && e.name == "content_block_delta" {
			continue
		}
		names = append(names, e.name)
	}
	return strings.Join(names, " ")
}

func TestMessagesStream(t *testing.T) {
	ts := start(t, fake("qwen3"), server.Config{})
	events := streamEvents(t, ts.URL+"/v1/messages",
		`{"model":"Tiny-MoE-4bit","max_tokens":50,"messages":[{"role":"user","content":"hi"}],"stream":true,"thinking":{"type":"enabled","budget_tokens":1024}}`)
	want := "message_start content_block_start content_block_delta content_block_stop content_block_start content_block_delta content_block_stop message_delta message_stop"
	if got := eventNames(t, events); got != want {
		t.Fatalf("events:\n%s\nwant\n%s", got, want)
	}
	if events[1].name != "ping" {
		t.Errorf("no ping after message_start: %v", events[1])
	}
	blocks := map[int]string{}
	var types []string
	for _, e := range events {
		v := e.json(t)
		switch e.name {
		case "content_block_start":
			types = append(types, get(v, "content_block", "type").(string))
		case "content_block_delta":
			d := get(v, "delta")
			switch get(d, "type") {
			case "thinking_delta":
				blocks[num(v["index"])] += get(d, "thinking").(string)
			case "text_delta":
				blocks[num(v["index"])] += get(d, "text").(string)
			}
		case "message_delta":
			if get(v, "delta", "stop_reason") != "end_turn" || num(get(v, "usage", "output_tokens")) == 0 {
				t.Errorf("message_delta %s", e.data)
			}
		}
	}
	if strings.Join(types, ",") != "thinking,text" || blocks[0] != "The user greets me." || blocks[1] != "Hello! You said: hi" {
		t.Errorf("blocks %v %v", types, blocks)
	}
}

func TestMessagesStopSequence(t *testing.T) {
	ts := start(t, fake("qwen3"), server.Config{})
	v := postJSON(t, ts.URL+"/v1/messages", `{"model":"Tiny-MoE-4bit","max_tokens":50,"messages":[{"role":"user","content":"hi"}],"stop_sequences":["said"]}`, 200)
	if get(v, "stop_reason") != "stop_sequence" || get(v, "stop_sequence") != "said" || get(v, "content", 0, "text") != "Hello! You " {
		t.Errorf("message %v", v)
	}
	v = postJSON(t, ts.URL+"/v1/messages", `{"model":"Tiny-MoE-4bit","max_tokens":3,"messages":[{"role":"user","content":"hi"}]}`, 200)
	if get(v, "stop_reason") != "max_tokens" || get(v, "content", 0, "text") != "Hello! Yo" {
		t.Errorf("message %v", v)
	}
}

func antToolRequest(stream bool) string {
	return fmt.Sprintf(`{"model":"Tiny-MoE-4bit","max_tokens":100,"messages":[{"role":"user","content":"Weather in Paris?"}],"tools":[%s],"stream":%v}`, antWeatherTool, stream)
}

func TestAnthropicToolCalls(t *testing.T) {
	for _, format := range formats {
		t.Run(format, func(t *testing.T) {
			ts := start(t, fake(format), server.Config{})
			v := postJSON(t, ts.URL+"/v1/messages", antToolRequest(false), 200)
			if get(v, "stop_reason") != "tool_use" || get(v, "content", 0, "text") != "Let me check." {
				t.Fatalf("message %v", v)
			}
			use := get(v, "content", 1)
			if get(use, "type") != "tool_use" || get(use, "name") != "get_weather" || get(use, "input", "city") != "Paris" ||
				!strings.HasPrefix(get(use, "id").(string), "toolu_") {
				t.Fatalf("tool_use block %v", use)
			}

			events := streamEvents(t, ts.URL+"/v1/messages", antToolRequest(true))
			want := "message_start content_block_start content_block_delta content_block_stop content_block_start content_block_delta content_block_stop message_delta message_stop"
			if got := eventNames(t, events); got != want {
				t.Fatalf("events:\n%s\nwant\n%s", got, want)
			}
			var partial string
			for _, e := range events {
				v := e.json(t)
				switch e.name {
				case "content_block_start":
					if b := get(v, "content_block"); get(b, "type") == "tool_use" && (get(b, "name") != "get_weather" || num(v["index"]) != 1) {
						t.Errorf("tool_use start %s", e.data)
					}
				case "content_block_delta":
					if get(v, "delta", "type") == "input_json_delta" {
						partial += get(v, "delta", "partial_json").(string)
					}
				case "message_delta":
					if get(v, "delta", "stop_reason") != "tool_use" {
						t.Errorf("message_delta %s", e.data)
					}
				}
			}
			jsonEqual(t, partial, `{"city":"Paris"}`)
		})
	}
}

func TestAnthropicToolResult(t *testing.T) {
	b := fake("qwen3")
	ts := start(t, b, server.Config{})
	body := `{"model":"Tiny-MoE-4bit","max_tokens":100,"tools":[` + antWeatherTool + `],"messages":[
		{"role":"user","content":"Weather in Paris?"},
		{"role":"assistant","content":[{"type":"thinking","thinking":"need a tool","signature":"s"},{"type":"text","text":"Let me check."},
			{"type":"tool_use","id":"toolu_1","name":"get_weather","input":{"city":"Paris"}}]},
		{"role":"user","content":[{"type":"tool_result","tool_use_id":"toolu_1","content":[{"type":"text","text":"sunny"}]},{"type":"text","text":"thanks"}]}]}`
	v := postJSON(t, ts.URL+"/v1/messages", body, 200)
	if get(v, "content", 0, "text") != "It is sunny in Paris." {
		t.Errorf("answer %v", v)
	}
	count := postJSON(t, ts.URL+"/v1/messages/count_tokens", body, 200)
	want := `<|tools|>get_weather({"properties":{"city":{"type":"string"}},"required":["city"],"type":"object"}) ` + "\n" +
		"<|user|>Weather in Paris?\n" +
		`<|assistant|><think>need a tool</think>Let me check.<call id=toolu_1>get_weather {"city":"Paris"}</call>` + "\n" +
		"<|tool|>sunny (for toolu_1 get_weather)\n<|user|>thanks\n<|assistant|>"
	if n := num(count["input_tokens"]); n != len(want) {
		t.Errorf("count_tokens %d, want %d (the rendering of the converted conversation)", n, len(want))
	}
}

// Claude Code's per-request attribution line must not defeat prefix reuse.
func TestBillingHeaderNormalised(t *testing.T) {
	b := fake("qwen3")
	ts := start(t, b, server.Config{})
	body := `{"model":"Tiny-MoE-4bit","max_tokens":5,"system":[{"type":"text","text":"x-anthropic-billing-header: cc_version=2.1.177.%s; cc_entrypoint=cli; cch=%s;"},
		{"type":"text","text":"You are Claude Code."}],"messages":[{"role":"user","content":"hi"}]}`
	postJSON(t, ts.URL+"/v1/messages", fmt.Sprintf(body, "01c", "36ee5"), 200)
	v := postJSON(t, ts.URL+"/v1/messages", fmt.Sprintf(body, "f51", "0aaa9"), 200)
	prompt := "<|system|>You are Claude Code.\n<|user|>hi\n<|assistant|>"
	if c := num(get(v, "usage", "cache_read_input_tokens")); c != len(prompt)-1 {
		t.Errorf("second request reused %d prompt tokens, want %d (all but the last)", c, len(prompt)-1)
	}
	if in := num(get(v, "usage", "input_tokens")); in != 1 {
		t.Errorf("input_tokens %d, want 1", in)
	}
}

// Anthropic's server-side tools are not offered to the model (and do not
// fail the request).
func TestServerToolsSkipped(t *testing.T) {
	ts := start(t, fake("qwen3"), server.Config{})
	body := `{"model":"Tiny-MoE-4bit","messages":[{"role":"user","content":"hi"}],"tools":[` + antWeatherTool + `,{"type":"web_search_20250305","name":"web_search","max_uses":3}]}`
	with := num(postJSON(t, ts.URL+"/v1/messages/count_tokens", body, 200)["input_tokens"])
	only := num(postJSON(t, ts.URL+"/v1/messages/count_tokens", strings.Replace(body, `,{"type":"web_search_20250305","name":"web_search","max_uses":3}`, "", 1), 200)["input_tokens"])
	if with != only {
		t.Errorf("a server tool changed the prompt: %d tokens, %d without it", with, only)
	}
}
