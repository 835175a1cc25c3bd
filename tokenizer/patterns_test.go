package tokenizer

import (
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

// patternAlphabet mixes every character class the patterns distinguish:
// ASCII letters, digits, punctuation and symbols, each kind of whitespace,
// line breaks, apostrophe contractions, letters and marks and numbers from
// other scripts, CJK and kana inside and outside DeepSeek's ranges,
// controls, format characters and emoji.
var patternAlphabet = []string{
	"a", "Z", "s", "t", "re", "ve", "m", "ll", "d", "S", "LL", "ſ", "'", "'", "\"",
	"0", "7", "٣", "²", "½", "Ⅻ", "𝟙",
	".", ",", "!", "?", "-", "_", "(", "}", "<", "|", "`", "~", "$", "+", "=", "^", "@", "#", "\\", "/",
	" ", " ", " ", "  ", "\t", "\n", "\r", "\r\n", "\v", "\f", "\u0085", "\u00a0", "\u1680", "\u2002", "\u2028", "\u2029", "\u202f", "\u3000",
	"\u200b", "\u200d", "\ufeff", "\x00", "\x1c", "\x7f", "\u00ad",
	"é", "e\u0301", "\u0301", "ß", "Ω", "ж", "ا", "ह", "ि", "ก", "ั", "ǅ", "ʰ",
	"中", "龥", "龦", "の", "カ", "ー", "ｶ", "ゟ", "ヿ", "한", "。", "「",
	"€", "©", "→", "∑", "😀", "👍🏽", "\ue000",
}

func randomPatternText(r *rand.Rand) string {
	var b strings.Builder
	for range 1 + r.IntN(20) {
		b.WriteString(patternAlphabet[r.IntN(len(patternAlphabet))])
	}
	return b.String()
}

// TestHandCodedPatterns checks each hand-coded matcher against regexp2
// running the pattern it replaces, on random text.
func TestHandCodedPatterns(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for pattern, hand := range handCoded {
		re, err := compileRegexp2(pattern)
		if err != nil {
			t.Fatal(err)
		}
		fails := 0
		for range 20000 {
			s := randomPatternText(r)
			want := re.appendMatches(nil, s)
			if got := hand.appendMatches(nil, s); !slices.Equal(got, want) {
				t.Errorf("%T on %q: %v, regexp2 %v", hand, s, got, want)
				if fails++; fails > 10 {
					break
				}
			}
		}
	}
}
