package tokenizer

import (
	"unicode"
	"unicode/utf8"
)

// addedVocab holds the added tokens of tokenizer.json. They are found in the
// text before the model sees it: those with "normalized": false in the raw
// text, the others in the normalized text.
type addedVocab struct {
	ids        map[string]int // content -> id
	tokens     []addedToken
	raw, normd trie
}

type addedToken struct {
	id                         int
	lstrip, rstrip, singleWord bool
}

// trie finds the longest added token starting at a position.
type trie struct {
	root  [256]int32 // first byte -> node; 0: none
	nodes []trieNode // nodes[0] is unused
}

type trieNode struct {
	next  map[byte]int32
	token int32 // index into addedVocab.tokens; -1 if no token ends here
}

func (tr *trie) insert(s string, token int32) {
	if len(tr.nodes) == 0 {
		tr.nodes = []trieNode{{}}
	}
	n := tr.root[s[0]]
	if n == 0 {
		n = tr.newNode()
		tr.root[s[0]] = n
	}
	for i := 1; i < len(s); i++ {
		if tr.nodes[n].next == nil {
			tr.nodes[n].next = map[byte]int32{}
		}
		child, ok := tr.nodes[n].next[s[i]]
		if !ok {
			child = tr.newNode()
			tr.nodes[n].next[s[i]] = child
		}
		n = child
	}
	tr.nodes[n].token = token
}

func (tr *trie) newNode() int32 {
	tr.nodes = append(tr.nodes, trieNode{token: -1})
	return int32(len(tr.nodes) - 1)
}

// longestAt returns the token of the longest match starting at s[i], and
// where it ends; token -1 when none matches.
func (tr *trie) longestAt(s string, i int) (token int32, end int) {
	token = -1
	n := tr.root[s[i]]
	for j := i; n != 0; {
		node := &tr.nodes[n]
		j++
		if node.token >= 0 {
			token, end = node.token, j
		}
		if j == len(s) || node.next == nil {
			break
		}
		n = node.next[s[j]]
	}
	return token, end
}

func newAddedVocab(added []addedTokenJSON, norm normalizer) addedVocab {
	v := addedVocab{ids: make(map[string]int, len(added))}
	for _, a := range added {
		v.ids[a.Content] = a.ID
		tok := int32(len(v.tokens))
		v.tokens = append(v.tokens, addedToken{a.ID, a.LStrip, a.RStrip, a.SingleWord})
		if !a.Normalized {
			v.raw.insert(a.Content, tok)
			continue
		}
		content := a.Content
		if norm != nil {
			content = norm.normalize(content)
		}
		if content != "" {
			v.normd.insert(content, tok)
		}
	}
	return v
}

// segment is a part of the input: plain text, or an added token.
type segment struct {
	start, end int
	token      int32 // -1: text
}

// appendSegments splits s into text and the added tokens that tr finds,
// leftmost-longest, with the tokens' single_word, lstrip and rstrip rules,
// the way Hugging Face's AddedVocabulary does.
func (v *addedVocab) appendSegments(dst []segment, s string, tr *trie) []segment {
	if len(tr.nodes) == 0 {
		return append(dst, segment{0, len(s), -1})
	}
	textStart := 0
	for i := 0; i < len(s); {
		tok, end := tr.longestAt(s, i)
		if tok < 0 {
			i++
			continue
		}
		start, stop := i, end
		i = end
		a := v.tokens[tok]
		if a.singleWord && (endsWithWordChar(s[:start]) || startsWithWordChar(s[stop:])) {
			continue
		}
		if a.lstrip {
			start = max(textStart, start-spaceSuffixLen(s[:start]))
		}
		if a.rstrip {
			stop += spacePrefixLen(s[stop:])
		}
		if textStart < start {
			dst = append(dst, segment{textStart, start, -1})
		}
		dst = append(dst, segment{start, stop, tok})
		textStart = stop
	}
	if textStart < len(s) {
		dst = append(dst, segment{textStart, len(s), -1})
	}
	return dst
}

// isWordChar is Rust regex's Unicode \w, which single_word tokens use for
// word boundaries: Alphabetic, marks, decimal digits, connector punctuation
// and the joiners.
func isWordChar(r rune) bool {
	return unicode.IsLetter(r) || unicode.IsMark(r) || unicode.In(r, unicode.Nl, unicode.Other_Alphabetic, unicode.Nd, unicode.Pc) ||
		r == '\u200c' || r == '\u200d'
}

func endsWithWordChar(s string) bool {
	r, _ := utf8.DecodeLastRuneInString(s)
	return s != "" && isWordChar(r)
}

func startsWithWordChar(s string) bool {
	r, _ := utf8.DecodeRuneInString(s)
	return s != "" && isWordChar(r)
}

func spaceSuffixLen(s string) int {
	n := 0
	for n < len(s) {
		r, size := utf8.DecodeLastRuneInString(s[:len(s)-n])
		if !unicode.IsSpace(r) {
			break
		}
		n += size
	}
	return n
}

func spacePrefixLen(s string) int {
	n := 0
	for n < len(s) {
		r, size := utf8.DecodeRuneInString(s[n:])
		if !unicode.IsSpace(r) {
			break
		}
		n += size
	}
	return n
}
