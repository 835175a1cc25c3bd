package kernels

import (
	"math"
	"math/rand/v2"
	"runtime"
	"testing"
)

// attentionSinksReference is the eager form of transformers' gpt-oss
// attention in float64: scores against every visible key, the sink logit
// appended, softmax, the sink's column dropped, a weighted sum of values.
func attentionSinksReference(q, k, v []float32, n, pos0, heads, kvHeads, dk, dv, kStride, vStride int, scale float32, sinks []float32, window int) []float64 {
	out := make([]float64, n*heads*dv)
	group := heads / kvHeads
	for t := 0; t < n; t++ {
		pos := pos0 + t
		for h := 0; h < heads; h++ {
			g := h / group
			var logits []float64
			var keys []int
			for j := 0; j <= pos; j++ {
				if window > 0 && pos-j >= window {
					continue
				}
				var s float64
				for c := 0; c < dk; c++ {
					s += float64(q[(t*heads+h)*dk+c]) * float64(k[j*kStride+g*dk+c])
				}
				logits = append(logits, s*float64(scale))
				keys = append(keys, j)
			}
			logits = append(logits, float64(sinks[h]))
			m := math.Inf(-1)
			for _, l := range logits {
				m = math.Max(m, l)
			}
			var sum float64
			for _, l := range logits {
				sum += math.Exp(l - m)
			}
			for i, j := range keys {
				p := math.Exp(logits[i]-m) / sum
				for c := 0; c < dv; c++ {
					out[(t*heads+h)*dv+c] += p * float64(v[j*vStride+g*dv+c])
				}
			}
		}
	}
	return out
}

func TestAttentionSinksMatchesReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	const heads, kvHeads, dk, dv = 8, 2, 16, 16
	for _, c := range []struct{ n, pos0, window int }{
		{1, 0, 0}, {1, 20, 0}, {1, 20, 4}, {7, 0, 3}, {7, 5, 0}, {12, 9, 5}, {3, 2, 64},
	} {
		total := c.pos0 + c.n
		kStride, vStride := kvHeads*dk+3, kvHeads*dv // keys in a wider row
		q := randFloats(rng, c.n*heads*dk)
		k := randFloats(rng, total*kStride)
		v := randFloats(rng, total*vStride)
		sinks := randFloats(rng, heads)
		sinks[0] = 6 // a sink that takes most of the mass
		scale := AttentionScale(dk)
		want := attentionSinksReference(q, k, v, c.n, c.pos0, heads, kvHeads, dk, dv, kStride, vStride, scale, sinks, c.window)
		out := make([]float32, c.n*heads*dv)
		AttentionSinks(out, q, k, v, c.n, c.pos0, heads, kvHeads, dk, dv, kStride, vStride, scale, sinks, c.window)
		for i := range out {
			if d := math.Abs(float64(out[i]) - want[i]); d > 1e-5 {
				t.Fatalf("n=%d pos0=%d window=%d: out[%d] = %v, want %v", c.n, c.pos0, c.window, i, out[i], want[i])
			}
		}
	}
}

func randFloats(rng *rand.Rand, n int) []float32 {
	x := make([]float32, n)
	for i := range x {
		x[i] = float32(rng.NormFloat64())
	}
	return x
}

func TestClampedSwiGLU(t *testing.T) {
	const alpha, limit = 1.702, 7.0
	gate := []float32{-3, 0, 0.5, 6.9, 7.5, 100, -100}
	up := []float32{-9, 1, -0.5, 8, -7.5, 2, 3}
	out := make([]float32, len(gate))
	ClampedSwiGLU(out, gate, up, alpha, limit)
	for i := range gate {
		g := math.Min(float64(gate[i]), limit)
		u := math.Max(math.Min(float64(up[i]), limit), -limit)
		want := (u + 1) * g / (1 + math.Exp(-alpha*g))
		if d := math.Abs(float64(out[i]) - want); d > 1e-5*math.Max(1, math.Abs(want)) {
			t.Errorf("gate %v up %v: %v, want %v", gate[i], up[i], out[i], want)
		}
	}
}

func TestAttentionSinksAllocatesNothing(t *testing.T) {
	rng := rand.New(rand.NewPCG(13, 14))
	q, k, v := randFloats(rng, 4*8), randFloats(rng, 30*8), randFloats(rng, 30*8)
	sinks, out := randFloats(rng, 4), make([]float32, 4*8)
	run := func() { AttentionSinks(out, q, k, v, 1, 29, 4, 1, 8, 8, 8, 8, 0.3, sinks, 16) }
	run()
	if a := testing.AllocsPerRun(20, run); a != 0 {
		t.Errorf("AttentionSinks allocates %.1f times per decode call", a)
	}
}

func TestClampedSwiGLUInterleavedSplitsPairs(t *testing.T) {
	rng := rand.New(rand.NewPCG(15, 16))
	gu := randFloats(rng, 64)
	for i := range gu {
		gu[i] *= 5 // reach the clamps
	}
	gate, up := make([]float32, 32), make([]float32, 32)
	for i := range gate {
		gate[i], up[i] = gu[2*i], gu[2*i+1]
	}
	want, got := make([]float32, 32), make([]float32, 32)
	ClampedSwiGLU(want, gate, up, 1.702, 7)
	ClampedSwiGLUInterleaved(got, gu, 1.702, 7)
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("element %d: interleaved %v, split %v", i, got[i], want[i])
		}
	}
}

// TestAttentionSinksKVMatchesReference runs AttentionSinksKV over half,
// 8-bit and 4-bit caches (keys and values past a first column, as a
// latent cache reads them) against the float64 reference over the same
// caches dequantized whole: converting a block at a time must read exactly
// the stored values.
func TestAttentionSinksKVMatchesReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(17, 18))
	for _, f := range []KVFormat{KVF32, KVF16, KVQ8, KVQ4} {
		for _, c := range []sinksKVCase{
			{1, 0, 0}, {1, 150, 0}, {1, 150, 40}, {7, 0, 3}, {33, 5, 0}, {40, 90, 70}, {3, 2, 64},
		} {
			checkAttentionSinksKV(t, f, c, 8, 2, 16, 32, rng)
		}
	}
}

// sinksKVCase is a prompt (or decode) step of AttentionSinksKV.
type sinksKVCase struct{ n, pos0, window int }

// checkAttentionSinksKV runs AttentionSinksKV over random caches in format
// f (kv heads of d columns after c0 columns of something else, as a
// latent cache reads them) against the float64 reference over the same
// caches dequantized whole, within 1e-5.
func checkAttentionSinksKV(t *testing.T, f KVFormat, c sinksKVCase, heads, kvHeads, d, c0 int, rng *rand.Rand) {
	t.Helper()
	cols := c0 + kvHeads*d
	total := c.pos0 + c.n
	k, err := NewKVRows(f, total, cols, 16)
	if err != nil {
		t.Fatal(err)
	}
	v, _ := NewKVRows(f, total, cols, 16)
	k.Store(0, randFloats(rng, total*cols), cols, total)
	v.Store(0, randFloats(rng, total*cols), cols, total)
	kf, vf := make([]float32, total*cols), make([]float32, total*cols)
	k.Load(kf, cols, 0, total, 0, cols)
	v.Load(vf, cols, 0, total, 0, cols)
	q := randFloats(rng, c.n*heads*d)
	sinks := randFloats(rng, heads)
	sinks[1] = 8 // a sink that takes most of the mass
	scale := AttentionScale(d)
	want := attentionSinksReference(q, kf[c0:], vf[c0:], c.n, c.pos0, heads, kvHeads, d, d, cols, cols, scale, sinks, c.window)
	out := make([]float32, c.n*heads*d)
	AttentionSinksKV(out, q, k, c0, v, c0, c.n, c.pos0, heads, kvHeads, d, d, scale, sinks, c.window)
	for i := range out {
		if e := math.Abs(float64(out[i]) - want[i]); e > 1e-5 {
			t.Fatalf("%v %+v, %d heads, %d kv heads, d %d: out[%d] = %v, want %v", f, c, heads, kvHeads, d, i, out[i], want[i])
		}
	}
}

func TestAttentionSinksKVAllocatesNothing(t *testing.T) {
	rng := rand.New(rand.NewPCG(19, 20))
	k, _ := NewKVRows(KVQ8, 300, 32, 16)
	v, _ := NewKVRows(KVQ8, 300, 32, 16)
	k.Store(0, randFloats(rng, 300*32), 32, 300)
	v.Store(0, randFloats(rng, 300*32), 32, 300)
	q, sinks, out := randFloats(rng, 4*16), randFloats(rng, 4), make([]float32, 4*16)
	run := func() { AttentionSinksKV(out, q, k, 0, v, 16, 1, 299, 4, 1, 16, 16, 0.25, sinks, 128) }
	run()
	if a := testing.AllocsPerRun(20, run); a != 0 {
		t.Errorf("AttentionSinksKV allocates %.1f times per decode call", a)
	}
}

// BenchmarkAttentionSinksKV: gpt-oss-20b's attention shape (64 query
// heads, 8 KV heads, d=64) after 8k cached positions, per cache format:
// one decode token on a full layer and on a sliding layer (window 128),
// and a 64-token prompt chunk on a full layer; "plain" is AttentionKV
// over the same cache (no sinks, no window), the baseline of the same run.
func BenchmarkAttentionSinksKV(b *testing.B) {
	const pos0, heads, kvHeads, d, chunk = 8192, 64, 8, 64, 64
	rng := rand.New(rand.NewPCG(1, 1))
	rows := randFloats(rng, (pos0+chunk)*kvHeads*d)
	q := randFloats(rng, chunk*heads*d)
	sinks := randFloats(rng, heads)
	out := make([]float32, chunk*heads*d)
	scale := AttentionScale(d)
	for _, f := range []KVFormat{KVF32, KVF16, KVQ8, KVQ4} {
		k, _ := NewKVRows(f, pos0+chunk, kvHeads*d, KVGroupSize)
		v, _ := NewKVRows(f, pos0+chunk, kvHeads*d, KVGroupSize)
		k.Store(0, rows, kvHeads*d, pos0+chunk)
		v.Store(0, rows, kvHeads*d, pos0+chunk)
		for _, c := range []struct {
			name      string
			n, window int
			plain     bool
		}{
			{"decode/full", 1, 0, false}, {"decode/plain", 1, 0, true}, {"decode/window128", 1, 128, false},
			{"prefill64/full", chunk, 0, false}, {"prefill64/plain", chunk, 0, true},
		} {
			b.Run(f.String()+"/"+c.name, func(b *testing.B) {
				for range b.N {
					if c.plain {
						AttentionKV(out, q, k, 0, v, 0, c.n, pos0, heads, kvHeads, d, d, scale)
					} else {
						AttentionSinksKV(out, q, k, 0, v, 0, c.n, pos0, heads, kvHeads, d, d, scale, sinks, c.window)
					}
				}
			})
		}
	}
}

// TestAttentionSinksSplitKeys: decode with fewer tiles than workers cuts
// the visible keys into ranges merged afterwards (attentionSplit); the
// window's first key starts the first range, and the sink joins after the
// merge.
func TestAttentionSinksSplitKeys(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(8))
	rng := rand.New(rand.NewPCG(25, 26))
	const heads, kvHeads, dk, dv, pos0 = 4, 1, 32, 32, 2000
	for _, f := range []KVFormat{KVF32, KVQ8} {
		k, _ := NewKVRows(f, pos0+1, dk, 32)
		v, _ := NewKVRows(f, pos0+1, dv, 32)
		k.Store(0, randFloats(rng, (pos0+1)*dk), dk, pos0+1)
		v.Store(0, randFloats(rng, (pos0+1)*dv), dv, pos0+1)
		kf, vf := make([]float32, (pos0+1)*dk), make([]float32, (pos0+1)*dv)
		k.Load(kf, dk, 0, pos0+1, 0, dk)
		v.Load(vf, dv, 0, pos0+1, 0, dv)
		for _, window := range []int{0, 700, 1500} {
			visible := pos0 + 1
			if window > 0 {
				visible = window
			}
			if attnSplits(kvHeads, visible) < 2 {
				t.Fatalf("window %d: no split to test", window)
			}
			q, sinks := randFloats(rng, heads*dk), randFloats(rng, heads)
			scale := AttentionScale(dk)
			want := attentionSinksReference(q, kf, vf, 1, pos0, heads, kvHeads, dk, dv, dk, dv, scale, sinks, window)
			out := make([]float32, heads*dv)
			AttentionSinksKV(out, q, k, 0, v, 0, 1, pos0, heads, kvHeads, dk, dv, scale, sinks, window)
			for i := range out {
				if d := math.Abs(float64(out[i]) - want[i]); d > 1e-5 {
					t.Fatalf("%v window %d: out[%d] = %v, want %v", f, window, i, out[i], want[i])
				}
			}
		}
	}
}
