package mlxmoe

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/mlx-moe/mlx-moe/chat"
	"github.com/mlx-moe/mlx-moe/chat/toolcall"
)

// ChatOptions configure a Chat.
type ChatOptions struct {
	// System is the system prompt ("" for none).
	System string
	// Tools are OpenAI-style tool definitions
	// ({"type": "function", "function": {"name", "description", "parameters"}})
	// offered to the model; its calls come back in Reply.ToolCalls.
	Tools []json.RawMessage
	// TemplateKwargs are passed to the chat template, e.g.
	// {"enable_thinking": false}.
	TemplateKwargs map[string]any
}

// Chat is a conversation with a model: it keeps the message history,
// renders it with the model's chat template for each turn and generates the
// assistant's reply. It holds its own Session, so each turn processes only
// the tokens the history did not already have (the new user message and
// the template's markup around it). A Chat is not safe for concurrent use;
// chats on one Model generate concurrently, batched by its scheduler.
type Chat struct {
	m       *Model
	s       *Session
	opts    ChatOptions
	tools   []toolcall.Tool
	format  toolcall.Format
	history []chat.Message
}

// Reply is one assistant turn.
type Reply struct {
	// Content is the answer, Reasoning the thinking (<think>...</think>)
	// that came before it, ToolCalls the calls the model made.
	Content   string
	Reasoning string
	ToolCalls []chat.ToolCall
	// DroppedMessages is how many of the oldest messages were removed from
	// the history because the conversation no longer fit the context.
	DroppedMessages int
	// IDs are the generated tokens.
	IDs []int32
	// FinishReason is the generation's: "stop", "length" or "cancelled".
	FinishReason string
	Usage        Usage
}

// Usage is what one turn cost.
type Usage struct {
	PromptTokens    int // the whole rendered conversation
	CachedTokens    int // of which reused from earlier turns, not processed
	GeneratedTokens int
	// TimeToFirstToken is the prompt processing time; Decode the rest.
	TimeToFirstToken time.Duration
	Decode           time.Duration
	// TokensPerSecond is the decode speed.
	TokensPerSecond float64
}

// ChatEvent is one piece of a streamed reply: answer text (toolcall.Content),
// thinking (toolcall.Reasoning), or a tool call's start, argument fragments
// and end.
type ChatEvent = toolcall.Event

// NewChat starts a conversation. Close it to free its cache.
func (m *Model) NewChat(opts ChatOptions) (*Chat, error) {
	c := &Chat{m: m, s: m.NewSession(), opts: opts, format: toolcall.Detect(m.Template.Source())}
	for i, raw := range opts.Tools {
		t, err := parseTool(raw)
		if err != nil {
			return nil, fmt.Errorf("ChatOptions.Tools[%d]: %w", i, err)
		}
		c.tools = append(c.tools, t)
	}
	return c, nil
}

// parseTool reads a tool's name and parameter schema from an OpenAI-style
// definition (or a bare {"name", "parameters"} object).
func parseTool(raw json.RawMessage) (toolcall.Tool, error) {
	var d struct {
		Name       string          `json:"name"`
		Parameters json.RawMessage `json:"parameters"`
		Function   *struct {
			Name       string          `json:"name"`
			Parameters json.RawMessage `json:"parameters"`
		} `json:"function"`
	}
	if err := json.Unmarshal(raw, &d); err != nil {
		return toolcall.Tool{}, fmt.Errorf("not a tool definition: %v", err)
	}
	if d.Function != nil {
		d.Name, d.Parameters = d.Function.Name, d.Function.Parameters
	}
	if d.Name == "" {
		return toolcall.Tool{}, fmt.Errorf("the tool has no name (expected {\"type\": \"function\", \"function\": {\"name\": ...}})")
	}
	return toolcall.Tool{Name: d.Name, Parameters: d.Parameters}, nil
}

// History returns a copy of the conversation so far (the system prompt is
// not part of it: it lives in the options).
func (c *Chat) History() []chat.Message { return slices.Clone(c.history) }

// SetHistory replaces the conversation: to edit, truncate (SetHistory(
// History()[:n])) or restore one. The next turn reuses whatever prefix of
// the cached conversation still matches.
func (c *Chat) SetHistory(h []chat.Message) { c.history = slices.Clone(h) }

// System returns the system prompt.
func (c *Chat) System() string { return c.opts.System }

// SetSystem changes the system prompt for later turns.
func (c *Chat) SetSystem(text string) { c.opts.System = text }

// SetTemplateKwarg sets a chat template keyword argument (such as
// enable_thinking) for later turns.
func (c *Chat) SetTemplateKwarg(key string, value any) {
	kw := make(map[string]any, len(c.opts.TemplateKwargs)+1)
	for k, v := range c.opts.TemplateKwargs {
		kw[k] = v
	}
	kw[key] = value
	c.opts.TemplateKwargs = kw
}

// Reset empties the history (the system prompt and tools stay).
func (c *Chat) Reset() { c.history = nil }

// savedChat is the JSON form of a conversation, in the field names of the
// OpenAI chat API.
type savedChat struct {
	System   string         `json:"system,omitempty"`
	Messages []savedMessage `json:"messages"`
}

type savedMessage struct {
	Role             string          `json:"role"`
	Content          string          `json:"content"`
	ReasoningContent string          `json:"reasoning_content,omitempty"`
	ToolCalls        []savedToolCall `json:"tool_calls,omitempty"`
	ToolCallID       string          `json:"tool_call_id,omitempty"`
	Name             string          `json:"name,omitempty"`
}

type savedToolCall struct {
	ID        string `json:"id"`
	Name      string `json:"name"`
	Arguments string `json:"arguments"`
}

// Save writes the system prompt and history as JSON.
func (c *Chat) Save(w io.Writer) error {
	s := savedChat{System: c.opts.System, Messages: []savedMessage{}}
	for _, m := range c.history {
		sm := savedMessage{Role: m.Role, Content: m.Content, ReasoningContent: m.ReasoningContent, ToolCallID: m.ToolCallID, Name: m.Name}
		for _, tc := range m.ToolCalls {
			sm.ToolCalls = append(sm.ToolCalls, savedToolCall(tc))
		}
		s.Messages = append(s.Messages, sm)
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(s)
}

// Load replaces the system prompt and history with those Save wrote.
func (c *Chat) Load(r io.Reader) error {
	var s savedChat
	if err := json.NewDecoder(r).Decode(&s); err != nil {
		return fmt.Errorf("reading a saved chat: %w", err)
	}
	history := make([]chat.Message, 0, len(s.Messages))
	for i, sm := range s.Messages {
		switch sm.Role {
		case "system", "user", "assistant", "tool":
		default:
			return fmt.Errorf("reading a saved chat: messages[%d] has role %q (expected system, user, assistant or tool)", i, sm.Role)
		}
		m := chat.Message{Role: sm.Role, Content: sm.Content, ReasoningContent: sm.ReasoningContent, ToolCallID: sm.ToolCallID, Name: sm.Name}
		for _, tc := range sm.ToolCalls {
			m.ToolCalls = append(m.ToolCalls, chat.ToolCall(tc))
		}
		history = append(history, m)
	}
	c.opts.System, c.history = s.System, history
	return nil
}

// AddToolResult appends the result of a tool call (id from
// Reply.ToolCalls); send it to the model with Stream or Send and empty
// text.
func (c *Chat) AddToolResult(callID, name, content string) {
	c.history = append(c.history, chat.Message{Role: "tool", ToolCallID: callID, Name: name, Content: content})
}

// Send adds text as a user message and returns the assistant's reply.
func (c *Chat) Send(ctx context.Context, text string, opts GenerateOptions) (Reply, error) {
	return c.Stream(ctx, text, opts, nil)
}

// Stream adds text as a user message (none when text is empty, to answer
// tool results) and generates the reply, calling emit for each piece as it
// comes. The reply joins the history when the generation ends, also when
// it was cancelled (with what was generated so far). An error from emit
// stops the generation and is returned. When the conversation no longer
// fits the context, its oldest turns are dropped from the history
// (Reply.DroppedMessages says how many messages).
func (c *Chat) Stream(ctx context.Context, text string, opts GenerateOptions, emit func(ChatEvent) error) (Reply, error) {
	history := c.history
	if text != "" {
		history = append(slices.Clone(history), chat.Message{Role: "user", Content: text})
	}
	if len(history) == 0 {
		return Reply{}, fmt.Errorf("nothing to answer: the message is empty and so is the history")
	}
	// Whole turns that no longer fit the context go, oldest first: the
	// prompt must leave room for a reply (MaxTokens, at most a quarter of
	// the context).
	reserve := opts.MaxTokens
	if reserve <= 0 {
		reserve = 256
	}
	reserve = min(reserve, c.m.ctxLen/4)
	var msgs []chat.Message
	var prompt string
	var ids []int32
	dropped := 0
	for {
		msgs = history
		if c.opts.System != "" {
			msgs = append([]chat.Message{{Role: "system", Content: c.opts.System}}, history...)
		}
		var err error
		if prompt, ids, err = c.m.ChatPrompt(msgs, c.opts.Tools, c.opts.TemplateKwargs); err != nil {
			return Reply{}, fmt.Errorf("rendering the conversation: %w", err)
		}
		next := slices.IndexFunc(history[min(1, len(history)):], func(m chat.Message) bool { return m.Role == "user" })
		if len(ids)+reserve <= c.m.ctxLen || next < 0 {
			break
		}
		history = history[next+1:]
		dropped += next + 1
	}
	// The conversation without the generation prompt is the prefix the next
	// turn shares (the generation prompt may differ from how the template
	// writes a finished reply): keep the cache there.
	if done, err := c.m.Template.Render(msgs, c.opts.Tools, false, c.opts.TemplateKwargs); err == nil && strings.HasPrefix(prompt, done) {
		if n := len(c.m.EncodeChat(done)); n > 0 && n < len(ids) {
			opts.CachePoints = append(slices.Clone(opts.CachePoints), n)
		}
	}
	parser := toolcall.NewParser(toolcall.Options{Format: c.format, Tools: c.tools,
		InThinking: strings.HasSuffix(strings.TrimRight(prompt, " \t\r\n"), "<think>")})
	reply := Reply{DroppedMessages: dropped}
	handle := func(evs []toolcall.Event) error {
		for _, ev := range evs {
			c.add(&reply, ev)
			if emit != nil {
				if err := emit(ev); err != nil {
					return err
				}
			}
		}
		return nil
	}
	// The session's text skips special tokens; the parser needs the markup
	// (<think>, <tool_call>), which some tokenizers mark special.
	dec := c.m.Tok.NewStreamDecoder(false)
	res, err := c.s.Stream(ctx, ids, opts, func(t Token) error {
		if t.ID < 0 {
			return nil
		}
		return handle(parser.Feed(dec.Add(int(t.ID))))
	})
	if err == nil || ctx.Err() != nil {
		err = handle(append(parser.Feed(dec.Flush()), parser.Close()...))
		if err == nil && ctx.Err() != nil && len(res.IDs) == 0 {
			err = ctx.Err()
		}
	}
	reply.IDs, reply.FinishReason = res.IDs, res.FinishReason
	reply.Usage = Usage{PromptTokens: res.PromptTokens, CachedTokens: res.CachedTokens, GeneratedTokens: len(res.IDs),
		TimeToFirstToken: res.Prefill, Decode: res.Decode, TokensPerSecond: res.DecodeTokensPerSecond()}
	if len(res.IDs) > 0 && err == nil {
		c.history = append(history, chat.Message{Role: "assistant", Content: reply.Content,
			ReasoningContent: reply.Reasoning, ToolCalls: reply.ToolCalls})
	} else if err == nil {
		c.history = history
	}
	return reply, err
}

// add folds one parsed event into the reply.
func (c *Chat) add(r *Reply, ev toolcall.Event) {
	switch ev.Kind {
	case toolcall.Content:
		r.Content += ev.Text
	case toolcall.Reasoning:
		r.Reasoning += ev.Text
	case toolcall.CallStart:
		// Ids number the calls of the conversation, so they stay unique
		// across turns and restored histories.
		n := len(r.ToolCalls) + 1
		for _, m := range c.history {
			n += len(m.ToolCalls)
		}
		r.ToolCalls = append(r.ToolCalls, chat.ToolCall{ID: fmt.Sprintf("call_%d", n), Name: ev.Name})
	case toolcall.CallArgs:
		if ev.Index < len(r.ToolCalls) {
			r.ToolCalls[ev.Index].Arguments += ev.Text
		}
	}
}

// Memory is what a chat's model holds in memory.
type Memory struct {
	Weights     int64 // resident weights (all but the paged experts)
	ExpertSlots int64 // the pager's slots for routed experts (0 without paging)
	KV          int64 // this chat's live cache and its snapshots
}

// Total is the sum of the parts.
func (mm Memory) Total() int64 { return mm.Weights + mm.ExpertSlots + mm.KV }

// Memory reports the memory the model and this chat hold. It waits for a
// scheduler step in progress to end.
func (c *Chat) Memory() Memory {
	m := c.m
	mm := Memory{Weights: m.Model.ResidentBytes(), KV: c.s.CacheStats().Bytes, ExpertSlots: m.slotBytes()}
	m.mu.Lock()
	mm.KV += int64(len(c.s.lanes)) * m.Model.CacheBytes(m.ctxLen)
	m.mu.Unlock()
	return mm
}

// MemoryBytes is Memory().Total().
func (c *Chat) MemoryBytes() int64 { return c.Memory().Total() }

// CacheStats reports the chat's prompt cache (snapshots and hits).
func (c *Chat) CacheStats() CacheStats { return c.s.CacheStats() }

// Close frees the chat's cache. The history stays; a later turn processes
// the whole conversation again.
func (c *Chat) Close() { c.s.Close() }
