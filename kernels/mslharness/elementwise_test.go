package mslharness

import (
	"testing"

	"github.com/mlx-moe/mlx-moe/kernels"
)

// oneD is a launch over n elements with threadgroups of 256.
func oneD(n int, bufs map[int][]byte) Launch {
	return Launch{Groups: [3]int{(n + 255) / 256, 1, 1}, Threads: [3]int{256, 1, 1}, Buffers: bufs, Seed: uint64(n)}
}

func TestElementwise(t *testing.T) {
	t.Parallel()
	p := program(t, "elementwise.metal")
	r := newRand(1)
	for _, n := range []int{1, 255, 1000} {
		a, b := randn(r, n, 2), randn(r, n, 2)
		nb := u32Bytes([]uint32{uint32(n)})
		zeros := f32Bytes(make([]float32, n))

		want := make([]float32, n)
		kernels.Add(want, a, b)
		out := launch(t, p, "add", oneD(n, map[int][]byte{0: f32Bytes(a), 1: f32Bytes(b), 2: zeros, 3: nb}))
		compare(t, "add", bytesF32(out[2]), want, 0, 1e-7)

		for i := range want {
			want[i] = a[i] * b[i]
		}
		out = launch(t, p, "mul", oneD(n, map[int][]byte{0: f32Bytes(a), 1: f32Bytes(b), 2: zeros, 3: nb}))
		compare(t, "mul", bytesF32(out[2]), want, 0, 1e-7)

		for i := range want {
			want[i] = kernels.Silu(a[i])
		}
		out = launch(t, p, "silu", oneD(n, map[int][]byte{0: f32Bytes(a), 1: zeros, 2: nb}))
		compare(t, "silu", bytesF32(out[1]), want, 1e-6, 1e-6)

		kernels.SwiGLU(want, a, b)
		out = launch(t, p, "swiglu", oneD(n, map[int][]byte{0: f32Bytes(a), 1: f32Bytes(b), 2: zeros, 3: nb}))
		compare(t, "swiglu", bytesF32(out[2]), want, 1e-6, 1e-6)

		for i := range want {
			want[i] = a[i] * kernels.Sigmoid(b[i])
		}
		out = launch(t, p, "mul_sigmoid", oneD(n, map[int][]byte{0: f32Bytes(a), 1: f32Bytes(b), 2: zeros, 3: nb}))
		compare(t, "mul_sigmoid", bytesF32(out[2]), want, 1e-6, 1e-6)

		const topk = 3
		y, w := randn(r, topk*n, 1), randn(r, topk, 1)
		copy(want, a)
		for k := range topk {
			kernels.AddScaled(want, y[k*n:(k+1)*n], w[k])
		}
		out = launch(t, p, "moe_combine", oneD(n, map[int][]byte{
			0: f32Bytes(a), 1: f32Bytes(y), 2: f32Bytes(w), 3: zeros, 4: nb, 5: u32Bytes([]uint32{topk}),
		}))
		compare(t, "moe_combine", bytesF32(out[3]), want, 1e-6, 1e-6)

		gate := randn(r, 1, 2)
		copy(want, a)
		kernels.AddScaled(want, b, kernels.Sigmoid(gate[0]))
		out = launch(t, p, "add_gated", oneD(n, map[int][]byte{0: f32Bytes(a), 1: f32Bytes(b), 2: f32Bytes(gate), 3: zeros, 4: nb}))
		compare(t, "add_gated", bytesF32(out[3]), want, 1e-6, 1e-6)
	}
}
