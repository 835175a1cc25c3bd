package tokenizer

import (
	"unicode"
	"unicode/utf8"
)

// Hand-coded versions of the pre-tokenizer regexes the supported models
// use. Each follows the regex's leftmost-first, greedy-with-backtracking
// semantics exactly; tests compare them with regexp2 on random text.

// qwenPattern is the Split regex of Qwen2/Qwen3 tokenizers; llama3Pattern
// (Llama 3, GLM-4) differs only in taking numbers three digits at a time.
const (
	qwenPattern   = `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`
	llama3Pattern = `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`
)

// Patterns of DeepSeek-V3's three Split pre-tokenizers (numbers in groups
// of up to three; runs of CJK ideographs and kana; then words, punctuation
// and spaces).
const (
	deepseekDigitsPattern = "\\p{N}{1,3}"
	deepseekCJKPattern    = "[\u4e00-\u9fa5\u3040-\u309f\u30a0-\u30ff]+"
	deepseekWordsPattern  = "[!\"#$%&'()*+,\\-./:;<=>?@\\[\\\\\\]^_`{|}~][A-Za-z]+|[^\r\n\\p{L}\\p{P}\\p{S}]?[\\p{L}\\p{M}]+| ?[\\p{P}\\p{S}]+[\r\n]*|\\s*[\r\n]+|\\s+(?!\\S)|\\s+"
)

// handCoded holds the hand-written matchers by the pattern they implement.
var handCoded = map[string]matcher{
	qwenPattern:           qwenMatcher{maxDigits: 1},
	llama3Pattern:         qwenMatcher{maxDigits: 3},
	gpt2Pattern:           gpt2Matcher{},
	deepseekDigitsPattern: digitGroups{},
	deepseekCJKPattern:    cjkRuns{},
	deepseekWordsPattern:  deepseekWords{},
}

// Character classes as the regexes see them: \p{L}, \p{N}, \p{M},
// \p{P} or \p{S}, \s and [\r\n].
const (
	clsLetter uint8 = 1 << iota
	clsNumber
	clsMark
	clsPunctSymbol
	clsSpace
	clsCRLF
	clsOther // none of the above (controls, format characters, ...)
)

var asciiClass = func() (c [utf8.RuneSelf]uint8) {
	for r := range rune(utf8.RuneSelf) {
		c[r] = unicodeClass(r)
	}
	return c
}()

// classOf classifies r; \s is Unicode White_Space, as in Oniguruma.
func classOf(r rune) uint8 {
	if r < utf8.RuneSelf {
		return asciiClass[r]
	}
	return unicodeClass(r)
}

func unicodeClass(r rune) uint8 {
	switch {
	case unicode.IsLetter(r):
		return clsLetter
	case unicode.IsNumber(r):
		return clsNumber
	case unicode.IsMark(r):
		return clsMark
	case unicode.IsPunct(r) || unicode.IsSymbol(r):
		return clsPunctSymbol
	case r == '\r' || r == '\n':
		return clsSpace | clsCRLF
	case unicode.IsSpace(r):
		return clsSpace
	}
	return clsOther
}

func runeAt(s string, i int) (rune, int) {
	if c := s[i]; c < utf8.RuneSelf {
		return rune(c), 1
	}
	return utf8.DecodeRuneInString(s[i:])
}

// scanClass returns the end of the run of characters from i whose class
// has any bit of want.
func scanClass(s string, i int, want uint8) int {
	for i < len(s) {
		r, n := runeAt(s, i)
		if classOf(r)&want == 0 {
			break
		}
		i += n
	}
	return i
}

// qwenOther is the class set [^\s\p{L}\p{N}].
const qwenOther = clsMark | clsPunctSymbol | clsOther

// qwenMatcher is qwenPattern (maxDigits 1) or llama3Pattern (maxDigits 3).
type qwenMatcher struct{ maxDigits int }

func (m qwenMatcher) appendMatches(dst []span, s string) []span {
	for i := 0; i < len(s); {
		end := m.matchAt(s, i)
		dst = append(dst, span{i, end})
		i = end
	}
	return dst
}

// matchAt returns the end of the match at i; every character is matched by
// one of the pattern's alternatives.
func (m qwenMatcher) matchAt(s string, i int) int {
	r0, n0 := runeAt(s, i)
	c0 := classOf(r0)
	// (?i:'s|'t|'re|'ve|'m|'ll|'d)
	if r0 == '\'' {
		if n := contraction(s[i+1:], true); n > 0 {
			return i + 1 + n
		}
	}
	// [^\r\n\p{L}\p{N}]?\p{L}+
	if c0&clsLetter != 0 {
		return scanClass(s, i+n0, clsLetter)
	}
	if c0&(clsCRLF|clsNumber) == 0 && i+n0 < len(s) {
		if r1, n1 := runeAt(s, i+n0); classOf(r1)&clsLetter != 0 {
			return scanClass(s, i+n0+n1, clsLetter)
		}
	}
	// \p{N} or \p{N}{1,3}
	if c0&clsNumber != 0 {
		return numbersEnd(s, i, m.maxDigits)
	}
	// ` ?[^\s\p{L}\p{N}]+[\r\n]*`
	j := i
	if r0 == ' ' {
		j++
	}
	if j < len(s) {
		if r, n := runeAt(s, j); classOf(r)&qwenOther != 0 {
			return scanClass(s, scanClass(s, j+n, qwenOther), clsCRLF)
		}
	}
	return whitespaceMatchAt(s, i, true)
}

// numbersEnd returns the end of at most max numbers from i (s[i] is one).
func numbersEnd(s string, i, max int) int {
	_, n := runeAt(s, i)
	end := i + n
	for k := 1; k < max && end < len(s); k++ {
		r, n := runeAt(s, end)
		if classOf(r)&clsNumber == 0 {
			break
		}
		end += n
	}
	return end
}

// whitespaceMatchAt matches `\s*[\r\n]+|\s+(?!\S)|\s+` at i (without the
// first alternative unless lineBreaks), where s[i] is whitespace.
func whitespaceMatchAt(s string, i int, lineBreaks bool) int {
	end, lastCRLF, lastStart := i, -1, i
	for end < len(s) {
		r, n := runeAt(s, end)
		c := classOf(r)
		if c&clsSpace == 0 {
			break
		}
		if c&clsCRLF != 0 {
			lastCRLF = end
		}
		lastStart = end
		end += n
	}
	switch {
	case lineBreaks && lastCRLF >= 0: // \s*[\r\n]+ backtracks to the last line break
		return lastCRLF + 1
	case end == len(s) || lastStart == i: // \s+ to the end, or a single space
		return end
	default: // \s+(?!\S) leaves the last space for the next word
		return lastStart
	}
}

// gpt2Matcher is gpt2Pattern, the split of ByteLevel's use_regex.
type gpt2Matcher struct{}

func (gpt2Matcher) appendMatches(dst []span, s string) []span {
	for i := 0; i < len(s); {
		end := gpt2MatchAt(s, i)
		dst = append(dst, span{i, end})
		i = end
	}
	return dst
}

func gpt2MatchAt(s string, i int) int {
	r0, _ := runeAt(s, i)
	// 's|'t|'re|'ve|'m|'ll|'d
	if r0 == '\'' {
		if n := contraction(s[i+1:], false); n > 0 {
			return i + 1 + n
		}
	}
	// ` ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+`
	j := i
	if r0 == ' ' && i+1 < len(s) {
		j++
	}
	r, n := runeAt(s, j)
	for _, cls := range [...]uint8{clsLetter, clsNumber, qwenOther} {
		if classOf(r)&cls != 0 {
			return scanClass(s, j+n, cls)
		}
	}
	return whitespaceMatchAt(s, i, false)
}

// contraction matches what follows the apostrophe of
// 's|'t|'re|'ve|'m|'ll|'d, case-insensitively if fold, and returns its
// length in bytes, or 0.
func contraction(s string, fold bool) int {
	if s == "" {
		return 0
	}
	lower := func(r rune) rune { return r }
	if fold {
		lower = foldLetter
	}
	r, n := runeAt(s, 0)
	switch lower(r) {
	case 's', 't', 'm', 'd':
		return n
	case 'r', 'v':
		if len(s) > n && lower(rune(s[n])) == 'e' {
			return n + 1
		}
	case 'l':
		if len(s) > n && lower(rune(s[n])) == 'l' {
			return n + 1
		}
	}
	return 0
}

// foldLetter is simple case folding for the letters of the contractions:
// ASCII upper case, and U+017F LATIN SMALL LETTER LONG S, which folds to s.
func foldLetter(r rune) rune {
	switch {
	case r >= 'A' && r <= 'Z':
		return r | 0x20
	case r == 'ſ':
		return 's'
	}
	return r
}

// digitGroups is `\p{N}{1,3}`: runs of numbers cut into groups of three.
type digitGroups struct{}

func (digitGroups) appendMatches(dst []span, s string) []span {
	for i := 0; i < len(s); {
		r, n := runeAt(s, i)
		if classOf(r)&clsNumber == 0 {
			i += n
			continue
		}
		end := numbersEnd(s, i, 3)
		dst = append(dst, span{i, end})
		i = end
	}
	return dst
}

// cjkRuns is `[\u4e00-\u9fa5\u3040-\u309f\u30a0-\u30ff]+`: runs of CJK
// ideographs, hiragana and katakana.
type cjkRuns struct{}

func isCJK(r rune) bool {
	return r >= 0x4e00 && r <= 0x9fa5 || r >= 0x3040 && r <= 0x30ff
}

func (cjkRuns) appendMatches(dst []span, s string) []span {
	start := -1
	for i, r := range s {
		switch in := isCJK(r); {
		case in && start < 0:
			start = i
		case !in && start >= 0:
			dst = append(dst, span{start, i})
			start = -1
		}
	}
	if start >= 0 {
		dst = append(dst, span{start, len(s)})
	}
	return dst
}

// deepseekWords is DeepSeek-V3's third Split pattern. Unlike Qwen's, some
// characters (numbers, controls) match none of its alternatives; they are
// left between matches.
type deepseekWords struct{}

func (deepseekWords) appendMatches(dst []span, s string) []span {
	for i := 0; i < len(s); {
		end, n := deepseekMatchAt(s, i)
		if end < 0 {
			i += n
			continue
		}
		dst = append(dst, span{i, end})
		i = end
	}
	return dst
}

// deepseekMatchAt returns the end of the match at i, or -1 and the size of
// the character at i.
func deepseekMatchAt(s string, i int) (end, size int) {
	r0, n0 := runeAt(s, i)
	c0 := classOf(r0)
	var r1 rune = -1
	var c1 uint8
	if i+n0 < len(s) {
		r1, _ = runeAt(s, i+n0)
		c1 = classOf(r1)
	}
	// [!"#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~][A-Za-z]+
	if r0 < utf8.RuneSelf && c0&clsPunctSymbol != 0 && isASCIILetter(r1) {
		j := i + n0 + 1
		for j < len(s) && isASCIILetter(rune(s[j])) {
			j++
		}
		return j, n0
	}
	// [^\r\n\p{L}\p{P}\p{S}]?[\p{L}\p{M}]+
	const letterMark = clsLetter | clsMark
	if c0&(clsCRLF|clsLetter|clsPunctSymbol) == 0 && c1&letterMark != 0 {
		return scanClass(s, i+n0, letterMark), n0
	}
	if c0&letterMark != 0 {
		return scanClass(s, i, letterMark), n0
	}
	// ` ?[\p{P}\p{S}]+[\r\n]*`
	if r0 == ' ' && c1&clsPunctSymbol != 0 {
		return scanClass(s, scanClass(s, i+n0, clsPunctSymbol), clsCRLF), n0
	}
	if c0&clsPunctSymbol != 0 {
		return scanClass(s, scanClass(s, i, clsPunctSymbol), clsCRLF), n0
	}
	if c0&clsSpace != 0 {
		return whitespaceMatchAt(s, i, true), n0
	}
	return -1, n0
}

func isASCIILetter(r rune) bool { return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' }
