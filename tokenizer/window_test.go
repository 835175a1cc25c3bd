package tokenizer

import (
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

// Long text is pre-tokenized a window at a time; the ids must be those of
// the whole text. With windows of a few bytes (so that nearly every piece
// meets a window edge), every golden text of every tokenizer still encodes
// to Hugging Face's ids, and so does all of a tokenizer's golden text
// joined into one long stretch (compared with encoding it unwindowed).
func TestWindowedEncodeIsExact(t *testing.T) {
	saved := windowBytes
	t.Cleanup(func() { windowBytes = saved })
	for _, name := range goldenNames {
		t.Run(name, func(t *testing.T) {
			tk := testTokenizer(t, name)
			g := readGolden(t, name)
			var texts []string
			for _, c := range g.Encode {
				texts = append(texts, goldenText(t, c.Text, c.BytesHex))
			}
			long := strings.Join(texts, "\n") + strings.Repeat("  x\n\n\t 12345 ", 50)
			windowBytes = 1 << 30
			want := tk.Encode(long)
			for _, w := range []int{3, 8, 17, 64, 1000} {
				windowBytes = w
				for i, text := range texts {
					if got := tk.Encode(text); !slices.Equal(got, g.Encode[i].IDs) {
						t.Fatalf("window %d: Encode(%q) = %v, want %v", w, text, got, g.Encode[i].IDs)
					}
				}
				if got := tk.Encode(long); !slices.Equal(got, want) {
					t.Fatalf("window %d: the joined text (%d bytes) encodes differently from whole", w, len(long))
				}
			}
		})
	}
}

// Random text made of the characters the pre-tokenizers treat specially
// (runs of spaces and newlines, digits, contractions, CJK, punctuation,
// combining marks) encodes the same in small windows as whole.
func TestWindowedEncodeRandomText(t *testing.T) {
	saved := windowBytes
	t.Cleanup(func() { windowBytes = saved })
	alphabet := []string{" ", "  ", "\n", "\r\n", "\t", "a", "Zebra", "'s", "'LL", "7", "2024", "中文", "カタ", "é", "e\u0301",
		"!", "...", "{", "}", "()", "_", "-", "▁", "😀", "ß", "\u00a0", "<|im_start|>", "x1", "1x"}
	rng := rand.New(rand.NewPCG(1, 2))
	for _, name := range goldenNames {
		tk := testTokenizer(t, name)
		for range 60 {
			var b strings.Builder
			for range 20 + rng.IntN(200) {
				b.WriteString(alphabet[rng.IntN(len(alphabet))])
			}
			text := b.String()
			windowBytes = 1 << 30
			want := tk.Encode(text)
			for _, w := range []int{3, 5, 9, 33} {
				windowBytes = w
				if got := tk.Encode(text); !slices.Equal(got, want) {
					t.Fatalf("%s, window %d: Encode(%q) = %v, whole %v", name, w, text, got, want)
				}
			}
		}
	}
}
