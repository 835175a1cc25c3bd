package metal

import (
	"math/rand/v2"
	"os"
	"testing"
	"unsafe"

	"github.com/mlx-moe/mlx-moe/graph/graphtest"
	"github.com/mlx-moe/mlx-moe/internal/fixture"
	"github.com/mlx-moe/mlx-moe/kernels"
	"github.com/mlx-moe/mlx-moe/model"
)

// TestCacheFreeReleasesBuffers checks on the harness device's live-buffer
// count that a cache's buffers (KV, linear-attention state, latent cache)
// and a runner's scratch go back to the device when they are freed. No kernel runs, so the
// shaders are not compiled.
func TestCacheFreeReleasesBuffers(t *testing.T) {
	for _, name := range []string{"qwen3_next-4bit", "deepseek_v3-hf-bf16"} {
		t.Run(name, func(t *testing.T) {
			m, err := model.Load(fixture.Dir(t, "fixtures/"+name))
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			d := &harnessDevice{dispatches: map[string]int{}}
			e := newExecutor(d)
			before := d.live
			c := m.NewCache(e, 16)
			if d.live == before {
				t.Fatal("a cache allocated no buffers")
			}
			c.Free(e)
			if err := e.Sync(); err != nil {
				t.Fatal(err)
			}
			if d.live != before {
				t.Fatalf("%d buffers live after freeing the cache, %d before it was made", d.live, before)
			}
			rn := model.NewRunner(m, e)
			if d.live == before {
				t.Fatal("a runner planned no scratch buffers")
			}
			rn.Free()
			if err := e.Sync(); err != nil {
				t.Fatal(err)
			}
			if d.live != before {
				t.Fatalf("%d buffers live after freeing the runner, %d before it was made", d.live, before)
			}
		})
	}
}

// TestDecodeStepAllocatesNoBuffers runs warm decode steps of the harness
// fixtures (every fixture with METAL_HARNESS=all) through the shader
// harness and checks that a step makes no tensor (NewTensor) and allocates
// no device buffer.
func TestDecodeStepAllocatesNoBuffers(t *testing.T) {
	if testing.Short() {
		t.Skip("the shader harness runs each dispatch as a process")
	}
	names := harnessFixtures
	if os.Getenv("METAL_HARNESS") == "all" {
		names = fixture.Names(t)
	}
	for _, name := range names {
		t.Run(name, func(t *testing.T) { checkDecodeStepBuffers(t, name) })
	}
}

func checkDecodeStepBuffers(t *testing.T, name string) {
	m, err := model.Load(fixture.Dir(t, "fixtures/"+name))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	d := newHarnessDevice(t)
	ce := graphtest.NewCounting(newExecutor(d))
	rn := model.NewRunner(m, ce)
	c := m.NewCache(ce, 8)
	ids := []int32{1}
	for i := 0; i < 3; i++ {
		if i == 2 {
			ce.Reset()
			d.allocs = 0
		}
		if _, err := rn.Forward(c, ids, false); err != nil {
			t.Fatal(err)
		}
		ids[0]++
	}
	if ce.Ops["NewTensor"] != 0 || d.allocs != 0 {
		t.Fatalf("a warm decode step made %d tensors and %d device buffers", ce.Ops["NewTensor"], d.allocs)
	}
	t.Logf("one decode step: %d ops, %s", ce.Total(), d.summary())
}

// TestBufferWeightsBindInPlace: a quantized matrix whose words, scales and
// biases live in AllocBuffer's buffers (where a loader given the executor
// as its graph.BufferAllocator reads weights) is bound in place, not
// copied into the weight cache, and gives the reference product; freeing
// the buffers returns them to the device.
func TestBufferWeightsBindInPlace(t *testing.T) {
	if testing.Short() {
		t.Skip("the shader harness runs each dispatch as a process")
	}
	d := newHarnessDevice(t)
	e := newExecutor(d)
	rng := rand.New(rand.NewPCG(7, 8))
	const rows, cols = 64, 128
	w := make([]float32, rows*cols)
	for i := range w {
		w[i] = float32(rng.NormFloat64())
	}
	m, err := kernels.Quantize(w, rows, cols, 4, 64)
	if err != nil {
		t.Fatal(err)
	}
	var bufs [][]byte
	move := func(p unsafe.Pointer, n int) unsafe.Pointer {
		b, err := e.AllocBuffer(n)
		if err != nil {
			t.Fatal(err)
		}
		copy(b, unsafe.Slice((*byte)(p), n))
		bufs = append(bufs, b)
		return unsafe.Pointer(&b[0])
	}
	q := m.Q
	q.W = unsafe.Slice((*uint32)(move(unsafe.Pointer(&q.W[0]), 4*len(q.W))), len(q.W))
	q.Scales = unsafe.Slice((*uint16)(move(unsafe.Pointer(&q.Scales[0]), 2*len(q.Scales))), len(q.Scales))
	q.Biases = unsafe.Slice((*uint16)(move(unsafe.Pointer(&q.Biases[0]), 2*len(q.Biases))), len(q.Biases))
	x, y := e.NewTensor(1, cols), e.NewTensor(1, rows)
	for i := range x.Data {
		x.Data[i] = float32(rng.NormFloat64())
	}
	e.MatMul(y, x, 1, m, nil)
	if err := e.Sync(); err != nil {
		t.Fatal(err)
	}
	if len(e.weights) != 0 {
		t.Fatalf("%d weight copies made for a matrix in the executor's own buffers", len(e.weights))
	}
	want := make([]float32, rows)
	kernels.MatMul(want, x.Data, 1, m)
	live := d.live
	if d := maxRelDiff(y.Data, want); d > 1e-5 {
		t.Fatalf("product differs from the reference by %g (relative)", d)
	}
	for _, b := range bufs {
		if err := e.FreeBuffer(b); err != nil {
			t.Fatal(err)
		}
	}
	e.Free(x)
	e.Free(y)
	if err := e.Sync(); err != nil {
		t.Fatal(err)
	}
	if freed := live - d.live; freed != len(bufs)+2 {
		t.Fatalf("freeing %d weight buffers and 2 tensors released %d buffers", len(bufs), freed)
	}
}
