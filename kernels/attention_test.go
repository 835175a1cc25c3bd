package kernels

import (
	"fmt"
	"math"
	"math/rand/v2"
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
