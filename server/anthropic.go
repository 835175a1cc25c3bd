package server

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	"github.com/mlx-moe/mlx-moe/chat/toolcall"
)

type antRequest struct {
	Model         string          `json:"model"`
	MaxTokens     *int            `json:"max_tokens"`
	Messages      []antMessage    `json:"messages"`
	System        json.RawMessage `json:"system"`
	Tools         []antTool       `json:"tools"`
	ToolChoice    *antToolChoice  `json:"tool_choice"`
	StopSequences []string        `json:"stop_sequences"`
	Temperature   *float64        `json:"temperature"`
	TopP          *float64        `json:"top_p"`
	TopK          *int            `json:"top_k"`
	Stream        bool            `json:"stream"`
	// Thinking is {"type": "enabled"|"adaptive"|"disabled"}; adaptive (what
	// Claude Code sends) switches thinking on like enabled, and display and
	// budget_tokens are accepted and not enforced.
	Thinking *struct {
		Type string `json:"type"`
	} `json:"thinking"`
	// Other fields (metadata, output_config, context_management, service
	// tier, ...) and anthropic-beta headers are ignored: they steer
	// Anthropic's own service and carry nothing for a local model.
}

type antMessage struct {
	Role    string          `json:"role"`
	Content json.RawMessage `json:"content"`
}

type antBlock struct {
	Type      string          `json:"type"`
	Text      string          `json:"text"`
	Thinking  string          `json:"thinking"`
	ID        string          `json:"id"`
	Name      string          `json:"name"`
	Input     json.RawMessage `json:"input"`
	ToolUseID string          `json:"tool_use_id"`
	Content   json.RawMessage `json:"content"`
	IsError   bool            `json:"is_error"`
}

type antTool struct {
	Type        string          `json:"type"`
	Name        string          `json:"name"`
	Description string          `json:"description"`
	InputSchema json.RawMessage `json:"input_schema"`
}

type antToolChoice struct {
	Type string `json:"type"`
	Name string `json:"name"`
}

// antBlocks reads content that is a string or an array of blocks.
func antBlocks(raw json.RawMessage, field string) ([]antBlock, *apiError) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return []antBlock{{Type: "text", Text: s}}, nil
	}
	var blocks []antBlock
	if err := json.Unmarshal(raw, &blocks); err != nil {
		return nil, invalid(field, "%s: expected a string or an array of content blocks", field)
	}
	return blocks, nil
}

func unsupported(field string, b antBlock) *apiError {
	return invalid(field, "%s: %s content is not supported: this server runs a text-only model", field, b.Type)
}

// antText joins text blocks (system prompts, tool results).
func antText(raw json.RawMessage, field string) (string, *apiError) {
	blocks, e := antBlocks(raw, field)
	if e != nil {
		return "", e
	}
	var texts []string
	for i, b := range blocks {
		f := fmt.Sprintf("%s[%d]", field, i)
		switch b.Type {
		case "text":
			texts = append(texts, b.Text)
		case "image", "document":
			return "", unsupported(f, b)
		default:
			return "", invalid(f, "%s: block type %q is not allowed here (expected \"text\")", f, b.Type)
		}
	}
	return strings.Join(texts, "\n"), nil
}

// messages turns the Anthropic conversation into chat turns: tool_result
// blocks become tool messages, tool_use blocks assistant tool calls.
//
// Messages with role "system" (Claude Code puts agent and skill listings
// there) are accepted anywhere: those before the first user or assistant
// turn join the top-level system prompt; later ones stay where they are as
// system turns, so the cached prefix before them is not disturbed (see
// Server.render for templates that refuse a system turn mid-conversation).
func (req *antRequest) messages() ([]Message, *apiError) {
	if len(req.Messages) == 0 {
		return nil, invalid("messages", "messages: at least one message is required")
	}
	var out []Message
	system, e := antText(req.System, "system")
	if e != nil {
		return nil, e
	}
	if system != "" {
		out = append(out, Message{Role: "system", Content: system})
	}
	names := map[string]string{}
	for i, m := range req.Messages {
		field := fmt.Sprintf("messages[%d]", i)
		if m.Role == "system" {
			text, e := antText(m.Content, field+".content")
			if e != nil {
				return nil, e
			}
			if len(out) > 0 && out[len(out)-1].Role == "system" && !conversed(out) {
				out[len(out)-1].Content += "\n\n" + text
			} else {
				out = append(out, Message{Role: "system", Content: text})
			}
			continue
		}
		if m.Role != "user" && m.Role != "assistant" {
			return nil, invalid(field+".role", "%s.role must be \"user\", \"assistant\" or \"system\", got %q", field, m.Role)
		}
		blocks, e := antBlocks(m.Content, field+".content")
		if e != nil {
			return nil, e
		}
		cur := Message{Role: m.Role}
		var texts []string
		flush := func() {
			cur.Content = strings.Join(texts, "\n")
			if cur.Content != "" || cur.ReasoningContent != "" || len(cur.ToolCalls) > 0 {
				out = append(out, cur)
			}
			cur, texts = Message{Role: m.Role}, nil
		}
		for k, b := range blocks {
			f := fmt.Sprintf("%s.content[%d]", field, k)
			switch {
			case b.Type == "text":
				texts = append(texts, b.Text)
			case b.Type == "image" || b.Type == "document":
				return nil, unsupported(f, b)
			case m.Role == "assistant" && b.Type == "thinking":
				cur.ReasoningContent += b.Thinking
			case m.Role == "assistant" && b.Type == "redacted_thinking":
			case m.Role == "assistant" && b.Type == "tool_use":
				if b.Name == "" {
					return nil, invalid(f+".name", "%s.name is required", f)
				}
				args := string(b.Input)
				if !isJSONObject(args) {
					args = "{}"
				}
				names[b.ID] = b.Name
				cur.ToolCalls = append(cur.ToolCalls, ToolCall{ID: b.ID, Name: b.Name, Arguments: args})
			case m.Role == "user" && b.Type == "tool_result":
				flush()
				content, e := antText(b.Content, f+".content")
				if e != nil {
					return nil, e
				}
				if b.IsError {
					content = "Error: " + content
				}
				out = append(out, Message{Role: "tool", Content: content, ToolCallID: b.ToolUseID, Name: names[b.ToolUseID]})
			default:
				return nil, invalid(f+".type", "%s.type %q is not allowed in a %s message", f, b.Type, m.Role)
			}
		}
		flush()
	}
	if !conversed(out) {
		return nil, invalid("messages", "messages: at least one user or assistant message is required")
	}
	return out, nil
}

func (req *antRequest) tools() ([]Tool, *apiError) {
	var tools []Tool
	for i, t := range req.Tools {
		if t.Type != "" && t.Type != "custom" {
			continue // Anthropic's server-side tools (web search, ...) do not exist here; the model is not offered them
		}
		if t.Name == "" {
			return nil, invalid(fmt.Sprintf("tools[%d].name", i), "tools[%d].name is required", i)
		}
		tools = append(tools, Tool{Name: t.Name, Description: t.Description, Parameters: t.InputSchema})
	}
	if c := req.ToolChoice; c != nil {
		switch c.Type {
		case "auto", "any", "":
		case "none":
			return chooseTools(tools, "none", nil)
		case "tool":
			return chooseTools(tools, "named", []string{c.Name})
		default:
			return nil, invalid("tool_choice.type", "tool_choice.type %q is not one of auto, any, tool, none", c.Type)
		}
	}
	return tools, nil
}

// conversed reports whether msgs hold a turn other than a system one.
func conversed(msgs []Message) bool {
	for _, m := range msgs {
		if m.Role != "system" {
			return true
		}
	}
	return false
}

// prompt checks and renders a messages or count_tokens request.
func (s *Server) antPrompt(req *antRequest) (ChatPrompt, *apiError) {
	if req.Model == "" {
		return ChatPrompt{}, invalid("model", "model: field required")
	}
	if e := s.checkModel(req.Model); e != nil {
		return ChatPrompt{}, e
	}
	msgs, e := req.messages()
	if e != nil {
		return ChatPrompt{}, e
	}
	tools, e := req.tools()
	if e != nil {
		return ChatPrompt{}, e
	}
	p := ChatPrompt{Messages: msgs, Tools: tools, AddGenerationPrompt: true}
	if req.Thinking != nil {
		switch req.Thinking.Type {
		case "enabled", "adaptive":
			p.Kwargs = map[string]any{"enable_thinking": true}
		case "disabled":
			p.Kwargs = map[string]any{"enable_thinking": false}
		default:
			return ChatPrompt{}, invalid("thinking.type", "thinking.type %q is not one of enabled, adaptive, disabled", req.Thinking.Type)
		}
	}
	return p, nil
}

func (s *Server) countTokens(w http.ResponseWriter, r *http.Request) {
	var req antRequest
	if e := decode(r, &req); e != nil {
		anthropic.writeError(w, e)
		return
	}
	p, e := s.antPrompt(&req)
	if e != nil {
		anthropic.writeError(w, e)
		return
	}
	j, e := s.chatJob(p, false, nil, Sampling{}, nil)
	if e != nil {
		anthropic.writeError(w, e)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"input_tokens": len(j.prompt)})
}

func (s *Server) messages(w http.ResponseWriter, r *http.Request) {
	var req antRequest
	if e := decode(r, &req); e != nil {
		anthropic.writeError(w, e)
		return
	}
	if req.MaxTokens == nil {
		anthropic.writeError(w, invalid("max_tokens", "max_tokens: field required"))
		return
	}
	p, e := s.antPrompt(&req)
	if e != nil {
		anthropic.writeError(w, e)
		return
	}
	sampling, e := s.sampling(req.Temperature, req.TopP, req.TopK, nil, nil, nil, nil)
	if e != nil {
		anthropic.writeError(w, e)
		return
	}
	j, e := s.chatJob(p, len(p.Tools) > 0, req.MaxTokens, sampling, req.StopSequences)
	if e != nil {
		anthropic.writeError(w, e)
		return
	}
	if c := req.ToolChoice; c != nil {
		if e := s.forceTools(j, p.Tools, c.Type == "any" || c.Type == "tool", "tool_choice"); e != nil {
			anthropic.writeError(w, e)
			return
		}
	}
	if req.Stream {
		s.antStream(w, r, j)
		return
	}
	var events []toolcall.Event
	s.generate(w, r, anthropic, j, func(ev toolcall.Event) error { events = append(events, ev); return nil }, func(out outcome) {
		content, calls := antContent(events)
		writeJSON(w, http.StatusOK, map[string]any{
			"id": newID("msg_"), "type": "message", "role": "assistant", "model": s.b.ModelID(),
			"content": content, "stop_reason": antStop(out, calls), "stop_sequence": stopSequence(out),
			"usage": antUsage(j, out.res),
		})
	})
}

// antContent builds content blocks in output order. A call whose
// arguments are not a JSON object becomes text.
func antContent(events []toolcall.Event) (blocks []map[string]any, calls int) {
	var r toolcall.Result
	kinds := map[toolcall.Kind]string{toolcall.Content: "text", toolcall.Reasoning: "thinking"}
	for _, ev := range events {
		r.Add(ev)
		n := len(blocks)
		switch ev.Kind {
		case toolcall.Content, toolcall.Reasoning:
			typ := kinds[ev.Kind]
			if n > 0 && blocks[n-1]["type"] == typ {
				blocks[n-1][typ] = blocks[n-1][typ].(string) + ev.Text
			} else if typ == "thinking" {
				blocks = append(blocks, map[string]any{"type": typ, typ: ev.Text, "signature": ""})
			} else {
				blocks = append(blocks, map[string]any{"type": typ, typ: ev.Text})
			}
		case toolcall.CallEnd:
			c := r.Calls[ev.Index]
			if isJSONObject(c.Arguments) {
				blocks = append(blocks, map[string]any{"type": "tool_use", "id": newID("toolu_"), "name": c.Name,
					"input": json.RawMessage(c.Arguments)})
				calls++
			} else if n > 0 && blocks[n-1]["type"] == "text" {
				blocks[n-1]["text"] = blocks[n-1]["text"].(string) + c.Raw
			} else {
				blocks = append(blocks, map[string]any{"type": "text", "text": c.Raw})
			}
		}
	}
	if blocks == nil {
		blocks = []map[string]any{}
	}
	return blocks, calls
}

func antStop(out outcome, calls int) string {
	switch out.finish {
	case "length":
		return "max_tokens"
	case "stop":
		return "stop_sequence"
	}
	if calls > 0 {
		return "tool_use"
	}
	return "end_turn"
}

func stopSequence(out outcome) any {
	if out.finish == "stop" {
		return out.stopped
	}
	return nil
}

// antUsage follows Anthropic's split: input_tokens are the prompt tokens
// that were processed, cache_read_input_tokens those reused.
func antUsage(j *job, r GenResult) map[string]any {
	return map[string]any{
		"input_tokens": len(j.prompt) - r.CachedTokens, "output_tokens": r.CompletionTokens,
		"cache_read_input_tokens": r.CachedTokens, "cache_creation_input_tokens": 0,
	}
}

// antStream writes the Anthropic event sequence: message_start, then per
// content block content_block_start / _delta / _stop, message_delta with
// the stop reason and usage, message_stop; pings keep the stream alive.
func (s *Server) antStream(w http.ResponseWriter, r *http.Request, j *job) {
	t, e := s.admit()
	if e != nil {
		anthropic.writeError(w, e)
		return
	}
	defer t.done()
	sse := newSSE(w, s.cfg.WriteTimeout)
	ev := func(name string, data map[string]any) error {
		data["type"] = name
		return sse.event(name, data)
	}
	// Until the generation reports its cache use, usage counts the whole
	// prompt as input; message_delta carries the final split.
	if ev("message_start", map[string]any{"message": map[string]any{
		"id": newID("msg_"), "type": "message", "role": "assistant", "model": s.b.ModelID(), "content": []any{},
		"stop_reason": nil, "stop_sequence": nil,
		"usage": map[string]any{"input_tokens": len(j.prompt), "output_tokens": 0, "cache_read_input_tokens": 0, "cache_creation_input_tokens": 0},
	}}) != nil {
		return
	}
	ping := func() error { return ev("ping", map[string]any{}) }
	if ping() != nil {
		return
	}
	pings := startPings(s.cfg.PingInterval, ping)
	defer pings.end()
	if err := t.wait(r.Context()); err != nil {
		anthropic.endStream(sse, r.Context(), err)
		return
	}
	index, open := -1, "" // the open block and its type
	closeBlock := func() error {
		if open == "" {
			return nil
		}
		open = ""
		return ev("content_block_stop", map[string]any{"index": index})
	}
	startBlock := func(typ string, block map[string]any) error {
		if err := closeBlock(); err != nil {
			return err
		}
		index++
		open = typ
		block["type"] = typ
		return ev("content_block_start", map[string]any{"index": index, "content_block": block})
	}
	delta := func(d map[string]any) error {
		return ev("content_block_delta", map[string]any{"index": index, "delta": d})
	}
	calls := 0
	out := s.run(r.Context(), j, func(e toolcall.Event) error {
		switch e.Kind {
		case toolcall.Content:
			if open != "text" {
				if err := startBlock("text", map[string]any{"text": ""}); err != nil {
					return err
				}
			}
			return delta(map[string]any{"type": "text_delta", "text": e.Text})
		case toolcall.Reasoning:
			if open != "thinking" {
				if err := startBlock("thinking", map[string]any{"thinking": "", "signature": ""}); err != nil {
					return err
				}
			}
			return delta(map[string]any{"type": "thinking_delta", "thinking": e.Text})
		case toolcall.CallStart:
			calls++
			return startBlock("tool_use", map[string]any{"id": newID("toolu_"), "name": e.Name, "input": map[string]any{}})
		case toolcall.CallArgs:
			return delta(map[string]any{"type": "input_json_delta", "partial_json": e.Text})
		case toolcall.CallEnd:
			return closeBlock()
		}
		return nil
	})
	if out.err != nil {
		anthropic.endStream(sse, r.Context(), out.err)
		return
	}
	if closeBlock() != nil {
		return
	}
	if ev("message_delta", map[string]any{
		"delta": map[string]any{"stop_reason": antStop(out, calls), "stop_sequence": stopSequence(out)},
		"usage": antUsage(j, out.res),
	}) != nil {
		return
	}
	ev("message_stop", map[string]any{})
}
