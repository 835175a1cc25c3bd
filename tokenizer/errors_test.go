package tokenizer

import (
	"compress/gzip"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// miniTokenizer is a small byte-level tokenizer.json whose parts the tests
// below replace one at a time.
func miniTokenizer(t *testing.T, edit func(m map[string]any)) []byte {
	t.Helper()
	vocab := map[string]any{}
	for b := range 256 {
		vocab[string(byteToChar[b])] = b
	}
	vocab["ab"] = 256
	m := map[string]any{
		"added_tokens": []any{map[string]any{"id": 257, "content": "<|end|>", "special": true}},
		"normalizer":   map[string]any{"type": "NFC"},
		"pre_tokenizer": map[string]any{"type": "Sequence", "pretokenizers": []any{
			map[string]any{"type": "Split", "pattern": map[string]any{"Regex": qwenPattern}, "behavior": "Isolated"},
			map[string]any{"type": "ByteLevel", "add_prefix_space": false, "use_regex": false},
		}},
		"decoder": map[string]any{"type": "ByteLevel"},
		"model":   map[string]any{"type": "BPE", "vocab": vocab, "merges": []any{"a b"}},
	}
	if edit != nil {
		edit(m)
	}
	data, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func TestMiniTokenizer(t *testing.T) {
	tk, err := New(miniTokenizer(t, nil), []byte(`{"eos_token": "<|end|>", "bos_token": null}`))
	if err != nil {
		t.Fatal(err)
	}
	if got := tk.Encode("abc<|end|>"); !slices.Equal(got, []int{256, 'c', 257}) {
		t.Errorf("Encode = %v", got)
	}
	if got := tk.EOSTokenIDs(); !slices.Equal(got, []int{257}) {
		t.Errorf("EOSTokenIDs = %v", got)
	}
	if tk.VocabSize() != 258 || tk.EOSToken() != "<|end|>" || tk.BOSToken() != "" {
		t.Errorf("VocabSize %d, EOSToken %q, BOSToken %q", tk.VocabSize(), tk.EOSToken(), tk.BOSToken())
	}
}

// TestBadTokenizerJSON: every malformed or unsupported tokenizer.json is an
// error that names what is wrong, never a panic.
func TestBadTokenizerJSON(t *testing.T) {
	cases := []struct {
		name string
		data []byte
		want string
	}{
		{"invalid JSON", []byte(`{"model": {"type": "BPE", "vocab": {`), "tokenizer.json: unexpected end"},
		{"not an object", []byte(`[1, 2]`), "tokenizer.json"},
		{"no model", miniTokenizer(t, func(m map[string]any) { delete(m, "model") }), `no "model"`},
		{"model type", miniTokenizer(t, func(m map[string]any) {
			m["model"] = map[string]any{"type": "Unigram", "vocab": []any{}}
		}), `model type "Unigram" is not supported`},
		{"model not an object", miniTokenizer(t, func(m map[string]any) { m["model"] = "BPE" }), `model: want an object, got "`},
		{"model without type", miniTokenizer(t, func(m map[string]any) { m["model"] = map[string]any{"vocab": map[string]any{}} }), `missing "type"`},
		{"normalizer type", miniTokenizer(t, func(m map[string]any) {
			m["normalizer"] = map[string]any{"type": "Precompiled", "precompiled_charsmap": "AAAA"}
		}), `normalizer type "Precompiled" is not supported`},
		{"nested normalizer", miniTokenizer(t, func(m map[string]any) {
			m["normalizer"] = map[string]any{"type": "Sequence", "normalizers": []any{map[string]any{"type": "NFC"}, map[string]any{"type": "BertNormalizer"}}}
		}), `normalizer: Sequence[1]: normalizer type "BertNormalizer"`},
		{"pre-tokenizer type", miniTokenizer(t, func(m map[string]any) {
			m["pre_tokenizer"] = map[string]any{"type": "BertPreTokenizer"}
		}), `pre-tokenizer type "BertPreTokenizer" is not supported`},
		{"after ByteLevel", miniTokenizer(t, func(m map[string]any) {
			m["pre_tokenizer"] = map[string]any{"type": "Sequence", "pretokenizers": []any{
				map[string]any{"type": "ByteLevel"}, map[string]any{"type": "Digits"},
			}}
		}), "ByteLevel must come last"},
		{"split behavior", miniTokenizer(t, func(m map[string]any) {
			m["pre_tokenizer"] = map[string]any{"type": "Split", "pattern": map[string]any{"String": " "}, "behavior": "Sideways"}
		}), `split behavior "Sideways"`},
		{"bad regex", miniTokenizer(t, func(m map[string]any) {
			m["pre_tokenizer"] = map[string]any{"type": "Split", "pattern": map[string]any{"Regex": "(unclosed"}, "behavior": "Isolated"}
		}), `pattern regex "(unclosed"`},
		{"pattern kind", miniTokenizer(t, func(m map[string]any) {
			m["pre_tokenizer"] = map[string]any{"type": "Split", "pattern": map[string]any{"Glob": "*"}, "behavior": "Isolated"}
		}), `want {"String": ...} or {"Regex": ...}`},
		{"metaspace scheme", miniTokenizer(t, func(m map[string]any) {
			m["pre_tokenizer"] = map[string]any{"type": "Metaspace", "replacement": "▁", "prepend_scheme": "sometimes"}
		}), `prepend_scheme "sometimes"`},
		{"decoder type", miniTokenizer(t, func(m map[string]any) { m["decoder"] = map[string]any{"type": "WordPiece"} }),
			`decoder type "WordPiece" is not supported`},
		{"post-processor type", miniTokenizer(t, func(m map[string]any) { m["post_processor"] = map[string]any{"type": "Fancy"} }),
			`post-processor type "Fancy" is not supported`},
		{"template token", miniTokenizer(t, func(m map[string]any) {
			m["post_processor"] = map[string]any{"type": "TemplateProcessing",
				"single":         []any{map[string]any{"SpecialToken": map[string]any{"id": "<s>"}}, map[string]any{"Sequence": map[string]any{"id": "A"}}},
				"special_tokens": map[string]any{}}
		}), `"<s>" is not in special_tokens`},
		{"merge not in vocab", miniTokenizer(t, func(m map[string]any) {
			m["model"].(map[string]any)["merges"] = []any{"a zz"}
		}), `merges[0] = "a" "zz"`},
		{"merge without space", miniTokenizer(t, func(m map[string]any) {
			m["model"].(map[string]any)["merges"] = []any{"ab"}
		}), `merges[0] = "ab": want two tokens`},
		{"merges type", miniTokenizer(t, func(m map[string]any) {
			m["model"].(map[string]any)["merges"] = 7
		}), "merges: want a list"},
		{"unk not in vocab", miniTokenizer(t, func(m map[string]any) {
			m["model"].(map[string]any)["unk_token"] = "<unk>"
		}), `unk_token "<unk>" is not in the vocab`},
		{"dropout", miniTokenizer(t, func(m map[string]any) {
			m["model"].(map[string]any)["dropout"] = 0.1
		}), "dropout is not supported"},
		{"negative id", miniTokenizer(t, func(m map[string]any) {
			m["model"].(map[string]any)["vocab"].(map[string]any)["zz"] = -3
		}), `vocab["zz"] = -3 is out of range`},
		{"added token id", miniTokenizer(t, func(m map[string]any) {
			m["added_tokens"] = []any{map[string]any{"id": -1, "content": "<x>"}}
		}), `added_tokens[0] ("<x>"): id -1 out of range`},
		{"empty added token", miniTokenizer(t, func(m map[string]any) {
			m["added_tokens"] = []any{map[string]any{"id": 300, "content": ""}}
		}), "added_tokens[0]: empty content"},
	}
	for _, c := range cases {
		_, err := New(c.data, nil)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want one containing %q", c.name, err, c.want)
		}
	}
}

func TestBadConfig(t *testing.T) {
	data := miniTokenizer(t, nil)
	cases := []struct{ config, want string }{
		{`{"eos_token": `, "tokenizer_config.json: unexpected end"},
		{`{"eos_token": "<|nope|>"}`, `eos_token "<|nope|>" is not in tokenizer.json`},
		{`{"bos_token": "<s>"}`, `bos_token "<s>" is not in tokenizer.json`},
		{`{"eos_token": 5}`, "eos_token: want a string, null or an object"},
	}
	for _, c := range cases {
		_, err := New(data, []byte(c.config))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("config %s: error %v, want one containing %q", c.config, err, c.want)
		}
	}
	// The AddedToken object form is read.
	tk, err := New(data, []byte(`{"eos_token": {"__type": "AddedToken", "content": "<|end|>"}}`))
	if err != nil || tk.EOSToken() != "<|end|>" {
		t.Errorf("AddedToken eos_token: %v, %q", err, tk.EOSToken())
	}
}

func TestLoadErrors(t *testing.T) {
	dir := t.TempDir()
	if _, err := Load(dir); err == nil || !strings.Contains(err.Error(), "no tokenizer.json or tokenizer.json.gz in "+dir) {
		t.Errorf("empty dir: %v", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "tokenizer.json.gz"), []byte("not gzip"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(dir); err == nil || !strings.Contains(err.Error(), "tokenizer.json.gz") {
		t.Errorf("bad gzip: %v", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "tokenizer.json"), []byte(`{"model": null}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(dir); err == nil || !strings.Contains(err.Error(), "tokenizer: "+dir+`: tokenizer.json: no "model"`) {
		t.Errorf("no model: %v", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "tokenizer.json"), miniTokenizer(t, nil), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ gen, want string }{
		{`{"eos_token_id": "x"}`, "eos_token_id: want a number or a list"},
		{`{"eos_token_id": [1, 9999]}`, "eos_token_id 9999 is outside the vocabulary (size 258)"},
		{`{"eos_token_id": `, dir + ": generation_config.json: unexpected end"},
	} {
		if err := os.WriteFile(filepath.Join(dir, "generation_config.json"), []byte(c.gen), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := Load(dir); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("generation_config %s: %v, want %q", c.gen, err, c.want)
		}
	}
}

// TestLoadGzipAndGenerationConfig: tokenizer.json.gz is read like
// tokenizer.json, and generation_config.json's EOS ids join the config's.
func TestLoadGzipAndGenerationConfig(t *testing.T) {
	dir := t.TempDir()
	f, err := os.Create(filepath.Join(dir, "tokenizer.json.gz"))
	if err != nil {
		t.Fatal(err)
	}
	zw := gzip.NewWriter(f)
	if _, err := zw.Write(miniTokenizer(t, nil)); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	f.Close()
	write := func(name, s string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("tokenizer_config.json", `{"eos_token": "<|end|>"}`)
	write("generation_config.json", `{"eos_token_id": [257, 10]}`)
	tk, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got := tk.EOSTokenIDs(); !slices.Equal(got, []int{257, 10}) {
		t.Errorf("EOSTokenIDs = %v, want [257 10]", got)
	}
}
