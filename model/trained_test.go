package model_test

import (
	"math"
	"testing"

	"github.com/mlx-moe/mlx-moe/cpu"
	"github.com/mlx-moe/mlx-moe/defaultmodel"
	"github.com/mlx-moe/mlx-moe/internal/fixture"
	"github.com/mlx-moe/mlx-moe/model"
)

// TestTrainedModel checks the embedded default model (a small trained
// Qwen3-Next) against its reference: prompt logits, held-out NLL, greedy.
func TestTrainedModel(t *testing.T) {
	m, ref := loadTrained(t)
	rn := model.NewRunner(m, cpu.New())
	for i, p := range ref.Prompts {
		c := m.NewCache(rn.E, len(p.IDs))
		logits, err := rn.Forward(c, p.IDs, false)
		if err != nil {
			t.Fatal(err)
		}
		if d := maxAbsDiff(logits, p.LastLogits); d > logitTol {
			t.Errorf("prompt %d: last logits differ by %g", i, d)
		}
	}
	for i, ch := range ref.Heldout.Chunks {
		nll, err := rn.MeanNLL(ch.IDs)
		if err != nil {
			t.Fatal(err)
		}
		if d := math.Abs(nll - ch.MeanNLL); d > 1e-3 {
			t.Errorf("held-out chunk %d: mean NLL %.5f, reference %.5f", i, nll, ch.MeanNLL)
		}
		if i == 0 {
			t.Logf("held-out chunk 0: mean NLL %.5f (reference %.5f)", nll, ch.MeanNLL)
		}
	}
	checkGreedy(t, m, ref)
}

// loadTrained loads the embedded default model (unpacked into a temp dir)
// and its reference; the model is closed when the test ends.
func loadTrained(t *testing.T) (*model.Model, *fixture.Reference) {
	t.Helper()
	dir, err := defaultmodel.Dir(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	m, err := model.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m, fixture.LoadReference(t, fixture.Dir(t, "models/qwen3_next-code-tiny-4bit"))
}
