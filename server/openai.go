package server

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/mlx-moe/mlx-moe/chat/toolcall"
)

type oaiChatRequest struct {
	Model               string          `json:"model"`
	Messages            []oaiMessage    `json:"messages"`
	Tools               []oaiTool       `json:"tools"`
	ToolChoice          json.RawMessage `json:"tool_choice"`
	MaxTokens           *int            `json:"max_tokens"`
	MaxCompletionTokens *int            `json:"max_completion_tokens"`
	Temperature         *float64        `json:"temperature"`
	TopP                *float64        `json:"top_p"`
	TopK                *int            `json:"top_k"`
	MinP                *float64        `json:"min_p"`
	Seed                *int64          `json:"seed"`
	Stop                json.RawMessage `json:"stop"`
	PresencePenalty     *float64        `json:"presence_penalty"`
	FrequencyPenalty    *float64        `json:"frequency_penalty"`
	Stream              bool            `json:"stream"`
	StreamOptions       *struct {
		IncludeUsage bool `json:"include_usage"`
	} `json:"stream_options"`
	// ResponseFormat is text, json_object or json_schema, enforced by
	// constrained decoding.
	ResponseFormat json.RawMessage `json:"response_format"`
	N              *int            `json:"n"`
	Logprobs       *bool           `json:"logprobs"`
	TopLogprobs    *int            `json:"top_logprobs"`
	// ChatTemplateKwargs are extra template variables (as in vLLM), e.g.
	// {"enable_thinking": false}.
	ChatTemplateKwargs map[string]json.RawMessage `json:"chat_template_kwargs"`
}

type oaiMessage struct {
	Role             string          `json:"role"`
	Content          json.RawMessage `json:"content"`
	ReasoningContent *string         `json:"reasoning_content"`
	Name             string          `json:"name"`
	ToolCalls        []oaiToolCall   `json:"tool_calls"`
	ToolCallID       string          `json:"tool_call_id"`
}

type oaiToolCall struct {
	ID       string `json:"id"`
	Type     string `json:"type"`
	Function struct {
		Name      string          `json:"name"`
		Arguments json.RawMessage `json:"arguments"`
	} `json:"function"`
}

type oaiTool struct {
	Type     string `json:"type"`
	Function struct {
		Name        string          `json:"name"`
		Description string          `json:"description"`
		Parameters  json.RawMessage `json:"parameters"`
	} `json:"function"`
}

// oaiContent reads message content: a string, null, or content parts of
// which only text is supported.
func oaiContent(raw json.RawMessage, field string) (string, *apiError) {
	return textContent(raw, field, "text")
}

// textContent reads content that is a string, null, or an array of parts
// whose types are among textTypes (a "refusal" part's text is its
// refusal); image, audio and file parts are refused as unsupported.
func textContent(raw json.RawMessage, field string, textTypes ...string) (string, *apiError) {
	if len(raw) == 0 || string(raw) == "null" {
		return "", nil
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s, nil
	}
	var parts []struct {
		Type    string `json:"type"`
		Text    string `json:"text"`
		Refusal string `json:"refusal"`
	}
	if json.Unmarshal(raw, &parts) != nil {
		return "", invalid(field, "%s: expected a string or an array of content parts", field)
	}
	var texts []string
	for i, p := range parts {
		switch {
		case slices.Contains(textTypes, p.Type):
			texts = append(texts, p.Text+p.Refusal)
		case strings.Contains(p.Type, "image") || strings.Contains(p.Type, "audio") || strings.Contains(p.Type, "file"):
			return "", invalid(field, "%s[%d]: %s content is not supported: this server runs a text-only model", field, i, p.Type)
		default:
			return "", invalid(field, "%s[%d]: unknown content part type %q (expected one of %s)", field, i, p.Type, strings.Join(textTypes, ", "))
		}
	}
	return strings.Join(texts, "\n"), nil
}

// jsonText reads a value that should be JSON text in a string (tool call
// arguments); a client that sends the object itself is accepted too.
func jsonText(raw json.RawMessage) string {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	if len(raw) == 0 || string(raw) == "null" {
		return "{}"
	}
	return string(raw)
}

func (req *oaiChatRequest) messages() ([]Message, *apiError) {
	if len(req.Messages) == 0 {
		return nil, invalid("messages", "messages: at least one message is required")
	}
	names := map[string]string{} // tool call id -> function name
	var out []Message
	for i, m := range req.Messages {
		field := fmt.Sprintf("messages[%d]", i)
		content, e := oaiContent(m.Content, field+".content")
		if e != nil {
			return nil, e
		}
		msg := Message{Role: m.Role, Content: content}
		switch m.Role {
		case "system", "developer":
			msg.Role = "system"
		case "user":
		case "assistant":
			if m.ReasoningContent != nil {
				msg.ReasoningContent = *m.ReasoningContent
			}
			for k, c := range m.ToolCalls {
				if c.Function.Name == "" {
					return nil, invalid(field, "%s.tool_calls[%d].function.name is required", field, k)
				}
				names[c.ID] = c.Function.Name
				msg.ToolCalls = append(msg.ToolCalls, ToolCall{ID: c.ID, Name: c.Function.Name, Arguments: jsonText(c.Function.Arguments)})
			}
		case "tool":
			msg.ToolCallID, msg.Name = m.ToolCallID, names[m.ToolCallID]
		case "":
			return nil, invalid(field+".role", "%s.role is required", field)
		default:
			return nil, invalid(field+".role", "%s.role %q is not one of system, developer, user, assistant, tool", field, m.Role)
		}
		out = append(out, msg)
	}
	return out, nil
}

func (req *oaiChatRequest) tools() ([]Tool, *apiError) {
	var tools []Tool
	for i, t := range req.Tools {
		if t.Type != "" && t.Type != "function" {
			return nil, invalid(fmt.Sprintf("tools[%d].type", i), "tools[%d].type %q is not supported (expected \"function\")", i, t.Type)
		}
		if t.Function.Name == "" {
			return nil, invalid(fmt.Sprintf("tools[%d].function.name", i), "tools[%d].function.name is required", i)
		}
		tools = append(tools, Tool{Name: t.Function.Name, Description: t.Function.Description, Parameters: t.Function.Parameters})
	}
	mode, only, e := toolChoice(req.ToolChoice)
	if e != nil {
		return nil, e
	}
	return chooseTools(tools, mode, only)
}

// toolChoice reads tool_choice: "none", "auto" (also when absent),
// "required", a named function, in chat's shape {"type": "function",
// "function": {"name": ...}} or the Responses API's {"type": "function",
// "name": ...}, or allowed_tools (mode "auto" or "required" over a subset,
// in the Responses API's shape {"type": "allowed_tools", "mode": ...,
// "tools": [...]} or chat's, nested under "allowed_tools"). only, when
// not nil, are the names of the functions that may be called; tool types
// this server does not offer are left out of it. Other typed choices
// (hosted tools) offer the functions as "auto" does.
func toolChoice(raw json.RawMessage) (mode string, only []string, e *apiError) {
	if len(raw) == 0 || string(raw) == "null" {
		return "auto", nil, nil
	}
	if json.Unmarshal(raw, &mode) == nil {
		if mode != "none" && mode != "auto" && mode != "required" {
			return "", nil, invalid("tool_choice", "tool_choice %q is not one of none, auto, required", mode)
		}
		return mode, nil, nil
	}
	type allowed struct {
		Mode  string          `json:"mode"`
		Tools []namedFunction `json:"tools"`
	}
	var c struct {
		namedFunction
		allowed
		Allowed *allowed `json:"allowed_tools"`
	}
	switch {
	case json.Unmarshal(raw, &c) != nil || c.Type == "":
	case c.Type == "allowed_tools":
		a := c.allowed
		if c.Allowed != nil {
			a = *c.Allowed
		}
		if a.Mode != "auto" && a.Mode != "required" {
			return "", nil, invalid("tool_choice.mode", "tool_choice.mode %q is not one of auto, required", a.Mode)
		}
		only = []string{}
		for i, t := range a.Tools {
			if t.Type != "function" {
				continue
			}
			if t.name() == "" {
				return "", nil, invalid("tool_choice.tools", "tool_choice.tools[%d] is a function without a name", i)
			}
			only = append(only, t.name())
		}
		return a.Mode, only, nil
	case c.Type != "function":
		return "auto", nil, nil
	case c.name() != "":
		return "named", []string{c.name()}, nil
	}
	return "", nil, invalid("tool_choice", `tool_choice: expected "none", "auto", "required", {"type": "function", "function": {"name": ...}} or {"type": "allowed_tools", ...}`)
}

// namedFunction is a function named in a tool choice, in chat's shape or
// the Responses API's.
type namedFunction struct {
	Type     string `json:"type"`
	Name     string `json:"name"`
	Function struct {
		Name string `json:"name"`
	} `json:"function"`
}

func (f namedFunction) name() string {
	if f.Function.Name != "" {
		return f.Function.Name
	}
	return f.Name
}

// chooseTools applies a tool choice: "none" offers no tools; with only set
// (a named or allowed_tools choice), just those. (A forced choice is then
// enforced by constrained decoding: forceTools.)
func chooseTools(tools []Tool, mode string, only []string) ([]Tool, *apiError) {
	if mode == "none" {
		return nil, nil
	}
	if only == nil {
		return tools, nil
	}
	var out []Tool
	for _, name := range only {
		i := slices.IndexFunc(tools, func(t Tool) bool { return t.Name == name })
		if i < 0 {
			return nil, invalid("tool_choice", "tool_choice names %q, which is not among the tools", name)
		}
		if !slices.ContainsFunc(out, func(t Tool) bool { return t.Name == name }) {
			out = append(out, tools[i])
		}
	}
	return out, nil
}

func stopStrings(raw json.RawMessage) ([]string, *apiError) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	var one string
	if json.Unmarshal(raw, &one) == nil {
		return []string{one}, nil
	}
	var many []string
	if json.Unmarshal(raw, &many) != nil {
		return nil, invalid("stop", "stop: expected a string or an array of strings")
	}
	if len(many) > 16 {
		return nil, invalid("stop", "stop: at most 16 strings, got %d", len(many))
	}
	return many, nil
}

func (s *Server) chatCompletions(w http.ResponseWriter, r *http.Request) {
	var req oaiChatRequest
	if e := decode(r, &req); e != nil {
		openAI.writeError(w, e)
		return
	}
	j, e := s.oaiChatJob(&req)
	if e != nil {
		openAI.writeError(w, e)
		return
	}
	if req.Stream {
		s.oaiStream(w, r, j, "chat.completion.chunk", req.StreamOptions != nil && req.StreamOptions.IncludeUsage)
		return
	}
	var res toolcall.Result
	s.generate(w, r, openAI, j, func(ev toolcall.Event) error { res.Add(ev); return nil }, func(out outcome) {
		res = validCalls(res)
		msg := map[string]any{"role": "assistant", "content": res.Content}
		if res.Content == "" && len(res.Calls) > 0 {
			msg["content"] = nil
		}
		if res.Reasoning != "" {
			msg["reasoning_content"] = res.Reasoning
		}
		if len(res.Calls) > 0 {
			var calls []any
			for _, c := range res.Calls {
				calls = append(calls, map[string]any{"id": newID("call_"), "type": "function",
					"function": map[string]any{"name": c.Name, "arguments": c.Arguments}})
			}
			msg["tool_calls"] = calls
		}
		writeJSON(w, http.StatusOK, map[string]any{
			"id": newID("chatcmpl-"), "object": "chat.completion", "created": time.Now().Unix(), "model": s.b.ModelID(),
			"choices": []any{map[string]any{"index": 0, "message": msg, "logprobs": j.chatLogprobs(j.scored),
				"finish_reason": oaiFinish(out, len(res.Calls) > 0)}},
			"usage": oaiUsage(j, out.res),
		})
	})
}

func (s *Server) oaiChatJob(req *oaiChatRequest) (*job, *apiError) {
	if e := s.checkModel(req.Model); e != nil {
		return nil, e
	}
	if req.N != nil && *req.N != 1 {
		return nil, invalid("n", "n must be 1: this server generates one choice per request, got %d", *req.N)
	}
	msgs, e := req.messages()
	if e != nil {
		return nil, e
	}
	tools, e := req.tools()
	if e != nil {
		return nil, e
	}
	stops, e := stopStrings(req.Stop)
	if e != nil {
		return nil, e
	}
	sampling, e := s.sampling(req.Temperature, req.TopP, req.TopK, req.MinP, req.Seed, req.PresencePenalty, req.FrequencyPenalty)
	if e != nil {
		return nil, e
	}
	logprobs, top, e := logprobsOptions(req.Logprobs, req.TopLogprobs)
	if e != nil {
		return nil, e
	}
	maxTokens := req.MaxCompletionTokens
	if maxTokens == nil {
		maxTokens = req.MaxTokens
	}
	j, e := s.chatJob(ChatPrompt{Messages: msgs, Tools: tools, AddGenerationPrompt: true, Kwargs: templateKwargs(req.ChatTemplateKwargs)},
		len(tools) > 0, maxTokens, sampling, stops)
	if e != nil {
		return nil, e
	}
	j.logprobs, j.top = logprobs, top
	if forcedChoice(req.ToolChoice) {
		if e := s.forceTools(j, tools, true, "tool_choice"); e != nil {
			return nil, e
		}
		return j, nil
	}
	g, e := formatGrammar(req.ResponseFormat, "response_format")
	if e != nil {
		return nil, e
	}
	if g != nil {
		if e := s.constrainJob(j, g, "response_format"); e != nil {
			return nil, e
		}
	}
	return j, nil
}

func oaiFinish(out outcome, calls bool) string {
	switch {
	case out.finish == "length":
		return "length"
	case out.finish == "eos" && calls:
		return "tool_calls"
	}
	return "stop"
}

func oaiUsage(j *job, r GenResult) map[string]any {
	return map[string]any{
		"prompt_tokens": len(j.prompt), "completion_tokens": r.CompletionTokens,
		"total_tokens":          len(j.prompt) + r.CompletionTokens,
		"prompt_tokens_details": map[string]any{"cached_tokens": r.CachedTokens},
	}
}

// oaiStream writes a generation as OpenAI chunks (chat or text
// completion), ending with data: [DONE].
func (s *Server) oaiStream(w http.ResponseWriter, r *http.Request, j *job, object string, includeUsage bool) {
	t, e := s.admit()
	if e != nil {
		openAI.writeError(w, e)
		return
	}
	defer t.done()
	sse := newSSE(w, s.cfg.WriteTimeout)
	pings := startPings(s.cfg.PingInterval, func() error { return sse.write([]byte(": keep-alive\n\n")) })
	defer pings.end()
	if err := t.wait(r.Context()); err != nil {
		openAI.endStream(sse, r.Context(), err)
		return
	}
	id, created, chat := newID("chatcmpl-"), time.Now().Unix(), object == "chat.completion.chunk"
	if !chat {
		id = newID("cmpl-")
	}
	offset := 0 // text written so far, for completions' text_offset
	send := func(choice map[string]any, usage any) error {
		c := map[string]any{"id": id, "object": object, "created": created, "model": s.b.ModelID(), "choices": []any{}}
		if choice != nil {
			choice["index"] = 0
			choice["logprobs"] = nil
			if toks := j.takeLogprobs(); len(toks) > 0 && chat {
				choice["logprobs"] = j.chatLogprobs(toks)
			} else if len(toks) > 0 {
				choice["logprobs"] = j.completionLogprobs(toks, offset)
				for _, t := range toks {
					offset += len(t.Logprob.Token)
				}
			}
			if _, ok := choice["finish_reason"]; !ok {
				choice["finish_reason"] = nil
			}
			c["choices"] = []any{choice}
		}
		if includeUsage {
			c["usage"] = usage
		}
		return sse.event("", c)
	}
	delta := func(d map[string]any) error {
		if chat {
			return send(map[string]any{"delta": d}, nil)
		}
		return send(map[string]any{"text": d["content"]}, nil)
	}
	if chat && delta(map[string]any{"role": "assistant", "content": ""}) != nil {
		return
	}
	calls := 0
	out := s.run(r.Context(), j, func(ev toolcall.Event) error {
		switch ev.Kind {
		case toolcall.Content:
			return delta(map[string]any{"content": ev.Text})
		case toolcall.Reasoning:
			return delta(map[string]any{"reasoning_content": ev.Text})
		case toolcall.CallStart:
			calls++
			return delta(map[string]any{"tool_calls": []any{map[string]any{"index": ev.Index, "id": newID("call_"), "type": "function",
				"function": map[string]any{"name": ev.Name, "arguments": ""}}}})
		case toolcall.CallArgs:
			return delta(map[string]any{"tool_calls": []any{map[string]any{"index": ev.Index,
				"function": map[string]any{"arguments": ev.Text}}}})
		}
		return nil
	})
	if out.err != nil {
		openAI.endStream(sse, r.Context(), out.err)
		return
	}
	final := map[string]any{"finish_reason": oaiFinish(out, calls > 0)}
	if chat {
		final["delta"] = map[string]any{}
	} else {
		final["text"] = ""
	}
	if send(final, nil) != nil {
		return
	}
	if includeUsage && send(nil, oaiUsage(j, out.res)) != nil {
		return
	}
	sse.write([]byte("data: [DONE]\n\n"))
}

type oaiCompletionRequest struct {
	Model            string          `json:"model"`
	Prompt           json.RawMessage `json:"prompt"`
	MaxTokens        *int            `json:"max_tokens"`
	Temperature      *float64        `json:"temperature"`
	TopP             *float64        `json:"top_p"`
	TopK             *int            `json:"top_k"`
	MinP             *float64        `json:"min_p"`
	Seed             *int64          `json:"seed"`
	Stop             json.RawMessage `json:"stop"`
	PresencePenalty  *float64        `json:"presence_penalty"`
	FrequencyPenalty *float64        `json:"frequency_penalty"`
	Logprobs         *int            `json:"logprobs"`
	Stream           bool            `json:"stream"`
	StreamOptions    *struct {
		IncludeUsage bool `json:"include_usage"`
	} `json:"stream_options"`
}

// completions continues a raw prompt: no chat template, no tool parsing.
func (s *Server) completions(w http.ResponseWriter, r *http.Request) {
	var req oaiCompletionRequest
	if e := decode(r, &req); e != nil {
		openAI.writeError(w, e)
		return
	}
	j, e := s.completionJob(&req)
	if e != nil {
		openAI.writeError(w, e)
		return
	}
	if req.Stream {
		s.oaiStream(w, r, j, "text_completion", req.StreamOptions != nil && req.StreamOptions.IncludeUsage)
		return
	}
	var text strings.Builder
	s.generate(w, r, openAI, j, func(ev toolcall.Event) error { text.WriteString(ev.Text); return nil }, func(out outcome) {
		writeJSON(w, http.StatusOK, map[string]any{
			"id": newID("cmpl-"), "object": "text_completion", "created": time.Now().Unix(), "model": s.b.ModelID(),
			"choices": []any{map[string]any{"index": 0, "text": text.String(), "logprobs": j.completionLogprobs(j.scored, 0), "finish_reason": oaiFinish(out, false)}},
			"usage":   oaiUsage(j, out.res),
		})
	})
}

func (s *Server) completionJob(req *oaiCompletionRequest) (*job, *apiError) {
	if e := s.checkModel(req.Model); e != nil {
		return nil, e
	}
	var prompt string
	if json.Unmarshal(req.Prompt, &prompt) != nil {
		var list []string
		if json.Unmarshal(req.Prompt, &list) != nil || len(list) != 1 {
			return nil, invalid("prompt", "prompt: expected a string (or an array holding one string)")
		}
		prompt = list[0]
	}
	if prompt == "" {
		return nil, invalid("prompt", "prompt is required and must not be empty")
	}
	stops, e := stopStrings(req.Stop)
	if e != nil {
		return nil, e
	}
	sampling, e := s.sampling(req.Temperature, req.TopP, req.TopK, req.MinP, req.Seed, req.PresencePenalty, req.FrequencyPenalty)
	if e != nil {
		return nil, e
	}
	logprobs, top, e := completionLogprobs(req.Logprobs)
	if e != nil {
		return nil, e
	}
	j, e := s.newJob(s.b.Tokenize(prompt), req.MaxTokens, sampling, stops)
	if e != nil {
		return nil, e
	}
	j.logprobs, j.top = logprobs, top
	return j, nil
}

// templateKwargs passes chat_template_kwargs on so the template sees them
// exactly as sent: booleans, strings and null as Go values, numbers,
// objects and arrays as raw JSON (1 stays an integer, key order is kept).
func templateKwargs(raw map[string]json.RawMessage) map[string]any {
	if len(raw) == 0 {
		return nil
	}
	out := make(map[string]any, len(raw))
	for k, v := range raw {
		var scalar any
		if t := bytes.TrimSpace(v); len(t) > 0 && (t[0] == 't' || t[0] == 'f' || t[0] == '"' || t[0] == 'n') && json.Unmarshal(t, &scalar) == nil {
			out[k] = scalar
			continue
		}
		out[k] = v
	}
	return out
}
