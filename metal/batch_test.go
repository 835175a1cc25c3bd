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
// within 1e-4 of the largest logit, greedy tokens identical (the only
// check by default; all under MLXMOE_SLOW=1). One fixture (Gated DeltaNet,
// gated attention, shared-expert MoE): whole models on the harness are
// slow.
func TestForwardBatchOnHarness(t *testing.T) {
	if testing.Short() {
		t.Skip("whole models on the shader harness")
	}
	m, _ := loadFixture(t, "qwen3_next-4bit")
	seqs := batchtest.Schedule(m.Config.VocabSize)
	cases := []struct {
		kv       kernels.KVFormat
		rowByRow bool
		tol      float64
	}{{kernels.KVF32, true, 0}, {kernels.KVF16, true, 0}, {kernels.KVF16, false, 1e-4}}
	if !slowTests() {
		// A wrong row view shows far above the tolerance; the bitwise
		// checks run with the exhaustive passes.
		cases = cases[2:]
	}
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
