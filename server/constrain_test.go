package server_test

import (
	"context"
	"encoding/json"
	"io"
	"math"
	"math/rand/v2"
	"net/http"
	"strings"
	"testing"

	"github.com/mlx-moe/mlx-moe/server"
	"github.com/mlx-moe/mlx-moe/server/servertest"
)

// babbler is a byte-level model that writes random printable bytes and
// never ends on its own: only the logits mask can give its output a shape.
// Token i < 256 is byte i; 256 is end of sequence.
type babbler struct {
	*servertest.Backend
	eos int
}

func newBabbler(format string) *babbler {
	return &babbler{Backend: fake(format), eos: 256}
}

func (b *babbler) TokenBytes() ([][]byte, []int) {
	toks := make([][]byte, 257)
	for c := 0x20; c < 0x7F; c++ {
		toks[c] = []byte{byte(c)}
	}
	toks['\n'] = []byte{'\n'}
	for c := 0x80; c < 0x100; c++ { // so markup such as DeepSeek's can be spelled
		toks[c] = []byte{byte(c)}
	}
	return toks, []int{b.eos}
}

func (b *babbler) Generate(ctx context.Context, req server.GenRequest, emit func(server.Token) error) (server.GenResult, error) {
	rng := rand.New(rand.NewPCG(uint64(len(req.Prompt)), 7))
	res := server.GenResult{PromptTokens: len(req.Prompt), Finish: server.FinishLength}
	var ids []int
	logits := make([]float32, 257)
	for res.CompletionTokens < req.MaxTokens {
		for i := range logits {
			logits[i] = float32(rng.NormFloat64())
			if i == b.eos || i < 0x20 && i != '\n' || i >= 0x7F {
				logits[i] = -5 // unlikely, never impossible
			}
		}
		if req.LogitsMask != nil {
			req.LogitsMask(ids, logits)
		}
		best := 0
		for i, l := range logits {
			if l > logits[best] {
				best = i
			}
		}
		if math.IsInf(float64(logits[best]), -1) {
			return res, nil
		}
		res.CompletionTokens++
		if best == b.eos {
			res.Finish = server.FinishEOS
			return res, nil
		}
		ids = append(ids, best)
		// Raw bytes: the mask only lets whole UTF-8 characters through.
		if err := emit(server.Token{ID: best, Text: string([]byte{byte(best)})}); err != nil {
			return res, err
		}
	}
	return res, nil
}

const personSchema = `{"type":"object","properties":{"name":{"type":"string","maxLength":20},"age":{"type":"integer"},` +
	`"tags":{"type":"array","items":{"enum":["a","b"]},"maxItems":3}},"required":["name","age","tags"],"additionalProperties":false}`

// checkPerson parses s as a person and checks its shape.
func checkPerson(t *testing.T, s string) {
	t.Helper()
	var p struct {
		Name *string  `json:"name"`
		Age  *int     `json:"age"`
		Tags []string `json:"tags"`
	}
	dec := json.NewDecoder(strings.NewReader(s))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil || p.Name == nil || p.Age == nil || p.Tags == nil || len(*p.Name) > 20 {
		t.Fatalf("not a person: %q (%v)", s, err)
	}
	for _, tag := range p.Tags {
		if tag != "a" && tag != "b" {
			t.Fatalf("tag %q not in the enum: %q", tag, s)
		}
	}
}

func TestResponseFormatJSONSchema(t *testing.T) {
	ts := start(t, newBabbler("qwen3"), server.Config{})
	for i := range 5 {
		v := postJSON(t, ts.URL+"/v1/chat/completions", `{"model":"m","max_tokens":300,"messages":[{"role":"user","content":"person `+strings.Repeat("x", i)+`"}],
			"response_format":{"type":"json_schema","json_schema":{"name":"person","strict":true,"schema":`+personSchema+`}}}`, 200)
		choice := v["choices"].([]any)[0].(map[string]any)
		checkPerson(t, choice["message"].(map[string]any)["content"].(string))
		if choice["finish_reason"] != "stop" {
			t.Errorf("finish_reason %v, want stop", choice["finish_reason"])
		}
	}
}

func TestResponseFormatJSONObjectAndTextFormat(t *testing.T) {
	ts := start(t, newBabbler("qwen3"), server.Config{})
	v := postJSON(t, ts.URL+"/v1/chat/completions", `{"model":"m","max_tokens":400,"messages":[{"role":"user","content":"x"}],"response_format":{"type":"json_object"}}`, 200)
	content := v["choices"].([]any)[0].(map[string]any)["message"].(map[string]any)["content"].(string)
	var obj map[string]any
	if err := json.Unmarshal([]byte(content), &obj); err != nil {
		t.Fatalf("json_object: %q: %v", content, err)
	}
	r := postJSON(t, ts.URL+"/v1/responses", `{"model":"m","input":"x","max_output_tokens":300,"text":{"format":{"type":"json_schema","name":"p","schema":`+personSchema+`}}}`, 200)
	item := r["output"].([]any)[0].(map[string]any)
	checkPerson(t, item["content"].([]any)[0].(map[string]any)["text"].(string))
}

const weatherTools = `[{"type":"function","function":{"name":"get_weather","parameters":{"type":"object","properties":{"city":{"type":"string","maxLength":12},"unit":{"enum":["c","f"]}},"required":["city","unit"]}}},
	{"type":"function","function":{"name":"get_time","parameters":{"type":"object","properties":{"zone":{"type":"string","format":"uuid"}},"required":["zone"]}}}]`

func checkArgs(t *testing.T, name, args string) {
	t.Helper()
	var a map[string]any
	if err := json.Unmarshal([]byte(args), &a); err != nil {
		t.Fatalf("%s arguments %q: %v", name, args, err)
	}
	switch name {
	case "get_weather":
		if _, ok := a["city"].(string); !ok || a["unit"] != "c" && a["unit"] != "f" {
			t.Fatalf("get_weather arguments %q", args)
		}
	case "get_time":
		if z, ok := a["zone"].(string); !ok || len(z) != 36 {
			t.Fatalf("get_time arguments %q", args)
		}
	default:
		t.Fatalf("call to unknown tool %q", name)
	}
}

func TestForcedToolChoice(t *testing.T) {
	for _, format := range []string{"qwen3", "deepseek-v3", "qwen3-coder", "glm"} {
		ts := start(t, newBabbler(format), server.Config{})
		for _, choice := range []string{`"required"`, `{"type":"function","function":{"name":"get_time"}}`} {
			v := postJSON(t, ts.URL+"/v1/chat/completions", `{"model":"m","max_tokens":300,"messages":[{"role":"user","content":"go"}],"tools":`+weatherTools+`,"tool_choice":`+choice+`}`, 200)
			c := v["choices"].([]any)[0].(map[string]any)
			calls, _ := c["message"].(map[string]any)["tool_calls"].([]any)
			if len(calls) != 1 || c["finish_reason"] != "tool_calls" {
				t.Fatalf("%s %s: %v", format, choice, c)
			}
			fn := calls[0].(map[string]any)["function"].(map[string]any)
			checkArgs(t, fn["name"].(string), fn["arguments"].(string))
			if strings.HasPrefix(choice, "{") && fn["name"] != "get_time" {
				t.Errorf("%s: named get_time, called %v", format, fn["name"])
			}
		}
	}
	// Anthropic: tool_choice tool, through the same markup.
	ts := start(t, newBabbler("qwen3"), server.Config{})
	v := postJSON(t, ts.URL+"/v1/messages", `{"model":"m","max_tokens":300,"messages":[{"role":"user","content":"go"}],
		"tools":[{"name":"get_weather","input_schema":{"type":"object","properties":{"city":{"type":"string","maxLength":12},"unit":{"enum":["c","f"]}},"required":["city","unit"]}}],
		"tool_choice":{"type":"tool","name":"get_weather"}}`, 200, "anthropic-version", "2023-06-01")
	if v["stop_reason"] != "tool_use" {
		t.Fatalf("stop_reason %v: %v", v["stop_reason"], v)
	}
	for _, b := range v["content"].([]any) {
		if b := b.(map[string]any); b["type"] == "tool_use" {
			args, _ := json.Marshal(b["input"])
			checkArgs(t, b["name"].(string), string(args))
		}
	}
}

func TestConstrainRefusals(t *testing.T) {
	ts := start(t, newBabbler("qwen3"), server.Config{})
	for _, tc := range []struct{ body, want string }{
		{`"response_format":{"type":"json_schema","json_schema":{"name":"p","schema":{"type":"string","pattern":"a+"}}}`, `\"pattern\"`},
		{`"response_format":{"type":"json_schema","json_schema":{"name":"p","schema":{"type":"object","properties":{"n":{"type":"number","minimum":1}}}}}`, `\"minimum\"`},
		{`"response_format":{"type":"xml"}`, `response_format.type`},
		{`"tools":[{"type":"function","function":{"name":"f","parameters":{"type":"object","not":{}}}}],"tool_choice":"required"`, `\"not\"`},
	} {
		body := `{"model":"m","messages":[{"role":"user","content":"x"}],` + tc.body + `}`
		resp := post(t, ts.URL+"/v1/chat/completions", body)
		raw := readAll(t, resp)
		if resp.StatusCode != 400 || !strings.Contains(raw, tc.want) {
			t.Errorf("%s: status %d %s, want 400 naming %s", tc.body, resp.StatusCode, raw, tc.want)
		}
	}
	// A format without a constrained form, a qwen3-coder parameter with
	// two types, and a backend that cannot mask.
	none := start(t, newBabbler("none"), server.Config{})
	resp := post(t, none.URL+"/v1/chat/completions", `{"model":"m","messages":[{"role":"user","content":"x"}],"tools":`+weatherTools+`,"tool_choice":"required"}`)
	if raw := readAll(t, resp); resp.StatusCode != 400 || !strings.Contains(raw, "none tool-call format") {
		t.Errorf("forced call without a tool-call format: %d %s", resp.StatusCode, raw)
	}
	coder := start(t, newBabbler("qwen3-coder"), server.Config{})
	resp = post(t, coder.URL+"/v1/chat/completions", `{"model":"m","messages":[{"role":"user","content":"x"}],"tool_choice":"required",
		"tools":[{"type":"function","function":{"name":"f","parameters":{"type":"object","properties":{"v":{"type":["string","integer"]}}}}}]}`)
	if raw := readAll(t, resp); resp.StatusCode != 400 || !strings.Contains(raw, `\"type\"`) {
		t.Errorf("qwen3-coder two-typed parameter: %d %s", resp.StatusCode, raw)
	}
	plain := start(t, struct{ server.Backend }{fake("qwen3")}, server.Config{}) // hides TokenBytes
	resp = post(t, plain.URL+"/v1/chat/completions", `{"model":"m","messages":[{"role":"user","content":"x"}],"response_format":{"type":"json_object"}}`)
	if raw := readAll(t, resp); resp.StatusCode != 400 || !strings.Contains(raw, "constrained decoding") {
		t.Errorf("backend without a vocabulary: %d %s", resp.StatusCode, raw)
	}
}

func readAll(t *testing.T, resp *http.Response) string {
	t.Helper()
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(raw)
}

// A prompt that opens <think> gets an empty reasoning, closed before the
// constrained answer.
func TestResponseFormatAfterThinking(t *testing.T) {
	ts := start(t, newBabbler("qwen3"), server.Config{})
	v := postJSON(t, ts.URL+"/v1/chat/completions", `{"model":"m","max_tokens":300,"messages":[{"role":"user","content":"p"}],
		"chat_template_kwargs":{"enable_thinking":true},
		"response_format":{"type":"json_schema","json_schema":{"name":"person","schema":`+personSchema+`}}}`, 200)
	msg := v["choices"].([]any)[0].(map[string]any)["message"].(map[string]any)
	checkPerson(t, msg["content"].(string))
	if r, _ := msg["reasoning_content"].(string); strings.TrimSpace(r) != "" {
		t.Errorf("reasoning %q, want none", r)
	}
}

// allowed_tools with mode "required" forces a call to one of the allowed
// functions (Responses' shape and chat's); mode "auto" over the same set
// does not force one.
func TestAllowedToolsRequired(t *testing.T) {
	ts := start(t, newBabbler("qwen3"), server.Config{})
	respTools := `[{"type":"function","name":"get_weather","parameters":{"type":"object","properties":{"city":{"type":"string","maxLength":12},"unit":{"enum":["c","f"]}},"required":["city","unit"]}},
		{"type":"function","name":"get_time","parameters":{"type":"object","properties":{"zone":{"type":"string","format":"uuid"}},"required":["zone"]}}]`
	for i := range 3 {
		r := postJSON(t, ts.URL+"/v1/responses", `{"model":"m","max_output_tokens":300,"input":"go`+strings.Repeat("!", i)+`","tools":`+respTools+`,
			"tool_choice":{"type":"allowed_tools","mode":"required","tools":[{"type":"function","name":"get_time"},{"type":"web_search"}]}}`, 200)
		var calls []map[string]any
		for _, it := range r["output"].([]any) {
			if it := it.(map[string]any); it["type"] == "function_call" {
				calls = append(calls, it)
			}
		}
		if len(calls) != 1 || calls[0]["name"] != "get_time" {
			t.Fatalf("responses allowed_tools required [get_time]: output %v", r["output"])
		}
		checkArgs(t, "get_time", calls[0]["arguments"].(string))
	}
	named := map[string]bool{}
	for i := range 6 {
		v := postJSON(t, ts.URL+"/v1/chat/completions", `{"model":"m","max_tokens":300,"messages":[{"role":"user","content":"go`+strings.Repeat("?", i)+`"}],"tools":`+weatherTools+`,
			"tool_choice":{"type":"allowed_tools","allowed_tools":{"mode":"required","tools":[{"type":"function","function":{"name":"get_weather"}},{"type":"function","function":{"name":"get_time"}}]}}}`, 200)
		c := v["choices"].([]any)[0].(map[string]any)
		calls, _ := c["message"].(map[string]any)["tool_calls"].([]any)
		if len(calls) != 1 || c["finish_reason"] != "tool_calls" {
			t.Fatalf("chat allowed_tools required: %v", c)
		}
		fn := calls[0].(map[string]any)["function"].(map[string]any)
		checkArgs(t, fn["name"].(string), fn["arguments"].(string))
		named[fn["name"].(string)] = true
	}
	if len(named) != 2 {
		t.Errorf("allowed_tools required over two functions: only %v called in 6 requests", named)
	}
	// mode auto is not forced: the babbler writes text, never valid markup.
	v := postJSON(t, ts.URL+"/v1/chat/completions", `{"model":"m","max_tokens":40,"messages":[{"role":"user","content":"go"}],"tools":`+weatherTools+`,
		"tool_choice":{"type":"allowed_tools","allowed_tools":{"mode":"auto","tools":[{"type":"function","function":{"name":"get_time"}}]}}}`, 200)
	if c := v["choices"].([]any)[0].(map[string]any); c["finish_reason"] != "length" {
		t.Errorf("allowed_tools auto: finish %v, want length (unconstrained babble)", c["finish_reason"])
	}
	// required over no served function is refused.
	resp := post(t, ts.URL+"/v1/chat/completions", `{"model":"m","messages":[{"role":"user","content":"x"}],"tools":`+weatherTools+`,
		"tool_choice":{"type":"allowed_tools","allowed_tools":{"mode":"required","tools":[{"type":"web_search"}]}}}`)
	if raw := readAll(t, resp); resp.StatusCode != 400 || !strings.Contains(raw, "no tools are offered") {
		t.Errorf("allowed_tools required over no function: %d %s", resp.StatusCode, raw)
	}
}
