package tokenizer

import (
	"encoding/binary"
	"strings"
	"testing"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// FuzzRoundTrip: on the byte-level Qwen3 tokenizer, decoding the ids of any
// input gives back the input as Hugging Face sees it (lossy UTF-8, then NFC
// between added tokens), streaming gives the same text, and nothing panics.
func FuzzRoundTrip(f *testing.F) {
	for _, s := range []string{"", "Hello world", "a\n\n\nb  ", "<|im_start|>user\nhi<|im_end|>", "\xff\xe2\x82",
		"e\u0301 <think>\u0338", "日本語 😀👍🏽", "   x\t\r\n", "don't 'S 'ſ", "\u00a0\u3000\u2028"} {
		f.Add(s)
	}
	tk := testTokenizer(f, "qwen3")
	f.Fuzz(func(t *testing.T, s string) {
		ids := tk.Encode(s)
		for _, id := range ids {
			if id < 0 || id >= tk.VocabSize() {
				t.Fatalf("Encode(%q) gave id %d outside the vocabulary", s, id)
			}
		}
		want := huggingFaceText(tk, s)
		if got := tk.Decode(ids, false); got != want {
			t.Fatalf("Decode(Encode(%q)) = %q, want %q", s, got, want)
		}
		if got := streamDecode(tk, ids, false); got != want {
			t.Fatalf("stream decode of Encode(%q) = %q, want %q", s, got, want)
		}
	})
}

// huggingFaceText is the text the tokenizer actually encodes: the lossy
// UTF-8 conversion of s, NFC-normalized piece by piece between the added
// tokens, which are kept as written.
func huggingFaceText(tk *Tokenizer, s string) string {
	s = validUTF8(s)
	var b strings.Builder
	for _, seg := range tk.added.appendSegments(nil, s, &tk.added.raw) {
		text := s[seg.start:seg.end]
		if seg.token < 0 {
			text = norm.NFC.String(text)
		}
		b.WriteString(text)
	}
	return b.String()
}

// FuzzDecode: any id sequence decodes without a panic, to valid UTF-8, and
// streaming it one id at a time gives the same text, with and without
// special tokens.
func FuzzDecode(f *testing.F) {
	f.Add(packIDs(9707, 1879))                // Qwen3 "Hello world"
	f.Add(packIDs(145, 224, 250))             // bytes of one character, split
	f.Add(packIDs(151644, 872, 151645, 1e6))  // special tokens, an id past the end
	f.Add(packIDs(230, 3, 200, 1, 130, 9707)) // byte-fallback tokens of llama_legacy
	for _, name := range []string{"qwen3", "llama_legacy"} {
		testTokenizer(f, name)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var ids []int
		for len(data) >= 3 {
			ids = append(ids, unpackID(data))
			data = data[3:]
		}
		for _, name := range []string{"qwen3", "llama_legacy"} {
			tk := testTokenizer(t, name)
			for _, skip := range []bool{false, true} {
				full := tk.Decode(ids, skip)
				if !utf8.ValidString(full) {
					t.Fatalf("%s: Decode(%v) is not valid UTF-8: %q", name, ids, full)
				}
				if got := streamDecode(tk, ids, skip); got != full {
					t.Fatalf("%s: stream decode of %v = %q, Decode gives %q", name, ids, got, full)
				}
			}
		}
	})
}

// packIDs writes ids as FuzzDecode reads them: 3 bytes each, of which 18
// bits are used (enough for every Qwen3 token and some ids past the end).
func packIDs(ids ...int) []byte {
	var b []byte
	for _, id := range ids {
		b = binary.LittleEndian.AppendUint16(b, uint16(id))
		b = append(b, byte(id>>16))
	}
	return b
}

func unpackID(b []byte) int { return int(binary.LittleEndian.Uint16(b)) | int(b[2]&3)<<16 }
