package model_test

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/mlx-moe/mlx-moe/cpu"
	"github.com/mlx-moe/mlx-moe/internal/fixture"
	"github.com/mlx-moe/mlx-moe/model"
	"github.com/mlx-moe/mlx-moe/sample"
)

// TestLongContext: a 2,000-token prompt through chunked prefill, then 100
// greedy decoded tokens, matches feeding the same 2,100 tokens one at a
// time, for latent attention (DeepSeek-V3) and the hybrid Qwen3-Next stack
// (chunked delta rule against its step form).
func TestLongContext(t *testing.T) {
	if testing.Short() {
		t.Skip("long context: skipped in -short")
	}
	for _, name := range []string{"deepseek_v3-hf-bf16", "qwen3_next-4bit"} {
		t.Run(name, func(t *testing.T) { checkLongContext(t, "fixtures/"+name) })
	}
}

func checkLongContext(t *testing.T, rel string) {
	const promptLen, decodeLen = 2000, 100
	dir := fixture.Dir(t, rel)
	m, err := model.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	vocab := m.Config.VocabSize
	rng := rand.New(rand.NewPCG(7, 8))
	seq := make([]int32, promptLen, promptLen+decodeLen)
	for i := range seq {
		seq[i] = int32(rng.IntN(vocab))
	}
	e := cpu.New()
	rn := model.NewRunner(m, e)
	c := m.NewCache(e, promptLen+decodeLen)
	want, err := rn.Forward(c, seq, true)
	if err != nil {
		t.Fatal(err)
	}
	last := want[(promptLen-1)*vocab:]
	for range decodeLen {
		next := sample.Argmax(last)
		seq = append(seq, next)
		if last, err = rn.Forward(c, []int32{next}, false); err != nil {
			t.Fatal(err)
		}
		want = append(want, last...)
	}
	// want holds the logits after each of the 2,100 tokens except the
	// last, whose logits come from the final decode step.
	step := m.NewCache(e, promptLen+decodeLen)
	var worstPrefill, worstDecode float64
	for i, id := range seq {
		got, err := rn.Forward(step, []int32{id}, false)
		if err != nil {
			t.Fatal(err)
		}
		d := maxAbsDiff(got, want[i*vocab:(i+1)*vocab])
		if i < promptLen-1 {
			worstPrefill = math.Max(worstPrefill, d)
		} else {
			worstDecode = math.Max(worstDecode, d)
		}
	}
	t.Logf("token by token vs prefill: max |Δ| %.2g over %d prompt positions, %.2g over the last prompt position and %d decoded tokens",
		worstPrefill, promptLen-1, worstDecode, decodeLen)
	if worstPrefill > logitTol || worstDecode > logitTol {
		t.Errorf("token-by-token logits differ from prefill+decode by %g (prompt) / %g (decode)", worstPrefill, worstDecode)
	}
}
