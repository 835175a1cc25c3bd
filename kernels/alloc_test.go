package kernels

import (
	"math/rand/v2"
	"testing"

	"github.com/mlx-moe/mlx-moe/internal/allocs"
)

// TestKernelsAllocateNothingWhenWarm: the decode-step kernels (quantized
// and dense products, an embedding row, attention unsplit, split and over
// a half cache) keep their per-call state between calls, with the worker
// pool taking part.
func TestKernelsAllocateNothingWhenWarm(t *testing.T) {
	rng := rand.New(rand.NewPCG(12, 1))
	q4 := randomQuant(rng, 256, 512, 4, 64, false)
	q3 := randomQuant(rng, 256, 512, 3, 32, true)
	w := randVec(rng, 256*403)
	bf := make([]uint16, len(w))
	for i := range w {
		bf[i] = F32ToBF16(w[i])
	}
	dense := &Matrix{Rows: 256, Cols: 403, BF16: bf} // a scalar column tail
	x := randVec(rng, 8*512)
	out := make([]float32, 8*256)
	row := make([]float32, 512)

	const heads, kvHeads, dk, dv, keys = 8, 2, 64, 64, 1024
	q := randVec(rng, 8*heads*dk)
	k, v := randVec(rng, keys*kvHeads*dk), randVec(rng, keys*kvHeads*dv)
	ao := make([]float32, 8*heads*dv)
	kh, err := NewKVRows(KVF16, keys, kvHeads*dk, 0)
	if err != nil {
		t.Fatal(err)
	}
	kh.Store(0, k, kvHeads*dk, keys)
	scale := AttentionScale(dk)

	for _, c := range []struct {
		name string
		f    func()
	}{
		{"4-bit matvec n=1", func() { MatMul(out, x, 1, q4) }},
		{"4-bit matvec n=4", func() { MatMul(out, x, 4, q4) }},
		{"3-bit matvec n=1", func() { MatMul(out, x, 1, q3) }},
		{"4-bit gemm n=8", func() { MatMul(out, x, 8, q4) }},
		{"bf16 n=1", func() { MatMul(out, x, 1, dense) }},
		{"4-bit row", func() { q4.Row(7, row) }},
		{"attention n=1 pos 1023 (split)", func() {
			Attention(ao, q, k, v, 1, keys-1, heads, kvHeads, dk, dv, kvHeads*dk, kvHeads*dv, scale)
		}},
		{"attention n=1 pos 20", func() {
			Attention(ao, q, k, v, 1, 20, heads, kvHeads, dk, dv, kvHeads*dk, kvHeads*dv, scale)
		}},
		{"attention n=8 pos 1000", func() {
			Attention(ao, q, k, v, 8, 1000, heads, kvHeads, dk, dv, kvHeads*dk, kvHeads*dv, scale)
		}},
		{"attention f16 cache n=1 pos 1023", func() {
			AttentionKV(ao, q, kh, 0, kh, 0, 1, keys-1, heads, kvHeads, dk, dk, scale)
		}},
	} {
		c.f()
		c.f()
		if r := allocs.Steady(10, c.f, nil); r.PerCall != 0 {
			t.Errorf("%s, warm: %v", c.name, r)
		}
	}
}
