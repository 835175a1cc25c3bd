package server_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/mlx-moe/mlx-moe/server"
)

func TestResponses(t *testing.T) {
	b := fake("qwen3")
	ts := start(t, b, server.Config{})
	v := postJSON(t, ts.URL+"/v1/responses", `{"model":"gpt-5-codex","instructions":"Be brief.","input":"hi","store":false,
		"max_output_tokens":50,"temperature":0.5,"include":["reasoning.encrypted_content"],"prompt_cache_key":"k"}`, 200)
	if v["object"] != "response" || v["status"] != "completed" || v["model"] != modelID || !strings.HasPrefix(v["id"].(string), "resp_") {
		t.Errorf("response %v", v)
	}
	if get(v, "output", 0, "type") != "message" || get(v, "output", 0, "role") != "assistant" || get(v, "output", 0, "status") != "completed" ||
		get(v, "output", 0, "content", 0, "type") != "output_text" || get(v, "output", 0, "content", 0, "text") != "Hello! You said: hi" {
		t.Errorf("output %v", get(v, "output"))
	}
	prompt := len("<|system|>Be brief.\n<|user|>hi\n<|assistant|>")
	if num(get(v, "usage", "input_tokens")) != prompt || num(get(v, "usage", "output_tokens")) != 7 ||
		num(get(v, "usage", "total_tokens")) != prompt+7 || get(v, "usage", "input_tokens_details", "cached_tokens") == nil {
		t.Errorf("usage %v", get(v, "usage"))
	}
	if req := b.Requests()[0]; req.MaxTokens != 50 || req.Sampling.Temperature != 0.5 {
		t.Errorf("generation request %+v", req)
	}
	// At max_output_tokens the response is incomplete.
	v = postJSON(t, ts.URL+"/v1/responses", `{"input":"hi","max_output_tokens":2}`, 200)
	if v["status"] != "incomplete" || get(v, "incomplete_details", "reason") != "max_output_tokens" {
		t.Errorf("incomplete %v", v)
	}
	postJSON(t, ts.URL+"/v1/responses", `{"input":5}`, 400)
	postJSON(t, ts.URL+"/v1/responses", `{"input":[{"type":"message","role":"robot","content":"x"}]}`, 400)
	postJSON(t, ts.URL+"/v1/responses", `{"input":"hi","max_output_tokens":0}`, 400)
}

// respEventNames lists event types with runs of the same delta folded, and
// checks the numbering and that each event carries its own type.
func respEventNames(t *testing.T, events []sseEvent) []string {
	t.Helper()
	var names []string
	for i, e := range events {
		v := e.json(t)
		if v["type"] != e.name || num(v["sequence_number"]) != i {
			t.Fatalf("event %d %q: type %v, sequence_number %v", i, e.name, v["type"], v["sequence_number"])
		}
		if n := len(names); n > 0 && names[n-1] == e.name && strings.HasSuffix(e.name, ".delta") {
			continue
		}
		names = append(names, e.name)
	}
	return names
}

func TestResponsesStream(t *testing.T) {
	ts := start(t, fake("qwen3"), server.Config{})
	events := streamEvents(t, ts.URL+"/v1/responses", `{"input":[{"role":"user","content":[{"type":"input_text","text":"hi"}]}],
		"reasoning":{"effort":"high","summary":"auto"},"stream":true}`)
	want := []string{"response.created", "response.in_progress",
		"response.output_item.added", "response.reasoning_summary_part.added", "response.reasoning_summary_text.delta",
		"response.reasoning_summary_text.done", "response.reasoning_summary_part.done", "response.output_item.done",
		"response.output_item.added", "response.content_part.added", "response.output_text.delta", "response.output_text.done",
		"response.content_part.done", "response.output_item.done", "response.completed"}
	if got := respEventNames(t, events); strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("events\n%v\nwant\n%v", got, want)
	}
	var text strings.Builder
	for _, e := range events {
		if e.name == "response.output_text.delta" {
			text.WriteString(e.json(t)["delta"].(string))
		}
	}
	done := events[len(events)-1].json(t)
	if text.String() != "Hello! You said: hi" || get(done, "response", "output", 1, "content", 0, "text") != text.String() ||
		get(done, "response", "output", 0, "summary", 0, "text") != "The user greets me." || get(done, "response", "status") != "completed" {
		t.Errorf("streamed %q, final %v", text.String(), done)
	}
}

const respWeather = `{"type":"function","name":"get_weather","description":"Weather in a city",
	"parameters":{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}}`

// A Codex-shaped round trip: a function call streamed, then its output sent
// back as input items; web_search tools are not offered to the model.
func TestResponsesToolRoundTrip(t *testing.T) {
	for _, format := range formats {
		t.Run(format, func(t *testing.T) {
			b := fake(format)
			ts := start(t, b, server.Config{})
			events := streamEvents(t, ts.URL+"/v1/responses", `{"input":[{"type":"message","role":"developer","content":"Use tools."},
				{"type":"message","role":"user","content":[{"type":"input_text","text":"Weather in Paris?"}]}],
				"tools":[`+respWeather+`,{"type":"web_search"}],"tool_choice":"auto","parallel_tool_calls":false,"store":false,"stream":true}`)
			want := []string{"response.created", "response.in_progress",
				"response.output_item.added", "response.content_part.added", "response.output_text.delta", "response.output_text.done",
				"response.content_part.done", "response.output_item.done",
				"response.output_item.added", "response.function_call_arguments.delta", "response.function_call_arguments.done",
				"response.output_item.done", "response.completed"}
			if got := respEventNames(t, events); strings.Join(got, " ") != strings.Join(want, " ") {
				t.Fatalf("events\n%v\nwant\n%v", got, want)
			}
			final := events[len(events)-1].json(t)
			call := get(final, "response", "output", 1).(map[string]any)
			jsonEqual(t, call["arguments"].(string), `{"city":"Paris"}`)
			if call["type"] != "function_call" || call["name"] != "get_weather" || !strings.HasPrefix(call["call_id"].(string), "call_") {
				t.Fatalf("call %v", call)
			}
			if strings.Contains(renderedPrompt(t, b.Requests()), "web_search") {
				t.Error("web_search reached the model")
			}
			// Codex sends the whole conversation back with the output.
			v := postJSON(t, ts.URL+"/v1/responses", `{"input":[{"role":"user","content":"Weather in Paris?"},
				{"type":"reasoning","summary":[{"type":"summary_text","text":"Need the tool."}],"encrypted_content":null},
				{"type":"message","role":"assistant","content":[{"type":"output_text","text":"Let me check."}]},
				{"type":"function_call","call_id":"`+call["call_id"].(string)+`","name":"get_weather","arguments":"{\"city\":\"Paris\"}"},
				{"type":"function_call_output","call_id":"`+call["call_id"].(string)+`","output":"sunny"}],
				"tools":[`+respWeather+`]}`, 200)
			if get(v, "output", 0, "content", 0, "text") != "It is sunny in Paris." {
				t.Errorf("answer %v", get(v, "output"))
			}
			prompt := renderedPrompt(t, b.Requests())
			if !strings.Contains(prompt, `<|assistant|><think>Need the tool.</think>Let me check.<call id=`+call["call_id"].(string)+`>get_weather {"city":"Paris"}</call>`) ||
				!strings.Contains(prompt, "<|tool|>sunny (for "+call["call_id"].(string)+" get_weather)") {
				t.Errorf("rendered %q", prompt)
			}
		})
	}
}

// Functions inside a namespace are offered by name and called back with
// their namespace.
func TestResponsesNamespace(t *testing.T) {
	ts := start(t, fake("qwen3"), server.Config{})
	v := postJSON(t, ts.URL+"/v1/responses", `{"input":"Weather in Paris?","tools":[{"type":"namespace","name":"wx","description":"weather",
		"tools":[`+respWeather+`]}]}`, 200)
	if get(v, "output", 1, "name") != "get_weather" || get(v, "output", 1, "namespace") != "wx" {
		t.Errorf("output %v", get(v, "output"))
	}
}

// previous_response_id continues a stored response; store false keeps
// nothing.
func TestResponsesPrevious(t *testing.T) {
	b := fake("qwen3")
	ts := start(t, b, server.Config{})
	first := postJSON(t, ts.URL+"/v1/responses", `{"input":"hi","instructions":"Be brief."}`, 200)
	postJSON(t, ts.URL+"/v1/responses", `{"input":"again","previous_response_id":"`+first["id"].(string)+`"}`, 200)
	want := "<|user|>hi\n<|assistant|>Hello! You said: hi\n<|user|>again\n<|assistant|>"
	if got := renderedPrompt(t, b.Requests()); got != want {
		t.Errorf("rendered %q, want %q", got, want)
	}
	unstored := postJSON(t, ts.URL+"/v1/responses", `{"input":"hi","store":false}`, 200)
	v := postJSON(t, ts.URL+"/v1/responses", `{"input":"again","previous_response_id":"`+unstored["id"].(string)+`"}`, 404)
	if get(v, "error", "param") != "previous_response_id" {
		t.Errorf("error %v", v)
	}
}

// Stored responses stay within ResponseStoreBytes: the least recently used
// is dropped first.
func TestResponsesStoreBound(t *testing.T) {
	ts := start(t, fake("qwen3"), server.Config{ResponseStoreBytes: 600})
	var ids []string
	for i := range 4 {
		v := postJSON(t, ts.URL+"/v1/responses", `{"input":"hello number `+strings.Repeat("x", i)+`"}`, 200)
		ids = append(ids, v["id"].(string))
	}
	// Each holds two messages of about 150 bytes: the last ones fit.
	postJSON(t, ts.URL+"/v1/responses", `{"input":"again","store":false,"previous_response_id":"`+ids[3]+`"}`, 200)
	postJSON(t, ts.URL+"/v1/responses", `{"input":"again","store":false,"previous_response_id":"`+ids[0]+`"}`, 404)
}

// A generation that fails mid-stream ends with response.failed carrying
// the error.
func TestResponsesStreamFailed(t *testing.T) {
	b := fake("qwen3")
	b.Fail = errors.New("device lost")
	ts := start(t, b, server.Config{})
	events := streamEvents(t, ts.URL+"/v1/responses", `{"input":"hi","stream":true}`)
	last := events[len(events)-1].json(t)
	if last["type"] != "response.failed" || get(last, "response", "status") != "failed" ||
		!strings.Contains(get(last, "response", "error", "message").(string), "device lost") {
		t.Errorf("last event %v", last)
	}
}

// tool_choice in the Responses API's shapes: a named function offers only
// that one; allowed_tools (Responses' shape or chat's) offers only the
// allowed functions, leaving out tool types not served here.
func TestResponsesToolChoice(t *testing.T) {
	b := fake("qwen3")
	ts := start(t, b, server.Config{})
	other := `{"type":"function","name":"get_time","parameters":{"type":"object","properties":{}}}`
	for _, c := range []struct{ choice, want, absent string }{
		{`{"type":"function","name":"get_time"}`, "<|tools|>get_time(", "get_weather"},
		{`{"type":"allowed_tools","mode":"auto","tools":[{"type":"function","name":"get_time"},{"type":"mcp","server_label":"x"}]}`, "<|tools|>get_time(", "get_weather"},
		{`{"type":"allowed_tools","allowed_tools":{"mode":"auto","tools":[{"type":"function","function":{"name":"get_weather"}}]}}`, "<|tools|>get_weather(", "get_time"},
		{`{"type":"allowed_tools","mode":"auto","tools":[]}`, "<|user|>", "get_"},
		{`{"type":"web_search"}`, "<|tools|>get_weather(", ""}, // both offered
		{`"none"`, "<|user|>", "get_"},
	} {
		postJSON(t, ts.URL+"/v1/responses", `{"input":"hi","tools":[`+respWeather+`,`+other+`],"tool_choice":`+c.choice+`}`, 200)
		if got := renderedPrompt(t, b.Requests()); !strings.HasPrefix(got, c.want) || c.absent != "" && strings.Contains(got, c.absent) {
			t.Errorf("tool_choice %s: rendered %q, want it to start with %q and hold no %q", c.choice, got, c.want, c.absent)
		}
	}
	for _, bad := range []string{
		`{"type":"function"}`, `"sometimes"`,
		`{"type":"allowed_tools","mode":"always","tools":[]}`,
		`{"type":"allowed_tools","mode":"auto","tools":[{"type":"function","name":"get_tide"}]}`,
		`{"type":"allowed_tools","mode":"auto","tools":[{"type":"function"}]}`,
	} {
		postJSON(t, ts.URL+"/v1/responses", `{"input":"hi","tools":[`+respWeather+`],"tool_choice":`+bad+`}`, 400)
	}
}
