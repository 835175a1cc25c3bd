package chat

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// goldenNow is the instant testdata/render_golden.py freezes strftime_now at.
var goldenNow = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func load(t *testing.T, dir string) *Template {
	t.Helper()
	tmpl, err := LoadTemplate(dir)
	if err != nil {
		t.Fatal(err)
	}
	tmpl.Now = func() time.Time { return goldenNow }
	return tmpl
}

func readJSON(t *testing.T, path string, v any) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

// TestQwen3Reference renders the conversations transformers rendered with the
// real Qwen3 tokenizer_config.json (../shared/tokenizers/reference.json,
// qwen3_chat), through both the JSON request and the Message API.
func TestQwen3Reference(t *testing.T) {
	var ref struct {
		Shared []map[string]json.RawMessage `json:"shared"`
	}
	readJSON(t, "testdata/qwen3_chat.json", &ref)
	if len(ref.Shared) != 8 {
		t.Fatalf("%d reference conversations, want 8", len(ref.Shared))
	}
	tmpl := load(t, "testdata/models/qwen3")
	for i, conv := range ref.Shared {
		var want string
		if err := json.Unmarshal(conv["rendered"], &want); err != nil {
			t.Fatal(err)
		}
		delete(conv, "rendered")
		req, err := json.Marshal(conv)
		if err != nil {
			t.Fatal(err)
		}
		got, err := tmpl.RenderRequest(req)
		if err != nil {
			t.Fatalf("conversation %d: %v", i, err)
		}
		if got != want {
			t.Errorf("conversation %d (request):\ngot  %q\nwant %q", i, got, want)
		}

		msgs, tools, agp, kwargs := toMessages(t, conv)
		got, err = tmpl.Render(msgs, tools, agp, kwargs)
		if err != nil {
			t.Fatalf("conversation %d: %v", i, err)
		}
		if got != want {
			t.Errorf("conversation %d (messages):\ngot  %q\nwant %q", i, got, want)
		}
	}
}

// toMessages turns a reference request into Render's arguments, with tool
// arguments as JSON text the way OpenAI clients send them.
func toMessages(t *testing.T, conv map[string]json.RawMessage) ([]Message, []json.RawMessage, bool, map[string]any) {
	var raw []struct {
		Role      string `json:"role"`
		Content   string `json:"content"`
		ToolCalls []struct {
			Function struct {
				Name      string          `json:"name"`
				Arguments json.RawMessage `json:"arguments"`
			} `json:"function"`
		} `json:"tool_calls"`
	}
	if err := json.Unmarshal(conv["messages"], &raw); err != nil {
		t.Fatal(err)
	}
	var msgs []Message
	for _, r := range raw {
		m := Message{Role: r.Role, Content: r.Content}
		for _, c := range r.ToolCalls {
			m.ToolCalls = append(m.ToolCalls, ToolCall{Name: c.Function.Name, Arguments: string(c.Function.Arguments)})
		}
		msgs = append(msgs, m)
	}
	var tools []json.RawMessage
	if raw, ok := conv["tools"]; ok {
		if err := json.Unmarshal(raw, &tools); err != nil {
			t.Fatal(err)
		}
	}
	var agp bool
	if raw, ok := conv["add_generation_prompt"]; ok {
		if err := json.Unmarshal(raw, &agp); err != nil {
			t.Fatal(err)
		}
	}
	kwargs := map[string]any{}
	if raw, ok := conv["enable_thinking"]; ok {
		kwargs["enable_thinking"] = raw
	}
	return msgs, tools, agp, kwargs
}

type golden struct {
	Rendered *string `json:"rendered"`
	Error    string  `json:"error"`
	Raised   bool    `json:"raised"`
}

// TestGoldens renders every conversation of testdata/conversations.json with
// every template under testdata/models and compares with Python jinja2's
// renders (testdata/golden.json): output byte for byte, and for templates
// that fail, the failure (with the exact message when the template raised).
func TestGoldens(t *testing.T) {
	var convs []struct {
		Name    string          `json:"name"`
		Request json.RawMessage `json:"request"`
	}
	readJSON(t, "testdata/conversations.json", &convs)
	var want struct {
		Templates map[string]map[string]golden `json:"templates"`
	}
	readJSON(t, "testdata/golden.json", &want)
	dirs, err := filepath.Glob("testdata/models/*")
	if err != nil {
		t.Fatal(err)
	}
	if len(dirs) != len(want.Templates) {
		t.Fatalf("%d model dirs but goldens for %d", len(dirs), len(want.Templates))
	}
	renders, failures := 0, 0
	for _, dir := range dirs {
		name := filepath.Base(dir)
		t.Run(name, func(t *testing.T) {
			tmpl := load(t, dir)
			for _, c := range convs {
				g, ok := want.Templates[name][c.Name]
				if !ok {
					t.Fatalf("no golden for %s", c.Name)
				}
				got, err := tmpl.RenderRequest(c.Request)
				switch {
				case g.Rendered != nil && err != nil:
					t.Errorf("%s: %v\nwant %q", c.Name, err, *g.Rendered)
				case g.Rendered != nil && got != *g.Rendered:
					t.Errorf("%s:\ngot  %q\nwant %q", c.Name, got, *g.Rendered)
				case g.Rendered == nil && err == nil:
					t.Errorf("%s: rendered %q, want error %q", c.Name, got, g.Error)
				case g.Rendered == nil && g.Raised:
					var te *TemplateError
					if !errors.As(err, &te) || te.Message != g.Error || !strings.Contains(err.Error(), g.Error) {
						t.Errorf("%s: error %v, want the template's message %q", c.Name, err, g.Error)
					}
				}
				if g.Rendered != nil {
					renders++
				} else {
					failures++
				}
			}
		})
	}
	t.Logf("%d templates x %d conversations: %d renders and %d template failures compared", len(dirs), len(convs), renders, failures)
}

func TestRaiseSurfacesMessage(t *testing.T) {
	tmpl := load(t, "testdata/models/mixtral")
	_, err := tmpl.Render([]Message{{Role: "user", Content: "a"}, {Role: "user", Content: "b"}}, nil, true, nil)
	const msg = "After the optional system message, conversation roles must alternate user/assistant/user/assistant/..."
	var te *TemplateError
	if !errors.As(err, &te) || te.Message != msg {
		t.Fatalf("error %v, want TemplateError %q", err, msg)
	}
	if !strings.Contains(err.Error(), msg) {
		t.Fatalf("error text %q lacks the template's message", err)
	}
}

func TestFallbackWithoutTemplate(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "tokenizer_config.json"), []byte(`{"eos_token": "</s>"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	tmpl, err := LoadTemplate(dir)
	if err != nil {
		t.Fatal(err)
	}
	var notes bytes.Buffer
	tmpl.Notes = &notes
	if tmpl.HasTemplate() || tmpl.Source() != "" {
		t.Fatalf("HasTemplate %v, Source %q for a config without chat_template", tmpl.HasTemplate(), tmpl.Source())
	}
	msgs := []Message{{Role: "system", Content: "be brief"}, {Role: "user", Content: "hi"}}
	for range 2 {
		got, err := tmpl.Render(msgs, nil, true, nil)
		if err != nil {
			t.Fatal(err)
		}
		if want := "system: be brief\nuser: hi\nassistant:"; got != want {
			t.Fatalf("got %q, want %q", got, want)
		}
	}
	if n := strings.Count(notes.String(), "no chat template"); n != 1 {
		t.Fatalf("note printed %d times, want once: %q", n, notes.String())
	}
	if tmpl.SpecialToken("eos_token") != "</s>" {
		t.Fatalf("eos_token %q", tmpl.SpecialToken("eos_token"))
	}
}

// TestArgumentsReachTemplateAsObject checks that tool-call arguments sent as
// JSON text are decoded (key order and 1.0 kept), and that text which is not a
// JSON object reaches the template unchanged.
func TestArgumentsReachTemplateAsObject(t *testing.T) {
	tmpl, err := New(`{% for m in messages %}{% for c in m.tool_calls %}{{ c.function.arguments is mapping }} {{ c.function.arguments|tojson }} {{ c.id }}|{% endfor %}{% endfor %}`, nil)
	if err != nil {
		t.Fatal(err)
	}
	msgs := []Message{{Role: "assistant", ToolCalls: []ToolCall{
		{ID: "c1", Name: "f", Arguments: `{"z": 1.0, "a": "é", "n": {"y": [1, 2.5]}}`},
		{ID: "c2", Name: "g", Arguments: `{"broken": `},
	}}}
	got, err := tmpl.Render(msgs, nil, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := `True {"z": 1.0, "a": "é", "n": {"y": [1, 2.5]}} c1|False "{\"broken\": " c2|`
	if got != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
	req := `{"messages": [{"role": "assistant", "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{\"z\": 1.0, \"a\": \"é\", \"n\": {\"y\": [1, 2.5]}}"}}, {"id": "c2", "function": {"name": "g", "arguments": "{\"broken\": "}}]}]}`
	if got, err = tmpl.RenderRequest([]byte(req)); err != nil || got != want {
		t.Fatalf("RenderRequest: got %s (%v)\nwant %s", got, err, want)
	}
}

func TestKwargsAndTools(t *testing.T) {
	tmpl, err := New(`{{ bos_token }}{{ flag }} {{ n }} {{ obj|tojson }} {{ tools|length }} {{ tools[0].function.name }} {{ documents }} {{ num }} {{ raw|tojson }}`, map[string]string{"bos_token": "<s>"})
	if err != nil {
		t.Fatal(err)
	}
	got, err := tmpl.Render(nil, []json.RawMessage{json.RawMessage(`{"type": "function", "function": {"name": "f"}}`)}, false,
		map[string]any{"flag": true, "n": 3, "obj": map[string]any{"b": 1.5, "a": []string{"x"}},
			"num": json.Number("2.0"), "raw": json.RawMessage(`{"z": 1, "a": 1.0}`)})
	if err != nil {
		t.Fatal(err)
	}
	if want := `<s>True 3 {"a": ["x"], "b": 1.5} 1 f None 2.0 {"z": 1, "a": 1.0}`; got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
	if _, err := tmpl.Render(nil, nil, false, map[string]any{"messages": 1}); err == nil {
		t.Fatal("kwarg named messages accepted")
	}
	if _, err := tmpl.Render(nil, nil, false, map[string]any{"ch": make(chan int)}); err == nil {
		t.Fatal("kwarg of type chan accepted")
	}
	if _, err := tmpl.Render(nil, []json.RawMessage{json.RawMessage(`{"type": `)}, false, nil); err == nil || !strings.Contains(err.Error(), "tools[0]") {
		t.Fatalf("bad tool JSON: error %v, want one naming tools[0]", err)
	}
}

func TestBadInput(t *testing.T) {
	write := func(files map[string]string) string {
		dir := t.TempDir()
		for name, body := range files {
			if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		return dir
	}
	loadCases := []struct {
		files map[string]string
		want  []string // substrings of the error
	}{
		{map[string]string{"tokenizer_config.json": `{"chat_template": `}, []string{"tokenizer_config.json", "invalid JSON"}},
		{map[string]string{"tokenizer_config.json": `{"chat_template": 5}`}, []string{"chat_template", "expected a string or a list"}},
		{map[string]string{"tokenizer_config.json": `{"chat_template": [{"name": "tool_use", "template": "x"}]}`}, []string{"none named \"default\""}},
		{map[string]string{"tokenizer_config.json": `{"chat_template": [{"name": "default"}]}`}, []string{"entry 0"}},
		{map[string]string{"tokenizer_config.json": `{"bos_token": 7}`}, []string{"bos_token", "expected a string"}},
		{map[string]string{"tokenizer_config.json": `{"chat_template": "{% if x %}"}`}, []string{"tokenizer_config.json", "line 1"}},
		{map[string]string{"tokenizer_config.json": `{}`, "chat_template.jinja": "a\n{{ 1 + }}"}, []string{"chat_template.jinja", "line 2"}},
		{map[string]string{}, []string{"no tokenizer_config.json"}},
	}
	for i, c := range loadCases {
		_, err := LoadTemplate(write(c.files))
		for _, w := range c.want {
			if err == nil || !strings.Contains(err.Error(), w) {
				t.Errorf("load case %d: error %v, want it to mention %q", i, err, w)
			}
		}
	}

	tmpl, err := New("{{ messages[0].content }}", nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, req := range []string{`{"messages": `, `[]`, `{"messages": {}}`, `{"messages": [1]}`, `{"messages": [], "tools": 3}`, `{"messages": [], "add_generation_prompt": "yes"}`, "\xff"} {
		if _, err := tmpl.RenderRequest([]byte(req)); err == nil || !strings.HasPrefix(err.Error(), "request") {
			t.Errorf("RenderRequest(%q) error %v, want a request error", req, err)
		}
	}
	// Python fails on an empty list here; so must we, with the reason.
	if _, err := tmpl.RenderRequest([]byte(`{"messages": []}`)); err == nil || !strings.Contains(err.Error(), "no element 0") {
		t.Errorf("empty messages: error %v", err)
	}
}

// TestChatTemplateFiles checks where templates are read from: a list in
// tokenizer_config.json, chat_template.json, and chat_template.jinja winning
// over both, as in transformers.
func TestChatTemplateFiles(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	render := func() string {
		tmpl, err := LoadTemplate(dir)
		if err != nil {
			t.Fatal(err)
		}
		out, err := tmpl.Render([]Message{{Role: "user", Content: "x"}}, nil, false, nil)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	write("tokenizer_config.json", `{"bos_token": {"content": "<s>", "lstrip": false}, "chat_template": [{"name": "default", "template": "config {{ bos_token }}"}]}`)
	if got := render(); got != "config <s>" {
		t.Fatalf("tokenizer_config list: %q", got)
	}
	write("chat_template.json", `{"chat_template": "json"}`)
	if got := render(); got != "json" {
		t.Fatalf("chat_template.json: %q", got)
	}
	write("chat_template.jinja", "jinja {{ messages|length }}\n")
	if got := render(); got != "jinja 1" {
		t.Fatalf("chat_template.jinja: %q", got)
	}
}

func TestConcurrentRender(t *testing.T) {
	tmpl := load(t, "testdata/models/qwen3_coder")
	msgs := []Message{{Role: "user", Content: "hi"}}
	want, err := tmpl.Render(msgs, nil, true, nil)
	if err != nil {
		t.Fatal(err)
	}
	errs := make(chan error, 8)
	for range 8 {
		go func() {
			got, err := tmpl.Render(msgs, nil, true, nil)
			if err == nil && got != want {
				err = errors.New("concurrent render differs")
			}
			errs <- err
		}()
	}
	for range 8 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
}

// TestStringArgumentTemplates checks the fallback for templates that
// concatenate arguments as text (DeepSeek-V3): they get the client's JSON
// text unchanged, while a template that raises is not retried.
func TestStringArgumentTemplates(t *testing.T) {
	tmpl := load(t, "testdata/models/deepseek_v3_1")
	msgs := []Message{
		{Role: "user", Content: "q"},
		{Role: "assistant", ToolCalls: []ToolCall{{ID: "1", Name: "f", Arguments: `{"b":1,"a":"é"}`}}},
		{Role: "tool", Content: "r"},
	}
	got, err := tmpl.Render(msgs, nil, true, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(got, `<｜tool▁sep｜>{"b":1,"a":"é"}<｜tool▁call▁end｜>`) {
		t.Fatalf("arguments text not passed through: %q", got)
	}

	raising, err := New(`{% for m in messages %}{% if m.tool_calls %}{{ raise_exception('no tools here') }}{% endif %}{% endfor %}`, nil)
	if err != nil {
		t.Fatal(err)
	}
	var te *TemplateError
	if _, err := raising.Render(msgs, nil, true, nil); !errors.As(err, &te) || te.Message != "no tools here" {
		t.Fatalf("error %v, want the template's own", err)
	}
}
