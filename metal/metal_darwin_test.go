//go:build darwin && cgo

package metal

import (
	"testing"
	"time"

	"github.com/mlx-moe/mlx-moe/cpu"
	"github.com/mlx-moe/mlx-moe/defaultmodel"
	"github.com/mlx-moe/mlx-moe/graph"
	"github.com/mlx-moe/mlx-moe/kernels"
	"github.com/mlx-moe/mlx-moe/model"
)

// newMetal opens the Metal executor. It skips the test only when Metal is
// not available; any other error of New (a shader or pipeline Apple's
// compiler rejects) fails it.
func newMetal(t *testing.T) graph.Executor {
	t.Helper()
	e, err := New()
	if skipWithoutMetal(err) {
		t.Skip(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { t.Logf("host ops %v", e.(*Executor).HostOps()) })
	return e
}

// TestFixturesOnMetal compares the Metal executor with the CPU executor on
// every fixture model: a prompt as one batch, then decode steps.
func TestFixturesOnMetal(t *testing.T) { checkFixtures(t, nil, newMetal, 8) }

// TestEmbeddedModelOnMetal does the same on the embedded trained model, with
// its experts resident and paged through the executor's SlotAllocator at a
// quarter of the experts per layer.
func TestEmbeddedModelOnMetal(t *testing.T) { checkEmbeddedModel(t, newMetal, 256, 32) }

// TestSplitAttentionOnMetal runs decode steps through split-K attention
// (sdpa_split_* and sdpa_merge) on the GPU, the threshold lowered so that
// the fixtures' short caches split.
func TestSplitAttentionOnMetal(t *testing.T) {
	defer func(n int) { sdpaSplitMin = n }(sdpaSplitMin)
	sdpaSplitMin = 4
	checkFixtures(t, []string{"qwen2_moe-4bit", "qwen3_next-4bit"}, newMetal, 8)
}

// TestDecodeStepAllocatesNothingOnMetal: a warm decode step on the GPU makes
// no Go heap allocation, the cgo device included.
func TestDecodeStepAllocatesNothingOnMetal(t *testing.T) {
	for _, name := range harnessFixtures {
		t.Run(name, func(t *testing.T) { checkFixtureDecodeAllocs(t, name, newMetal(t)) })
	}
}

// BenchmarkDecodeEmbedded measures decode steps of the embedded model on
// Metal and reports the speed against the CPU executor measured in the same
// run (x-cpu), since absolute timings vary between machines.
func BenchmarkDecodeEmbedded(b *testing.B) {
	me, err := New()
	if skipWithoutMetal(err) {
		b.Skip(err)
	}
	if err != nil {
		b.Fatal(err)
	}
	dir, err := defaultmodel.Dir(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	m, err := model.Load(dir)
	if err != nil {
		b.Fatal(err)
	}
	defer m.Close()
	const maxLen = 512
	decoder := func(e graph.Executor) func() {
		rn := model.NewRunner(m, e)
		var c *model.Cache
		return func() {
			if c == nil || c.Len == maxLen {
				c = m.NewCache(e, maxLen)
			}
			if _, err := rn.Forward(c, []int32{int32(c.Len % m.Config.VocabSize)}, false); err != nil {
				b.Fatal(err)
			}
		}
	}
	const cpuSteps = 64
	step := decoder(cpu.New())
	start := time.Now()
	for range cpuSteps {
		step()
	}
	cpuRate := cpuSteps / time.Since(start).Seconds()
	step = decoder(me)
	step() // pipelines are built on first use
	start = time.Now()
	for b.Loop() {
		step()
	}
	rate := float64(b.N) / time.Since(start).Seconds()
	b.ReportMetric(rate, "tokens/s")
	b.ReportMetric(rate/cpuRate, "x-cpu")
}

// BenchmarkQMV measures the 4-bit matrix-vector kernel on a 4096x4096
// matrix (the decode hot path) and reports its bandwidth against a GPU copy
// of the same number of bytes measured in the same run (x-copy; a copy moves
// each byte twice, so a matvec that reads as fast as the copy scores 2).
func BenchmarkQMV(b *testing.B) {
	ge, err := New()
	if skipWithoutMetal(err) {
		b.Skip(err)
	}
	if err != nil {
		b.Fatal(err)
	}
	e := ge.(*Executor)
	const rows, cols, perCommit = 4096, 4096, 32
	w := make([]float32, rows*cols)
	for i := range w {
		w[i] = float32(i%97)/97 - 0.5
	}
	m, err := kernels.Quantize(w, rows, cols, 4, 64)
	if err != nil {
		b.Fatal(err)
	}
	bytes := 4*len(m.Q.W) + 2*len(m.Q.Scales) + 2*len(m.Q.Biases)
	x, y := e.NewTensor(1, cols), e.NewTensor(1, rows)
	src, err := e.dev.alloc(bytes)
	if err != nil {
		b.Fatal(err)
	}
	dst, err := e.dev.alloc(bytes)
	if err != nil {
		b.Fatal(err)
	}
	start := time.Now()
	for range perCommit {
		e.pending = true
		e.fail(e.dev.copy(dst, 0, src, 0, bytes))
	}
	if err := e.Sync(); err != nil {
		b.Fatal(err)
	}
	copyRate := float64(perCommit*bytes) / time.Since(start).Seconds()
	e.MatMul(y, x, 1, m, nil) // uploads the weights, builds the pipeline
	if err := e.Sync(); err != nil {
		b.Fatal(err)
	}
	start = time.Now()
	for b.Loop() {
		for range perCommit {
			e.MatMul(y, x, 1, m, nil)
		}
		if err := e.Sync(); err != nil {
			b.Fatal(err)
		}
	}
	rate := float64(b.N*perCommit*bytes) / time.Since(start).Seconds()
	b.ReportMetric(rate/1e9, "GB/s")
	b.ReportMetric(rate/copyRate, "x-copy")
}
