//go:build unix

package main

import (
	"encoding/binary"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	mlxmoe "github.com/mlx-moe/mlx-moe"
	"github.com/mlx-moe/mlx-moe/internal/fixture"
)

// TestServeOSPolicyTruncatedShard: serving with --policy os, a shard
// truncated under the server fails the request that touches it with a 500
// naming the file; the server stays up, and once the file is whole again
// it answers as before.
func TestServeOSPolicyTruncatedShard(t *testing.T) {
	dir := fixture.Dir(t, "fixtures/qwen3_moe-4bit")
	ts := engineServerWith(t, dir, mlxmoe.ExpertOptions{Policy: "os"})
	conv := []map[string]string{{"role": "user", "content": "hello"}}
	before := postChat(t, ts.URL, conv)

	path := filepath.Join(dir, "model.safetensors")
	orig, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(path, 8+int64(binary.LittleEndian.Uint64(orig[:8]))); err != nil {
		t.Fatal(err)
	}
	resp, err := http.Post(ts.URL+"/v1/chat/completions", "application/json",
		strings.NewReader(`{"messages":[{"role":"user","content":"hello again"}],"max_tokens":4}`))
	if err != nil {
		t.Fatalf("the server dropped the request: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 500 || !strings.Contains(string(body), path) || !strings.Contains(string(body), "truncated") {
		t.Fatalf("over a truncated shard: %d %s, want a 500 naming %s", resp.StatusCode, body, path)
	}
	t.Logf("%d %s", resp.StatusCode, body)
	if h, err := http.Get(ts.URL + "/health"); err != nil || h.StatusCode != 200 {
		t.Fatalf("health after the fault: %v", err)
	}

	if err := os.WriteFile(path, orig, 0o644); err != nil {
		t.Fatal(err)
	}
	if after := postChat(t, ts.URL, conv); after.Choices[0].Message.Content != before.Choices[0].Message.Content {
		t.Errorf("after the file was restored: %q, before the fault %q", after.Choices[0].Message.Content, before.Choices[0].Message.Content)
	}
}
