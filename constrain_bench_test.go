package mlxmoe

import (
	"context"
	"encoding/json"
	"math"
	"os"
	"testing"
	"time"

	"github.com/mlx-moe/mlx-moe/constrain"
	"github.com/mlx-moe/mlx-moe/defaultmodel"
	"github.com/mlx-moe/mlx-moe/sample"
	"github.com/mlx-moe/mlx-moe/tokenizer"
)

// BenchmarkConstrainedMask measures the structured-output mask over a
// 151,669-token vocabulary (Qwen3's tokenizer) against a decode step of the
// embedded model, in the same run. Each iteration replays the valid
// documents of constrain/testdata/corpus.json token by token through a
// fresh Constraint per document (as each request starts), masking a full
// vocabulary of logits before every token.
//
//	mask-ns/token: mean mask cost per generated token (cold walks included),
//	               in the fastest iteration
//	step-ns:       the embedded model's decode step (32 steps per iteration)
//	mask/step:     their ratio (the target is under 0.10)
//	walks/token:   the share of masks computed by walking the trie (the rest hit the cache)
//	hit-ns:        one mask served from the cache
func BenchmarkConstrainedMask(b *testing.B) {
	dir, err := defaultmodel.Dir(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	m, err := Load(dir, Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer m.Close()
	// Decode steps are timed in each iteration beside the masks, and both
	// figures are the least disturbed iteration's (the machine is shared).
	step := math.Inf(1)
	decode := func() {
		res, err := m.Stream(context.Background(), m.Encode("def main():\n"),
			GenerateOptions{MaxTokens: 33, IgnoreEOS: true, Sampling: sample.Options{}}, nil)
		if err != nil || len(res.IDs) < 2 {
			b.Fatalf("decode: %v", err)
		}
		step = min(step, float64(res.Decode.Nanoseconds())/float64(len(res.IDs)-1))
	}

	tok, err := tokenizer.Load("tokenizer/testdata/qwen3")
	if err != nil {
		b.Fatal(err)
	}
	toks := make([][]byte, tok.VocabSize())
	for id := range toks {
		if !tok.IsSpecial(id) {
			toks[id] = tok.TokenBytes(id)
		}
	}
	vocab := constrain.NewVocabulary(toks, tok.EOSTokenIDs())
	raw, err := os.ReadFile("constrain/testdata/corpus.json")
	if err != nil {
		b.Fatal(err)
	}
	var corpus []struct {
		Schema json.RawMessage `json:"schema"`
		Valid  []string        `json:"valid"`
	}
	if err := json.Unmarshal(raw, &corpus); err != nil {
		b.Fatal(err)
	}
	type doc struct {
		g   *constrain.Grammar
		ids []int
	}
	var docs []doc
	for _, c := range corpus {
		g, err := constrain.CompileSchema(c.Schema, constrain.Limits{})
		if err != nil {
			b.Fatal(err)
		}
		for _, v := range c.Valid {
			docs = append(docs, doc{g, tok.Encode(v)})
		}
	}
	logits := make([]float32, vocab.Size())
	var tokens, walks int
	perToken := math.Inf(1) // the least disturbed iteration's mean
	b.ResetTimer()
	for range b.N {
		decode()
		var spent time.Duration
		n := 0
		for _, d := range docs {
			c := constrain.New(d.g, vocab)
			for i, id := range d.ids {
				clear(logits)
				start := time.Now()
				c.Mask(d.ids[:i], logits)
				spent += time.Since(start)
				if math.IsInf(float64(logits[id]), -1) {
					b.Fatalf("the mask forbids token %d (%q) of a valid document", id, toks[id])
				}
			}
			n += len(d.ids)
			walks += c.Walks
		}
		tokens += n
		perToken = min(perToken, float64(spent.Nanoseconds())/float64(n))
	}
	b.StopTimer()
	// A cached mask (the state repeats, as inside a long string): the key,
	// the lookup and writing -Inf over the forbidden logits.
	d := docs[0]
	c := constrain.New(d.g, vocab)
	half := d.ids[:len(d.ids)/2]
	c.Mask(half, logits)
	hit := math.Inf(1)
	for range 5 {
		start := time.Now()
		for range 100 {
			c.Mask(half, logits)
		}
		hit = min(hit, float64(time.Since(start).Nanoseconds())/100)
	}
	b.ReportMetric(hit, "hit-ns")
	b.ReportMetric(perToken, "mask-ns/token")
	b.ReportMetric(step, "step-ns")
	b.ReportMetric(perToken/step, "mask/step")
	b.ReportMetric(float64(walks)/float64(tokens), "walks/token")
}
