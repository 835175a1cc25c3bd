package tokenizer

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/dlclark/regexp2/v2"
)

// span is a byte range [start, end) of a string.
type span struct{ start, end int }

// matcher finds the non-overlapping matches of a pattern, left to right.
type matcher interface {
	appendMatches(dst []span, s string) []span
}

// regexMatcher runs a tokenizer.json regex (Oniguruma syntax) on regexp2,
// which has the same backtracking semantics, look-arounds included.
type regexMatcher struct{ re *regexp2.Regexp }

func (m regexMatcher) appendMatches(dst []span, s string) []span {
	idx, err := m.re.FindAllStringIndex(s, -1)
	if err != nil {
		// Only a backtracking-stack overflow gets here; keeping the text as
		// one piece still encodes it, just without the split.
		return dst
	}
	for _, p := range idx {
		dst = append(dst, span{p[0], p[1]})
	}
	return dst
}

// compileRegex returns the hand-coded matcher of a known pattern, or the
// pattern compiled by regexp2.
func compileRegex(pattern string) (matcher, error) {
	if m, ok := handCoded[pattern]; ok {
		return m, nil
	}
	return compileRegexp2(pattern)
}

func compileRegexp2(pattern string) (matcher, error) {
	re, err := regexp2.Compile(pattern)
	if err != nil {
		return nil, fmt.Errorf("pattern regex %q: %w", pattern, err)
	}
	return regexMatcher{re}, nil
}

// literalMatcher finds a fixed string.
type literalMatcher string

func (m literalMatcher) appendMatches(dst []span, s string) []span {
	if m == "" {
		return dst
	}
	for off := 0; ; {
		i := strings.Index(s[off:], string(m))
		if i < 0 {
			return dst
		}
		dst = append(dst, span{off + i, off + i + len(m)})
		off += i + len(m)
	}
}

// charMatcher matches every single character for which f is true.
type charMatcher func(rune) bool

func (f charMatcher) appendMatches(dst []span, s string) []span {
	for i, r := range s {
		if f(r) {
			dst = append(dst, span{i, i + utf8.RuneLen(r)})
		}
	}
	return dst
}

// patternJSON is tokenizer.json's {"String": "..."} or {"Regex": "..."}.
type patternJSON struct {
	String *string `json:"String"`
	Regex  *string `json:"Regex"`
}

func parsePattern(raw json.RawMessage) (matcher, error) {
	var p patternJSON
	if err := json.Unmarshal(raw, &p); err != nil {
		return nil, fmt.Errorf("pattern: %w", err)
	}
	switch {
	case p.String != nil:
		return literalMatcher(*p.String), nil
	case p.Regex != nil:
		return compileRegex(*p.Regex)
	}
	return nil, errors.New(`pattern: want {"String": ...} or {"Regex": ...}`)
}

// replacer is the Replace normalizer and decoder: every match of the pattern
// becomes content.
type replacer struct {
	m       matcher
	content string
}

func parseReplacer(raw json.RawMessage) (replacer, error) {
	var p struct {
		Pattern json.RawMessage `json:"pattern"`
		Content string          `json:"content"`
	}
	if err := json.Unmarshal(raw, &p); err != nil {
		return replacer{}, err
	}
	m, err := parsePattern(p.Pattern)
	if err != nil {
		return replacer{}, err
	}
	return replacer{m, p.Content}, nil
}

func (r replacer) replace(s string) string {
	if lit, ok := r.m.(literalMatcher); ok {
		return strings.ReplaceAll(s, string(lit), r.content)
	}
	spans := r.m.appendMatches(nil, s)
	if len(spans) == 0 {
		return s
	}
	var b strings.Builder
	prev := 0
	for _, sp := range spans {
		b.WriteString(s[prev:sp.start])
		b.WriteString(r.content)
		prev = sp.end
	}
	b.WriteString(s[prev:])
	return b.String()
}

// splitBehavior says what happens to the matches of a Split pre-tokenizer.
type splitBehavior int

const (
	removed splitBehavior = iota
	isolated
	mergedWithPrevious
	mergedWithNext
	contiguous
)

func parseBehavior(s string) (splitBehavior, error) {
	switch s {
	case "Removed":
		return removed, nil
	case "Isolated":
		return isolated, nil
	case "MergedWithPrevious":
		return mergedWithPrevious, nil
	case "MergedWithNext":
		return mergedWithNext, nil
	case "Contiguous":
		return contiguous, nil
	}
	return 0, fmt.Errorf("split behavior %q is not one of Removed, Isolated, MergedWithPrevious, MergedWithNext, Contiguous", s)
}

// splitStage is the Split pre-tokenizer (also used for ByteLevel's regex,
// Metaspace's split and Digits).
type splitStage struct {
	m        matcher
	behavior splitBehavior
	invert   bool
}

// markedSpan is a match or the text between two matches.
type markedSpan struct {
	span
	match bool
}

func (st *splitStage) appendPieces(dst []piece, p piece, sc *scratch) []piece {
	sc.spans = st.m.appendMatches(sc.spans[:0], p.text)
	if st.behavior == isolated {
		// Matches and the gaps between them all become pieces; invert does
		// not change that.
		prev := 0
		for _, sp := range sc.spans {
			dst = p.appendSub(dst, prev, sp.start)
			dst = p.appendSub(dst, sp.start, sp.end)
			prev = sp.end
		}
		return p.appendSub(dst, prev, len(p.text))
	}
	marked := sc.marked[:0]
	prev := 0
	for _, sp := range sc.spans {
		if prev != sp.start {
			marked = append(marked, markedSpan{span{prev, sp.start}, st.invert})
		}
		marked = append(marked, markedSpan{sp, !st.invert})
		prev = sp.end
	}
	if prev != len(p.text) {
		marked = append(marked, markedSpan{span{prev, len(p.text)}, st.invert})
	}
	sc.marked = marked
	return p.appendMarked(dst, marked, st.behavior)
}

// appendMarked turns marked spans into pieces the way Hugging Face's
// SplitDelimiterBehavior does.
func (p piece) appendMarked(dst []piece, marked []markedSpan, behavior splitBehavior) []piece {
	var out []span
	prevMatch := false
	switch behavior {
	case removed:
		for _, m := range marked {
			if !m.match {
				out = append(out, m.span)
			}
		}
	case mergedWithPrevious:
		for _, m := range marked {
			if m.match && !prevMatch && len(out) > 0 {
				out[len(out)-1].end = m.end
			} else {
				out = append(out, m.span)
			}
			prevMatch = m.match
		}
	case mergedWithNext:
		for i := len(marked) - 1; i >= 0; i-- {
			m := marked[i]
			if m.match && !prevMatch && len(out) > 0 {
				out[len(out)-1].start = m.start
			} else {
				out = append(out, m.span)
			}
			prevMatch = m.match
		}
		for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
			out[i], out[j] = out[j], out[i]
		}
	case contiguous:
		for i, m := range marked {
			if i > 0 && m.match == prevMatch {
				out[len(out)-1].end = m.end
			} else {
				out = append(out, m.span)
			}
			prevMatch = m.match
		}
	}
	for _, sp := range out {
		dst = p.appendSub(dst, sp.start, sp.end)
	}
	return dst
}

// isNumeric is Rust's char::is_numeric (general categories Nd, Nl, No).
func isNumeric(r rune) bool { return unicode.IsNumber(r) }
