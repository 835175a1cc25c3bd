package kernels

import (
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"testing"
)

// attnCase is one attention shape.
type attnCase struct{ n, pos0, heads, kvHeads, dk, dv, kPad, vPad int }

// checkAttention compares Attention with attentionReference on random
// inputs. kPad/vPad widen the cache rows beyond kvHeads*dk; a negative
// kPad makes keys and values share rows as latent attention does (values
// are the first dv columns of each key).
func checkAttention(t *testing.T, c attnCase, rng *rand.Rand) {
	t.Helper()
	L := c.pos0 + c.n
	kStride, vStride := c.kvHeads*c.dk+c.kPad, c.kvHeads*c.dv+c.vPad
	q := randVec(rng, c.n*c.heads*c.dk)
	k := randVec(rng, L*kStride)
	v := randVec(rng, L*vStride)
	if c.kPad < 0 {
		kStride, vStride = c.dk, c.dk
		k = randVec(rng, L*c.dk)
		v = k
	}
	scale := AttentionScale(c.dk) * 2 // sharper than usual, so the max matters
	got := make([]float32, c.n*c.heads*c.dv)
	want := make([]float32, len(got))
	Attention(got, q, k, v, c.n, c.pos0, c.heads, c.kvHeads, c.dk, c.dv, kStride, vStride, scale)
	attentionReference(want, q, k, v, c.n, c.pos0, c.heads, c.kvHeads, c.dk, c.dv, kStride, vStride, scale)
	close32(t, fmt.Sprintf("%+v", c), got, want, 2e-5)
}

// TestAttentionTiled: decode and prefill, GQA group sizes, dk != dv, odd
// head widths (tails of the SIMD loops), padded and shared cache rows,
// lengths across several key blocks and query tiles.
func TestAttentionTiled(t *testing.T) {
	simdModes(t, func(t *testing.T) {
		rng := rand.New(rand.NewPCG(21, 1))
		for _, c := range []attnCase{
			{1, 0, 1, 1, 8, 8, 0, 0},
			{1, 200, 16, 2, 64, 64, 0, 0},
			{1, 130, 4, 4, 13, 7, 3, 1},
			{3, 4, 4, 2, 8, 6, 0, 0},
			{5, 0, 6, 3, 32, 24, 5, 0},
			{40, 0, 8, 1, 64, 128, 0, 0},
			{70, 9, 4, 2, 24, 16, 0, 8},
			{33, 100, 2, 1, 136, 72, 0, 0},
			{17, 3, 4, 1, 72, 64, -1, 0}, // latent: values are the keys' first 64 columns
			{130, 0, 32, 4, 16, 16, 0, 0},
		} {
			checkAttention(t, c, rng)
		}
	})
}

// TestAttentionSplit: decode and short prompts with fewer tiles than
// cores, where the keys are cut into ranges and merged; with 8 and 3
// workers the split counts and range ends differ.
func TestAttentionSplit(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(0))
	rng := rand.New(rand.NewPCG(21, 7))
	for _, procs := range []int{8, 3} {
		runtime.GOMAXPROCS(procs)
		for _, c := range []attnCase{
			{1, 700, 8, 1, 64, 32, 0, 0},
			{2, 1000, 4, 1, 16, 16, 0, 0},
			{1, 3000, 16, 2, 40, 48, 0, 0},
			{1, 511, 4, 1, 72, 64, -1, 0},
		} {
			if attnSplits(c.kvHeads, c.pos0+c.n) < 2 {
				t.Fatalf("%+v is not split with %d workers", c, procs)
			}
			checkAttention(t, c, rng)
		}
	}
}

// TestAccumPV: the value kernel against its portable form at every column
// count modulo 64 and odd row/key counts.
func TestAccumPV(t *testing.T) {
	rng := rand.New(rand.NewPCG(21, 2))
	for _, n := range []int{1, 7, 8, 24, 64, 72, 136, 200} {
		for _, keys := range []int{1, 2, 5, 64} {
			rows := 1 + rng.IntN(6)
			ldo, ldp, ldv := n+3, keys+1, n+5
			o, p, v := randVec(rng, rows*ldo), randVec(rng, rows*ldp), randVec(rng, keys*ldv)
			want := append([]float32(nil), o...)
			accumPV(o, ldo, rows, p, ldp, v, ldv, keys, n)
			accumPVGo(want, ldo, rows, p, ldp, v, ldv, keys, n)
			close32(t, fmt.Sprintf("accumPV n %d keys %d rows %d", n, keys, rows), o, want, 1e-5)
		}
	}
}

func TestExpf(t *testing.T) {
	for x := float32(-90); x <= 30; x += 0.0137 {
		got, want := float64(expf(x)), math.Exp(float64(x))
		if x < -87.3 {
			want = 0
		}
		if math.Abs(got-want) > 3e-7*want {
			t.Fatalf("expf(%g) = %g, want %g", x, got, want)
		}
	}
	if expf(float32(math.Inf(-1))) != 0 || !math.IsNaN(float64(expf(float32(math.NaN())))) {
		t.Fatal("expf(-Inf) must be 0 and expf(NaN) NaN")
	}
}

// TestExpShift: the vector exponentials against expf, around the cut-off
// and with NaN.
func TestExpShift(t *testing.T) {
	rng := rand.New(rand.NewPCG(21, 5))
	for _, n := range []int{1, 8, 13, 64, 77} {
		x := make([]float32, n)
		for i := range x {
			x[i] = float32(rng.Float64()*100 - 95)
		}
		x[0] = -87.29
		if n > 9 {
			x[9] = float32(math.NaN())
		}
		want := append([]float32(nil), x...)
		wantSum := expShiftGo(want, 2)
		gotSum := expShift(x, 2)
		for i := range x {
			if math.IsNaN(float64(want[i])) != math.IsNaN(float64(x[i])) || math.Abs(float64(x[i]-want[i])) > 3e-7*float64(want[i]) {
				t.Fatalf("n %d: expShift[%d] = %g, want %g", n, i, x[i], want[i])
			}
		}
		if n <= 9 && math.Abs(float64(gotSum-wantSum)) > 1e-6*float64(wantSum) {
			t.Fatalf("n %d: sum %g, want %g", n, gotSum, wantSum)
		}
	}
}

// FuzzAttention: arbitrary shapes against the reference, SIMD on and off.
func FuzzAttention(f *testing.F) {
	f.Add(uint8(3), uint16(4), uint8(4), uint8(2), uint8(8), uint8(6), uint64(1))
	f.Add(uint8(1), uint16(300), uint8(16), uint8(2), uint8(64), uint8(64), uint64(2))
	f.Fuzz(func(t *testing.T, n uint8, pos0 uint16, heads, kvHeads, dk, dv uint8, seed uint64) {
		kvh := 1 + int(kvHeads)%4
		c := attnCase{n: 1 + int(n)%80, pos0: int(pos0) % 400, kvHeads: kvh, heads: kvh * (1 + int(heads)%8),
			dk: 1 + int(dk)%140, dv: 1 + int(dv)%140, kPad: int(seed % 3), vPad: int(seed/3) % 5}
		rng := rand.New(rand.NewPCG(seed, 6))
		saved := hasAVX2FMA
		defer func() { hasAVX2FMA = saved }()
		checkAttention(t, c, rng)
		hasAVX2FMA = false
		checkAttention(t, c, rng)
	})
}

// BenchmarkAttentionDecode: one token against 4k and 32k cached positions
// at Qwen3-Next's full-attention shape (16 query heads, 2 kv heads, head
// dim 256), as cache GB/s and as a fraction of the copy bandwidth measured
// in the same run; "ref" is the direct form on the same data.
func BenchmarkAttentionDecode(b *testing.B) {
	bw := copyBandwidth()
	const heads, kvHeads, d = 16, 2, 256
	rng := rand.New(rand.NewPCG(21, 3))
	for _, L := range []int{4096, 32768} {
		k, v := randVec(rng, L*kvHeads*d), randVec(rng, L*kvHeads*d)
		q := randVec(rng, heads*d)
		out := make([]float32, heads*d)
		bytes := int64(8 * len(k))
		for _, impl := range []struct {
			name string
			f    func(out, q, k, v []float32, n, pos0, heads, kvHeads, dk, dv, kStride, vStride int, scale float32)
		}{{"tiled", Attention}, {"ref", attentionReference}} {
			b.Run(fmt.Sprintf("%dk/%s", L/1024, impl.name), func(b *testing.B) {
				b.SetBytes(bytes)
				for i := 0; i < b.N; i++ {
					impl.f(out, q, k, v, 1, L-1, heads, kvHeads, d, d, kvHeads*d, kvHeads*d, AttentionScale(d))
				}
				b.ReportMetric(float64(bytes)*float64(b.N)/b.Elapsed().Seconds()/bw, "frac-of-copy-bw")
			})
		}
	}
}

// BenchmarkAttentionPrefill: a 2048-token prompt at the same shape, in
// GFLOPS of the causal score and value products.
func BenchmarkAttentionPrefill(b *testing.B) {
	const n, heads, kvHeads, d = 2048, 16, 2, 256
	rng := rand.New(rand.NewPCG(21, 4))
	q, k, v := randVec(rng, n*heads*d), randVec(rng, n*kvHeads*d), randVec(rng, n*kvHeads*d)
	out := make([]float32, n*heads*d)
	c0 := cpuSeconds()
	for i := 0; i < b.N; i++ {
		Attention(out, q, k, v, n, 0, heads, kvHeads, d, d, kvHeads*d, kvHeads*d, AttentionScale(d))
	}
	reportFlops(b, float64(b.N)*4*d*heads*float64(n)*float64(n+1)/2, c0)
}
