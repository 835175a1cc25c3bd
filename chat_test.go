package mlxmoe

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/mlx-moe/mlx-moe/chat"
	"github.com/mlx-moe/mlx-moe/chat/toolcall"
	"github.com/mlx-moe/mlx-moe/defaultmodel"
	"github.com/mlx-moe/mlx-moe/internal/fixture"
)

// embeddedModel unpacks the embedded model (once) and returns its
// directory.
func embeddedModel() string {
	cache, err := defaultmodel.CacheDir()
	if err == nil {
		var dir string
		if dir, err = defaultmodel.Dir(cache); err == nil {
			return dir
		}
	}
	panic(err)
}

// ExampleModel_NewChat holds a two-turn conversation with the embedded
// model: the second turn processes only its new tokens.
func ExampleModel_NewChat() {
	m, err := Load(embeddedModel(), Options{Device: "cpu"})
	if err != nil {
		panic(err)
	}
	defer m.Close()
	c, err := m.NewChat(ChatOptions{System: "You write Python."})
	if err != nil {
		panic(err)
	}
	defer c.Close()
	ctx := context.Background()
	opts := GenerateOptions{MaxTokens: 16}
	first, err := c.Stream(ctx, "Write a linked list in Python", opts, func(ev ChatEvent) error {
		return nil // print ev.Text as it comes
	})
	if err != nil {
		panic(err)
	}
	second, err := c.Send(ctx, "Now add type hints", opts)
	if err != nil {
		panic(err)
	}
	fmt.Println("turn 1 generated:", first.Usage.GeneratedTokens > 0)
	fmt.Println("turn 2 reused turn 1:", second.Usage.CachedTokens >= first.Usage.PromptTokens)
	fmt.Println("messages:", len(c.History()))
	fmt.Println("memory reported:", c.MemoryBytes() > 0)
	// Output:
	// turn 1 generated: true
	// turn 2 reused turn 1: true
	// messages: 4
	// memory reported: true
}

// ExampleChat_Save saves a conversation and restores it into a new chat.
func ExampleChat_Save() {
	m, err := Load(embeddedModel(), Options{Device: "cpu"})
	if err != nil {
		panic(err)
	}
	defer m.Close()
	c, _ := m.NewChat(ChatOptions{})
	defer c.Close()
	c.SetHistory([]chat.Message{{Role: "user", Content: "def add(a, b):"}, {Role: "assistant", Content: "return a + b"}})
	var saved bytes.Buffer
	if err := c.Save(&saved); err != nil {
		panic(err)
	}
	restored, _ := m.NewChat(ChatOptions{})
	defer restored.Close()
	if err := restored.Load(&saved); err != nil {
		panic(err)
	}
	fmt.Println(restored.History()[1].Content)
	// Output: return a + b
}

// TestChatReuse: turn 2 of a 3,000-token conversation processes fewer than
// 100 tokens and generates what a cold chat with the same history does,
// on a hybrid model (snapshots) and a KV-only one (rewinding).
func TestChatReuse(t *testing.T) {
	for _, name := range []string{"qwen3_next-4bit", "qwen3_moe-4bit"} {
		t.Run(name, func(t *testing.T) {
			m, err := Load(fixture.Dir(t, "fixtures/"+name), Options{ContextLength: 4096, Experts: ExpertOptions{Policy: "resident"}})
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			rng := rand.New(rand.NewPCG(3, 4))
			words := []string{"def", "return", "list", "node", "value", "class", "self", "print", "for", "in", "range"}
			var long strings.Builder
			for len(m.EncodeChat(long.String())) < 3000 {
				long.WriteString(words[rng.IntN(len(words))] + " ")
			}
			opts := GenerateOptions{MaxTokens: 8}
			ctx := context.Background()
			warm, err := m.NewChat(ChatOptions{System: "You are terse."})
			if err != nil {
				t.Fatal(err)
			}
			defer warm.Close()
			r1, err := warm.Send(ctx, long.String(), opts)
			if err != nil {
				t.Fatal(err)
			}
			if r1.Usage.PromptTokens < 3000 {
				t.Fatalf("turn 1 prompt has %d tokens, want at least 3000", r1.Usage.PromptTokens)
			}
			before := warm.History()
			r2, err := warm.Send(ctx, "now explain", opts)
			if err != nil {
				t.Fatal(err)
			}
			if n := r2.Usage.PromptTokens - r2.Usage.CachedTokens; n >= 100 {
				t.Errorf("turn 2 processed %d of %d prompt tokens, want fewer than 100", n, r2.Usage.PromptTokens)
			}
			t.Logf("turn 1: %d prompt tokens; turn 2: %d of %d processed", r1.Usage.PromptTokens, r2.Usage.PromptTokens-r2.Usage.CachedTokens, r2.Usage.PromptTokens)
			cold, err := m.NewChat(ChatOptions{System: "You are terse."})
			if err != nil {
				t.Fatal(err)
			}
			defer cold.Close()
			cold.SetHistory(before)
			c2, err := cold.Send(ctx, "now explain", opts)
			if err != nil {
				t.Fatal(err)
			}
			if c2.Usage.CachedTokens != 0 {
				t.Errorf("cold chat reused %d tokens", c2.Usage.CachedTokens)
			}
			if !slices.Equal(r2.IDs, c2.IDs) || len(r2.IDs) == 0 {
				t.Errorf("turn 2 generated %v, a cold run %v", r2.IDs, c2.IDs)
			}
			if got := len(warm.History()); got != 4 {
				t.Errorf("history has %d messages after two turns, want 4", got)
			}
		})
	}
}

// TestChatCancel: a cancelled turn keeps what was generated, and the next
// turn works.
func TestChatCancel(t *testing.T) {
	m, err := Load(fixture.Dir(t, "fixtures/qwen3_next-4bit"), Options{ContextLength: 1024, Experts: ExpertOptions{Policy: "resident"}})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	c, err := m.NewChat(ChatOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithCancel(context.Background())
	n := 0
	r, err := c.Stream(ctx, "hello", GenerateOptions{MaxTokens: 200, IgnoreEOS: true}, func(ChatEvent) error {
		if n++; n == 3 {
			cancel()
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if r.FinishReason != "cancelled" || r.Usage.GeneratedTokens >= 200 {
		t.Fatalf("cancelled turn: finish %q after %d tokens", r.FinishReason, r.Usage.GeneratedTokens)
	}
	if h := c.History(); len(h) != 2 || h[1].Role != "assistant" {
		t.Fatalf("history after a cancelled turn: %+v", h)
	}
	if _, err := c.Send(context.Background(), "again", GenerateOptions{MaxTokens: 4}); err != nil {
		t.Fatal(err)
	}
	if len(c.History()) != 4 {
		t.Fatalf("history has %d messages, want 4", len(c.History()))
	}
}

func TestChatErrors(t *testing.T) {
	m, err := Load(fixture.Dir(t, "fixtures/qwen3_moe-4bit"), Options{ContextLength: 256, Experts: ExpertOptions{Policy: "resident"}})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if _, err := m.NewChat(ChatOptions{Tools: []json.RawMessage{json.RawMessage(`{"type":"function","function":{}}`)}}); err == nil || !strings.Contains(err.Error(), "Tools[0]") {
		t.Errorf("a nameless tool: %v", err)
	}
	c, _ := m.NewChat(ChatOptions{})
	defer c.Close()
	if _, err := c.Send(context.Background(), "", GenerateOptions{}); err == nil {
		t.Error("an empty message with no history was accepted")
	}
	if err := c.Load(strings.NewReader(`{"messages":[{"role":"robot"}]}`)); err == nil || !strings.Contains(err.Error(), "robot") {
		t.Errorf("a saved chat with a bad role: %v", err)
	}
	if err := c.Load(strings.NewReader(`{`)); err == nil {
		t.Error("truncated JSON was accepted")
	}
}

// forceOutput makes the model write ids and then end (a LogitsMask that
// leaves one token possible at each step).
func forceOutput(ids []int32, eos int32) func([]int32, []float32) {
	return func(generated []int32, logits []float32) {
		next := eos
		if len(generated) < len(ids) {
			next = ids[len(generated)]
		}
		for i := range logits {
			if int32(i) != next {
				logits[i] = float32(math.Inf(-1))
			}
		}
	}
}

// TestChatMarkup: thinking and tool-call markup the tokenizer marks as
// special tokens reach the parser: the reply keeps reasoning, content and
// calls apart, and a tool result is answered by the next turn.
func TestChatMarkup(t *testing.T) {
	m, err := Load(fixture.Dir(t, "fixtures/qwen3_next-4bit"), Options{ContextLength: 1024, Experts: ExpertOptions{Policy: "resident"}})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	tool := json.RawMessage(`{"type":"function","function":{"name":"add","parameters":{"type":"object","properties":{"a":{"type":"integer"}}}}}`)
	c, err := m.NewChat(ChatOptions{Tools: []json.RawMessage{tool}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	eos := m.EncodeChat("<|im_end|>")
	if len(eos) != 1 {
		t.Fatalf("<|im_end|> encodes as %v", eos)
	}
	out := m.EncodeChat("<think>\nplan\n</think>\n\nsum<tool_call>\n{\"name\": \"add\", \"arguments\": {\"a\": 1}}\n</tool_call>")
	var reasoning string
	r, err := c.Stream(context.Background(), "add one", GenerateOptions{MaxTokens: 100, LogitsMask: forceOutput(out, eos[0])},
		func(ev ChatEvent) error {
			if ev.Kind == toolcall.Reasoning {
				reasoning += ev.Text
			}
			return nil
		})
	if err != nil {
		t.Fatal(err)
	}
	if r.Reasoning != "plan" || reasoning != "plan" || r.Content != "sum" || len(r.ToolCalls) != 1 ||
		r.ToolCalls[0].Name != "add" || r.ToolCalls[0].Arguments != `{"a": 1}` {
		t.Fatalf("reply %+v (streamed reasoning %q)", r, reasoning)
	}
	c.AddToolResult(r.ToolCalls[0].ID, "add", "2")
	r2, err := c.Stream(context.Background(), "", GenerateOptions{MaxTokens: 4}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if r2.Usage.CachedTokens == 0 {
		t.Errorf("the turn after a tool result reused nothing: %+v", r2.Usage)
	}
	var roles []string
	for _, msg := range c.History() {
		roles = append(roles, msg.Role)
	}
	if got := strings.Join(roles, ","); got != "user,assistant,tool,assistant" {
		t.Errorf("history roles %s", got)
	}
	// Reasoning, tool calls and results survive a save and a load.
	var saved bytes.Buffer
	if err := c.Save(&saved); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(saved.String(), `"tool_call_id": "call_1"`) || !strings.Contains(saved.String(), `"reasoning_content": "plan"`) {
		t.Errorf("saved chat:\n%s", saved.String())
	}
	restored, _ := m.NewChat(ChatOptions{})
	if err := restored.Load(&saved); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(restored.History(), c.History()) {
		t.Errorf("restored history %+v, want %+v", restored.History(), c.History())
	}
}

// TestChatDropsOldTurns: a conversation that outgrows the context loses
// its oldest turns instead of failing.
func TestChatDropsOldTurns(t *testing.T) {
	m, err := Load(fixture.Dir(t, "fixtures/qwen3_moe-4bit"), Options{ContextLength: 128, Experts: ExpertOptions{Policy: "resident"}})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	c, err := m.NewChat(ChatOptions{System: "terse"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	opts := GenerateOptions{MaxTokens: 200, IgnoreEOS: true}
	r1, err := c.Send(context.Background(), "one", opts)
	if err != nil {
		t.Fatal(err)
	}
	if r1.DroppedMessages != 0 || r1.Usage.PromptTokens+r1.Usage.GeneratedTokens != 128 {
		t.Fatalf("turn 1: %+v, want the reply to fill the context", r1.Usage)
	}
	r2, err := c.Send(context.Background(), "two", opts)
	if err != nil {
		t.Fatal(err)
	}
	if h := c.History(); r2.DroppedMessages != 2 || len(h) != 2 || h[0].Content != "two" {
		t.Fatalf("turn 2 dropped %d messages, history %+v", r2.DroppedMessages, h)
	}
}
