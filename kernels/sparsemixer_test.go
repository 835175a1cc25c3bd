package kernels

import (
	"math"
	"math/rand/v2"
	"testing"
)

// sparseMixerRef transcribes transformers' sparsemixer (training off) step
// by step: mask, masked_fill(-inf), softmax over every expert, gather; then
// scatter -inf at the first choice and the same again.
func sparseMixerRef(scores []float32, eps float64) ([2]int32, [2]float64) {
	n := len(scores)
	inf := float32(math.Inf(-1))
	argmax := func(v []float32) int {
		b := 0
		for i := range v {
			if v[i] > v[b] {
				b = i
			}
		}
		return b
	}
	softmaxAt := func(v []float32, k int) float64 {
		m := v[argmax(v)]
		var sum float64
		for _, a := range v {
			sum += math.Exp(float64(a - m))
		}
		return math.Exp(float64(v[k]-m)) / sum
	}
	mask := func(src []float32, thresh float32) []float32 {
		g := make([]float32, n)
		for j := range src {
			factor := float32(math.Max(math.Abs(float64(scores[j])), float64(thresh)))
			if (thresh-scores[j])/factor > float32(2*eps) {
				g[j] = inf
			} else {
				g[j] = src[j]
			}
		}
		return g
	}
	i1 := argmax(scores)
	w1 := softmaxAt(mask(scores, scores[i1]), i1)
	masked := append([]float32(nil), scores...)
	masked[i1] = inf
	i2 := argmax(masked)
	w2 := softmaxAt(mask(masked, masked[i2]), i2)
	return [2]int32{int32(i1), int32(i2)}, [2]float64{w1, w2}
}

func TestSparseMixer(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 0))
	cases := [][]float32{
		{1, 1, 1, 1},            // ties: lowest ids, nothing masked
		{2, 1.99, -3, 1.995, 0}, // near the maximum: kept in the softmax
		{-1, -2, -1.01, -5},     // all negative: the factor is |s_j|
		{0, 0, 0},               // zero factor: 0/0 is not masked
	}
	for i := 0; i < 200; i++ {
		n := 2 + rng.IntN(30)
		s := make([]float32, n)
		spread := []float64{0.001, 0.02, 1, 5}[i%4]
		for j := range s {
			s[j] = float32(rng.NormFloat64() * spread)
		}
		cases = append(cases, s)
	}
	for _, eps := range []float32{0.01, 0, 0.5} {
		r := &Routing{TopK: 2, SparseMixer: true, JitterEps: eps}
		for ci, s := range cases {
			ids, weights := make([]int32, 2), make([]float32, 2)
			Route(s, r, ids, weights, nil)
			wantIDs, wantW := sparseMixerRef(s, float64(eps))
			for k := 0; k < 2; k++ {
				if ids[k] != wantIDs[k] || math.Abs(float64(weights[k])-wantW[k]) > 1e-6 {
					t.Fatalf("eps %g case %d %v: got %v %v, want %v %v", eps, ci, s, ids, weights, wantIDs, wantW)
				}
			}
		}
	}
	// A score masked out lowers neither weight: with a far-away third
	// expert, the weights are those of the two close ones alone.
	ids, w := make([]int32, 2), make([]float32, 2)
	Route([]float32{1, 0.999, -10}, &Routing{TopK: 2, SparseMixer: true, JitterEps: 0.01}, ids, w, nil)
	if want := 1 / (1 + math.Exp(-0.001)); ids[0] != 0 || ids[1] != 1 || math.Abs(float64(w[0])-want) > 1e-6 || w[1] != 1 {
		t.Fatalf("got %v %v, want [0 1] [%g 1]", ids, w, want)
	}
}
