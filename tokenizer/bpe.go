package tokenizer

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// bpeModel is tokenizer.json's "BPE" model.
type bpeModel struct {
	vocab   map[string]int32 // token text as written in tokenizer.json
	idToTok []string
	merges  map[uint64]merge // key: pairKey(left, right)

	// byteLevel: pieces are raw bytes and each byte starts as the token of
	// its ByteLevel character; otherwise each character starts as its own
	// token.
	byteLevel bool
	byteTok   [256]int32 // byte-level: token of each byte; -1 if missing

	byteFallback bool
	fallbackTok  [256]int32 // <0xXX> tokens; -1 if missing
	unk          int32      // -1: none
	fuseUnk      bool
	ignoreMerges bool
}

// merge is the rank of a pair (lower merges first) and the token it makes.
type merge struct{ rank, id int32 }

func pairKey(a, b int32) uint64 { return uint64(uint32(a))<<32 | uint64(uint32(b)) }

func parseBPE(raw json.RawMessage, byteLevel bool) (*bpeModel, error) {
	typ, err := typeOf(raw)
	if err != nil {
		return nil, err
	}
	if typ != "BPE" {
		return nil, fmt.Errorf("model type %q is not supported (supported: BPE)", typ)
	}
	var p struct {
		Dropout                 *float64         `json:"dropout"`
		UnkToken                *string          `json:"unk_token"`
		ContinuingSubwordPrefix *string          `json:"continuing_subword_prefix"`
		EndOfWordSuffix         *string          `json:"end_of_word_suffix"`
		FuseUnk                 bool             `json:"fuse_unk"`
		ByteFallback            bool             `json:"byte_fallback"`
		IgnoreMerges            bool             `json:"ignore_merges"`
		Vocab                   map[string]int32 `json:"vocab"`
		Merges                  json.RawMessage  `json:"merges"`
	}
	if err := json.Unmarshal(raw, &p); err != nil {
		return nil, fmt.Errorf("BPE: %w", err)
	}
	switch {
	case p.Dropout != nil && *p.Dropout > 0:
		return nil, errors.New("BPE: dropout is not supported (encoding would be random)")
	case p.ContinuingSubwordPrefix != nil && *p.ContinuingSubwordPrefix != "":
		return nil, errors.New("BPE: continuing_subword_prefix is not supported")
	case p.EndOfWordSuffix != nil && *p.EndOfWordSuffix != "":
		return nil, errors.New("BPE: end_of_word_suffix is not supported")
	case len(p.Vocab) == 0:
		return nil, errors.New("BPE: empty or missing vocab")
	}
	m := &bpeModel{
		vocab:        p.Vocab,
		byteLevel:    byteLevel,
		byteFallback: p.ByteFallback,
		unk:          -1,
		fuseUnk:      p.FuseUnk,
		ignoreMerges: p.IgnoreMerges,
	}
	size := int32(0)
	for tok, id := range p.Vocab {
		if id < 0 || id > 1<<24 {
			return nil, fmt.Errorf("BPE: vocab[%q] = %d is out of range", tok, id)
		}
		size = max(size, id+1)
	}
	m.idToTok = make([]string, size)
	for tok, id := range p.Vocab {
		m.idToTok[id] = tok
	}
	if p.UnkToken != nil {
		id, ok := p.Vocab[*p.UnkToken]
		if !ok {
			return nil, fmt.Errorf("BPE: unk_token %q is not in the vocab", *p.UnkToken)
		}
		m.unk = id
	}
	for b := range 256 {
		m.byteTok[b], m.fallbackTok[b] = -1, -1
		if id, ok := p.Vocab[string(byteToChar[b])]; ok {
			m.byteTok[b] = id
		}
		if id, ok := p.Vocab[fmt.Sprintf("<0x%02X>", b)]; ok {
			m.fallbackTok[b] = id
		}
	}
	if err := m.parseMerges(p.Merges); err != nil {
		return nil, fmt.Errorf("BPE: merges: %w", err)
	}
	return m, nil
}

// parseMerges reads merges written either as "a b" strings or as [a, b]
// pairs.
func (m *bpeModel) parseMerges(raw json.RawMessage) error {
	var pairs [][2]string
	if !isNull(raw) {
		var strs []string
		if err := json.Unmarshal(raw, &strs); err == nil {
			pairs = make([][2]string, len(strs))
			for i, s := range strs {
				a, b, ok := strings.Cut(s, " ")
				if !ok {
					return fmt.Errorf("merges[%d] = %q: want two tokens separated by a space", i, s)
				}
				pairs[i] = [2]string{a, b}
			}
		} else if err := json.Unmarshal(raw, &pairs); err != nil {
			return errors.New(`want a list of "a b" strings or of [a, b] pairs`)
		}
	}
	m.merges = make(map[uint64]merge, len(pairs))
	for rank, p := range pairs {
		a, okA := m.vocab[p[0]]
		b, okB := m.vocab[p[1]]
		id, okC := m.vocab[p[0]+p[1]]
		if !okA || !okB || !okC {
			return fmt.Errorf("merges[%d] = %q %q: a token or their concatenation is not in the vocab", rank, p[0], p[1])
		}
		// A repeated pair takes its last rank, as in Hugging Face.
		m.merges[pairKey(a, b)] = merge{int32(rank), id}
	}
	return nil
}

// symbol is one token of a word during merging, in a linked list.
type symbol struct {
	id         int32
	prev, next int32 // indices into the symbol slice; -1 at the ends
	size       int32 // bytes of the word covered; 0 once merged away
}

// candidate is a pair waiting in the merge queue.
type candidate struct {
	rank, pos, id int32
}

func (a candidate) less(b candidate) bool {
	return a.rank < b.rank || a.rank == b.rank && a.pos < b.pos
}

// appendWord appends the tokens of one pre-tokenized piece.
func (m *bpeModel) appendWord(dst []int32, w string, sc *scratch) []int32 {
	if m.ignoreMerges {
		if id, ok := m.wholeWord(w); ok {
			return append(dst, id)
		}
	}
	syms := m.initialSymbols(sc.syms[:0], w)
	sc.syms = syms
	if len(syms) > 1 {
		sc.queue = m.mergeAll(syms, sc.queue[:0])
	}
	for i := int32(0); i >= 0 && int(i) < len(syms); i = syms[i].next {
		dst = append(dst, syms[i].id)
	}
	return dst
}

func (m *bpeModel) wholeWord(w string) (int32, bool) {
	if m.byteLevel {
		var b strings.Builder
		for i := range len(w) {
			b.WriteRune(byteToChar[w[i]])
		}
		w = b.String()
	}
	id, ok := m.vocab[w]
	return id, ok
}

// initialSymbols splits w into its first tokens: bytes for byte-level
// models, characters otherwise (with byte fallback and unknown-token fusing
// exactly as Hugging Face orders them).
func (m *bpeModel) initialSymbols(syms []symbol, w string) []symbol {
	add := func(id int32, size int) {
		n := int32(len(syms))
		syms = append(syms, symbol{id: id, prev: n - 1, next: n + 1, size: int32(size)})
	}
	if m.byteLevel {
		for i := range len(w) {
			if id := m.byteTok[w[i]]; id >= 0 {
				add(id, 1)
			}
		}
	} else {
		pendingUnk, unkSize := false, 0
		for i := 0; i < len(w); {
			_, n := utf8.DecodeRuneInString(w[i:])
			if id, ok := m.vocab[w[i:i+n]]; ok {
				if pendingUnk {
					add(m.unk, unkSize)
					pendingUnk = false
				}
				add(id, n)
			} else if m.byteFallback && m.hasFallback(w[i:i+n]) {
				for j := i; j < i+n; j++ {
					add(m.fallbackTok[w[j]], 1)
				}
			} else if m.unk >= 0 {
				switch {
				case pendingUnk && m.fuseUnk:
					unkSize += n
				case pendingUnk:
					add(m.unk, unkSize)
					unkSize = n
				default:
					pendingUnk, unkSize = true, n
				}
			}
			i += n
		}
		if pendingUnk {
			add(m.unk, unkSize)
		}
	}
	if len(syms) > 0 {
		syms[len(syms)-1].next = -1
	}
	return syms
}

func (m *bpeModel) hasFallback(s string) bool {
	for i := range len(s) {
		if m.fallbackTok[s[i]] < 0 {
			return false
		}
	}
	return true
}

// mergeAll applies merges by rank, leftmost first among equal ranks, with
// the same queue discipline as Hugging Face's Word::merge_all (a stale
// queue entry is skipped only when its pair no longer makes the same token).
func (m *bpeModel) mergeAll(syms []symbol, q []candidate) []candidate {
	push := func(c candidate) {
		q = append(q, c)
		for i := len(q) - 1; i > 0; {
			parent := (i - 1) / 2
			if !q[i].less(q[parent]) {
				break
			}
			q[i], q[parent] = q[parent], q[i]
			i = parent
		}
	}
	pop := func() candidate {
		top := q[0]
		last := len(q) - 1
		q[0] = q[last]
		q = q[:last]
		for i := 0; ; {
			l, small := 2*i+1, i
			if l < last && q[l].less(q[small]) {
				small = l
			}
			if r := l + 1; r < last && q[r].less(q[small]) {
				small = r
			}
			if small == i {
				break
			}
			q[i], q[small] = q[small], q[i]
			i = small
		}
		return top
	}
	pushPair := func(pos int32) {
		next := syms[pos].next
		if mg, ok := m.merges[pairKey(syms[pos].id, syms[next].id)]; ok {
			push(candidate{mg.rank, pos, mg.id})
		}
	}
	for i := 0; i+1 < len(syms); i++ {
		pushPair(int32(i))
	}
	for len(q) > 0 {
		c := pop()
		left := &syms[c.pos]
		if left.size == 0 || left.next < 0 {
			continue
		}
		right := &syms[left.next]
		if mg, ok := m.merges[pairKey(left.id, right.id)]; !ok || mg.id != c.id {
			continue
		}
		left.id = c.id
		left.size += right.size
		right.size = 0
		left.next = right.next
		if left.next >= 0 {
			syms[left.next].prev = c.pos
		}
		if left.prev >= 0 {
			pushPair(left.prev)
		}
		if left.next >= 0 {
			pushPair(c.pos)
		}
	}
	return q
}

// byteToChar is GPT-2's ByteLevel alphabet: printable bytes map to
// themselves, the others to the characters from U+0100 up, in byte order.
var byteToChar, charToByte = func() (b2c [256]rune, c2b map[rune]byte) {
	c2b = make(map[rune]byte, 256)
	n := rune(0)
	for b := range 256 {
		if b >= '!' && b <= '~' || b >= 0xA1 && b <= 0xAC || b >= 0xAE {
			b2c[b] = rune(b)
		} else {
			b2c[b] = 256 + n
			n++
		}
		c2b[b2c[b]] = byte(b)
	}
	return b2c, c2b
}()
