package server_test

import (
	"strings"
	"testing"

	"github.com/mlx-moe/mlx-moe/server"
)

// The scripted backend scores the i-th token -(i+1)/10 with alternatives
// the token itself and "alt1", "alt2", ...
func TestChatLogprobs(t *testing.T) {
	b := fake("qwen3")
	ts := start(t, b, server.Config{})
	v := postJSON(t, ts.URL+"/v1/chat/completions", `{"messages":[{"role":"user","content":"hi"}],"logprobs":true,"top_logprobs":2}`, 200)
	content := get(v, "choices", 0, "logprobs", "content").([]any)
	var text strings.Builder
	for i, c := range content {
		e := c.(map[string]any)
		text.WriteString(e["token"].(string))
		if e["logprob"].(float64) != -float64(i+1)/10 || get(e, "top_logprobs", 1, "token") != "alt1" ||
			get(e, "top_logprobs", 0, "token") != e["token"] || len(e["bytes"].([]any)) != len(e["token"].(string)) {
			t.Fatalf("entry %d: %v", i, e)
		}
	}
	if text.String() != "Hello! You said: hi" || !b.Requests()[0].Logprobs || b.Requests()[0].TopLogprobs != 2 {
		t.Errorf("tokens %q, request %+v", text.String(), b.Requests()[0])
	}
	// Streamed: each chunk carries the tokens since the previous one.
	events := streamEvents(t, ts.URL+"/v1/chat/completions", `{"messages":[{"role":"user","content":"hi"}],"logprobs":true,"stream":true}`)
	n := 0
	for _, e := range events {
		if e.data == "[DONE]" {
			continue
		}
		lp, _ := get(e.json(t), "choices", 0, "logprobs", "content").([]any)
		for _, c := range lp {
			if get(c, "logprob").(float64) != -float64(n+1)/10 || len(get(c, "top_logprobs").([]any)) != 0 {
				t.Fatalf("streamed entry %d: %v", n, c)
			}
			n++
		}
	}
	if n != 7 {
		t.Errorf("streamed %d scored tokens, want 7", n)
	}
	// Without logprobs the field is null.
	v = postJSON(t, ts.URL+"/v1/chat/completions", `{"messages":[{"role":"user","content":"hi"}]}`, 200)
	if get(v, "choices", 0, "logprobs") != nil || b.Requests()[2].Logprobs {
		t.Errorf("logprobs without asking: %v", get(v, "choices", 0, "logprobs"))
	}
	postJSON(t, ts.URL+"/v1/chat/completions", `{"messages":[{"role":"user","content":"hi"}],"top_logprobs":2}`, 400)
	postJSON(t, ts.URL+"/v1/chat/completions", `{"messages":[{"role":"user","content":"hi"}],"logprobs":true,"top_logprobs":21}`, 400)
}

func TestCompletionLogprobs(t *testing.T) {
	ts := start(t, fake("qwen3"), server.Config{})
	v := postJSON(t, ts.URL+"/v1/completions", `{"prompt":"hi","logprobs":1}`, 200)
	lp := get(v, "choices", 0, "logprobs").(map[string]any)
	tokens, offsets := lp["tokens"].([]any), lp["text_offset"].([]any)
	if strings.Join(toStrings(tokens), "") != get(v, "choices", 0, "text") || len(lp["token_logprobs"].([]any)) != len(tokens) ||
		num(offsets[1]) != len(tokens[0].(string)) || len(get(lp, "top_logprobs", 0).(map[string]any)) != 1 {
		t.Errorf("logprobs %v", lp)
	}
	postJSON(t, ts.URL+"/v1/completions", `{"prompt":"hi","logprobs":6}`, 400)
}

func toStrings(a []any) []string {
	out := make([]string, len(a))
	for i, v := range a {
		out[i], _ = v.(string)
	}
	return out
}
