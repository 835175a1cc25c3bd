package tokenizer

import (
	"unicode"
	"unicode/utf8"
)

// Hand-coded versions of the pre-tokenizer regexes the supported models
// use. Each follows the regex's leftmost-first, greedy-with-backtracking
// semantics exactly; tests compare them with regexp2 on random text.

// qwenPattern is the Split regex of Qwen2/Qwen3 (and GLM-4) tokenizers.
const qwenPattern = `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`

// handCoded returns the hand-written matcher for pattern, or nil.
func handCoded(pattern string) matcher {
	switch pattern {
	case qwenPattern:
		return qwenMatcher{}
	}
	return nil
}

// Character classes as the regexes see them: \p{L}, \p{N}, \s and [\r\n].
const (
	clsLetter uint8 = 1 << iota
	clsNumber
	clsSpace
	clsCRLF
)

var asciiClass = func() (c [utf8.RuneSelf]uint8) {
	for r := range rune(utf8.RuneSelf) {
		switch {
		case unicode.IsLetter(r):
			c[r] = clsLetter
		case unicode.IsNumber(r):
			c[r] = clsNumber
		case r == '\r' || r == '\n':
			c[r] = clsSpace | clsCRLF
		case unicode.IsSpace(r):
			c[r] = clsSpace
		}
	}
	return c
}()

// classOf classifies r; \s is Unicode White_Space, as in Oniguruma.
func classOf(r rune) uint8 {
	if r < utf8.RuneSelf {
		return asciiClass[r]
	}
	switch {
	case unicode.IsLetter(r):
		return clsLetter
	case unicode.IsNumber(r):
		return clsNumber
	case unicode.IsSpace(r):
		return clsSpace
	}
	return 0
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

// scanOther returns the end of the run from i of characters that are not
// letters, numbers or whitespace.
func scanOther(s string, i int) int {
	for i < len(s) {
		r, n := runeAt(s, i)
		if classOf(r) != 0 {
			break
		}
		i += n
	}
	return i
}

type qwenMatcher struct{}

func (qwenMatcher) appendMatches(dst []span, s string) []span {
	for i := 0; i < len(s); {
		end := qwenMatchAt(s, i)
		dst = append(dst, span{i, end})
		i = end
	}
	return dst
}

// qwenMatchAt returns the end of the match of qwenPattern at i; every
// character is matched by one of its alternatives.
func qwenMatchAt(s string, i int) int {
	r0, n0 := runeAt(s, i)
	c0 := classOf(r0)
	// (?i:'s|'t|'re|'ve|'m|'ll|'d)
	if r0 == '\'' {
		if n := contraction(s[i+1:]); n > 0 {
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
	// \p{N}
	if c0&clsNumber != 0 {
		return i + n0
	}
	// ` ?[^\s\p{L}\p{N}]+[\r\n]*`
	j := i
	if r0 == ' ' {
		j++
	}
	if j < len(s) {
		if r, n := runeAt(s, j); classOf(r) == 0 {
			return scanClass(s, scanOther(s, j+n), clsCRLF)
		}
	}
	return whitespaceMatchAt(s, i)
}

// whitespaceMatchAt matches `\s*[\r\n]+|\s+(?!\S)|\s+` at i, where s[i] is
// whitespace.
func whitespaceMatchAt(s string, i int) int {
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
	case lastCRLF >= 0: // \s*[\r\n]+ backtracks to the last line break
		return lastCRLF + 1
	case end == len(s) || lastStart == i: // \s+ to the end, or a single space
		return end
	default: // \s+(?!\S) leaves the last space for the next word
		return lastStart
	}
}

// contraction matches what follows the apostrophe of
// (?i:'s|'t|'re|'ve|'m|'ll|'d) and returns its length in bytes, or 0.
func contraction(s string) int {
	if s == "" {
		return 0
	}
	r, n := runeAt(s, 0)
	switch foldLetter(r) {
	case 's', 't', 'm', 'd':
		return n
	case 'r', 'v':
		if len(s) > n && s[n]|0x20 == 'e' {
			return n + 1
		}
	case 'l':
		if len(s) > n && foldLetter(rune(s[n])) == 'l' {
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
