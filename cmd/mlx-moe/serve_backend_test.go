package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

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
	s, err := server.New(&engineBackend{m: m}, server.Config{AcceptAnyModel: true})
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
	got := cachedHubModels()
	if strings.Join(got, ",") != "mlx-community/Qwen3-Coder-Next-4bit,org/m" {
		t.Fatalf("cached models %v", got)
	}
}

func TestResolveHubModel(t *testing.T) {
	dir := t.TempDir()
	snap := filepath.Join(dir, "models--org--m", "snapshots", "abc123")
	os.MkdirAll(snap, 0o755)
	t.Setenv("HF_HUB_CACHE", dir)
	if got := resolveModelDir("org/m"); got != snap {
		t.Fatalf("org/m resolved to %q, want %q", got, snap)
	}
	if got := resolveModelDir("org/other"); got != "org/other" {
		t.Fatalf("an unknown id must stay as given, got %q", got)
	}
}
