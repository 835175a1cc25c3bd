// Package tokenizer turns text into token ids and back exactly as Hugging
// Face's `tokenizers` library does for the models mlx-moe runs, in pure Go.
//
// It reads a model directory's tokenizer.json (and tokenizer_config.json for
// the BOS/EOS tokens) and supports the two families of files those models
// ship:
//
//   - byte-level BPE (Qwen2/Qwen3, DeepSeek-V3, OLMoE, GLM): NFC
//     normalization, `Split` pre-tokenizer regexes, the ByteLevel alphabet;
//   - SentencePiece-style BPE (Mixtral/Mistral/Llama): Prepend/Replace
//     normalizers or the Metaspace pre-tokenizer, byte fallback to <0xXX>
//     tokens, unknown-token fusing.
//
// Added tokens (`<|im_start|>`, ...) are matched before normalization and
// BPE, leftmost-longest, as the Rust library does. BPE merges are applied by
// rank with the leftmost pair first on ties; pieces already seen are cached.
//
// The pre-tokenizer regexes of Qwen2/Qwen3, DeepSeek-V3, Llama-3/GLM-4 and
// GPT-2 (ByteLevel's own) are hand-coded for speed; they need the
// look-ahead `\s+(?!\S)`, which Go's regexp lacks. Any other `Split` regex
// goes through github.com/dlclark/regexp2, a backtracking engine with the
// same semantics; a test checks each hand-coded matcher against it.
//
// Decode follows the Rust library's decode(ids, skip_special_tokens) (no
// clean_up_tokenization_spaces). StreamDecoder decodes one id at a time and
// only ever emits complete UTF-8 text, for streaming generation.
//
// Why not a binding: the usual choice, github.com/daulet/tokenizers, wraps the
// Rust library through cgo and needs its prebuilt static library, which
// cannot be fetched or built here and would force cgo on every user of
// mlx-moe. This package is the deliberate replacement; its tests compare it
// with ids produced by the Rust library.
//
// Encode follows the Rust library's encode(text, add_special_tokens=false),
// which is how the reference ids in ../shared/tokenizers were made (for
// Qwen3 and DeepSeek-V3 the Rust library adds nothing either way);
// EncodeWithSpecialTokens adds what the model's post-processor (or
// tokenizer_config.json's add_bos_token, as transformers does) adds. Text that is not valid UTF-8
// is first converted the way Hugging Face does (each maximal invalid
// subsequence becomes U+FFFD); nothing panics on any input.
//
// A Tokenizer is safe for concurrent use.
package tokenizer

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
)

// Tokenizer encodes text to token ids and decodes ids to text.
type Tokenizer struct {
	norm  normalizer   // nil: none
	pre   preTokenizer // nil: the whole segment is one piece
	model *bpeModel
	dec   decoder // nil: tokens joined with spaces, as Hugging Face does
	// byteFallbackDecode: dec includes ByteFallback (see StreamDecoder).
	byteFallbackDecode bool
	post               postProcessor // nil: nothing added
	added              addedVocab
	idToTok            []string // token text by id (added tokens win over the model vocab)
	special            []bool   // by id: an added token marked special

	bosToken, eosToken string
	eosIDs             []int
	addBOS, addEOS     *bool // tokenizer_config.json's add_bos_token / add_eos_token

	pool  sync.Pool // *scratch
	cache pieceCache
}

// Load reads dir/tokenizer.json (or dir/tokenizer.json.gz) and, when present,
// dir/tokenizer_config.json and dir/generation_config.json.
func Load(dir string) (*Tokenizer, error) {
	path := filepath.Join(dir, "tokenizer.json")
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		data, err = readGzip(path + ".gz")
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("tokenizer: no tokenizer.json or tokenizer.json.gz in %s", dir)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("tokenizer: %w", err)
	}
	config, err := readOptional(filepath.Join(dir, "tokenizer_config.json"))
	if err != nil {
		return nil, err
	}
	t, err := New(data, config)
	if err != nil {
		return nil, fmt.Errorf("tokenizer: %s: %w", dir, err)
	}
	gen, err := readOptional(filepath.Join(dir, "generation_config.json"))
	if err != nil {
		return nil, err
	}
	if err := t.addGenerationEOS(gen); err != nil {
		return nil, fmt.Errorf("tokenizer: %s: generation_config.json: %w", dir, err)
	}
	return t, nil
}

func readOptional(path string) ([]byte, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("tokenizer: %w", err)
	}
	return data, nil
}

func readGzip(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	data, err := io.ReadAll(zr)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return data, nil
}

// fileJSON is the part of tokenizer.json this package reads; the
// polymorphic components are parsed by their "type".
type fileJSON struct {
	AddedTokens   []addedTokenJSON `json:"added_tokens"`
	Normalizer    json.RawMessage  `json:"normalizer"`
	PreTokenizer  json.RawMessage  `json:"pre_tokenizer"`
	PostProcessor json.RawMessage  `json:"post_processor"`
	Decoder       json.RawMessage  `json:"decoder"`
	Model         json.RawMessage  `json:"model"`
}

type addedTokenJSON struct {
	ID         int    `json:"id"`
	Content    string `json:"content"`
	SingleWord bool   `json:"single_word"`
	LStrip     bool   `json:"lstrip"`
	RStrip     bool   `json:"rstrip"`
	Normalized bool   `json:"normalized"`
	Special    bool   `json:"special"`
}

// New builds a Tokenizer from the contents of tokenizer.json and of
// tokenizer_config.json (nil when the model has none).
func New(tokenizerJSON, configJSON []byte) (*Tokenizer, error) {
	var f fileJSON
	if err := json.Unmarshal(tokenizerJSON, &f); err != nil {
		return nil, fmt.Errorf("tokenizer.json: %w", err)
	}
	if isNull(f.Model) {
		return nil, errors.New(`tokenizer.json: no "model"`)
	}
	t := &Tokenizer{}
	var err error
	if t.norm, err = parseNormalizer(f.Normalizer); err != nil {
		return nil, fmt.Errorf("tokenizer.json: normalizer: %w", err)
	}
	byteLevel := false
	if t.pre, byteLevel, err = parsePreTokenizer(f.PreTokenizer); err != nil {
		return nil, fmt.Errorf("tokenizer.json: pre_tokenizer: %w", err)
	}
	if t.model, err = parseBPE(f.Model, byteLevel); err != nil {
		return nil, fmt.Errorf("tokenizer.json: model: %w", err)
	}
	if t.dec, err = parseDecoder(f.Decoder); err != nil {
		return nil, fmt.Errorf("tokenizer.json: decoder: %w", err)
	}
	t.byteFallbackDecode = hasByteFallback(t.dec)
	if t.post, err = parsePostProcessor(f.PostProcessor); err != nil {
		return nil, fmt.Errorf("tokenizer.json: post_processor: %w", err)
	}
	if err := t.buildVocab(f.AddedTokens); err != nil {
		return nil, err
	}
	if len(configJSON) > 0 {
		if err := t.readConfig(configJSON); err != nil {
			return nil, fmt.Errorf("tokenizer_config.json: %w", err)
		}
	}
	return t, nil
}

// buildVocab merges the model vocabulary with the added tokens into the
// id -> token table and builds the added-token matchers.
func (t *Tokenizer) buildVocab(added []addedTokenJSON) error {
	n := len(t.model.idToTok)
	for i, a := range added {
		if a.ID < 0 || a.ID > 1<<24 {
			return fmt.Errorf("tokenizer.json: added_tokens[%d] (%q): id %d out of range", i, a.Content, a.ID)
		}
		if a.Content == "" {
			return fmt.Errorf("tokenizer.json: added_tokens[%d]: empty content", i)
		}
		n = max(n, a.ID+1)
	}
	t.idToTok = make([]string, n)
	t.special = make([]bool, n)
	copy(t.idToTok, t.model.idToTok)
	for _, a := range added {
		t.idToTok[a.ID] = a.Content
		t.special[a.ID] = a.Special
	}
	t.added = newAddedVocab(added, t.norm)
	return nil
}

// VocabSize is one more than the largest token id (model vocabulary and
// added tokens together), the range a model's logits must cover.
func (t *Tokenizer) VocabSize() int { return len(t.idToTok) }

// TokenID returns the id of a token given as it is written in
// tokenizer.json (an added token such as "<|im_end|>", or a vocabulary entry
// in the model's own alphabet, e.g. "Ġhello" for byte-level models).
func (t *Tokenizer) TokenID(s string) (int, bool) {
	if id, ok := t.added.ids[s]; ok {
		return id, true
	}
	if id, ok := t.model.vocab[s]; ok {
		return int(id), true
	}
	return 0, false
}

// Token returns the text of token id as written in tokenizer.json, or ""
// when there is no such id.
func (t *Tokenizer) Token(id int) string {
	if id < 0 || id >= len(t.idToTok) {
		return ""
	}
	return t.idToTok[id]
}

// IsSpecial reports whether id is an added token marked special (those are
// what Decode's skipSpecial drops).
func (t *Tokenizer) IsSpecial(id int) bool {
	return id >= 0 && id < len(t.special) && t.special[id]
}

func isNull(raw json.RawMessage) bool {
	raw = bytes.TrimSpace(raw)
	return len(raw) == 0 || string(raw) == "null"
}

// parseSequence parses each element of a "Sequence" component's list with
// parse, naming the failing element in the error and dropping those that
// parse to nil (components that do nothing).
func parseSequence[T any](items []json.RawMessage, parse func(json.RawMessage) (T, error)) ([]T, error) {
	var seq []T
	for i, r := range items {
		x, err := parse(r)
		if err != nil {
			return nil, fmt.Errorf("Sequence[%d]: %w", i, err)
		}
		if any(x) != nil {
			seq = append(seq, x)
		}
	}
	return seq, nil
}

// typeOf returns the "type" field of a tokenizer.json component. It reads
// only as far as that field, which Hugging Face writes first: the model
// object of a large vocabulary is megabytes long.
func typeOf(raw json.RawMessage) (string, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	if tok, err := dec.Token(); err != nil {
		return "", err
	} else if tok != json.Delim('{') {
		return "", fmt.Errorf("want an object, got %s", bytes.TrimSpace(raw)[:1])
	}
	for dec.More() {
		key, err := dec.Token()
		if err != nil {
			return "", err
		}
		if key == "type" {
			var typ string
			if err := dec.Decode(&typ); err != nil {
				return "", fmt.Errorf(`"type": %w`, err)
			}
			if typ == "" {
				break
			}
			return typ, nil
		}
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			return "", err
		}
	}
	return "", errors.New(`missing "type"`)
}
