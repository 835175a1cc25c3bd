package tokenizer

import (
	"bytes"
	"testing"
)

// TestTokenBytesConcatenate checks that the bytes of a text's tokens, put
// together, are the text, including characters split across tokens.
func TestTokenBytesConcatenate(t *testing.T) {
	tok := testTokenizer(t, "qwen3")
	for _, text := range []string{"hello wörld", "日本語のテキスト 🙂", "{\"a\": [1, 2]}\n\tx"} {
		var got []byte
		for _, id := range tok.Encode(text) {
			got = append(got, tok.TokenBytes(id)...)
		}
		if !bytes.Equal(got, []byte(text)) {
			t.Errorf("%q: token bytes join to %q", text, got)
		}
	}
	if tok.TokenBytes(-1) != nil || tok.TokenBytes(tok.VocabSize()) != nil {
		t.Error("out-of-range ids give bytes")
	}
}
