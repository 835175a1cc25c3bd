package model_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/mlx-moe/mlx-moe/cpu"
	"github.com/mlx-moe/mlx-moe/experts"
	"github.com/mlx-moe/mlx-moe/graph"
	"github.com/mlx-moe/mlx-moe/graph/graphtest"
	"github.com/mlx-moe/mlx-moe/internal/fixture"
	"github.com/mlx-moe/mlx-moe/kernels"
	"github.com/mlx-moe/mlx-moe/model"
	"github.com/mlx-moe/mlx-moe/model/batchtest"
)

// batchTol is how far a sequence's logits in a batch may be from its
// logits alone, relative to the largest logit: the issue asks for 1e-5.
// (The kernels sum a many-row product in another order than a one-row
// one, so the logits are not bitwise equal; TestForwardBatchRowByRow
// shows that this is the only difference.)
const batchTol = 1e-5

// TestForwardBatch runs, on every fixture, four sequences alone and
// together (prefill chunks mixed with decode steps, sequences joining and
// leaving, a cache reused): every logit within batchTol, greedy tokens
// identical.
func TestForwardBatch(t *testing.T) {
	forEachFixture(t, func(t *testing.T, name string, m *model.Model) {
		checkBatched(t, name, m, cpu.New(), batchtest.Schedule(m.Config.VocabSize), batchTol)
	})
}

// TestForwardBatchRowByRow is TestForwardBatch with products that run row
// by row: a batched sequence gets bitwise what it gets alone, with float32
// caches and with the compact ones (stored per segment).
func TestForwardBatchRowByRow(t *testing.T) {
	forEachFixture(t, func(t *testing.T, name string, m *model.Model) {
		for _, f := range []kernels.KVFormat{kernels.KVF32, kernels.KVF16, kernels.KVQ8} {
			m.KVFormat = f
			checkBatched(t, fmt.Sprintf("%s, %v caches", name, f), m, batchtest.RowByRow{Executor: cpu.New()}, batchtest.Schedule(m.Config.VocabSize), 0)
		}
	})
}

// TestForwardBatchOneSegmentMixers is TestForwardBatchRowByRow with every
// mixer run the way a mixer without a batched form runs (once per segment,
// on views of its rows): bitwise what each sequence gets alone, and a
// decode step of four sequences allocates nothing in model code.
func TestForwardBatchOneSegmentMixers(t *testing.T) {
	forEachFixture(t, func(t *testing.T, name string, m *model.Model) {
		model.OneSegmentMixers(m)
		if a := testing.AllocsPerRun(20, batchDecodeSteps(t, m, graphtest.Null{}, 64, 4)); a != 0 {
			t.Errorf("a decode step of 4 sequences made %.1f heap allocations in model code", a)
		}
		for _, f := range []kernels.KVFormat{kernels.KVF32, kernels.KVF16} {
			m.KVFormat = f
			checkBatched(t, fmt.Sprintf("%s, %v caches", name, f), m, batchtest.RowByRow{Executor: cpu.New()}, batchtest.Schedule(m.Config.VocabSize), 0)
		}
	})
}

// checkBatched runs seqs alone and batched on e and compares: logits
// within tol of the largest one, greedy tokens identical.
func checkBatched(t *testing.T, name string, m *model.Model, e graph.Executor, seqs []batchtest.Sequence, tol float64) {
	t.Helper()
	msg, err := batchtest.Check(m, e, seqs, tol)
	t.Logf("%s: %s", name, msg)
	if err != nil {
		t.Error(err)
	}
}

// TestForwardBatchManySegments decodes more sequences at once than the
// output head takes in one pass (its rows are computed in groups).
func TestForwardBatchManySegments(t *testing.T) {
	m, err := model.Load(fixture.Dir(t, "fixtures/qwen3_next-4bit"))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	var seqs []batchtest.Sequence
	for _, s := range append(batchtest.Schedule(m.Config.VocabSize), batchtest.Schedule(m.Config.VocabSize-1)...) {
		s.Reuse, s.Join, s.Chunk, s.Decode = 0, 0, len(s.Prompt), 3
		seqs = append(seqs, s, s)
	}
	seqs[1].Prompt = seqs[1].Prompt[1:] // some sequences identical, some not
	checkBatched(t, "qwen3_next-4bit", m, cpu.New(), seqs, batchTol)
}

// TestForwardBatchPagedExact runs the schedule batched with the experts
// paged (exact policy, a quarter of each layer's experts fit), with and
// without prefetching, and resident: bitwise the same logits.
func TestForwardBatchPagedExact(t *testing.T) {
	for _, name := range fixture.Names(t) {
		t.Run(name, func(t *testing.T) {
			dir := fixture.Dir(t, "fixtures/"+name)
			m, err := model.Load(dir)
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			seqs := batchtest.Schedule(m.Config.VocabSize)
			resident, err := batchtest.Batched(m, cpu.New(), seqs)
			if err != nil {
				t.Fatal(err)
			}
			for _, prefetch := range []bool{false, true} {
				st := pagedBatch(t, dir, seqs, prefetch, resident)
				t.Logf("prefetch %v: %d misses, %d prefetched", prefetch, st.Misses, st.Prefetched)
				if prefetch && st.Prefetched == 0 && st.Misses > 0 {
					t.Errorf("prefetch on: nothing prefetched in %d misses", st.Misses)
				}
			}
		})
	}
}

// pagedBatch runs seqs batched with the fixture in dir paged at a quarter
// of its experts, checks the logits are bitwise want's and returns the
// pager's counts.
func pagedBatch(t *testing.T, dir string, seqs []batchtest.Sequence, prefetch bool, want []batchtest.Output) experts.LayerStats {
	m, p := loadPaged(t, dir, func(experts int) int { return max(experts/4, 1) })
	paged, err := batchtest.Batched(m, cpu.New(), seqs, func(rn *model.Runner) { rn.Prefetch = prefetch })
	if err != nil {
		t.Fatal(err)
	}
	if !batchtest.Identical(want, paged) {
		d, _ := batchtest.Compare(want, paged)
		t.Errorf("prefetch %v: paged batched logits differ from resident by %g", prefetch, d)
	}
	return p.Stats().Total
}

// TestForwardBatchErrors checks that bad batches are refused with an
// error naming the segment, before anything runs.
func TestForwardBatchErrors(t *testing.T) {
	m, err := model.Load(fixture.Dir(t, "fixtures/qwen3_moe-4bit"))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	e := cpu.New()
	rn := model.NewRunner(m, e)
	a, b := m.NewCache(e, 4), m.NewCache(e, 4)
	vocab := m.Config.VocabSize
	long := make([]int32, m.MaxBatch)
	freed := m.NewCache(e, 4)
	freed.Free(e)
	cases := []struct {
		name string
		segs []model.Segment
		want string
	}{
		{"no segments", nil, "no segments"},
		{"no tokens", []model.Segment{{Cache: a, IDs: []int32{1}}, {Cache: b}}, "segment 1: no tokens"},
		{"no cache", []model.Segment{{IDs: []int32{1}}}, "segment 0: no cache"},
		{"bad id", []model.Segment{{Cache: a, IDs: []int32{1}}, {Cache: b, IDs: []int32{2, int32(vocab)}}}, "segment 1: token id"},
		{"context", []model.Segment{{Cache: a, IDs: []int32{1, 2, 3, 4, 5}}}, "segment 0: sequence of 5 tokens exceeds the context of 4"},
		{"snapshot cache", []model.Segment{{Cache: m.NewRecurrentCache(e), IDs: []int32{1}}}, "segment 0: the cache has no state for layer 0"},
		{"freed cache", []model.Segment{{Cache: freed, IDs: []int32{1}}}, "segment 0: no cache of this model"},
		{"same cache", []model.Segment{{Cache: a, IDs: []int32{1}}, {Cache: a, IDs: []int32{2}}}, "segment 1: the same cache as segment 0"},
		{"logits size", []model.Segment{{Cache: a, IDs: []int32{1}, Logits: make([]float32, 3)}}, "segment 0: logits buffer of 3 values"},
		{"too many tokens", []model.Segment{{Cache: m.NewCache(e, m.MaxBatch+1), IDs: long}, {Cache: a, IDs: []int32{1}}}, "exceeds the model's MaxBatch"},
	}
	for _, tc := range cases {
		err := rn.ForwardBatch(tc.segs)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want one containing %q", tc.name, err, tc.want)
		}
	}
	if a.Len != 0 || b.Len != 0 {
		t.Errorf("a refused batch moved the caches to %d and %d positions", a.Len, b.Len)
	}
}
