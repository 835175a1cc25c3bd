package tokenizer

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// piece is a part of the normalized text on its way to the model.
type piece struct {
	text string
	// atStart: the piece begins at offset 0 of the original input, which is
	// what Metaspace's prepend_scheme "first" checks.
	atStart bool
}

// appendSub appends p.text[start:end] as a piece unless it is empty (Hugging
// Face drops empty splits).
func (p piece) appendSub(dst []piece, start, end int) []piece {
	if start == end {
		return dst
	}
	return append(dst, piece{p.text[start:end], p.atStart && start == 0})
}

// stage is one pre-tokenizer step: it splits (and may rewrite) one piece.
type stage interface {
	appendPieces(dst []piece, p piece, sc *scratch) []piece
}

// preTokenizer is the flattened list of stages of tokenizer.json's
// pre_tokenizer. The ByteLevel pre-tokenizer contributes no stage of its
// own for the byte mapping: byte-level models run BPE on raw bytes.
type preTokenizer []stage

// gpt2Pattern is the split ByteLevel applies when use_regex is true.
const gpt2Pattern = `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`

// parsePreTokenizer reads tokenizer.json's "pre_tokenizer"; byteLevel
// reports whether it includes ByteLevel.
func parsePreTokenizer(raw json.RawMessage) (pre preTokenizer, byteLevel bool, err error) {
	if isNull(raw) {
		return nil, false, nil
	}
	err = appendPreTokenizer(&pre, &byteLevel, raw)
	return pre, byteLevel, err
}

func appendPreTokenizer(pre *preTokenizer, byteLevel *bool, raw json.RawMessage) error {
	typ, err := typeOf(raw)
	if err != nil {
		return err
	}
	if *byteLevel {
		// Hugging Face would run this step on byte-mapped characters, which
		// no model we support does.
		return fmt.Errorf("%s after ByteLevel is not supported: ByteLevel must come last", typ)
	}
	switch typ {
	case "Sequence":
		var p struct {
			PreTokenizers []json.RawMessage `json:"pretokenizers"`
		}
		if err := json.Unmarshal(raw, &p); err != nil {
			return fmt.Errorf("Sequence: %w", err)
		}
		for i, r := range p.PreTokenizers {
			if err := appendPreTokenizer(pre, byteLevel, r); err != nil {
				return fmt.Errorf("Sequence[%d]: %w", i, err)
			}
		}
		return nil
	case "Split":
		var p struct {
			Pattern  json.RawMessage `json:"pattern"`
			Behavior string          `json:"behavior"`
			Invert   bool            `json:"invert"`
		}
		if err := json.Unmarshal(raw, &p); err != nil {
			return fmt.Errorf("Split: %w", err)
		}
		m, err := parsePattern(p.Pattern)
		if err != nil {
			return fmt.Errorf("Split: %w", err)
		}
		b, err := parseBehavior(p.Behavior)
		if err != nil {
			return fmt.Errorf("Split: %w", err)
		}
		*pre = append(*pre, &splitStage{m, b, p.Invert})
		return nil
	case "ByteLevel":
		var p struct {
			AddPrefixSpace bool  `json:"add_prefix_space"`
			UseRegex       *bool `json:"use_regex"`
		}
		if err := json.Unmarshal(raw, &p); err != nil {
			return fmt.Errorf("ByteLevel: %w", err)
		}
		if p.AddPrefixSpace {
			*pre = append(*pre, prefixSpace{})
		}
		if p.UseRegex == nil || *p.UseRegex {
			m, err := compileRegex(gpt2Pattern)
			if err != nil {
				return fmt.Errorf("ByteLevel: %w", err)
			}
			*pre = append(*pre, &splitStage{m, isolated, false})
		}
		*byteLevel = true
		return nil
	case "Metaspace":
		m, err := parseMetaspace(raw)
		if err != nil {
			return fmt.Errorf("Metaspace: %w", err)
		}
		*pre = append(*pre, m)
		return nil
	case "Digits":
		var p struct {
			Individual bool `json:"individual_digits"`
		}
		if err := json.Unmarshal(raw, &p); err != nil {
			return fmt.Errorf("Digits: %w", err)
		}
		b := contiguous
		if p.Individual {
			b = isolated
		}
		*pre = append(*pre, &splitStage{charMatcher(isNumeric), b, false})
		return nil
	}
	return fmt.Errorf("pre-tokenizer type %q is not supported (supported: Sequence, Split, ByteLevel, Metaspace, Digits)", typ)
}

// prefixSpace is ByteLevel's add_prefix_space: a space before every piece
// that does not already start with one.
type prefixSpace struct{}

func (prefixSpace) appendPieces(dst []piece, p piece, _ *scratch) []piece {
	if !strings.HasPrefix(p.text, " ") {
		p.text = " " + p.text
	}
	return append(dst, p)
}

// prependScheme says where Metaspace puts a replacement character in front
// of the text.
type prependScheme int

const (
	prependAlways prependScheme = iota
	prependFirst
	prependNever
)

// metaspace replaces spaces by the replacement character (normally "▁"),
// prepends one per the scheme and optionally splits before each.
type metaspace struct {
	repl   string
	scheme prependScheme
	split  *splitStage // nil: no split
}

func parseMetaspace(raw json.RawMessage) (*metaspace, error) {
	var p struct {
		Replacement    string `json:"replacement"`
		PrependScheme  string `json:"prepend_scheme"`
		AddPrefixSpace *bool  `json:"add_prefix_space"`
		Split          *bool  `json:"split"`
	}
	if err := json.Unmarshal(raw, &p); err != nil {
		return nil, err
	}
	if p.Replacement == "" {
		return nil, errors.New("empty replacement")
	}
	m := &metaspace{repl: p.Replacement}
	switch p.PrependScheme {
	case "always":
		m.scheme = prependAlways
	case "first":
		m.scheme = prependFirst
	case "never":
		m.scheme = prependNever
	case "":
		// Files older than prepend_scheme only have add_prefix_space.
		if p.AddPrefixSpace != nil && !*p.AddPrefixSpace {
			m.scheme = prependNever
		}
	default:
		return nil, fmt.Errorf("prepend_scheme %q is not one of always, first, never", p.PrependScheme)
	}
	if p.Split == nil || *p.Split {
		m.split = &splitStage{literalMatcher(p.Replacement), mergedWithNext, false}
	}
	return m, nil
}

func (m *metaspace) appendPieces(dst []piece, p piece, sc *scratch) []piece {
	p.text = strings.ReplaceAll(p.text, " ", m.repl)
	if !strings.HasPrefix(p.text, m.repl) &&
		(m.scheme == prependAlways || m.scheme == prependFirst && p.atStart) {
		p.text = m.repl + p.text
	}
	if m.split == nil {
		return p.appendSub(dst, 0, len(p.text))
	}
	return m.split.appendPieces(dst, p, sc)
}
