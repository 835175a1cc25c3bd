package tokenizer

import (
	"slices"
	"strings"
	"sync"
	"testing"
	"unicode/utf8"
)

func TestSpecialTokens(t *testing.T) {
	q := testTokenizer(t, "qwen3")
	if got := q.EOSTokenIDs(); !slices.Equal(got, []int{151645}) {
		t.Errorf("qwen3 EOSTokenIDs = %v, want [151645] (<|im_end|>)", got)
	}
	if q.EOSToken() != "<|im_end|>" || q.BOSToken() != "" {
		t.Errorf("qwen3 EOSToken %q BOSToken %q", q.EOSToken(), q.BOSToken())
	}
	if _, ok := q.BOSTokenID(); ok {
		t.Error("qwen3 has no BOS token")
	}
	if id, ok := q.TokenID("<|im_start|>"); !ok || id != 151644 {
		t.Errorf(`TokenID("<|im_start|>") = %d, %v`, id, ok)
	}
	if id, ok := q.TokenID("Hello"); !ok || id != 9707 || q.Token(id) != "Hello" {
		t.Errorf(`TokenID("Hello") = %d, %v; Token = %q`, id, ok, q.Token(id))
	}
	if _, ok := q.TokenID("no such token"); ok {
		t.Error("TokenID found a token that does not exist")
	}
	if q.VocabSize() != 151669 {
		t.Errorf("qwen3 VocabSize = %d, want 151669 (151643 + 26 added)", q.VocabSize())
	}
	if !q.IsSpecial(151644) || q.IsSpecial(9707) || q.IsSpecial(-1) || q.IsSpecial(1<<30) || q.Token(-5) != "" {
		t.Error("IsSpecial/Token on special, plain and out-of-range ids")
	}
	// Qwen3 adds nothing around a prompt.
	if got := q.EncodeWithSpecialTokens("Hello world"); !slices.Equal(got, []int{9707, 1879}) {
		t.Errorf("qwen3 EncodeWithSpecialTokens = %v", got)
	}

	// DeepSeek-V3's tokenizer_config.json says add_bos_token: transformers
	// then puts <｜begin▁of▁sentence｜> first, although tokenizer.json's
	// post-processor adds nothing.
	d := testTokenizer(t, "deepseek_v3")
	if id, ok := d.BOSTokenID(); !ok || id != 0 || d.BOSToken() != "<｜begin▁of▁sentence｜>" {
		t.Errorf("deepseek_v3 BOS %q = %d, %v", d.BOSToken(), id, ok)
	}
	if got := d.EOSTokenIDs(); !slices.Equal(got, []int{1}) {
		t.Errorf("deepseek_v3 EOSTokenIDs = %v, want [1]", got)
	}
	if got := d.EncodeWithSpecialTokens("Hello world"); !slices.Equal(got, []int{0, 19923, 2058}) {
		t.Errorf("deepseek_v3 EncodeWithSpecialTokens = %v, want [0 19923 2058]", got)
	}

	// A TemplateProcessing post-processor (Llama/Mixtral style).
	l := testTokenizer(t, "llama_legacy")
	ids := l.Encode("Hello")
	if got := l.EncodeWithSpecialTokens("Hello"); !slices.Equal(got, append([]int{1}, ids...)) {
		t.Errorf("llama_legacy EncodeWithSpecialTokens = %v, want <s> + %v", got, ids)
	}
}

// TestStreamHoldsPartialCharacters: characters that Qwen3 splits into
// several byte tokens never come out half; each Add returns valid UTF-8.
func TestStreamHoldsPartialCharacters(t *testing.T) {
	tk := testTokenizer(t, "qwen3")
	text := "a𠀀b 🧑‍🔬 ꙮ€\u0301 done"
	ids := tk.Encode(text)
	d := tk.NewStreamDecoder(false)
	var out strings.Builder
	held := 0
	for _, id := range ids {
		piece := d.Add(id)
		if !utf8.ValidString(piece) || strings.Contains(piece, "\uFFFD") {
			t.Fatalf("Add(%d) = %q: not complete UTF-8", id, piece)
		}
		if piece == "" {
			held++
		}
		out.WriteString(piece)
	}
	out.WriteString(d.Flush())
	if out.String() != text {
		t.Errorf("streamed %q, want %q", out.String(), text)
	}
	if held == 0 {
		t.Errorf("no Add held text back; %v has no character split over tokens, so the test checks nothing", ids)
	}
	// After Flush the decoder starts over.
	if got := d.Add(ids[0]) + d.Flush(); got != "a" {
		t.Errorf("after Flush: %q, want %q", got, "a")
	}
}

// TestConcurrentEncode: one Tokenizer used from several goroutines gives
// the same ids as used from one.
func TestConcurrentEncode(t *testing.T) {
	tk := testTokenizer(t, "deepseek_v3")
	g := readGolden(t, "deepseek_v3")
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := w; i < len(g.Encode); i += 2 {
				c := g.Encode[i]
				if c.BytesHex != "" {
					continue
				}
				if got := tk.Encode(c.Text); !slices.Equal(got, c.IDs) {
					t.Errorf("Encode(%q) = %v, want %v", c.Text, got, c.IDs)
				}
			}
		})
	}
	wg.Wait()
}
