package tokenizer

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"
)

// decoder turns token texts back into text, one step of Hugging Face's
// decode_chain: it may rewrite, merge or split the tokens it is given.
type decoder interface {
	decodeChain(tokens []string) []string
}

// byteLevelDecoder maps each token's ByteLevel characters back to bytes (a
// token with a character outside the alphabet contributes its own UTF-8)
// and reads all bytes as one lossy UTF-8 string.
type byteLevelDecoder struct{}

func (byteLevelDecoder) decodeChain(tokens []string) []string {
	var buf []byte
	for _, tok := range tokens {
		n := len(buf)
		for _, r := range tok {
			b, ok := charToByte[r]
			if !ok {
				buf = append(buf[:n], tok...)
				break
			}
			buf = append(buf, b)
		}
	}
	return []string{string(appendLossy(nil, buf))}
}

// metaspaceDecoder turns the replacement character back into spaces and
// drops it from the first token unless the scheme is "never".
type metaspaceDecoder struct {
	repl     rune
	dropLead bool
}

func (m metaspaceDecoder) decodeChain(tokens []string) []string {
	out := make([]string, len(tokens))
	for i, tok := range tokens {
		var b strings.Builder
		for _, r := range tok {
			switch {
			case r != m.repl:
				b.WriteRune(r)
			case i == 0 && m.dropLead:
			default:
				b.WriteByte(' ')
			}
		}
		out[i] = b.String()
	}
	return out
}

type replaceDecoder struct{ r replacer }

func (d replaceDecoder) decodeChain(tokens []string) []string {
	out := make([]string, len(tokens))
	for i, tok := range tokens {
		out[i] = d.r.replace(tok)
	}
	return out
}

// byteFallbackDecoder turns runs of <0xXX> tokens into text; a run that is
// not valid UTF-8 becomes one U+FFFD per byte, as in Hugging Face.
type byteFallbackDecoder struct{}

func (byteFallbackDecoder) decodeChain(tokens []string) []string {
	out := make([]string, 0, len(tokens))
	var run []byte
	flush := func() {
		if len(run) == 0 {
			return
		}
		if utf8.Valid(run) {
			out = append(out, string(run))
		} else {
			for range run {
				out = append(out, "\uFFFD")
			}
		}
		run = run[:0]
	}
	for _, tok := range tokens {
		if b, ok := fallbackByte(tok); ok {
			run = append(run, b)
			continue
		}
		flush()
		out = append(out, tok)
	}
	flush()
	return out
}

func fallbackByte(tok string) (byte, bool) {
	if len(tok) != 6 || !strings.HasPrefix(tok, "<0x") || tok[5] != '>' {
		return 0, false
	}
	var b byte
	for _, c := range []byte(tok[3:5]) {
		switch {
		case c >= '0' && c <= '9':
			b = b<<4 | (c - '0')
		case c >= 'A' && c <= 'F':
			b = b<<4 | (c - 'A' + 10)
		case c >= 'a' && c <= 'f':
			b = b<<4 | (c - 'a' + 10)
		default:
			return 0, false
		}
	}
	return b, true
}

type fuseDecoder struct{}

func (fuseDecoder) decodeChain(tokens []string) []string {
	return []string{strings.Join(tokens, "")}
}

// stripDecoder removes up to start leading and stop trailing copies of
// content from every token.
type stripDecoder struct {
	content     rune
	start, stop int
}

func (d stripDecoder) decodeChain(tokens []string) []string {
	out := make([]string, len(tokens))
	for i, tok := range tokens {
		rs := []rune(tok)
		lo, hi := 0, len(rs)
		for lo < d.start && lo < hi && rs[lo] == d.content {
			lo++
		}
		for k := 0; k < d.stop && hi > lo && rs[hi-1] == d.content; k++ {
			hi--
		}
		out[i] = string(rs[lo:hi])
	}
	return out
}

type decoderSequence []decoder

func hasByteFallback(d decoder) bool {
	if seq, ok := d.(decoderSequence); ok {
		return slices.ContainsFunc(seq, hasByteFallback)
	}
	_, ok := d.(byteFallbackDecoder)
	return ok
}

func (seq decoderSequence) decodeChain(tokens []string) []string {
	for _, d := range seq {
		tokens = d.decodeChain(tokens)
	}
	return tokens
}

// parseDecoder reads tokenizer.json's "decoder" (nil when null).
func parseDecoder(raw json.RawMessage) (decoder, error) {
	if isNull(raw) {
		return nil, nil
	}
	typ, err := typeOf(raw)
	if err != nil {
		return nil, err
	}
	switch typ {
	case "ByteLevel":
		return byteLevelDecoder{}, nil
	case "Metaspace":
		m, err := parseMetaspace(raw)
		if err != nil {
			return nil, fmt.Errorf("Metaspace: %w", err)
		}
		repl, _ := utf8.DecodeRuneInString(m.repl)
		return metaspaceDecoder{repl, m.scheme != prependNever}, nil
	case "Replace":
		r, err := parseReplacer(raw)
		if err != nil {
			return nil, fmt.Errorf("Replace: %w", err)
		}
		return replaceDecoder{r}, nil
	case "ByteFallback":
		return byteFallbackDecoder{}, nil
	case "Fuse":
		return fuseDecoder{}, nil
	case "Strip":
		var p struct {
			Content string `json:"content"`
			Start   int    `json:"start"`
			Stop    int    `json:"stop"`
		}
		if err := json.Unmarshal(raw, &p); err != nil {
			return nil, fmt.Errorf("Strip: %w", err)
		}
		if utf8.RuneCountInString(p.Content) != 1 {
			return nil, errors.New("Strip: content must be one character")
		}
		c, _ := utf8.DecodeRuneInString(p.Content)
		return stripDecoder{c, p.Start, p.Stop}, nil
	case "Sequence":
		var p struct {
			Decoders []json.RawMessage `json:"decoders"`
		}
		if err := json.Unmarshal(raw, &p); err != nil {
			return nil, fmt.Errorf("Sequence: %w", err)
		}
		seq, err := parseSequence(p.Decoders, parseDecoder)
		if err != nil {
			return nil, err
		}
		return decoderSequence(seq), nil
	}
	return nil, fmt.Errorf("decoder type %q is not supported (supported: ByteLevel, Metaspace, Replace, ByteFallback, Fuse, Strip, Sequence)", typ)
}

// Decode returns the text of ids, like Hugging Face's decode(ids,
// skip_special_tokens). Ids outside the vocabulary are skipped, as there.
func (t *Tokenizer) Decode(ids []int, skipSpecial bool) string {
	tokens := make([]string, 0, len(ids))
	for _, id := range ids {
		if id < 0 || id >= len(t.idToTok) || t.idToTok[id] == "" || skipSpecial && t.special[id] {
			continue
		}
		tokens = append(tokens, t.idToTok[id])
	}
	if t.dec == nil {
		return strings.Join(tokens, " ")
	}
	return strings.Join(t.dec.decodeChain(tokens), "")
}

// StreamDecoder decodes ids one at a time for streaming output. It only
// emits complete UTF-8 text: a character whose bytes are spread over
// several tokens comes out once its last byte has arrived. The
// concatenation of everything Add and Flush return equals Decode of all the
// ids.
type StreamDecoder struct {
	t           *Tokenizer
	skipSpecial bool
	ids         []int  // a window of recent ids: the text before ids[read] was emitted
	read        int    // index in ids where the text not yet emitted starts
	prefix      string // Decode(ids[:read])
}

// NewStreamDecoder returns a StreamDecoder; skipSpecial is Decode's.
func (t *Tokenizer) NewStreamDecoder(skipSpecial bool) *StreamDecoder {
	return &StreamDecoder{t: t, skipSpecial: skipSpecial}
}

// Add feeds one id and returns the text it completes ("" if none yet).
//
// As in Hugging Face's DecodeStream, the window starts a few tokens back so
// that decoders which treat the first token specially (Metaspace, Strip)
// see the same context as a full decode; text ending in U+FFFD is held
// back as a possibly unfinished character, and so is a run of byte-fallback
// tokens until it ends.
func (d *StreamDecoder) Add(id int) string {
	d.ids = append(d.ids, id)
	if d.t.byteFallbackDecode && d.endsInByteToken() {
		return ""
	}
	text := d.t.Decode(d.ids, d.skipSpecial)
	if len(text) <= len(d.prefix) || strings.HasSuffix(text, "\uFFFD") || !strings.HasPrefix(text, d.prefix) {
		return ""
	}
	return d.emit(text)
}

// endsInByteToken reports whether the last id that decoding keeps is a
// <0xXX> byte token. The ByteFallback decoder turns a whole run of byte
// tokens into U+FFFDs when the run is not valid UTF-8, so text from a run
// may still change until a token of another kind ends it.
func (d *StreamDecoder) endsInByteToken() bool {
	for i := len(d.ids) - 1; i >= d.read; i-- {
		id := d.ids[i]
		if id < 0 || id >= len(d.t.idToTok) || d.skipSpecial && d.t.special[id] {
			continue
		}
		_, ok := fallbackByte(d.t.idToTok[id])
		return ok
	}
	return false
}

// Flush returns whatever text is still held back (an unfinished character
// comes out as U+FFFD, as a full decode gives) and resets the decoder.
func (d *StreamDecoder) Flush() string {
	text := d.t.Decode(d.ids, d.skipSpecial)
	var out string
	if strings.HasPrefix(text, d.prefix) {
		out = text[len(d.prefix):]
	}
	d.ids, d.read, d.prefix = d.ids[:0], 0, ""
	return out
}

func (d *StreamDecoder) emit(text string) string {
	out := text[len(d.prefix):]
	// Keep the ids since the previous emission as context for the next.
	n := copy(d.ids, d.ids[d.read:])
	d.ids = d.ids[:n]
	d.read = n
	d.prefix = d.t.Decode(d.ids, d.skipSpecial)
	return out
}
