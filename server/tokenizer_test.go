package server_test

import (
	"compress/gzip"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mlx-moe/mlx-moe/server"
	"github.com/mlx-moe/mlx-moe/tokenizer"
)

func loadTokenizer(t *testing.T, name string) *tokenizer.Tokenizer {
	t.Helper()
	dir := filepath.Join("testdata", "tokenizers", name)
	f, err := os.Open(filepath.Join(dir, "tokenizer.json.gz"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	js, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := os.ReadFile(filepath.Join(dir, "tokenizer_config.json"))
	if err != nil {
		t.Fatal(err)
	}
	tok, err := tokenizer.New(js, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// Recorded tool-call outputs replayed as real tokens (the markup tags are
// single added tokens, the rest BPE pieces) through the stream decoder,
// parser and both APIs' streams. Qwen3-Coder and GLM share Qwen's vocabulary.
func TestToolCallsThroughRealTokenizer(t *testing.T) {
	toks := map[string]*tokenizer.Tokenizer{"qwen3": loadTokenizer(t, "qwen3"), "deepseek_v3": loadTokenizer(t, "deepseek_v3")}
	for _, format := range formats {
		t.Run(format, func(t *testing.T) {
			tok := toks["qwen3"]
			if format == "deepseek-v3" {
				tok = toks["deepseek_v3"]
			}
			b := fake(format)
			b.Encode = tok.Encode
			b.NewDecoder = func() func(int) string { return tok.NewStreamDecoder(true).Add }
			ts := start(t, b, server.Config{})

			events := streamEvents(t, ts.URL+"/v1/messages", antToolRequest(true))
			var text, args, name string
			for _, e := range events {
				v := e.json(t)
				switch get(v, "delta", "type") {
				case "text_delta":
					text += get(v, "delta", "text").(string)
				case "input_json_delta":
					args += get(v, "delta", "partial_json").(string)
				}
				if n, ok := get(v, "content_block", "name").(string); ok {
					name = n
				}
				if e.name == "message_delta" && get(v, "delta", "stop_reason") != "tool_use" {
					t.Errorf("stop_reason %v", get(v, "delta", "stop_reason"))
				}
			}
			if text != "Let me check." || name != "get_weather" {
				t.Fatalf("text %q, call %q", text, name)
			}
			jsonEqual(t, args, `{"city":"Paris"}`)

			v := postJSON(t, ts.URL+"/v1/chat/completions", oaiToolRequest(false), 200)
			call := get(v, "choices", 0, "message", "tool_calls", 0)
			if get(call, "function", "name") != "get_weather" || get(v, "choices", 0, "message", "content") != "Let me check." {
				t.Fatalf("message %v", get(v, "choices", 0, "message"))
			}
			jsonEqual(t, get(call, "function", "arguments").(string), `{"city":"Paris"}`)
			if n := num(get(v, "usage", "completion_tokens")); n >= len(strings.Join(b.Reply("<|tools|>get_weather("), ""))/2 {
				t.Errorf("%d completion tokens: the reply was not tokenized by the real tokenizer", n)
			}
		})
	}
}
