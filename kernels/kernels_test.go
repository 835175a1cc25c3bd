package kernels

import (
	"fmt"
	"math"
	"math/cmplx"
	"math/rand/v2"
	"slices"
	"sort"
	"testing"
)

func randVec(rng *rand.Rand, n int) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(rng.NormFloat64())
	}
	return v
}

func close32(t *testing.T, what string, got, want []float32, tol float64) {
	t.Helper()
	for i := range want {
		if math.Abs(float64(got[i]-want[i])) > tol*(1+math.Abs(float64(want[i]))) {
			t.Fatalf("%s[%d] = %g, want %g", what, i, got[i], want[i])
		}
	}
}

// TestRMSNorm: against a float64 norm, with and without a weight, on row
// lengths that exercise the vector body and tail, SIMD on and off.
func TestRMSNorm(t *testing.T) {
	simdModes(t, func(t *testing.T) {
		rng := rand.New(rand.NewPCG(3, 3))
		for _, dim := range []int{10, 64, 129, 2048} {
			for _, weighted := range []bool{true, false} {
				rows := 3
				x, w := randVec(rng, rows*dim), randVec(rng, dim)
				if !weighted {
					w = nil
				}
				out := make([]float32, rows*dim)
				RMSNorm(out, x, w, rows, dim, 1e-6)
				want := make([]float32, rows*dim)
				for r := 0; r < rows; r++ {
					var ss float64
					for _, v := range x[r*dim : (r+1)*dim] {
						ss += float64(v) * float64(v)
					}
					rms := math.Sqrt(ss/float64(dim) + 1e-6)
					for i := 0; i < dim; i++ {
						wi := 1.0
						if w != nil {
							wi = float64(w[i])
						}
						want[r*dim+i] = float32(float64(x[r*dim+i]) / rms * wi)
					}
				}
				close32(t, fmt.Sprintf("rmsnorm dim %d weighted %v", dim, weighted), out, want, 1e-5)
			}
		}
	})
}

// TestRope compares with rotation by e^{i·pos·freq} of complex pairs.
func TestRope(t *testing.T) {
	rng := rand.New(rand.NewPCG(4, 4))
	heads, headDim, rot := 2, 16, 8
	inv, scale := RopeInvFreq(rot, 10000, nil)
	for _, interleaved := range []bool{false, true} {
		p := &RopeParams{RotaryDim: rot, InvFreq: inv, Scale: scale, Interleaved: interleaved}
		pos := []int32{0, 5, 1000}
		x := randVec(rng, len(pos)*heads*headDim)
		got := slices.Clone(x)
		Rope(got, pos, len(pos), heads, headDim, p)
		for tk, ps := range pos {
			for h := 0; h < heads; h++ {
				v := x[(tk*heads+h)*headDim:]
				g := got[(tk*heads+h)*headDim:]
				for i := 0; i < rot/2; i++ {
					a, b := i, i+rot/2
					if interleaved {
						a, b = 2*i, 2*i+1
					}
					c := complex(float64(v[a]), float64(v[b])) * cmplx.Exp(complex(0, float64(ps)*math.Pow(10000, -float64(2*i)/float64(rot))))
					if math.Abs(real(c)-float64(g[a])) > 1e-3 || math.Abs(imag(c)-float64(g[b])) > 1e-3 {
						t.Fatalf("interleaved=%v pos %d pair %d: got (%g,%g), want %v", interleaved, ps, i, g[a], g[b], c)
					}
				}
				close32(t, "unrotated tail", g[rot:headDim], v[rot:headDim], 0)
			}
		}
	}
}

func TestYaRNLeavesHighFrequencies(t *testing.T) {
	plain, _ := RopeInvFreq(64, 10000, nil)
	yarn, factor := RopeInvFreq(64, 10000, &YaRN{Factor: 40, OriginalMaxPositions: 4096, MScale: 1, MScaleAllDim: 1})
	if yarn[0] != plain[0] {
		t.Errorf("highest frequency changed: %g vs %g", yarn[0], plain[0])
	}
	if last := len(plain) - 1; math.Abs(float64(yarn[last]*40-plain[last])) > 1e-6*float64(plain[last]) {
		t.Errorf("lowest frequency %g, want %g/40", yarn[last], plain[last])
	}
	if factor != 1 {
		t.Errorf("attention factor with mscale == mscale_all_dim is %g, want 1", factor)
	}
}

func TestAttention(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 5))
	n, pos0, heads, kvHeads, dk, dv := 3, 4, 4, 2, 8, 6
	L := pos0 + n
	q, k, v := randVec(rng, n*heads*dk), randVec(rng, L*kvHeads*dk), randVec(rng, L*kvHeads*dv)
	out := make([]float32, n*heads*dv)
	Attention(out, q, k, v, n, pos0, heads, kvHeads, dk, dv, kvHeads*dk, kvHeads*dv, 0.3)
	for tk := 0; tk < n; tk++ {
		for h := 0; h < heads; h++ {
			g := h / (heads / kvHeads)
			var scores []float64
			for j := 0; j <= pos0+tk; j++ {
				var s float64
				for i := 0; i < dk; i++ {
					s += float64(q[(tk*heads+h)*dk+i]) * float64(k[(j*kvHeads+g)*dk+i])
				}
				scores = append(scores, 0.3*s)
			}
			m := slices.Max(scores)
			var z float64
			for _, s := range scores {
				z += math.Exp(s - m)
			}
			for i := 0; i < dv; i++ {
				var want float64
				for j, s := range scores {
					want += math.Exp(s-m) / z * float64(v[(j*kvHeads+g)*dv+i])
				}
				if math.Abs(float64(out[(tk*heads+h)*dv+i])-want) > 1e-5 {
					t.Fatalf("token %d head %d dim %d: %g, want %g", tk, h, i, out[(tk*heads+h)*dv+i], want)
				}
			}
		}
	}
}

func TestRoute(t *testing.T) {
	logits := []float32{0.1, 2, -1, 2, 0.5, 3, -2, 1}
	ids, w := make([]int32, 3), make([]float32, 3)
	Route(logits, &Routing{TopK: 3, Normalize: true, Scale: 1}, ids, w, nil)
	if !slices.Equal(ids, []int32{5, 1, 3}) {
		t.Fatalf("softmax top-3 ids %v, want [5 1 3] (ties to the lower id)", ids)
	}
	e := func(x float64) float64 { return math.Exp(x) }
	sum := e(3) + 2*e(2)
	close32(t, "weights", w, []float32{float32(e(3) / sum), float32(e(2) / sum), float32(e(2) / sum)}, 1e-6)

	// Sigmoid with correction bias and groups: 4 groups of 2; the two best
	// groups by the sum of their top two corrected scores are 2 and 0.
	bias := []float32{0, 0, 0, 0, 5, 5, 0, 0}
	Route(logits, &Routing{TopK: 2, Sigmoid: true, CorrectionBias: bias, Groups: 4, TopKGroups: 2, Normalize: true, Scale: 2.5}, ids[:2], w[:2], new(RouteScratch))
	if !slices.Equal(ids[:2], []int32{5, 4}) {
		t.Fatalf("grouped sigmoid ids %v, want [5 4]", ids[:2])
	}
	s5, s4 := 1/(1+e(-3)), 1/(1+e(-0.5))
	close32(t, "grouped weights", w[:2], []float32{float32(2.5 * s5 / (s5 + s4)), float32(2.5 * s4 / (s5 + s4))}, 1e-6)
}

func TestTopIndicesMatchesSort(t *testing.T) {
	rng := rand.New(rand.NewPCG(6, 6))
	x := randVec(rng, 50)
	for i := range x {
		x[i] = float32(math.Round(float64(x[i] * 4))) // many ties
	}
	idx := make([]int, len(x))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool { return x[idx[a]] > x[idx[b]] })
	for _, k := range []int{1, 2, 7, 50} {
		got := topIndices(make([]int32, k), x)
		for i := range got {
			if int(got[i]) != idx[i] {
				t.Fatalf("top-%d, place %d: %d, want %d", k, i, got[i], idx[i])
			}
		}
	}
}

func TestSoftmaxSwiGLU(t *testing.T) {
	x := []float32{1, 2, 3, 1000}
	Softmax(x)
	if x[3] != 1 || x[0] != 0 {
		t.Fatalf("softmax not stable: %v", x)
	}
	out := make([]float32, 2)
	SwiGLU(out, []float32{0, 2}, []float32{5, 3})
	close32(t, "swiglu", out, []float32{0, float32(2 / (1 + math.Exp(-2)) * 3)}, 1e-6)
}

func TestFP8(t *testing.T) {
	for b, want := range map[uint8]float32{0x38: 1, 0xb8: -1, 0x7e: 448, 0x01: 1.0 / 512, 0x00: 0} {
		if got := FP8E4M3ToF32(b); got != want {
			t.Errorf("FP8E4M3ToF32(%#02x) = %g, want %g", b, got, want)
		}
	}
	if !math.IsNaN(float64(FP8E4M3ToF32(0x7f))) {
		t.Error("0x7f is not NaN")
	}
}
