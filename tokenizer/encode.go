package tokenizer

import (
	"strings"
	"sync"
	"sync/atomic"
	"unicode/utf8"
	"unsafe"
)

// scratch holds the buffers of one Encode call, reused through a pool.
type scratch struct {
	rawSegs, normSegs []segment
	pieces, next      []piece
	spans             []span
	marked            []markedSpan
	syms              []symbol
	queue             []candidate
	ids               []int32
	front             frontCache
	frontGen          uint64 // pieceCache.gen when front was last emptied
}

// frontCache is a small direct-mapped cache of short pieces in front of the
// shared pieceCache. It belongs to one scratch, so it needs no lock, and its
// keys are stored inline, so a lookup touches one entry.
type frontCache [1 << 14]frontEntry

type frontEntry struct {
	n   uint8 // key length; 0: empty (pieces are never empty)
	key [frontKeyMax]byte
	ids []int32 // shared with pieceCache; never modified
}

const frontKeyMax = 15

// slot returns the entry for piece w (FNV-1a hash).
func (f *frontCache) slot(w string) *frontEntry {
	h := uint32(2166136261)
	for i := range len(w) {
		h = (h ^ uint32(w[i])) * 16777619
	}
	return &f[h&(uint32(len(f))-1)]
}

// pieceCache remembers the tokens of pieces already encoded; text repeats
// words so much that most pieces are found here.
type pieceCache struct {
	mu  sync.Mutex
	m   map[string][]int32
	gen atomic.Uint64 // counts clear calls; front caches older than it are emptied
}

const (
	cacheMaxEntries  = 1 << 16
	cacheMaxPieceLen = 256
)

// clear forgets every piece, in the front caches too.
func (c *pieceCache) clear() {
	c.mu.Lock()
	c.m = nil
	c.gen.Add(1)
	c.mu.Unlock()
}

func (c *pieceCache) get(s string) ([]int32, bool) {
	c.mu.Lock()
	ids, ok := c.m[s]
	c.mu.Unlock()
	return ids, ok
}

func (c *pieceCache) put(s string, ids []int32) {
	c.mu.Lock()
	if c.m == nil || len(c.m) >= cacheMaxEntries {
		c.m = make(map[string][]int32)
	}
	// Clone: s points into the caller's text, which must not stay alive.
	c.m[strings.Clone(s)] = ids
	c.mu.Unlock()
}

// Encode returns the token ids of text, like Hugging Face's
// encode(text, add_special_tokens=False): added tokens written in the text
// (such as "<|im_start|>") become their ids, nothing is added around it.
func (t *Tokenizer) Encode(text string) []int {
	sc, _ := t.pool.Get().(*scratch)
	if sc == nil {
		sc = &scratch{}
	}
	if gen := t.cache.gen.Load(); sc.frontGen != gen {
		sc.front, sc.frontGen = frontCache{}, gen
	}
	sc.ids = t.encode(sc.ids[:0], validUTF8(text), sc)
	out := make([]int, len(sc.ids))
	for i, id := range sc.ids {
		out[i] = int(id)
	}
	t.pool.Put(sc)
	return out
}

// EncodeWithSpecialTokens is Encode plus the tokens the model adds around a
// single sequence (Hugging Face's add_special_tokens=True). When
// tokenizer_config.json sets add_bos_token or add_eos_token (as Llama-family
// configs do, DeepSeek-V3's among them), those flags decide, as they do in
// transformers; otherwise tokenizer.json's post_processor does.
func (t *Tokenizer) EncodeWithSpecialTokens(text string) []int {
	ids := t.Encode(text)
	if t.addBOS == nil && t.addEOS == nil {
		if t.post == nil {
			return ids
		}
		return t.post.process(ids)
	}
	if id, ok := t.BOSTokenID(); ok && t.addBOS != nil && *t.addBOS {
		ids = append([]int{id}, ids...)
	}
	if t.addEOS != nil && *t.addEOS && len(t.eosIDs) > 0 && t.eosToken != "" {
		ids = append(ids, t.eosIDs[0])
	}
	return ids
}

func (t *Tokenizer) encode(ids []int32, text string, sc *scratch) []int32 {
	sc.rawSegs = t.added.appendSegments(sc.rawSegs[:0], text, &t.added.raw)
	for _, rs := range sc.rawSegs {
		if rs.token >= 0 {
			ids = append(ids, int32(t.added.tokens[rs.token].id))
			continue
		}
		s := text[rs.start:rs.end]
		if t.norm != nil {
			s = t.norm.normalize(s)
		}
		// appendSegments reuses sc.normSegs: loop over a copy of the header.
		segs := t.added.appendSegments(sc.normSegs[:0], s, &t.added.normd)
		sc.normSegs = segs
		for _, ns := range segs {
			if ns.token >= 0 {
				ids = append(ids, int32(t.added.tokens[ns.token].id))
				continue
			}
			p := piece{s[ns.start:ns.end], rs.start == 0 && ns.start == 0}
			ids = t.encodePiece(ids, p, sc)
		}
	}
	return ids
}

// windowBytes bounds the text pre-tokenized at once. The pieces of a text
// take about 40 times its size (a 30 MB prompt would need a gigabyte), so
// a longer stretch goes through in windows.
var windowBytes = 256 << 10

// encodePiece pre-tokenizes one stretch of normalized text and runs the
// model on each resulting piece. A stretch longer than windowBytes is taken
// a window at a time: the first pre-tokenizer stage splits the window, and
// the pieces up to its third-to-last are final. Only the pieces next to the
// window's edge can depend on text past it (a match looks at most one
// character beyond its run), so the next window starts where the kept
// pieces end and the ids are those of the whole stretch.
func (t *Tokenizer) encodePiece(ids []int32, p piece, sc *scratch) []int32 {
	for len(t.pre) > 0 && len(p.text) > windowBytes {
		end := windowBytes
		for end > 0 && !utf8.RuneStart(p.text[end]) {
			end-- // whole characters only: a cut one would be split differently
		}
		w := piece{p.text[:end], p.atStart}
		first := t.pre[0].appendPieces(sc.pieces[:0], w, sc)
		sc.pieces = first
		n, cut := settledPieces(w.text, first)
		if n == 0 {
			break // no edge to cut at: the rest in one go
		}
		ids = t.runStages(ids, first[:n], 1, sc)
		p = piece{p.text[cut:], false}
	}
	return t.runStages(ids, append(sc.pieces[:0], p), 0, sc)
}

// settledPieces returns how many of the first stage's pieces of a window
// are final (all but the last two) and where in the window they end; 0
// when there are too few, or the stage rewrote the text so that its pieces
// are not slices of the window.
func settledPieces(window string, pieces []piece) (n, end int) {
	if len(pieces) < 3 {
		return 0, 0
	}
	base := uintptr(unsafe.Pointer(unsafe.StringData(window)))
	at := func(q piece) int { return int(uintptr(unsafe.Pointer(unsafe.StringData(q.text))) - base) }
	last, next := pieces[len(pieces)-3], pieces[len(pieces)-2]
	start := at(last)
	if start < 0 || start+len(last.text) > len(window) || at(next) < start+len(last.text) || at(next) > len(window) {
		return 0, 0
	}
	return len(pieces) - 2, start + len(last.text)
}

// runStages runs the pre-tokenizer stages from the given one on pieces and
// the model on each resulting piece.
func (t *Tokenizer) runStages(ids []int32, pieces []piece, from int, sc *scratch) []int32 {
	for _, st := range t.pre[from:] {
		next := sc.next[:0]
		for _, q := range pieces {
			next = st.appendPieces(next, q, sc)
		}
		pieces, sc.next = next, pieces
	}
	sc.pieces = pieces
	for _, q := range pieces {
		ids = t.encodeWord(ids, q.text, sc)
	}
	return ids
}

func (t *Tokenizer) encodeWord(ids []int32, w string, sc *scratch) []int32 {
	if len(w) > cacheMaxPieceLen {
		return t.model.appendWord(ids, w, sc)
	}
	var e *frontEntry
	if len(w) <= frontKeyMax {
		e = sc.front.slot(w)
		if int(e.n) == len(w) && string(e.key[:e.n]) == w {
			return append(ids, e.ids...)
		}
	}
	cached, ok := t.cache.get(w)
	if !ok {
		n := len(ids)
		ids = t.model.appendWord(ids, w, sc)
		cached = append([]int32(nil), ids[n:]...)
		t.cache.put(w, cached)
	} else {
		ids = append(ids, cached...)
	}
	if e != nil {
		e.n = uint8(copy(e.key[:], w))
		e.ids = cached
	}
	return ids
}
