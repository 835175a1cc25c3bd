package mslharness

import (
	"testing"

	"github.com/mlx-moe/mlx-moe/kernels"
)

type sparseMixerParams struct {
	Experts, Tokens uint32
	Eps             float32
}

func TestRouteSparseMixer(t *testing.T) {
	t.Parallel()
	p := program(t, "sparsemixer.metal")
	r := newRand(12)
	for _, c := range []struct {
		name    string
		experts int
		eps     float32
		spread  float32
	}{
		{"phi-3.5-moe 16 experts", 16, 0.01, 1},
		{"close scores share the softmax", 16, 0.2, 0.2},
		{"no jitter", 8, 0, 1},
		{"ragged, ties", 37, 0.05, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			tokens := 45 // two threadgroups, the second partly idle
			logits := randn(r, tokens*c.experts, c.spread)
			if c.spread == 0 {
				for i := range logits {
					logits[i] = float32(i%3) * 0.5 // many exact ties
				}
			}
			routing := kernels.Routing{TopK: 2, SparseMixer: true, JitterEps: c.eps}
			wantIDs := make([]int32, tokens*2)
			wantW := make([]float32, tokens*2)
			for i := range tokens {
				kernels.Route(logits[i*c.experts:(i+1)*c.experts], &routing, wantIDs[2*i:2*i+2], wantW[2*i:2*i+2], nil)
			}
			out := launch(t, p, "route_sparsemixer", Launch{Groups: [3]int{(tokens + 31) / 32, 1, 1}, Threads: [3]int{32, 1, 1},
				Buffers: map[int][]byte{
					0: f32Bytes(logits), 1: i32Bytes(make([]int32, len(wantIDs))), 2: f32Bytes(make([]float32, len(wantW))),
					3: params(sparseMixerParams{uint32(c.experts), uint32(tokens), c.eps}),
				}})
			gotIDs := bytesI32(out[1])
			for i := range wantIDs {
				if gotIDs[i] != wantIDs[i] {
					t.Fatalf("route_sparsemixer: ids %v, want %v", gotIDs, wantIDs)
				}
			}
			compare(t, "route_sparsemixer", bytesF32(out[2]), wantW, 1e-7, 1e-5)
		})
	}
}
