package kernels

import (
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"testing"
)

// TestF32ToF16: every half converts back to itself, and a float32 between
// two halves goes to the nearer (to the even one on a tie), through
// overflow and the subnormal range.
func TestF32ToF16(t *testing.T) {
	for h := 0; h < 1<<16; h++ {
		f := F16ToF32(uint16(h))
		if f != f {
			if g := F16ToF32(F32ToF16(f)); g == g {
				t.Fatalf("NaN %#04x came back as %v", h, g)
			}
			continue
		}
		if got := F32ToF16(f); got != uint16(h) {
			t.Fatalf("F32ToF16(%v) = %#04x, want %#04x", f, got, h)
		}
	}
	rng := rand.New(rand.NewPCG(3, 4))
	for i := 0; i < 200000; i++ {
		x := float32(rng.NormFloat64() * math.Pow(2, float64(rng.IntN(44)-30)))
		got := float64(F16ToF32(F32ToF16(x)))
		// The nearest half by search over the two neighbours of the
		// truncation.
		best := math.Inf(1)
		for _, c := range []uint16{F32ToF16(x) - 1, F32ToF16(x), F32ToF16(x) + 1} {
			if v := float64(F16ToF32(c)); !math.IsNaN(v) {
				best = math.Min(best, math.Abs(v-float64(x)))
			}
		}
		if d := math.Abs(got - float64(x)); d > best && !math.IsInf(got, 0) {
			t.Fatalf("F32ToF16(%v) -> %v is %g away; a half %g away exists", x, got, d, best)
		}
	}
	for _, c := range []struct {
		x    float32
		want uint16
	}{{65504, 0x7bff}, {65520, 0x7c00}, {-1e6, 0xfc00}, {1e-9, 0}, {5.96e-8, 1}, {1, 0x3c00}, {-2, 0xc000}} {
		if got := F32ToF16(c.x); got != c.want {
			t.Errorf("F32ToF16(%v) = %#04x, want %#04x", c.x, got, c.want)
		}
	}
}

// TestKVRowsLoad: every format stores and loads rows within its error
// bound (exact for f32, half an ulp of half, half a step of a group's
// scale), through the SIMD and portable converters, any column range.
func TestKVRowsLoad(t *testing.T) {
	simdModes(t, func(t *testing.T) {
		rng := rand.New(rand.NewPCG(5, 6))
		const rows, cols = 9, 256
		src := randVec(rng, rows*cols)
		for i := range src {
			src[i] *= 3
		}
		src[7] = 0 // a group holding zero and a constant group
		for i := 64; i < 128; i++ {
			src[cols+i] = 0.25
		}
		for _, f := range []KVFormat{KVF32, KVF16, KVQ8, KVQ4} {
			for _, group := range []int{64, 32} {
				c, err := NewKVRows(f, rows, cols, group)
				if err != nil {
					t.Fatal(err)
				}
				c.Store(0, src[:4*cols], cols, 4)
				c.Store(4, src[4*cols:], cols, rows-4)
				got := make([]float32, rows*128)
				c.Load(got, 128, 0, rows, 64, 128)
				for r := 0; r < rows; r++ {
					for j := 0; j < 128; j++ {
						x, y := src[r*cols+64+j], got[r*128+j]
						if d := math.Abs(float64(x - y)); d > kvBound(c, src[r*cols:(r+1)*cols], 64+j) {
							t.Fatalf("%v group %d: row %d col %d: stored %v, loaded %v", f, group, r, 64+j, x, y)
						}
					}
				}
				if f.Quantized() {
					want := make([]float32, cols)
					off := 3 * cols
					if f == KVQ8 {
						dequantKV8Go(want, c.Q[off/4:(off+cols)/4], c.Scales[off/group:], c.Biases[off/group:], group)
					} else {
						dequantKV4Go(want, c.Q[off/8:(off+cols)/8], c.Scales[off/group:], c.Biases[off/group:], group)
					}
					row := make([]float32, cols)
					c.Load(row, cols, 3, 1, 0, cols)
					close32(t, fmt.Sprintf("%v row", f), row, want, 0)
				}
				if c.Bytes() != KVBytes(f, rows, cols, group) {
					t.Errorf("%v: %d bytes, KVBytes says %d", f, c.Bytes(), KVBytes(f, rows, cols, group))
				}
			}
		}
	})
}

// kvBound is how far a loaded value may be from the stored one: 0 for
// f32, half a half-ulp for f16, half a code step (plus the half rounding
// of the scale and bias) for a quantized group.
func kvBound(c *KVRows, row []float32, col int) float64 {
	x := float64(row[col])
	switch c.Format {
	case KVF32:
		return 0
	case KVF16:
		return math.Abs(x)*math.Pow(2, -11) + 1e-7
	}
	g := col / c.Group * c.Group
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, v := range row[g : g+c.Group] {
		lo, hi = math.Min(lo, float64(v)), math.Max(hi, float64(v))
	}
	step := (hi - lo) / float64(int(1)<<c.Format.Bits()-1)
	return step/2 + (math.Abs(lo)+math.Abs(hi))*math.Pow(2, -10) + 1e-6
}

// checkAttentionKV compares AttentionKV with the reference over the whole
// dequantized caches; shared puts the values inside the key rows (latent
// attention: values are the last dv columns of each key).
func checkAttentionKV(t *testing.T, f KVFormat, c attnCase, shared bool, rng *rand.Rand) {
	t.Helper()
	L := c.pos0 + c.n
	kCols, vCols := c.kvHeads*c.dk, c.kvHeads*c.dv
	group := KVGroup(c.dk, c.dv)
	k, err := NewKVRows(f, L, kCols, group)
	if err != nil {
		t.Fatal(err)
	}
	k.Store(0, randVec(rng, L*kCols), kCols, L)
	v, vc0 := k, c.dk-c.dv
	if !shared {
		if v, err = NewKVRows(f, L, vCols, group); err != nil {
			t.Fatal(err)
		}
		v.Store(0, randVec(rng, L*vCols), vCols, L)
		vc0 = 0
	}
	q := randVec(rng, c.n*c.heads*c.dk)
	scale := AttentionScale(c.dk) * 2
	got := make([]float32, c.n*c.heads*c.dv)
	want := make([]float32, len(got))
	AttentionKV(got, q, k, 0, v, vc0, c.n, c.pos0, c.heads, c.kvHeads, c.dk, c.dv, scale)
	attentionKVReference(want, q, k, 0, v, vc0, c.n, c.pos0, c.heads, c.kvHeads, c.dk, c.dv, scale)
	close32(t, fmt.Sprintf("%v %+v shared=%v", f, c, shared), got, want, 2e-5)
}

// TestAttentionKV: every format, decode and prefill, GQA, latent (values
// inside the key rows), split decode with several worker counts.
func TestAttentionKV(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(0))
	simdModes(t, func(t *testing.T) {
		rng := rand.New(rand.NewPCG(8, 9))
		for _, procs := range []int{8, 2} {
			runtime.GOMAXPROCS(procs)
			for _, f := range []KVFormat{KVF32, KVF16, KVQ8, KVQ4} {
				for _, c := range []attnCase{
					{1, 0, 2, 1, 64, 64, 0, 0},
					{1, 700, 8, 2, 64, 64, 0, 0},
					{5, 60, 16, 2, 128, 128, 0, 0},
					{40, 3, 4, 4, 32, 32, 0, 0},
					{1, 1000, 4, 1, 256, 256, 0, 0},
				} {
					checkAttentionKV(t, f, c, false, rng)
				}
				checkAttentionKV(t, f, attnCase{3, 130, 4, 1, 96, 64, 0, 0}, true, rng)
				checkAttentionKV(t, f, attnCase{1, 600, 8, 1, 576, 512, 0, 0}, true, rng)
			}
		}
	})
}

// TestKVFormatErrors: bad bits and ungroupable widths are errors, not
// panics.
func TestKVFormatErrors(t *testing.T) {
	if _, err := KVFormatBits(3); err == nil {
		t.Error("3 bits accepted")
	}
	if _, err := NewKVRows(KVQ8, 2, 48, 64); err == nil {
		t.Error("48 columns accepted for group 64")
	}
	if g := KVGroup(256, 128); g != 64 {
		t.Errorf("KVGroup(256, 128) = %d", g)
	}
	if g := KVGroup(16, 48); g != 16 {
		t.Errorf("KVGroup(16, 48) = %d", g)
	}
	if g := KVGroup(12); g != 0 {
		t.Errorf("KVGroup(12) = %d", g)
	}
}

// BenchmarkAttentionKVPrefill: a 512-token prompt chunk after 8k cached
// positions at the trained model's shape (4 query heads, 2 KV heads,
// d=64), per cache format.
func BenchmarkAttentionKVPrefill(b *testing.B) {
	const n, pos0, heads, kvHeads, d = 512, 8192, 4, 2, 64
	rng := rand.New(rand.NewPCG(1, 1))
	rows := randVec(rng, (pos0+n)*kvHeads*d)
	q := randVec(rng, n*heads*d)
	out := make([]float32, n*heads*d)
	for _, f := range []KVFormat{KVF32, KVF16, KVQ8, KVQ4} {
		c, err := NewKVRows(f, pos0+n, kvHeads*d, KVGroupSize)
		if err != nil {
			b.Fatal(err)
		}
		c.Store(0, rows, kvHeads*d, pos0+n)
		b.Run(f.String(), func(b *testing.B) {
			for range b.N {
				AttentionKV(out, q, c, 0, c, 0, n, pos0, heads, kvHeads, d, d, AttentionScale(d))
			}
		})
	}
}

// BenchmarkAttentionKVDecode: one decode token after 32k cached positions
// at the trained model's shape (4 query heads, 2 KV heads, d=64).
func BenchmarkAttentionKVDecode(b *testing.B) {
	const pos0, heads, kvHeads, d = 32768, 4, 2, 64
	rng := rand.New(rand.NewPCG(1, 1))
	rows := randVec(rng, (pos0+1)*kvHeads*d)
	q := randVec(rng, heads*d)
	out := make([]float32, heads*d)
	for _, f := range []KVFormat{KVF32, KVF16, KVQ8, KVQ4} {
		k, _ := NewKVRows(f, pos0+1, kvHeads*d, KVGroupSize)
		v, _ := NewKVRows(f, pos0+1, kvHeads*d, KVGroupSize)
		k.Store(0, rows, kvHeads*d, pos0+1)
		v.Store(0, rows, kvHeads*d, pos0+1)
		b.Run(f.String(), func(b *testing.B) {
			b.SetBytes(k.Bytes() + v.Bytes())
			for range b.N {
				AttentionKV(out, q, k, 0, v, 0, 1, pos0, heads, kvHeads, d, d, AttentionScale(d))
			}
		})
	}
}
