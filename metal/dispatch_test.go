package metal

import (
	"testing"

	"github.com/mlx-moe/mlx-moe/internal/fixture"
	"github.com/mlx-moe/mlx-moe/model"
)

// TestPrefillDispatchesPerToken counts the harness device's dispatches and
// copies for a prompt of n and of 2n tokens (one batch each) and checks that the n more
// tokens add fewer than one dispatch per layer each: no op may launch once
// per token (a bias add, a gate, an expert route), since a long prompt
// would then take hundreds of thousands of dispatches on a Mac.
func TestPrefillDispatchesPerToken(t *testing.T) {
	if testing.Short() {
		t.Skip("prefills on the shader harness")
	}
	// qwen2_moe: attention biases and a sigmoid-gated shared expert;
	// qwen3_next: gated DeltaNet and the attention output gate.
	for _, name := range []string{"qwen2_moe-4bit", "qwen3_next-4bit"} {
		t.Run(name, func(t *testing.T) {
			m, err := model.Load(fixture.Dir(t, "fixtures/"+name))
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			const n = 16
			count := func(tokens int) int {
				d := newHarnessDevice(t)
				e := newExecutor(d)
				ids := make([]int32, tokens)
				for i := range ids {
					ids[i] = int32(i*7+1) % int32(m.Config.VocabSize)
				}
				if _, err := model.NewRunner(m, e).Forward(m.NewCache(e, tokens), ids, false); err != nil {
					t.Fatal(err)
				}
				return sumOps(d.dispatches) + d.copies
			}
			short, long := count(n), count(2*n)
			perToken := float64(long-short) / n
			layers := m.Config.NumLayers
			t.Logf("%d-token prefill: %d dispatches and copies, %d tokens: %d; %.2f more per added token (%d layers)", n, short, 2*n, long, perToken, layers)
			if perToken >= float64(layers) {
				t.Errorf("%.2f dispatches per added prompt token with %d layers: some op dispatches once per token", perToken, layers)
			}
		})
	}
}
