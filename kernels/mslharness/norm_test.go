package mslharness

import (
	"testing"

	"github.com/mlx-moe/mlx-moe/kernels"
)

type normParams struct {
	Dim       uint32
	Eps       float32
	HasWeight uint32
}

func TestRMSNorm(t *testing.T) {
	t.Parallel()
	p := program(t, "norm.metal")
	r := newRand(5)
	const eps = 1e-6
	for _, c := range []struct{ rows, dim, threads int }{{3, 64, 32}, {2, 1000, 256}, {4, 2048, 1024}, {1, 77, 64}} {
		x, w, z := randn(r, c.rows*c.dim, 3), randn(r, c.dim, 1), randn(r, c.rows*c.dim, 1)
		l := func(bufs map[int][]byte) Launch {
			return Launch{Groups: [3]int{c.rows, 1, 1}, Threads: [3]int{c.threads, 1, 1}, Buffers: bufs, Seed: uint64(c.dim)}
		}
		zeros := f32Bytes(make([]float32, c.rows*c.dim))
		for _, weighted := range []bool{true, false} {
			want := make([]float32, c.rows*c.dim)
			prm := normParams{uint32(c.dim), eps, 1}
			if weighted {
				kernels.RMSNorm(want, x, w, c.rows, c.dim, eps)
			} else {
				kernels.RMSNorm(want, x, nil, c.rows, c.dim, eps)
				prm.HasWeight = 0
			}
			out := launch(t, p, "rmsnorm", l(map[int][]byte{0: f32Bytes(x), 1: f32Bytes(w), 2: zeros, 3: params(prm)}))
			compare(t, "rmsnorm", bytesF32(out[2]), want, 0, 2e-6)
		}
		want := make([]float32, c.rows*c.dim)
		kernels.GatedRMSNorm(want, x, z, w, c.rows, c.dim, eps)
		out := launch(t, p, "rmsnorm_gated", l(map[int][]byte{
			0: f32Bytes(x), 1: f32Bytes(z), 2: f32Bytes(w), 3: zeros, 4: params(normParams{uint32(c.dim), eps, 1}),
		}))
		compare(t, "rmsnorm_gated", bytesF32(out[3]), want, 0, 2e-6)
	}
}
