package metal

import (
	"fmt"
	"github.com/mlx-moe/mlx-moe/sample"
	"testing"

	"github.com/mlx-moe/mlx-moe/cpu"
	"github.com/mlx-moe/mlx-moe/defaultmodel"
	"github.com/mlx-moe/mlx-moe/graph"
	"github.com/mlx-moe/mlx-moe/internal/fixture"
	"github.com/mlx-moe/mlx-moe/model"
)

// logitTol bounds max|metal - cpu| / max|cpu| over a step's logits: the
// kernels sum in a different order than the reference kernels (SIMD-group
// reductions, online softmax, the delta rule step by step instead of
// chunked), which moves float32 results by about 1e-6 relative per op.
const logitTol = 2e-3

// comparison is how far an executor's logits are from the CPU executor's.
type comparison struct {
	prefill, decode float64 // worst relative difference
	steps           int
}

// compareWithCPU runs prompt as one batch (the prefill kernels) and then
// decodes steps tokens one at a time (the decode kernels) on both the CPU
// executor (model want) and e (model got: the same checkpoint, possibly
// with paged experts), feeding both the CPU's greedy choice, and reports
// the worst logit differences.
func compareWithCPU(t *testing.T, wantM, gotM *model.Model, e graph.Executor, prompt []int32, steps int) comparison {
	t.Helper()
	ref := cpu.New()
	maxLen := len(prompt) + steps
	rc, rg := model.NewRunner(wantM, ref), model.NewRunner(gotM, e)
	cc, cg := wantM.NewCache(ref, maxLen), gotM.NewCache(e, maxLen)
	want, err := rc.Forward(cc, prompt, true)
	if err != nil {
		t.Fatal(err)
	}
	got, err := rg.Forward(cg, prompt, true)
	if err != nil {
		t.Fatalf("%s: %v", e.Name(), err)
	}
	var c comparison
	vocab := wantM.Config.VocabSize
	for p := range prompt {
		c.prefill = max(c.prefill, maxRelDiff(got[p*vocab:(p+1)*vocab], want[p*vocab:(p+1)*vocab]))
	}
	next := sample.Argmax(want[len(want)-vocab:])
	for range steps {
		want, err := rc.Forward(cc, []int32{next}, false)
		if err != nil {
			t.Fatal(err)
		}
		got, err := rg.Forward(cg, []int32{next}, false)
		if err != nil {
			t.Fatalf("%s: %v", e.Name(), err)
		}
		c.decode = max(c.decode, maxRelDiff(got, want))
		c.steps++
		next = sample.Argmax(want)
	}
	return c
}

// checkFixtures compares e (made fresh for each fixture by newExec) with the
// CPU executor on the named fixtures (nil: every fixture in
// testdata/fixtures).
func checkFixtures(t *testing.T, names []string, newExec func(t *testing.T) graph.Executor, steps int) {
	if names == nil {
		names = fixture.Names(t)
	}
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			m, ref := loadFixture(t, name)
			e := newExec(t)
			c := compareWithCPU(t, m, m, e, ref.Prompts[0].IDs, steps)
			t.Logf("%s: %d-token prefill max rel diff %.2g, %d decode steps %.2g", e.Name(), len(ref.Prompts[0].IDs), c.prefill, c.steps, c.decode)
			if c.prefill > logitTol || c.decode > logitTol {
				t.Errorf("logits differ from the CPU executor: prefill %.3g, decode %.3g (tolerance %g)", c.prefill, c.decode, logitTol)
			}
			checkHostOps(t, e)
		})
	}
}

// loadFixture loads the named fixture's model (closed when the test ends)
// and its reference.
func loadFixture(t *testing.T, name string) (*model.Model, *fixture.Reference) {
	dir := fixture.Dir(t, "fixtures/"+name)
	ref := fixture.LoadReference(t, dir)
	m, err := model.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m, ref
}

// checkEmbeddedModel compares e with the CPU executor on the embedded trained
// model over the first promptLen tokens of a held-out chunk and steps decode
// steps, with the experts resident and then paged through e's SlotAllocator
// (exact policy, a quarter of each layer's experts resident).
func checkEmbeddedModel(t *testing.T, newExec func(t *testing.T) graph.Executor, promptLen, steps int) {
	dir, err := defaultmodel.Dir(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ref := fixture.LoadReference(t, fixture.Dir(t, "models/"+defaultmodel.Name))
	prompt := ref.Heldout.Chunks[0].IDs[:promptLen]
	want, err := model.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer want.Close()
	check := func(what string, got *model.Model, e graph.Executor) {
		c := compareWithCPU(t, want, got, e, prompt, steps)
		t.Logf("%s, %s: %d-token prefill %.2g, %d decode steps %.2g", e.Name(), what, len(prompt), c.prefill, c.steps, c.decode)
		if c.prefill > logitTol || c.decode > logitTol {
			t.Errorf("%s: logits differ from the CPU executor: prefill %.3g, decode %.3g (tolerance %g)", what, c.prefill, c.decode, logitTol)
		}
		checkHostOps(t, e)
	}
	check("resident experts", want, newExec(t))
	e := newExec(t)
	alloc, ok := NewSlotAllocator(e)
	if !ok {
		t.Fatalf("%s has no SlotAllocator", e.Name())
	}
	capacity := want.Config.NumExperts / 4
	check(fmt.Sprintf("experts paged, %d slots per layer", capacity), loadPaged(t, dir, capacity, alloc), e)
}
