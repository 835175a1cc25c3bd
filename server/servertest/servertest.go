// Package servertest provides a scripted server.Backend for tests of the
// HTTP server and its clients: it renders chats in a plain format, counts
// one token per byte, and replays the token texts a Reply function returns,
// so every response (tool calls in any model's markup included) is known in
// advance.
package servertest

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/mlx-moe/mlx-moe/server"
)

// Backend is a fake model. Set the fields before use; the methods are safe
// for concurrent use.
type Backend struct {
	ID      string
	Context int
	// Template is the chat template source the server inspects for the
	// tool-call format (see Templates).
	Template string
	// Reply returns the token texts to generate for a rendered prompt.
	Reply func(prompt string) []string
	// Encode and NewDecoder, when set, replay each reply through a real
	// tokenizer: the reply's text is encoded to ids and each token's text
	// comes from a fresh stream decoder, as the engine produces it.
	Encode     func(text string) []int
	NewDecoder func() func(id int) string
	// TokenDelay is slept before each token (a cancelled context cuts it short).
	TokenDelay time.Duration
	// Fail, if set, is returned by Generate after the first token.
	Fail error
	// RefuseLateSystem makes RenderChat fail on a system turn after a user
	// or assistant turn, as some models' templates do.
	RefuseLateSystem bool
	// Stat is returned by Stats.
	Stat map[string]float64

	mu         sync.Mutex
	last       []int // the previous prompt: its common prefix counts as cached
	running    int
	maxRunning int
	requests   []server.GenRequest
	cancelled  int
}

// Templates hold a line of each model family's chat template, enough for
// the server to pick the tool-call format.
var Templates = map[string]string{
	"qwen3":       `{{- '<tool_call>\n{"name": "' + tool_call.name + '", "arguments": ' }}`,
	"qwen3-coder": `{{- '<tool_call>\n<function=' + tool_call.name + '>\n' }}{{- '<parameter=' + k + '>\n' }}`,
	"glm":         `{{- '<tool_call>' + tc.name }}{{- '<arg_key>' + k + '</arg_key>' }}`,
	"deepseek-v3": `{{'<｜Assistant｜><｜tool▁calls▁begin｜><｜tool▁call▁begin｜>' + tool['type'] + '<｜tool▁sep｜>'}}`,
}

func (b *Backend) ModelID() string            { return b.ID }
func (b *Backend) ContextLength() int         { return b.Context }
func (b *Backend) ChatTemplateSource() string { return b.Template }

// Tokenize is one token per byte.
func (b *Backend) Tokenize(text string) []int {
	ids := make([]int, len(text))
	for i := 0; i < len(text); i++ {
		ids[i] = int(text[i])
	}
	return ids
}

func (b *Backend) Stats() map[string]float64 { return b.Stat }

// TokenBytes is one token per byte (as Tokenize), so requests that need
// constrained decoding are accepted; Generate replays the scripted reply
// without applying the mask.
func (b *Backend) TokenBytes() ([][]byte, []int) {
	toks := make([][]byte, 256)
	for i := range toks {
		toks[i] = []byte{byte(i)}
	}
	return toks, nil
}

// RenderChat writes each message as "<|role|>content", with reasoning,
// tool calls and the tool list spelled out, so tests can see what reached
// the template.
func (b *Backend) RenderChat(p server.ChatPrompt) (string, []int, error) {
	var s strings.Builder
	if len(p.Tools) > 0 {
		s.WriteString("<|tools|>")
		for _, t := range p.Tools {
			fmt.Fprintf(&s, "%s(%s) ", t.Name, compact(t.Parameters))
		}
		s.WriteString("\n")
	}
	for i, m := range p.Messages {
		if b.RefuseLateSystem && m.Role == "system" && i > 0 && p.Messages[i-1].Role != "system" {
			return "", nil, fmt.Errorf("System message must be at the beginning.")
		}
		fmt.Fprintf(&s, "<|%s|>", m.Role)
		if m.ReasoningContent != "" {
			fmt.Fprintf(&s, "<think>%s</think>", m.ReasoningContent)
		}
		s.WriteString(m.Content)
		for _, c := range m.ToolCalls {
			fmt.Fprintf(&s, "<call id=%s>%s %s</call>", c.ID, c.Name, compact(json.RawMessage(c.Arguments)))
		}
		if m.Role == "tool" {
			fmt.Fprintf(&s, " (for %s %s)", m.ToolCallID, m.Name)
		}
		s.WriteString("\n")
	}
	if p.AddGenerationPrompt {
		s.WriteString("<|assistant|>")
		if p.Kwargs["enable_thinking"] == true {
			s.WriteString("<think>\n")
		}
	}
	return s.String(), b.Tokenize(s.String()), nil
}

func compact(j json.RawMessage) string {
	var v any
	if json.Unmarshal(j, &v) != nil {
		return string(j)
	}
	out, _ := json.Marshal(v)
	return string(out)
}

// Generate replays Reply(prompt), one text per token.
func (b *Backend) Generate(ctx context.Context, req server.GenRequest, emit func(server.Token) error) (res server.GenResult, err error) {
	b.mu.Lock()
	b.running++
	b.maxRunning = max(b.maxRunning, b.running)
	b.requests = append(b.requests, req)
	cached := 0
	for cached < len(b.last) && cached < len(req.Prompt)-1 && b.last[cached] == req.Prompt[cached] {
		cached++
	}
	b.last = req.Prompt
	b.mu.Unlock()
	defer func() {
		b.mu.Lock()
		b.running--
		b.mu.Unlock()
	}()

	prompt := make([]byte, len(req.Prompt))
	for i, id := range req.Prompt {
		prompt[i] = byte(id)
	}
	res = server.GenResult{PromptTokens: len(req.Prompt), CachedTokens: cached, PrefillTime: time.Millisecond}
	start := time.Now()
	defer func() { res.DecodeTime = time.Since(start) }()
	for i, tok := range b.tokens(string(prompt)) {
		if res.CompletionTokens == req.MaxTokens {
			res.Finish = server.FinishLength
			return res, nil
		}
		if b.TokenDelay > 0 {
			select {
			case <-time.After(b.TokenDelay):
			case <-ctx.Done():
				b.cancel()
				return res, ctx.Err()
			}
		}
		if err := ctx.Err(); err != nil {
			b.cancel()
			return res, err
		}
		if b.Fail != nil && i == 1 {
			return res, b.Fail
		}
		res.CompletionTokens++
		if req.Logprobs {
			tok = scored(tok, i, req.TopLogprobs)
		}
		if err := emit(tok); err != nil {
			return res, err
		}
	}
	return res, nil
}

// tokens are the reply to prompt as the engine would emit them.
func (b *Backend) tokens(prompt string) []server.Token {
	reply := b.Reply(prompt)
	var out []server.Token
	if b.Encode == nil {
		for i, text := range reply {
			out = append(out, server.Token{ID: i, Text: text})
		}
		return out
	}
	dec := b.NewDecoder()
	for _, id := range b.Encode(strings.Join(reply, "")) {
		out = append(out, server.Token{ID: id, Text: dec(id)})
	}
	return out
}

// scored gives the i-th token of a reply the log-probability -(i+1)/10,
// with alternatives: the token itself, then "alt1", "alt2", ... each 1 lower.
func scored(tok server.Token, i, top int) server.Token {
	lp := -float64(i+1) / 10
	tok.Logprob = &server.Logprob{Token: tok.Text, Logprob: lp}
	for k := range top {
		alt := server.Logprob{Token: tok.Text, Logprob: lp - float64(k)}
		if k > 0 {
			alt.Token = fmt.Sprintf("alt%d", k)
		}
		tok.Top = append(tok.Top, alt)
	}
	return tok
}

func (b *Backend) cancel() {
	b.mu.Lock()
	b.cancelled++
	b.mu.Unlock()
}

// Requests returns the generations asked for so far.
func (b *Backend) Requests() []server.GenRequest {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]server.GenRequest(nil), b.requests...)
}

// MaxConcurrent is the most generations that ever ran at once.
func (b *Backend) MaxConcurrent() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.maxRunning
}

// Cancelled counts generations stopped by their context.
func (b *Backend) Cancelled() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.cancelled
}

// Pieces splits text into tokens of up to n characters, as a model's
// detokenizer would hand them out (whole UTF-8 characters only).
func Pieces(text string, n int) []string {
	var out []string
	for text != "" {
		i, k := 0, 0
		for i < len(text) && k < n {
			_, size := utf8.DecodeRuneInString(text[i:])
			i += size
			k++
		}
		out = append(out, text[:i])
		text = text[i:]
	}
	return out
}

// ToolCallOutputs are a get_weather(city="Paris") call as each format's
// model writes it, preceded by a short sentence.
var ToolCallOutputs = map[string]string{
	"qwen3":       "Let me check.\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}\n</tool_call>",
	"qwen3-coder": "Let me check.\n<tool_call>\n<function=get_weather>\n<parameter=city>\nParis\n</parameter>\n</function>\n</tool_call>",
	"glm":         "Let me check.\n<tool_call>get_weather\n<arg_key>city</arg_key>\n<arg_value>Paris</arg_value>\n</tool_call>",
	"deepseek-v3": "Let me check.<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>get_weather\n```json\n{\"city\": \"Paris\"}\n```<｜tool▁call▁end｜><｜tool▁calls▁end｜>",
}

// WeatherReply is a Reply for client tests: with tools offered and no tool
// result yet it calls get_weather in the format's markup; after a tool
// result it answers from it; otherwise it says hello, echoing the last
// user line. With thinking opened in the prompt it thinks first.
func WeatherReply(format string) func(prompt string) []string {
	return func(prompt string) []string {
		var out string
		lines := strings.Split(strings.TrimSpace(prompt), "\n")
		lastUser := ""
		for _, l := range lines {
			if rest, ok := strings.CutPrefix(l, "<|user|>"); ok {
				lastUser = rest
			}
		}
		switch {
		case strings.Contains(prompt, "<|tool|>"):
			out = "It is sunny in Paris."
		case strings.Contains(prompt, "<|tools|>") && strings.Contains(prompt, "get_weather("):
			out = ToolCallOutputs[format]
		default:
			out = "Hello! You said: " + lastUser
		}
		if strings.HasSuffix(prompt, "<think>\n") {
			out = "The user greets me.\n</think>\n\n" + out
		}
		return Pieces(out, 3)
	}
}
