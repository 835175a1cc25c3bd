package constrain

import (
	"encoding/json"
	"errors"
	"math"
	"math/rand/v2"
	"os"
	"strings"
	"testing"
)

type corpusCase struct {
	Name    string          `json:"name"`
	Schema  json.RawMessage `json:"schema"`
	Valid   []string        `json:"valid"`
	Invalid []string        `json:"invalid"`
}

// loadCorpus reads testdata/corpus.json: schemas with documents labelled
// valid or invalid (scripts/constrain/check.mjs confirms every label with
// ajv, the reference validator).
func loadCorpus(t testing.TB) []corpusCase {
	raw, err := os.ReadFile("testdata/corpus.json")
	if err != nil {
		t.Fatal(err)
	}
	var cs []corpusCase
	if err := json.Unmarshal(raw, &cs); err != nil {
		t.Fatal(err)
	}
	return cs
}

// byteVocab has one token per byte and EOS at 256.
func byteVocab() *Vocabulary {
	toks := make([][]byte, 257)
	for i := range 256 {
		toks[i] = []byte{byte(i)}
	}
	return NewVocabulary(toks, []int{256})
}

func accepts(g *Grammar, v *Vocabulary, doc string) bool {
	c := New(g, v)
	c.WriteString(doc)
	return !c.Failed() && c.Done()
}

func TestCorpus(t *testing.T) {
	v := byteVocab()
	for _, tc := range loadCorpus(t) {
		g, err := CompileSchema(tc.Schema, Limits{})
		if err != nil {
			t.Fatalf("%s: %v", tc.Name, err)
		}
		for _, d := range tc.Valid {
			if !accepts(g, v, d) {
				t.Errorf("%s: rejects valid %s", tc.Name, d)
			}
		}
		for _, d := range tc.Invalid {
			if accepts(g, v, d) {
				t.Errorf("%s: accepts invalid %s", tc.Name, d)
			}
		}
	}
}

// sample decodes through the mask with random logits until end of
// sequence, as a model would, over vocabulary v.
func sample(t testing.TB, g *Grammar, v *Vocabulary, rng *rand.Rand) string {
	return sampleWithin(t, g, v, rng, 0)
}

func sampleWithin(t testing.TB, g *Grammar, v *Vocabulary, rng *rand.Rand, budget int) string {
	c := New(g, v)
	c.Budget = budget
	var ids []int
	var out strings.Builder
	logits := make([]float32, v.Size())
	for range 5000 {
		for i := range logits {
			logits[i] = float32(rng.NormFloat64())
		}
		c.Mask(ids, logits)
		best, bestV := -1, float32(math.Inf(-1))
		for i, l := range logits {
			if l > bestV {
				best, bestV = i, l
			}
		}
		if best < 0 {
			t.Fatalf("every token masked after %q", out.String())
		}
		if best == 256 || v.bytes[best] == nil {
			return out.String()
		}
		ids = append(ids, best)
		out.Write(v.bytes[best])
	}
	t.Fatalf("no end after 5000 tokens: %q", out.String())
	return ""
}

// TestSamplesParse generates from every corpus schema and json_object mode
// with random logits: each output must be JSON of the right shape, and is
// accepted again by the matcher. With CONSTRAIN_SAMPLES=FILE the samples
// are written there for scripts/constrain/check.mjs to validate with ajv.
func TestSamplesParse(t *testing.T) {
	v := byteVocab()
	rng := rand.New(rand.NewPCG(1, 2))
	type sampleSet struct {
		Name    string          `json:"name"`
		Schema  json.RawMessage `json:"schema"`
		Samples []string        `json:"samples"`
	}
	var sets []sampleSet
	for _, tc := range loadCorpus(t) {
		g, err := CompileSchema(tc.Schema, Limits{MaxString: 12, MaxItems: 4})
		if err != nil {
			t.Fatal(err)
		}
		set := sampleSet{Name: tc.Name, Schema: tc.Schema}
		for range 20 {
			s := sample(t, g, v, rng)
			var val any
			if err := json.Unmarshal([]byte(s), &val); err != nil {
				t.Fatalf("%s: sample is not JSON: %q: %v", tc.Name, s, err)
			}
			if !accepts(g, v, s) {
				t.Fatalf("%s: sample not accepted again: %q", tc.Name, s)
			}
			set.Samples = append(set.Samples, s)
		}
		sets = append(sets, set)
	}
	g := JSONObject(Limits{MaxString: 8, MaxItems: 3, MaxDepth: 3})
	obj := sampleSet{Name: "json_object", Schema: json.RawMessage(`{"type":"object"}`)}
	for range 20 {
		s := sample(t, g, v, rng)
		var val map[string]any
		if err := json.Unmarshal([]byte(s), &val); err != nil {
			t.Fatalf("json_object: sample is not a JSON object: %q: %v", s, err)
		}
		obj.Samples = append(obj.Samples, s)
	}
	sets = append(sets, obj)
	if path := os.Getenv("CONSTRAIN_SAMPLES"); path != "" {
		raw, _ := json.MarshalIndent(sets, "", " ")
		if err := os.WriteFile(path, raw, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func TestUnsupportedKeyword(t *testing.T) {
	for _, tc := range []struct{ schema, keyword string }{
		{`{"type":"string","pattern":"^a"}`, "pattern"},
		{`{"type":"object","properties":{"n":{"type":"integer","minimum":5}}}`, "minimum"},
		{`{"type":"number","exclusiveMaximum":100}`, "exclusiveMaximum"},
		{`{"type":"number","minimum":1}`, "minimum"},
		{`{"type":"array","uniqueItems":true}`, "uniqueItems"},
		{`{"allOf":[{"type":"string"}]}`, "allOf"},
		{`{"type":"string","format":"email"}`, "format"},
		{`{"oneOf":[{"type":"string"},{"type":"string","maxLength":3}]}`, "oneOf"},
		{`{"$ref":"#/$defs/missing"}`, "$ref"},
		{`{"type":"object","required":["x"],"properties":{"y":{}}}`, "required"},
	} {
		_, err := CompileSchema([]byte(tc.schema), Limits{})
		var se *SchemaError
		if !errors.As(err, &se) || se.Keyword != tc.keyword {
			t.Errorf("%s: got %v, want an error naming %q", tc.schema, err, tc.keyword)
		}
	}
}

// TestTokenWalk checks the trie walk against feeding each token alone:
// over multi-byte tokens, the allowed set is exactly the tokens whose bytes
// the matcher accepts from the current state.
func TestTokenWalk(t *testing.T) {
	words := []string{"{", "}", "{\"", "\"", "\":", "name", "na", "me", "\",\"", "age", "12", "3", "0", ".", "-",
		"\\", "\\n", "é", "\xc3", "\xa9", "ab c", "\"}", "1,", "true", "}}", "[", "]", "null", " ", "\n"}
	toks := [][]byte{nil}
	for _, w := range words {
		toks = append(toks, []byte(w))
	}
	v := NewVocabulary(toks, []int{0})
	g, err := CompileSchema([]byte(`{"type":"object","properties":{"name":{"type":"string"},"age":{"type":"number"},"ok":{"type":"boolean"}},"required":["name"]}`), Limits{})
	if err != nil {
		t.Fatal(err)
	}
	checkWalk(t, g, v, toks, []string{"", "{", "{\"name\":\"", "{\"name\":\"a\xc3", "{\"name\":\"x\",\"age\":1", "{\"name\":\"x\",\"age\":1.5"})

	// Bare markup text (XMLCall), where '"' and '\' are characters and
	// '<' ends the value.
	words = []string{"<", "<tool_call>\n<function=f>\n", "<parameter=", "n>\n", "a", "b c", "\"q\\", "x<", "\n", "\n</parameter>\n",
		"</function>\n</tool_call>", "</", "1", "é", "\xc3", "\xa9", "7\n"}
	toks = [][]byte{nil}
	for _, w := range words {
		toks = append(toks, []byte(w))
	}
	v = NewVocabulary(toks, []int{0})
	g, err = XMLCall("f", []byte(`{"type":"object","properties":{"n":{"type":"string","maxLength":6},"k":{"type":"integer"}},"required":["n"]}`), Limits{})
	if err != nil {
		t.Fatal(err)
	}
	checkWalk(t, g, v, toks, []string{"", "<tool_call>\n<function=f>\n", "<tool_call>\n<function=f>\n<parameter=n>\n", "<tool_call>\n<function=f>\n<parameter=n>\nab",
		"<tool_call>\n<function=f>\n<parameter=n>\nabcdef", "<tool_call>\n<function=f>\n<parameter=n>\nx\n</parameter>\n", "<tool_call>\n<function=f>\n<parameter=n>\nx\n</parameter>\n<parameter=k>\n1"})
}

// checkWalk compares the allowed tokens after each prefix with feeding
// each token's bytes alone.
func checkWalk(t *testing.T, g *Grammar, v *Vocabulary, toks [][]byte, prefixes []string) {
	t.Helper()
	for _, prefix := range prefixes {
		c := New(g, v)
		c.WriteString(prefix)
		if c.Failed() {
			t.Fatalf("prefix %q rejected", prefix)
		}
		got := map[int]bool{}
		for _, id := range c.AllowedIDs() {
			got[id] = true
		}
		for id, b := range toks {
			want := false
			if id == 0 {
				want = c.Done()
			} else {
				d := New(g, v)
				d.WriteString(prefix + string(b))
				want = !d.Failed()
			}
			if got[id] != want {
				t.Errorf("after %q: token %q allowed=%v, want %v", prefix, b, got[id], want)
			}
		}
	}
}

// TestBudget: with a token budget barely above the schema's shortest
// output, every random generation still ends (end of sequence included)
// within the budget with a valid document, recursive schemas too.
func TestBudget(t *testing.T) {
	v := byteVocab()
	rng := rand.New(rand.NewPCG(3, 4))
	for _, tc := range loadCorpus(t) {
		g, err := CompileSchema(tc.Schema, Limits{})
		if err != nil {
			t.Fatal(err)
		}
		computeShortest(g.root)
		short := g.root.short
		for _, budget := range []int{short + 2, short + 10, short + 40} {
			for range 10 {
				s := sampleWithin(t, g, v, rng, budget)
				if len(s)+1 > budget {
					t.Fatalf("%s: budget %d, wrote %d bytes and end of sequence: %q", tc.Name, budget, len(s), s)
				}
				if !accepts(g, v, s) {
					t.Fatalf("%s: budget %d: output not accepted: %q", tc.Name, budget, s)
				}
			}
		}
	}
}

// TestApply checks apply against setting each forbidden logit in turn.
func TestApply(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	for _, n := range []int{1, 63, 64, 65, 1000, 9000} {
		for _, density := range []float64{0, 0.01, 0.5, 0.99, 1} {
			allowed := newBitset(n)
			for i := range n {
				if rng.Float64() < density {
					allowed.set(i)
				}
			}
			// Logits may be longer than the vocabulary (padded heads).
			got := make([]float32, n+7)
			want := make([]float32, n+7)
			for i := range want {
				if i >= n || !allowed.has(i) {
					want[i] = float32(math.Inf(-1))
				}
			}
			apply(allowed, got)
			for i := range got {
				if got[i] != want[i] {
					t.Fatalf("n=%d density=%g: logit %d = %v, want %v", n, density, i, got[i], want[i])
				}
			}
		}
	}
}

func TestOneOfAndEnumTypes(t *testing.T) {
	for _, tc := range []struct {
		schema string
		ok     bool
	}{
		{`{"oneOf":[{"const":"a"},{"type":"string"}]}`, false},
		{`{"oneOf":[{"const":"a"},{"enum":["b",1]}]}`, true},
		{`{"oneOf":[{"const":1},{"type":"string"}]}`, true},
		{`{"oneOf":[{"enum":["a","b"]},{"enum":["b"]}]}`, false},
		{`{"type":"integer","enum":["x"]}`, false},
	} {
		_, err := CompileSchema([]byte(tc.schema), Limits{})
		if (err == nil) != tc.ok {
			t.Errorf("%s: err %v, want ok=%v", tc.schema, err, tc.ok)
		}
	}
	// Values without the schema's type are never generated.
	g, err := CompileSchema([]byte(`{"type":"integer","enum":["x",2,2.5,3]}`), Limits{})
	if err != nil {
		t.Fatal(err)
	}
	v := byteVocab()
	for doc, want := range map[string]bool{`2`: true, `3`: true, `"x"`: false, `2.5`: false} {
		if accepts(g, v, doc) != want {
			t.Errorf("integer enum: %s accepted=%v", doc, !want)
		}
	}
}
