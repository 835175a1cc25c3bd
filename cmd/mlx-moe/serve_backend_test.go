package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	mlxmoe "github.com/mlx-moe/mlx-moe"
	"github.com/mlx-moe/mlx-moe/internal/fixture"
	"github.com/mlx-moe/mlx-moe/server"
)

// engineServer serves the qwen3_next fixture (linear attention: prefix
// reuse goes through cache snapshots) with the real engine.
func engineServer(t *testing.T, dir string) *httptest.Server {
	return engineServerWith(t, dir, mlxmoe.ExpertOptions{Policy: "resident"})
}

// engineServerWith serves the model in dir with experts held as eo says.
func engineServerWith(t *testing.T, dir string, eo mlxmoe.ExpertOptions) *httptest.Server {
	eo.NoWarmStart = true
	m, err := mlxmoe.Load(dir, mlxmoe.Options{ContextLength: 4096, Experts: eo})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	s, err := server.New(&engineBackend{m: m}, server.Config{})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(s.Handler())
	t.Cleanup(ts.Close)
	return ts
}

type chatReply struct {
	Choices []struct {
		Message struct {
			Content string `json:"content"`
		} `json:"message"`
	} `json:"choices"`
	Usage struct {
		PromptTokens int `json:"prompt_tokens"`
		Details      struct {
			Cached int `json:"cached_tokens"`
		} `json:"prompt_tokens_details"`
	} `json:"usage"`
}

func postChat(t *testing.T, url string, messages []map[string]string) chatReply {
	body, _ := json.Marshal(map[string]any{"model": "m", "messages": messages, "max_tokens": 12, "temperature": 0})
	resp, err := http.Post(url+"/v1/chat/completions", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("status %d: %s", resp.StatusCode, data)
	}
	var r chatReply
	if err := json.Unmarshal(data, &r); err != nil {
		t.Fatal(err)
	}
	return r
}

// TestServerPrefixReuse: a conversation of about 3,000 tokens extended by
// one turn reprocesses only the new tokens (usage and /metrics say so), and
// the answer equals a cold server's.
func TestServerPrefixReuse(t *testing.T) {
	if testing.Short() {
		t.Skip("3,000-token prefill skipped in -short")
	}
	dir := fixture.Dir(t, "fixtures/qwen3_next-4bit")
	warm := engineServer(t, dir)
	conv := []map[string]string{{"role": "user", "content": strings.Repeat("def add(a, b): return a + b\n", 200)}}
	first := postChat(t, warm.URL, conv)
	if first.Usage.PromptTokens < 2500 {
		t.Fatalf("first prompt has only %d tokens", first.Usage.PromptTokens)
	}
	conv = append(conv, map[string]string{"role": "assistant", "content": first.Choices[0].Message.Content},
		map[string]string{"role": "user", "content": "and subtraction?"})
	second := postChat(t, warm.URL, conv)
	newTokens := second.Usage.PromptTokens - second.Usage.Details.Cached
	if second.Usage.Details.Cached < first.Usage.PromptTokens || newTokens > 100 {
		t.Fatalf("second request: %d prompt tokens, %d cached; want the first prompt's %d reused and only the new turn processed",
			second.Usage.PromptTokens, second.Usage.Details.Cached, first.Usage.PromptTokens)
	}
	resp, err := http.Get(warm.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(metrics), "mlxmoe_prompt_tokens_cached_total "+itoa(second.Usage.Details.Cached)) {
		t.Fatalf("metrics do not report %d cached prompt tokens:\n%s", second.Usage.Details.Cached, metrics)
	}
	cold := postChat(t, engineServer(t, dir).URL, conv)
	if cold.Usage.Details.Cached != 0 || cold.Choices[0].Message.Content != second.Choices[0].Message.Content {
		t.Fatalf("cold run: cached %d, answer %q; warm answer %q", cold.Usage.Details.Cached, cold.Choices[0].Message.Content, second.Choices[0].Message.Content)
	}
	t.Logf("second request: %d prompt tokens, %d cached, %d processed", second.Usage.PromptTokens, second.Usage.Details.Cached, newTokens)
}

func itoa(n int) string { b, _ := json.Marshal(n); return string(b) }

func TestCachedHubModels(t *testing.T) {
	dir := t.TempDir()
	for _, d := range []string{"models--mlx-community--Qwen3-Coder-Next-4bit", "datasets--x--y", "models--org--m"} {
		os.MkdirAll(filepath.Join(dir, d), 0o755)
	}
	t.Setenv("HF_HUB_CACHE", dir)
	got := hubModelNames()
	if strings.Join(got, ",") != "mlx-community/Qwen3-Coder-Next-4bit,org/m" {
		t.Fatalf("cached models %v", got)
	}
}

func TestResolveHubModel(t *testing.T) {
	dir := t.TempDir()
	commit := strings.Repeat("ab", 20)
	snap := filepath.Join(dir, "models--org--m", "snapshots", commit)
	os.MkdirAll(snap, 0o755)
	os.MkdirAll(filepath.Join(dir, "models--org--m", "refs"), 0o755)
	os.WriteFile(filepath.Join(dir, "models--org--m", "refs", "main"), []byte(commit), 0o644)
	for _, f := range []string{"config.json", "model.safetensors"} {
		os.WriteFile(filepath.Join(snap, f), nil, 0o644)
	}
	t.Setenv("HF_HUB_CACHE", dir)
	if got, err := localModelDir("org/m"); got != snap || err != nil {
		t.Fatalf("org/m resolved to %q, %v; want %q", got, err, snap)
	}
	if _, err := localModelDir("org/other"); err == nil || !strings.Contains(err.Error(), "mlx-moe pull org/other") {
		t.Fatalf("an id not in the cache: %v", err)
	}
}

// TestServerAgentPrefix: a new agent session with the same system prompt
// and tools as an earlier one (and a different first message) reuses the
// state cached where the system prompt and tools end, even after another
// conversation ran in between; count_tokens of the system+tools part alone
// bounds what must be reused.
func TestServerAgentPrefix(t *testing.T) {
	if testing.Short() {
		t.Skip("2,000-token prefill skipped in -short")
	}
	ts := engineServer(t, fixture.Dir(t, "fixtures/qwen3_next-4bit"))
	system := strings.Repeat("You are a coding agent. Use the tools. ", 100)
	tools := `[{"name":"Bash","description":"Run a shell command","input_schema":{"type":"object","properties":{"command":{"type":"string"}},"required":["command"]}},
		{"name":"Read","description":"Read a file","input_schema":{"type":"object","properties":{"path":{"type":"string"}},"required":["path"]}}]`
	ask := func(user string) map[string]any {
		body := `{"model":"claude-sonnet-4-5","max_tokens":4,"temperature":0,"system":` + quote(system) + `,"tools":` + tools +
			`,"messages":[{"role":"user","content":` + quote(user) + `}]}`
		resp, err := http.Post(ts.URL+"/v1/messages", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var v map[string]any
		json.NewDecoder(resp.Body).Decode(&v)
		if resp.StatusCode != 200 {
			t.Fatalf("status %d: %v", resp.StatusCode, v)
		}
		return v["usage"].(map[string]any)
	}
	ask("List the files.")
	chatUsage := postChat(t, ts.URL, []map[string]string{{"role": "user", "content": "unrelated"}})
	if chatUsage.Usage.Details.Cached != 0 {
		t.Fatalf("unrelated request reused %d tokens", chatUsage.Usage.Details.Cached)
	}
	second := ask("Fix the failing test in parser.go, please.")
	// The system+tools part, as the template renders it before the first
	// user turn: at least the system prompt's tokens.
	cached, processed := int(second["cache_read_input_tokens"].(float64)), int(second["input_tokens"].(float64))
	if cached < 1000 || processed > 60 {
		t.Fatalf("second session reused %d tokens and processed %d; want the system prompt and tools (over 1,000) reused, only the user turn processed", cached, processed)
	}
	t.Logf("second session: %v", second)
}

func quote(s string) string { b, _ := json.Marshal(s); return string(b) }

// TestServerDisconnectStopsPrefill: a streamed request with a long prompt
// whose client disconnects during the prefill stops it
// at a chunk boundary (the retry of the same prompt finds a whole number
// of chunks cached, fewer than the prompt) and frees the engine.
func TestServerDisconnectStopsPrefill(t *testing.T) {
	if testing.Short() {
		t.Skip("3,000-token prefill skipped in -short")
	}
	ts := engineServer(t, fixture.Dir(t, "fixtures/qwen3_next-4bit"))
	conv := []map[string]string{{"role": "user", "content": strings.Repeat("def add(a, b): return a + b\n", 200)}}
	body, _ := json.Marshal(map[string]any{"model": "m", "messages": conv, "max_tokens": 12, "temperature": 0, "stream": true})
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "POST", ts.URL+"/v1/chat/completions", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	// The client leaves while the prompt is being prefilled (the checks
	// below hold whenever it leaves).
	time.Sleep(300 * time.Millisecond)
	cancel()
	resp.Body.Close()
	retry := postChat(t, ts.URL, conv)
	if retry.Usage.Details.Cached >= retry.Usage.PromptTokens-1 {
		t.Skip("the whole prompt was prefilled before the client left (TestPrefillCancel covers the chunk boundary deterministically)")
	}
	if c := retry.Usage.Details.Cached; c%64 != 0 {
		t.Fatalf("after the disconnect %d of %d prompt tokens were cached; want a whole number of prefill chunks (multiples of 64 tokens), short of the prompt",
			c, retry.Usage.PromptTokens)
	}
	mresp, err := http.Get(ts.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(mresp.Body)
	mresp.Body.Close()
	// (A disconnect seen before the generation started, on a loaded
	// machine, leaves nothing cached and nothing to count.)
	if c := retry.Usage.Details.Cached; c > 0 && !strings.Contains(string(metrics), "mlxmoe_generations_cancelled_total 1\n") {
		t.Fatalf("the disconnect after %d prefilled tokens is not counted as a cancelled generation:\n%s", c, metrics)
	}
	t.Logf("retry: %d prompt tokens, %d cached from the cancelled prefill", retry.Usage.PromptTokens, retry.Usage.Details.Cached)
}

// TestServerLogprobs: with the real engine, greedy tokens are their step's
// most likely alternative and their texts make up the answer.
func TestServerLogprobs(t *testing.T) {
	ts := engineServer(t, fixture.Dir(t, "fixtures/qwen3_moe-4bit"))
	body := `{"messages":[{"role":"user","content":"hello"}],"max_tokens":6,"temperature":0,"logprobs":true,"top_logprobs":3}`
	resp, err := http.Post(ts.URL+"/v1/chat/completions", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var v struct {
		Choices []struct {
			Logprobs struct {
				Content []struct {
					Token   string  `json:"token"`
					Logprob float64 `json:"logprob"`
					Top     []struct {
						Token   string  `json:"token"`
						Logprob float64 `json:"logprob"`
					} `json:"top_logprobs"`
				} `json:"content"`
			} `json:"logprobs"`
		} `json:"choices"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&v); err != nil || len(v.Choices) != 1 {
		t.Fatalf("answer: %v %+v", err, v)
	}
	content := v.Choices[0].Logprobs.Content
	if len(content) == 0 {
		t.Fatal("no logprobs")
	}
	for i, c := range content {
		if len(c.Top) != 3 || c.Top[0].Token != c.Token || c.Top[0].Logprob != c.Logprob || c.Logprob > 0 || c.Top[2].Logprob > c.Top[1].Logprob {
			t.Fatalf("token %d: %+v", i, c)
		}
	}
}
