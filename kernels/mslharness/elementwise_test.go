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

// TestElementwiseRows checks the row-broadcast kernels (one dispatch for a
// batch of rows) against the per-row references.
func TestElementwiseRows(t *testing.T) {
	t.Parallel()
	p := program(t, "elementwise.metal")
	r := newRand(2)
	for _, shape := range [][2]int{{1, 7}, {3, 100}, {5, 256}} {
		rows, cols := shape[0], shape[1]
		n := rows * cols
		a, b, g := randn(r, n, 2), randn(r, cols, 2), randn(r, rows, 2)
		dims := u32Bytes([]uint32{uint32(n), uint32(cols)})
		zeros := f32Bytes(make([]float32, n))
		want := make([]float32, n)
		for i := range rows {
			kernels.Add(want[i*cols:(i+1)*cols], a[i*cols:(i+1)*cols], b)
		}
		l := oneD(n, map[int][]byte{0: f32Bytes(a), 1: f32Bytes(b), 2: zeros, 3: dims[:4], 4: dims[4:]})
		out := launch(t, p, "add_row", l)
		compare(t, "add_row", bytesF32(out[2]), want, 0, 1e-7)

		clear(want)
		for i := range rows {
			kernels.AddScaled(want[i*cols:(i+1)*cols], a[i*cols:(i+1)*cols], kernels.Sigmoid(g[i]))
		}
		l = oneD(n, map[int][]byte{0: f32Bytes(a), 1: f32Bytes(g), 2: zeros, 3: dims[:4], 4: dims[4:]})
		out = launch(t, p, "mul_sigmoid_row", l)
		compare(t, "mul_sigmoid_row", bytesF32(out[2]), want, 1e-6, 1e-6)

		// Tokens of rows, 3 routes each, over 4 expert-output rows of y; one
		// route per token (after the first) did not run.
		const topk, yRows = 3, 4
		y, w := randn(r, yRows*cols, 1), randn(r, rows*topk, 1)
		routes := make([]uint32, rows*topk)
		copy(want, a) // the kernel adds to out

		for tok := range rows {
			for k := range topk {
				j := tok*topk + k
				routes[j] = uint32((tok + 2*k) % yRows)
				if tok > 0 && k == tok%topk {
					routes[j] = 0xffffffff
					continue
				}
				kernels.AddScaled(want[tok*cols:(tok+1)*cols], y[int(routes[j])*cols:(int(routes[j])+1)*cols], w[j])
			}
		}
		out = launch(t, p, "moe_combine_rows", Launch{Groups: [3]int{(cols + 255) / 256, rows, 1}, Threads: [3]int{256, 1, 1}, Seed: uint64(n),
			Buffers: map[int][]byte{0: f32Bytes(y), 1: u32Bytes(routes), 2: f32Bytes(w), 3: f32Bytes(a), 4: dims[4:], 5: u32Bytes([]uint32{topk})}})
		compare(t, "moe_combine_rows", bytesF32(out[3]), want, 1e-6, 1e-6)

		// rows rows of cols-3 values from a stride of cols into a stride of
		// cols+5, the destination's other values kept.
		block, dstStride := cols-3, cols+5
		if block <= 0 {
			continue
		}
		dst := randn(r, rows*dstStride, 1)
		wantDst := append([]float32(nil), dst...)
		for tok := range rows {
			copy(wantDst[tok*dstStride:tok*dstStride+block], a[tok*cols:tok*cols+block])
		}
		out = launch(t, p, "copy_rows", Launch{Groups: [3]int{(block + 255) / 256, rows, 1}, Threads: [3]int{256, 1, 1}, Seed: uint64(n),
			Buffers: map[int][]byte{0: f32Bytes(a[:(rows-1)*cols+block]), 1: f32Bytes(dst[:(rows-1)*dstStride+block]),
				2: u32Bytes([]uint32{uint32(block)}), 3: u32Bytes([]uint32{uint32(cols)}), 4: u32Bytes([]uint32{uint32(dstStride)})}})
		compare(t, "copy_rows", bytesF32(out[1]), wantDst[:(rows-1)*dstStride+block], 0, 0)
	}
}
