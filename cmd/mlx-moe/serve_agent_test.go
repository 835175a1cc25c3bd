package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mlx-moe/mlx-moe/server"
)

// agentBackend is the model as coding agents see it in scripts/agents: the
// real model's chat template, tokenizer and detokenizer (the embedded model
// unless --model names another), with a scripted reply in place of
// sampling, so that the protocol runs of Claude Code and Codex are
// deterministic. The reply follows the rendered prompt:
//
//   - after a tool result: a sentence quoting the result's line that holds
//     the marker (or its first line);
//   - when the last user turn asks to "run the marker command" and the
//     agent offers a shell tool: a call of that tool, in the model's own
//     tool-call markup, that prints mlx-moe-agent-ok;
//   - otherwise: a short greeting.
//
// Every reply ends the turn, as an end-of-sequence token would.
type agentBackend struct {
	*engineBackend
	mu   sync.Mutex
	last []int
}

// agentContext is the context length the scripted runs allow: agents send
// 20-40k-token prompts, which the scripted reply does not need to fit the
// model's own context.
const agentContext = 1 << 20

func loadAgentBackend(o serveOptions, stderr io.Writer) (server.Backend, func() error, error) {
	m, err := o.model.load(stderr)
	if err != nil {
		return nil, nil, err
	}
	return &agentBackend{engineBackend: &engineBackend{m: m}}, m.Close, nil
}

func (b *agentBackend) ContextLength() int { return agentContext }

// agentMarker is what the scripted shell call prints.
const agentMarker = "mlx-moe-agent-ok"

// The shell tools agents offer, with arguments that print the marker.
var agentShellCalls = []struct{ name, args string }{
	{"Bash", `{"command": "echo mlx-moe-agent-ok", "description": "Print the marker"}`}, // Claude Code
	{"shell_command", `{"command": "echo mlx-moe-agent-ok"}`},                           // Codex
	{"exec_command", `{"cmd": "echo mlx-moe-agent-ok"}`},                                // Codex
	{"shell", `{"command": ["echo", "mlx-moe-agent-ok"]}`},                              // Codex (older)
}

var toolResponse = regexp.MustCompile(`(?s)<tool_response>\n?(.*?)\n?</tool_response>`)

// agentReply is the scripted reply to a rendered (Qwen3-style) prompt.
func agentReply(prompt string) string {
	turns := strings.Split(prompt, "<|im_start|>")
	lastUser := ""
	for i := len(turns) - 1; i >= 0; i-- {
		if strings.HasPrefix(turns[i], "user") {
			lastUser = turns[i]
			break
		}
	}
	if m := toolResponse.FindAllStringSubmatch(lastUser, -1); m != nil {
		lines := strings.Split(strings.TrimSpace(m[len(m)-1][1]), "\n")
		quote := lines[0]
		for _, l := range lines {
			if strings.Contains(l, agentMarker) {
				quote = strings.TrimSpace(l)
			}
		}
		return "The command printed: " + quote
	}
	if strings.Contains(strings.ToLower(lastUser), "run the marker command") {
		for _, c := range agentShellCalls {
			if strings.Contains(prompt, `"name": "`+c.name+`"`) {
				return fmt.Sprintf("I will run it.\n<tool_call>\n{\"name\": %q, \"arguments\": %s}\n</tool_call>", c.name, c.args)
			}
		}
	}
	return "Hello from mlx-moe."
}

// Generate replays agentReply through the tokenizer and a stream decoder,
// one token at a time, as the engine emits tokens.
func (b *agentBackend) Generate(ctx context.Context, req server.GenRequest, emit func(server.Token) error) (server.GenResult, error) {
	b.mu.Lock()
	cached := 0
	for cached < len(b.last) && cached < len(req.Prompt)-1 && b.last[cached] == req.Prompt[cached] {
		cached++
	}
	b.last = req.Prompt
	b.mu.Unlock()
	res := server.GenResult{PromptTokens: len(req.Prompt), CachedTokens: cached, Finish: server.FinishEOS}
	start := time.Now()
	defer func() { res.DecodeTime = time.Since(start) }()
	tok := b.m.Tok
	reply := agentReply(tok.Decode(req.Prompt, false))
	// Special tokens are kept: the embedded model's tokenizer flags
	// <tool_call> and <think> as special (real Qwen3 checkpoints do not),
	// and the reply never holds any other.
	dec := tok.NewStreamDecoder(false)
	for _, id := range b.m.EncodeChat(reply) {
		if err := ctx.Err(); err != nil {
			return res, err
		}
		if res.CompletionTokens == req.MaxTokens {
			res.Finish = server.FinishLength
			return res, nil
		}
		res.CompletionTokens++
		if err := emit(server.Token{ID: int(id), Text: dec.Add(int(id))}); err != nil {
			return res, err
		}
	}
	if tail := dec.Flush(); tail != "" {
		if err := emit(server.Token{ID: -1, Text: tail}); err != nil {
			return res, err
		}
	}
	return res, nil
}

// The scripted replies: a greeting, a call of whichever shell tool is
// offered (valid JSON arguments), and an answer from the tool result.
func TestAgentReply(t *testing.T) {
	if got := agentReply("<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"); got != "Hello from mlx-moe." {
		t.Errorf("greeting %q", got)
	}
	for _, c := range agentShellCalls {
		prompt := `<|im_start|>system\n<tools>\n{"type": "function", "function": {"name": "` + c.name + `"}}\n</tools><|im_end|>\n<|im_start|>user\nPlease run the marker command.<|im_end|>\n<|im_start|>assistant\n`
		reply := agentReply(prompt)
		_, call, ok := strings.Cut(reply, "<tool_call>\n")
		var v struct {
			Name      string          `json:"name"`
			Arguments json.RawMessage `json:"arguments"`
		}
		if !ok || json.Unmarshal([]byte(strings.TrimSuffix(call, "\n</tool_call>")), &v) != nil || v.Name != c.name || !isObject(v.Arguments) {
			t.Errorf("%s: reply %q", c.name, reply)
		}
	}
	result := "<|im_start|>user\nrun the marker command<|im_end|>\n<|im_start|>assistant\n<tool_call>...</tool_call><|im_end|>\n<|im_start|>user\n<tool_response>\nmlx-moe-agent-ok\nmore\n</tool_response><|im_end|>\n<|im_start|>assistant\n"
	if got := agentReply(result); got != "The command printed: mlx-moe-agent-ok" {
		t.Errorf("after the tool result %q", got)
	}
}

func isObject(raw json.RawMessage) bool {
	var m map[string]any
	return json.Unmarshal(raw, &m) == nil
}
