// Package chat turns a conversation into the prompt text a model was trained
// on, by rendering the model's own Jinja chat template exactly as Hugging Face
// transformers' apply_chat_template does.
//
// The template comes from tokenizer_config.json ("chat_template": a string,
// or a list of named templates of which "default" is used, or "tool_use" when
// tools are given), from chat_template.json, or from chat_template.jinja next
// to it (which wins, as in transformers). The template sees the variables
// transformers passes: messages, tools, documents, add_generation_prompt, the
// special tokens (bos_token, eos_token, ...) and any extra keyword arguments
// such as enable_thinking; and the globals raise_exception and strftime_now.
// Tool-call arguments reach the template as objects, even when a client sent
// them as a JSON string; only a template that fails on objects (DeepSeek's
// concatenate the text) is given the JSON text instead.
//
// Rendering uses chat/jinja, a Jinja subset written for chat templates and
// tested byte-for-byte against Python's jinja2 (see testdata/render_golden.py).
// Existing Go engines were measured on real templates first and none was
// exact: github.com/ardanlabs/jinja v1.8.0 matched 108 of 133 renders and its
// newer releases need a newer Go; gonja/v2 could not parse 6 of 19 templates.
//
// A model without any chat template gets plain "role: content" lines, and a
// note about it once on stderr.
package chat

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"time"

	"github.com/mlx-moe/mlx-moe/chat/jinja"
)

// Message is one turn of a conversation.
type Message struct {
	Role    string // system, user, assistant or tool
	Content string
	// ReasoningContent is an assistant's thinking; templates that keep or drop
	// it decide. Omitted from the template's message when empty.
	ReasoningContent string
	ToolCalls        []ToolCall
	// ToolCallID and Name identify, on a tool message, the call it answers.
	ToolCallID string
	Name       string
}

// ToolCall is one function call an assistant made.
type ToolCall struct {
	ID   string
	Name string
	// Arguments is the JSON text of the arguments object, as OpenAI clients
	// send it. The template receives the decoded object (keys in the order
	// written); text that is not a JSON object is passed on as a string.
	Arguments string
}

// TemplateError is an error the chat template raised itself with
// raise_exception, such as "Conversation roles must alternate".
type TemplateError struct{ Message string }

func (e *TemplateError) Error() string { return e.Message }

// Template is a model's chat template, ready to render. It is safe for
// concurrent use.
type Template struct {
	source    string                     // the default template's text; "" for the fallback
	templates map[string]*jinja.Template // by name: "default", "tool_use", ...
	special   map[string]string          // bos_token, eos_token, ... when set
	fallback  bool

	// Now is the clock strftime_now reads; nil means time.Now. Set Now and
	// Notes before the first Render.
	Now func() time.Time
	// Notes receives the one-time note that the model has no chat template;
	// nil means os.Stderr.
	Notes    io.Writer
	noteOnce sync.Once
	origin   string
}

// fallbackSource renders messages as plain "role: content" lines.
const fallbackSource = "{% for m in messages %}{{ m.role }}: {{ m.content }}\n{% endfor %}{% if add_generation_prompt %}assistant:{% endif %}"

var specialTokenNames = []string{"bos_token", "eos_token", "unk_token", "sep_token", "pad_token", "cls_token", "mask_token"}

// LoadTemplate reads the chat template and special tokens of the model in
// dir: tokenizer_config.json, and chat_template.json or chat_template.jinja
// when present. Only those files are needed, no weights.
func LoadTemplate(dir string) (*Template, error) {
	cfgPath := filepath.Join(dir, "tokenizer_config.json")
	cfg := map[string]json.RawMessage{}
	data, err := os.ReadFile(cfgPath)
	switch {
	case err == nil:
		if err := json.Unmarshal(data, &cfg); err != nil {
			return nil, fmt.Errorf("%s: invalid JSON: %v", cfgPath, err)
		}
	case errors.Is(err, os.ErrNotExist):
		cfg = nil
	default:
		return nil, err
	}

	special := map[string]string{}
	for _, name := range specialTokenNames {
		tok, err := specialToken(cfg[name])
		if err != nil {
			return nil, fmt.Errorf("%s: %s: %v", cfgPath, name, err)
		}
		if tok != nil {
			special[name] = *tok
		}
	}

	sources, origin := map[string]string{}, cfgPath
	if raw, ok := cfg["chat_template"]; ok {
		if sources, err = templateSources(raw); err != nil {
			return nil, fmt.Errorf("%s: chat_template: %v", cfgPath, err)
		}
	}
	jsonPath := filepath.Join(dir, "chat_template.json")
	if data, err := os.ReadFile(jsonPath); err == nil {
		var f struct {
			ChatTemplate json.RawMessage `json:"chat_template"`
		}
		if err := json.Unmarshal(data, &f); err != nil {
			return nil, fmt.Errorf("%s: invalid JSON: %v", jsonPath, err)
		}
		if sources, err = templateSources(f.ChatTemplate); err != nil {
			return nil, fmt.Errorf("%s: chat_template: %v", jsonPath, err)
		}
		origin = jsonPath
	}
	jinjaPath := filepath.Join(dir, "chat_template.jinja")
	if data, err := os.ReadFile(jinjaPath); err == nil {
		sources, origin = map[string]string{"default": string(data)}, jinjaPath
	}
	if cfg == nil && len(sources) == 0 {
		return nil, fmt.Errorf("%s: no tokenizer_config.json or chat template found", dir)
	}
	if len(sources) == 0 {
		return newTemplate(nil, special, dir)
	}
	t, err := newTemplate(sources, special, origin)
	if err != nil {
		return nil, fmt.Errorf("%s: %v", origin, err)
	}
	return t, nil
}

// New makes a Template from template source and special tokens (keys such
// as "bos_token"). An empty source gives the plain fallback rendering.
func New(source string, special map[string]string) (*Template, error) {
	if source == "" {
		return newTemplate(nil, special, "the model")
	}
	return newTemplate(map[string]string{"default": source}, special, "the model")
}

func newTemplate(sources map[string]string, special map[string]string, origin string) (*Template, error) {
	t := &Template{templates: map[string]*jinja.Template{}, special: special, origin: origin}
	if len(sources) == 0 {
		t.fallback = true
		sources = map[string]string{"default": fallbackSource}
	}
	if _, ok := sources["default"]; !ok {
		names := make([]string, 0, len(sources))
		for n := range sources {
			names = append(names, n)
		}
		sort.Strings(names)
		return nil, fmt.Errorf("chat templates %v have none named \"default\"", names)
	}
	for name, src := range sources {
		jt, err := jinja.Parse(src)
		if err != nil {
			return nil, fmt.Errorf("chat template %q: %v", name, err)
		}
		t.templates[name] = jt
	}
	if !t.fallback {
		t.source = sources["default"]
	}
	return t, nil
}

// specialToken reads a special token field: a string, an AddedToken object
// ({"content": ...}), or null.
func specialToken(raw json.RawMessage) (*string, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err == nil {
		return &s, nil
	}
	var obj struct {
		Content *string `json:"content"`
	}
	if err := json.Unmarshal(raw, &obj); err != nil || obj.Content == nil {
		return nil, fmt.Errorf("expected a string or an object with \"content\", got %s", abbreviate(raw))
	}
	return obj.Content, nil
}

func templateSources(raw json.RawMessage) (map[string]string, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err == nil {
		return map[string]string{"default": s}, nil
	}
	var list []struct {
		Name     *string `json:"name"`
		Template *string `json:"template"`
	}
	if err := json.Unmarshal(raw, &list); err != nil {
		return nil, fmt.Errorf("expected a string or a list of {\"name\", \"template\"}, got %s", abbreviate(raw))
	}
	out := map[string]string{}
	for i, e := range list {
		if e.Name == nil || e.Template == nil {
			return nil, fmt.Errorf("entry %d: expected string fields \"name\" and \"template\"", i)
		}
		out[*e.Name] = *e.Template
	}
	return out, nil
}

func abbreviate(raw []byte) string {
	if len(raw) > 40 {
		return string(raw[:40]) + "..."
	}
	return string(raw)
}

// Source is the text of the default template ("" when the model has none);
// the server reads it to tell which tool-call format the model speaks.
func (t *Template) Source() string { return t.source }

// HasTemplate reports whether the model has a chat template of its own
// (false: the plain "role: content" fallback is used).
func (t *Template) HasTemplate() bool { return !t.fallback }

// SpecialToken returns a special token from tokenizer_config.json by its key
// (bos_token, eos_token, unk_token, sep_token, pad_token, cls_token,
// mask_token); "" when unset.
func (t *Template) SpecialToken(name string) string { return t.special[name] }

// reserved are the variables Render sets itself; kwargs may not name them.
var reserved = map[string]bool{"messages": true, "tools": true, "documents": true, "add_generation_prompt": true}

// Render renders a conversation. tools holds OpenAI-style tool definitions,
// each a JSON object ({"type": "function", "function": {...}}); nil means no
// tools (the template sees none). kwargs are extra template variables such
// as "enable_thinking": Go bools, strings, numbers, nil, json.RawMessage,
// json.Number, and slices and maps of these. Pass JSON from a client as
// json.RawMessage to keep its key order and its 1 versus 1.0.
func (t *Template) Render(messages []Message, tools []json.RawMessage, addGenerationPrompt bool, kwargs map[string]any) (string, error) {
	msgs := make([]any, len(messages))
	hasCalls := false
	for i, m := range messages {
		msgs[i] = messageValue(m, false)
		hasCalls = hasCalls || len(m.ToolCalls) > 0
	}
	var textMsgs []any // the same messages with arguments as JSON text
	if hasCalls {
		textMsgs = make([]any, len(messages))
		for i, m := range messages {
			textMsgs[i] = messageValue(m, true)
		}
	}
	var toolVals any
	if tools != nil {
		list := make([]any, len(tools))
		for i, raw := range tools {
			v, err := jinja.FromJSON(raw)
			if err != nil {
				return "", fmt.Errorf("tools[%d]: invalid JSON: %v", i, err)
			}
			list[i] = v
		}
		toolVals = list
	}
	extra := map[string]any{}
	for k, v := range kwargs {
		if reserved[k] {
			return "", fmt.Errorf("template argument %q is set by Render itself", k)
		}
		tv, err := goValue(v)
		if err != nil {
			return "", fmt.Errorf("template argument %q: %v", k, err)
		}
		extra[k] = tv
	}
	return t.render(msgs, textMsgs, toolVals, addGenerationPrompt, extra)
}

// RenderRequest renders a JSON request {"messages": [...], "tools": [...],
// "add_generation_prompt": true, ...}: every other key is passed to the
// template as a variable (enable_thinking, reasoning_effort, ...). Values keep
// their JSON form (null stays none, key order is kept), except that string
// tool-call arguments are decoded into objects (as in Render, a template that
// fails on objects is given the JSON text).
func (t *Template) RenderRequest(raw []byte) (string, error) {
	v, err := jinja.FromJSON(raw)
	if err != nil {
		return "", fmt.Errorf("request: invalid JSON: %v", err)
	}
	req, ok := v.(*jinja.Dict)
	if !ok {
		return "", errors.New("request: expected a JSON object")
	}
	mv, _ := req.Get("messages")
	msgs, ok := mv.([]any)
	if !ok {
		return "", errors.New("request: \"messages\" must be a list of message objects")
	}
	objMsgs, textMsgs := make([]any, len(msgs)), make([]any, len(msgs))
	hasCalls := false
	for i, m := range msgs {
		md, ok := m.(*jinja.Dict)
		if !ok {
			return "", fmt.Errorf("request: messages[%d] must be an object", i)
		}
		objMsgs[i], textMsgs[i] = withArguments(md, false), withArguments(md, true)
		if calls, _ := md.Get("tool_calls"); truthyList(calls) {
			hasCalls = true
		}
	}
	if !hasCalls {
		textMsgs = nil
	}
	tools, _ := req.Get("tools")
	switch tools.(type) {
	case nil, []any:
	default:
		return "", errors.New("request: \"tools\" must be a list or null")
	}
	agp := false
	if g, ok := req.Get("add_generation_prompt"); ok {
		if agp, ok = g.(bool); !ok {
			return "", errors.New("request: \"add_generation_prompt\" must be true or false")
		}
	}
	extra := map[string]any{}
	for i, k := range req.Keys() {
		if name := k.(string); !reserved[name] {
			extra[name] = req.Values()[i]
		}
	}
	return t.render(objMsgs, textMsgs, tools, agp, extra)
}

func truthyList(v any) bool {
	l, ok := v.([]any)
	return ok && len(l) > 0
}

// withArguments returns m with each tool call's arguments as an object
// (asText false: JSON text is decoded) or as JSON text (asText true: objects
// are encoded as json.dumps would). m itself is returned when nothing changes.
func withArguments(m *jinja.Dict, asText bool) *jinja.Dict {
	calls, _ := m.Get("tool_calls")
	list, ok := calls.([]any)
	if !ok {
		return m
	}
	newCalls := make([]any, len(list))
	changed := false
	for i, c := range list {
		newCalls[i] = c
		cd, ok := c.(*jinja.Dict)
		if !ok {
			continue
		}
		if fn, ok := cd.Get("function"); ok {
			if fd, ok := fn.(*jinja.Dict); ok {
				if nf, ok := convertArguments(fd, asText); ok {
					newCalls[i] = replaced(cd, "function", nf)
					changed = true
				}
			}
		} else if nc, ok := convertArguments(cd, asText); ok {
			newCalls[i] = nc
			changed = true
		}
	}
	if !changed {
		return m
	}
	return replaced(m, "tool_calls", newCalls)
}

func convertArguments(d *jinja.Dict, asText bool) (*jinja.Dict, bool) {
	a, _ := d.Get("arguments")
	switch v := a.(type) {
	case string:
		if obj, ok := argumentsValue(v).(*jinja.Dict); ok && !asText {
			return replaced(d, "arguments", obj), true
		}
	case *jinja.Dict:
		if asText {
			text, err := jinja.ToJSON(v, jinja.JSONOptions{})
			if err == nil {
				return replaced(d, "arguments", text), true
			}
		}
	}
	return nil, false
}

// argumentsValue decodes JSON arguments text into an object; anything else
// stays the string it was.
func argumentsValue(s string) any {
	if v, err := jinja.FromJSON([]byte(s)); err == nil {
		if d, ok := v.(*jinja.Dict); ok {
			return d
		}
	}
	return s
}

// replaced returns a copy of d with key set to v, in the same position.
func replaced(d *jinja.Dict, key string, v any) *jinja.Dict {
	out := jinja.NewDict()
	for i, k := range d.Keys() {
		out.Set(k, d.Values()[i])
	}
	out.Set(key, v)
	return out
}

// messageValue is m as the template sees it; asText keeps tool-call
// arguments as the JSON text the client sent instead of decoding them.
func messageValue(m Message, asText bool) *jinja.Dict {
	d := jinja.NewDict()
	d.Set("role", m.Role)
	d.Set("content", m.Content)
	if m.ReasoningContent != "" {
		d.Set("reasoning_content", m.ReasoningContent)
	}
	if len(m.ToolCalls) > 0 {
		calls := make([]any, len(m.ToolCalls))
		for i, c := range m.ToolCalls {
			fn := jinja.NewDict()
			fn.Set("name", c.Name)
			if asText {
				fn.Set("arguments", c.Arguments)
			} else {
				fn.Set("arguments", argumentsValue(c.Arguments))
			}
			cd := jinja.NewDict()
			if c.ID != "" {
				cd.Set("id", c.ID)
			}
			cd.Set("type", "function")
			cd.Set("function", fn)
			calls[i] = cd
		}
		d.Set("tool_calls", calls)
	}
	if m.ToolCallID != "" {
		d.Set("tool_call_id", m.ToolCallID)
	}
	if m.Name != "" {
		d.Set("name", m.Name)
	}
	return d
}

// goValue converts a Go kwarg into a template value.
func goValue(v any) (any, error) {
	switch x := v.(type) {
	case nil, bool, string, int64, float64:
		return x, nil
	case int:
		return int64(x), nil
	case int32:
		return int64(x), nil
	case float32:
		return float64(x), nil
	case json.RawMessage:
		return jinja.FromJSON(x)
	case json.Number:
		return jinja.FromJSON([]byte(x))
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			var err error
			if out[i], err = goValue(e); err != nil {
				return nil, err
			}
		}
		return out, nil
	case []string:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = e
		}
		return out, nil
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys) // Go maps have no order; sorted keys at least render reproducibly
		d := jinja.NewDict()
		for _, k := range keys {
			e, err := goValue(x[k])
			if err != nil {
				return nil, err
			}
			d.Set(k, e)
		}
		return d, nil
	}
	return nil, fmt.Errorf("unsupported Go type %T", v)
}

// render renders messages, whose tool-call arguments are objects. Some
// templates (DeepSeek's) concatenate arguments as strings and fail on
// objects; transformers users pass such templates the JSON text, so when
// rendering fails for another reason than raise_exception, textMessages (the
// same conversation with arguments as JSON text, nil without tool calls) are
// tried before the first error is reported.
func (t *Template) render(messages, textMessages []any, tools any, addGenerationPrompt bool, kwargs map[string]any) (string, error) {
	out, err := t.renderOnce(messages, tools, addGenerationPrompt, kwargs)
	var raised *TemplateError
	if err == nil || textMessages == nil || errors.As(err, &raised) {
		return out, err
	}
	if out, err2 := t.renderOnce(textMessages, tools, addGenerationPrompt, kwargs); err2 == nil {
		return out, nil
	}
	return "", err
}

func (t *Template) renderOnce(messages []any, tools any, addGenerationPrompt bool, kwargs map[string]any) (string, error) {
	if t.fallback {
		t.noteOnce.Do(func() {
			w := t.Notes
			if w == nil {
				w = os.Stderr
			}
			fmt.Fprintf(w, "mlx-moe: %s has no chat template; rendering messages as plain \"role: content\" lines\n", t.origin)
		})
	}
	vars := map[string]any{}
	for k, v := range t.special {
		vars[k] = v
	}
	for k, v := range kwargs {
		vars[k] = v
	}
	vars["messages"] = messages
	vars["tools"] = tools
	vars["documents"] = nil
	vars["add_generation_prompt"] = addGenerationPrompt
	vars["raise_exception"] = jinja.Func(raiseException)
	now := t.Now
	if now == nil {
		now = time.Now
	}
	vars["strftime_now"] = jinja.Func(func(args []any, kw *jinja.Dict) (any, error) {
		if len(args) != 1 {
			return nil, fmt.Errorf("strftime_now takes one format argument, got %d", len(args))
		}
		f, ok := args[0].(string)
		if !ok {
			return nil, errors.New("strftime_now: the format must be a string")
		}
		return jinja.Strftime(now(), f), nil
	})
	name := "default"
	if tools != nil {
		if _, ok := t.templates["tool_use"]; ok {
			name = "tool_use"
		}
	}
	out, err := t.templates[name].Render(vars)
	if err != nil {
		return "", fmt.Errorf("chat template: %w", err)
	}
	return out, nil
}

func raiseException(args []any, kw *jinja.Dict) (any, error) {
	if len(args) != 1 {
		return nil, fmt.Errorf("raise_exception takes one message argument, got %d", len(args))
	}
	return nil, &TemplateError{Message: jinja.String(args[0])}
}
