package constrain

import (
	"bytes"
	"encoding/binary"
	"math"
	"math/bits"
	"slices"
	"sort"
	"unicode/utf8"
)

// Vocabulary is a tokenizer's tokens as the bytes each one writes, in a
// trie for walking against matcher states. Build it once per model; it is
// immutable and safe to share.
type Vocabulary struct {
	size  int
	bytes [][]byte
	eos   []int
	full  trie // every token with bytes
	rest  trie // the tokens that are not plain string content
	plain bitset
	// plainWithin[n] are the plain tokens of at most n characters, for n
	// below the longest plain token's length.
	plainWithin []bitset
	// longest is the most bytes one token writes (so the most characters
	// it can add to a string).
	longest int
}

// NewVocabulary takes each token's bytes (nil or empty: never generated
// under a constraint, e.g. special tokens) and the end-of-sequence ids,
// which are allowed exactly when the output is complete.
func NewVocabulary(tokens [][]byte, eos []int) *Vocabulary {
	v := &Vocabulary{size: len(tokens), bytes: tokens, plain: newBitset(len(tokens))}
	for _, id := range eos {
		if id >= 0 && id < len(tokens) {
			v.eos = append(v.eos, id)
		}
	}
	var all, rest []int32
	for id, b := range tokens {
		if len(b) == 0 || slices.Contains(v.eos, id) {
			continue
		}
		all = append(all, int32(id))
		v.longest = max(v.longest, len(b))
		if plainContent(b) {
			v.plain.set(id)
		} else {
			rest = append(rest, int32(id))
		}
	}
	maxChars := 0
	for id, b := range tokens {
		if v.plain.has(id) {
			maxChars = max(maxChars, utf8.RuneCount(b))
		}
	}
	v.plainWithin = make([]bitset, maxChars)
	for n := range v.plainWithin {
		v.plainWithin[n] = newBitset(len(tokens))
	}
	for id, b := range tokens {
		if v.plain.has(id) {
			for n := utf8.RuneCount(b); n < maxChars; n++ {
				v.plainWithin[n].set(id)
			}
		}
	}
	v.full = buildTrie(tokens, all)
	v.rest = buildTrie(tokens, rest)
	return v
}

// Size is the number of token ids.
func (v *Vocabulary) Size() int { return v.size }

// plainContent reports whether b can sit anywhere inside a JSON string
// without ending it or starting an escape, and inside bare markup text
// (XMLCall): whole UTF-8 characters, none of them a control character,
// '"', '\' or '<'.
func plainContent(b []byte) bool {
	if !utf8.Valid(b) {
		return false
	}
	for _, c := range b {
		if c < 0x20 || c == '"' || c == '\\' || c == '<' {
			return false
		}
	}
	// Surrogate code points are not valid UTF-8, so utf8.Valid excluded them.
	return true
}

// trie is a token trie in flat arrays: node i's children are
// edges[first[i]:first[i+1]], the tokens that end at it
// ids[idLo[i]:idHi[i]].
type trie struct {
	first      []int32
	edgeByte   []byte
	edgeChild  []int32
	idLo, idHi []int32
	ids        []int32
}

func buildTrie(tokens [][]byte, ids []int32) trie {
	sorted := slices.Clone(ids)
	sort.Slice(sorted, func(a, b int) bool { return bytes.Compare(tokens[sorted[a]], tokens[sorted[b]]) < 0 })
	t := trie{ids: sorted}
	var build func(lo, hi, d int) int32
	type span struct{ lo, hi int }
	build = func(lo, hi, d int) int32 {
		me := int32(len(t.idLo))
		t.idLo = append(t.idLo, int32(lo))
		t.idHi = append(t.idHi, 0)
		t.first = append(t.first, 0)
		end := lo
		for end < hi && len(tokens[sorted[end]]) == d {
			end++
		}
		t.idHi[me] = int32(end)
		var groups []span
		for i := end; i < hi; {
			j := i + 1
			c := tokens[sorted[i]][d]
			for j < hi && tokens[sorted[j]][d] == c {
				j++
			}
			groups = append(groups, span{i, j})
			i = j
		}
		start := len(t.edgeByte)
		t.first[me] = int32(start)
		for _, g := range groups {
			t.edgeByte = append(t.edgeByte, tokens[sorted[g.lo]][d])
			t.edgeChild = append(t.edgeChild, 0)
		}
		for k, g := range groups {
			t.edgeChild[start+k] = build(g.lo, g.hi, d+1)
		}
		return me
	}
	build(0, len(sorted), 0)
	t.first = append(t.first, int32(len(t.edgeByte)))
	// first[i+1] must bound node i's edges: nodes were numbered in the
	// order their edges were reserved, so each node's range ends where the
	// next node's begins.
	return t
}

func (t *trie) edges(n int32) (int, int) {
	return int(t.first[n]), int(t.first[n+1])
}

type bitset []uint64

func newBitset(n int) bitset    { return make(bitset, (n+63)/64) }
func (b bitset) set(i int)      { b[i>>6] |= 1 << (i & 63) }
func (b bitset) has(i int) bool { return b[i>>6]&(1<<(i&63)) != 0 }

func (b bitset) count() int {
	n := 0
	for _, w := range b {
		n += bits.OnesCount64(w)
	}
	return n
}

// Constraint enforces a Grammar on one generation. It is not safe for
// concurrent use.
type Constraint struct {
	g       *Grammar
	v       *Vocabulary
	m       matcher
	threads []*frame
	fed     int
	cache   map[string]cached
	scratch [][]*frame // per trie depth
	key     []byte
	short   shortest
	arena   arena
	// Budget is the most tokens the generation may write (0: unbounded).
	// Near its end the mask keeps only tokens after which the output can
	// still be completed in the tokens left, with one for end of sequence.
	Budget int
	limit  int // during a walk: the longest completion allowed after a token; -1: none
	worst  int // during a walk: the longest completion after an allowed token
	// Stats: masks computed by walking the trie, and served from cache.
	Walks, Hits int
}

// maxCacheBytes bounds the memory of the masks a Constraint keeps (about
// 850 masks over a 151k-token vocabulary); past it the cache starts over.
const maxCacheBytes = 16 << 20

// New starts a constraint at the beginning of the output.
func New(g *Grammar, v *Vocabulary) *Constraint {
	c := &Constraint{g: g, v: v, m: matcher{maxDepth: g.limits.MaxDepth}, cache: map[string]cached{},
		limit: -1}
	computeShortest(g.root)
	c.threads = c.m.start(g.root, nil, nil)
	return c
}

// Done reports whether the output is complete (only end of sequence may
// follow) or can end here.
func (c *Constraint) Done() bool {
	for _, t := range c.threads {
		if c.m.accepts(t) {
			return true
		}
	}
	return false
}

// Failed reports whether the output so far is no prefix of a valid one
// (a token the mask forbade was generated).
func (c *Constraint) Failed() bool { return len(c.threads) == 0 }

// Advance moves past token id's bytes.
func (c *Constraint) Advance(id int) {
	if id < 0 || id >= c.v.size {
		c.threads = nil
		return
	}
	for _, b := range c.v.bytes[id] {
		c.threads = c.m.step(c.threads, b, nil)
	}
	if slices.Contains(c.v.eos, id) {
		c.threads = nil
	}
	c.threads = dedupe(c.threads)
}

// WriteString moves past s (for tests and prefixes the prompt wrote).
func (c *Constraint) WriteString(s string) {
	for i := 0; i < len(s); i++ {
		c.threads = c.m.step(c.threads, s[i], nil)
	}
	c.threads = dedupe(c.threads)
}

// Mask is the logits hook: it advances past the tokens generated since the
// last call and sets the logit of every token that cannot come next to
// -Inf. With nothing valid left, only end of sequence stays.
func (c *Constraint) Mask(generated []int, logits []float32) {
	for _, id := range generated[min(c.fed, len(generated)):] {
		c.Advance(id)
	}
	c.fed = len(generated)
	allowed := c.Allowed()
	if c.Budget > 0 {
		if limit := c.Budget - len(generated) - 2; c.worstAfter() > limit {
			allowed = c.computeWithin(max(limit, 0))
		}
	}
	apply(allowed, logits)
}

// cached is a state's mask and the longest shortest-completion after any
// token it allows (so whether it fits a budget).
type cached struct {
	mask  bitset
	worst int
}

func (c *Constraint) worstAfter() int {
	return c.cache[string(c.stateKey())].worst
}

// computeWithin is the mask of tokens after which the output can be
// finished in limit bytes (not cached: the limit changes every step).
func (c *Constraint) computeWithin(limit int) bitset {
	c.limit = limit
	defer func() { c.limit = -1 }()
	out := newBitset(c.v.size)
	if c.Done() || len(c.threads) == 0 {
		for _, id := range c.v.eos {
			out.set(id)
		}
	}
	c.m.arena = &c.arena
	defer func() { c.m.arena = nil }()
	c.arena.reset()
	c.walk(&c.v.full, 0, c.threads, 0, out)
	return out
}

// negInf is a run of -Inf copied over forbidden stretches of logits
// (memmove is several times faster than a store loop).
var negInf = func() []float32 {
	s := make([]float32, 4096)
	for i := range s {
		s[i] = float32(math.Inf(-1))
	}
	return s
}()

func apply(allowed bitset, logits []float32) {
	fill := func(lo, hi int) {
		for lo < hi {
			lo += copy(logits[lo:hi], negInf)
		}
	}
	run := -1 // start of the current run of forbidden words
	for w, word := range allowed {
		base := w * 64
		if base >= len(logits) {
			break
		}
		if word == 0 {
			if run < 0 {
				run = base
			}
			continue
		}
		if run >= 0 {
			fill(run, base)
			run = -1
		}
		if word == math.MaxUint64 {
			continue
		}
		for rest := ^word; rest != 0; rest &= rest - 1 {
			if i := base + bits.TrailingZeros64(rest); i < len(logits) {
				logits[i] = float32(math.Inf(-1))
			}
		}
	}
	if run >= 0 {
		fill(run, len(logits))
	}
	fill(min(len(allowed)*64, len(logits)), len(logits))
}

// Allowed is the set of tokens that may come next (the cached mask).
func (c *Constraint) Allowed() bitset {
	key := c.stateKey()
	if m, ok := c.cache[string(key)]; ok {
		c.Hits++
		return m.mask
	}
	c.Walks++
	c.worst = c.short.statesRest(c.threads)
	m := c.compute()
	if (len(c.cache)+1)*len(m)*8 > maxCacheBytes {
		clear(c.cache)
	}
	c.cache[string(key)] = cached{mask: m, worst: c.worst}
	return m
}

// AllowedIDs lists the tokens that may come next.
func (c *Constraint) AllowedIDs() []int {
	var out []int
	for i, w := range c.Allowed() {
		for w != 0 {
			b := bits.TrailingZeros64(w)
			out = append(out, i*64+b)
			w &^= 1 << b
		}
	}
	return out
}

func (c *Constraint) compute() bitset {
	out := newBitset(c.v.size)
	if len(c.threads) == 0 {
		for _, id := range c.v.eos {
			out.set(id)
		}
		return out
	}
	if c.Done() {
		for _, id := range c.v.eos {
			out.set(id)
		}
	}
	// A thread inside string text takes the plain tokens that fit at
	// once and walks only the rest of the vocabulary.
	var text, other []*frame
	for _, f := range c.threads {
		if room, ok := textRoom(f); ok {
			out.or(c.v.plainFitting(room))
			text = append(text, f)
		} else {
			other = append(other, f)
		}
	}
	c.m.arena = &c.arena
	defer func() { c.m.arena = nil }()
	c.arena.reset()
	if len(text) > 0 {
		c.walk(&c.v.rest, 0, text, 0, out)
	}
	if len(other) > 0 {
		c.walk(&c.v.full, 0, other, 0, out)
	}
	return out
}

// textRoom reports whether f is inside a string's free text (not in an
// escape or a character) and how many more characters it may take.
func textRoom(f *frame) (int, bool) {
	if f == done || f.n.kind != kString || f.st != 1 || f.aux != 0 || f.n.format != nil {
		return 0, false
	}
	return f.n.maxLen - int(f.i), true
}

// plainFitting are the plain tokens of at most room characters.
func (v *Vocabulary) plainFitting(room int) bitset {
	if room >= len(v.plainWithin) {
		return v.plain
	}
	return v.plainWithin[max(room, 0)]
}

func (b bitset) or(o bitset) {
	for i, w := range o {
		b[i] |= w
	}
}

func (c *Constraint) walk(t *trie, n int32, threads []*frame, depth int, out bitset) {
	if depth >= len(c.scratch) {
		c.scratch = append(c.scratch, nil)
	}
	lo, hi := t.edges(n)
	for e := lo; e < hi; e++ {
		next := c.m.step(threads, t.edgeByte[e], c.scratch[depth][:0])
		c.scratch[depth] = next
		if len(next) == 0 {
			continue
		}
		child := t.edgeChild[e]
		if ids := t.ids[t.idLo[child]:t.idHi[child]]; len(ids) > 0 {
			rest := c.short.statesRest(next)
			if c.limit < 0 || rest <= c.limit {
				c.worst = max(c.worst, rest)
				for _, id := range ids {
					out.set(int(id))
				}
			}
		}
		c.walk(t, child, next, depth+1, out)
	}
}

// stateKey encodes the threads so that states with the same key allow the
// same tokens: string character counts far from their bounds are left out.
func (c *Constraint) stateKey() []byte {
	k := c.key[:0]
	for _, t := range c.threads {
		for f := t; f != nil; f = f.up {
			if f == done {
				k = append(k, 0xFF)
				continue
			}
			i := f.i
			if f.n.kind == kString && f.n.format == nil && int(i) >= f.n.minLen && f.n.maxLen-int(i) >= c.v.longest {
				i = -1
			}
			k = binary.AppendUvarint(k, uint64(f.n.id))
			k = binary.AppendVarint(k, int64(i))
			k = binary.AppendVarint(k, int64(f.aux))
			k = binary.AppendVarint(k, int64(f.k))
			k = append(k, f.st)
		}
		k = append(k, 0xFE)
	}
	c.key = k
	return k
}

// dedupe drops threads identical to an earlier one (same frames all the
// way down).
func dedupe(ts []*frame) []*frame {
	if len(ts) < 2 {
		return ts
	}
	out := ts[:0]
	for _, t := range ts {
		dup := false
		for _, u := range out {
			if sameThread(t, u) {
				dup = true
				break
			}
		}
		if !dup {
			out = append(out, t)
		}
	}
	return out
}

func sameThread(a, b *frame) bool {
	for a != nil && b != nil {
		if a == b {
			return true
		}
		if a.n != b.n || a.i != b.i || a.aux != b.aux || a.k != b.k || a.st != b.st {
			return false
		}
		a, b = a.up, b.up
	}
	return a == b
}
