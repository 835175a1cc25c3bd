package metal

import (
	"fmt"
	"testing"

	"github.com/mlx-moe/mlx-moe/graph"
	"github.com/mlx-moe/mlx-moe/kernels"
	"github.com/mlx-moe/mlx-moe/model/batchtest"
)

// TestForwardBatchOnHarness runs the batched-forward schedule (four
// sequences joining, prefilling in chunks, decoding and leaving) on the
// shader harness and compares each sequence with itself run alone on the
// harness: with the products run row by row (batchtest.RowByRow) bitwise
// equal, with float32 and half caches; with the executor as it is (a
// batch's products take the many-row kernels, which sum in another order)
// within 1e-4 of the largest logit, greedy tokens identical. One fixture
// (Gated DeltaNet, gated attention, shared-expert MoE), with the
// exhaustive passes only (MLXMOE_SLOW=1): over a minute on the harness.
func TestForwardBatchOnHarness(t *testing.T) {
	if !slowTests() {
		t.Skip("the batched schedule on the shader harness: under " + slowEnv + "=1")
	}
	m, _ := loadFixture(t, "qwen3_next-4bit")
	seqs := batchtest.Schedule(m.Config.VocabSize)
	cases := []struct {
		kv       kernels.KVFormat
		rowByRow bool
		tol      float64
	}{{kernels.KVF32, true, 0}, {kernels.KVF16, true, 0}, {kernels.KVF16, false, 1e-4}}
	for _, tc := range cases {
		t.Run(fmt.Sprintf("%v/rowbyrow=%v", tc.kv, tc.rowByRow), func(t *testing.T) {
			m.KVFormat = tc.kv
			var e graph.Executor = newHarnessExecutor(t)
			if tc.rowByRow {
				e = batchtest.RowByRow{Executor: e}
			}
			msg, err := batchtest.Check(m, e, seqs, tc.tol)
			t.Log(msg)
			if err != nil {
				t.Error(err)
			}
		})
	}
}
