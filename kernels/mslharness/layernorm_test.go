package mslharness

import (
	"testing"

	"github.com/mlx-moe/mlx-moe/kernels"
)

type layerNormParams struct {
	Dim                uint32
	Eps                float32
	HasWeight, HasBias uint32
}

func TestLayerNorm(t *testing.T) {
	t.Parallel()
	p := program(t, "layernorm.metal")
	r := newRand(11)
	const eps = 1e-5
	for _, c := range []struct{ rows, dim, threads int }{{3, 64, 32}, {2, 1000, 256}, {4, 4096, 1024}, {1, 77, 64}} {
		x, w, b := randn(r, c.rows*c.dim, 3), randn(r, c.dim, 1), randn(r, c.dim, 1)
		for i := range x {
			x[i] += 4 // an offset mean: the variance is of the deviations
		}
		zeros := f32Bytes(make([]float32, c.rows*c.dim))
		for _, affine := range [][2]bool{{true, true}, {false, false}, {true, false}, {false, true}} {
			wv, bv := w, b
			prm := layerNormParams{uint32(c.dim), eps, 1, 1}
			if !affine[0] {
				wv, prm.HasWeight = nil, 0
			}
			if !affine[1] {
				bv, prm.HasBias = nil, 0
			}
			want := make([]float32, c.rows*c.dim)
			kernels.LayerNorm(want, x, wv, bv, c.rows, c.dim, eps)
			out := launch(t, p, "layernorm", Launch{Groups: [3]int{c.rows, 1, 1}, Threads: [3]int{c.threads, 1, 1},
				Buffers: map[int][]byte{0: f32Bytes(x), 1: f32Bytes(w), 2: f32Bytes(b), 3: zeros, 4: params(prm)}, Seed: uint64(c.dim)})
			compare(t, "layernorm", bytesF32(out[3]), want, 1e-6, 2e-5)
		}
	}
}
