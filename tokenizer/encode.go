package tokenizer

import (
	"strings"
	"sync"
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
}

// pieceCache remembers the tokens of pieces already encoded; text repeats
// words so much that most pieces are found here.
type pieceCache struct {
	mu sync.Mutex
	m  map[string][]int32
}

const (
	cacheMaxEntries  = 1 << 16
	cacheMaxPieceLen = 256
)

func (c *pieceCache) clear() {
	c.mu.Lock()
	c.m = nil
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

// encodePiece pre-tokenizes one stretch of normalized text and runs the
// model on each resulting piece.
func (t *Tokenizer) encodePiece(ids []int32, p piece, sc *scratch) []int32 {
	pieces := append(sc.pieces[:0], p)
	for _, st := range t.pre {
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
	if cached, ok := t.cache.get(w); ok {
		return append(ids, cached...)
	}
	n := len(ids)
	ids = t.model.appendWord(ids, w, sc)
	t.cache.put(w, append([]int32(nil), ids[n:]...))
	return ids
}
