package mslharness

import (
	"testing"

	"github.com/mlx-moe/mlx-moe/kernels"
)

type sinkParams struct {
	Pos0, Heads, KVHeads, DK, DV, KStride, VStride uint32
	Scale                                          float32
	Window                                         uint32
}

// TestSDPASinks runs sdpa_sinks_f32 against kernels.AttentionSinks: decode
// and prefill, full and sliding-window layers, sinks that take most of the
// mass and sinks that take almost none.
func TestSDPASinks(t *testing.T) {
	t.Parallel()
	p := program(t, "gpt_oss.metal")
	r := newRand(31)
	for _, c := range []struct {
		name                                   string
		n, len, heads, kvHeads, dk, dv, window int
		sinkScale                              float32
	}{
		{"decode, full", 1, 40, 8, 2, 64, 64, 0, 1},
		{"decode, window 16 (gpt-oss's 128, smaller)", 1, 40, 8, 2, 64, 64, 16, 1},
		{"decode, window longer than the sequence", 1, 5, 4, 4, 64, 64, 16, 4},
		{"prefill after a prefix, window 3, heavy sinks", 7, 20, 4, 1, 64, 48, 3, 8},
		{"prefill from empty, full, ragged dims", 9, 9, 6, 3, 80, 80, 0, 1},
	} {
		t.Run(c.name, func(t *testing.T) {
			kStride, vStride := c.kvHeads*c.dk+4, c.kvHeads*c.dv
			q := randn(r, c.n*c.heads*c.dk, 1)
			k := randn(r, c.len*kStride, 1)
			v := randn(r, c.len*vStride, 1)
			sinks := randn(r, c.heads, c.sinkScale)
			scale := kernels.AttentionScale(c.dk)
			pos0 := c.len - c.n
			want := make([]float32, c.n*c.heads*c.dv)
			kernels.AttentionSinks(want, q, k, v, c.n, pos0, c.heads, c.kvHeads, c.dk, c.dv, kStride, vStride, scale, sinks, c.window)
			out := launch(t, p, "sdpa_sinks_f32", Launch{Groups: [3]int{c.heads, c.n, 1}, Threads: [3]int{256, 1, 1}, Seed: uint64(c.len),
				Buffers: map[int][]byte{
					0: f32Bytes(q), 1: f32Bytes(k), 2: f32Bytes(v), 3: f32Bytes(sinks), 4: f32Bytes(make([]float32, len(want))),
					5: params(sinkParams{uint32(pos0), uint32(c.heads), uint32(c.kvHeads), uint32(c.dk), uint32(c.dv),
						uint32(kStride), uint32(vStride), scale, uint32(c.window)}),
				}})
			compare(t, "sdpa_sinks_f32", bytesF32(out[4]), want, 1e-6, 1e-5)
		})
	}
}

type mxParams struct{ Rows, Cols uint32 }

// TestQMVMXFP4 runs qmv_mxfp4 against kernels.MatMul on an MXFP4 matrix
// whose rows do not fill the last threadgroup, for one and three tokens.
func TestQMVMXFP4(t *testing.T) {
	t.Parallel()
	p := program(t, "gpt_oss.metal")
	r := newRand(37)
	const rows, cols = 45, 1088 // 34 groups: lanes past the last group idle
	w, sc := make([]byte, rows*cols/2), make([]byte, rows*cols/32)
	for i := range w {
		w[i] = byte(r.IntN(256))
	}
	for i := range sc {
		sc[i] = byte(120 + r.IntN(10))
	}
	m := &kernels.Matrix{Rows: rows, Cols: cols, MX: &kernels.MXQuant{Mode: kernels.MXFP4, W: w, Scales: sc}}
	for _, n := range []int{1, 3} {
		x := randn(r, n*cols, 1)
		want := make([]float32, n*rows)
		kernels.MatMul(want, x, n, m)
		out := launch(t, p, "qmv_mxfp4", Launch{Groups: [3]int{(rows + 7) / 8, n, 1}, Threads: [3]int{256, 1, 1},
			Buffers: map[int][]byte{0: w, 1: sc, 2: f32Bytes(x), 3: f32Bytes(make([]float32, len(want))),
				4: params(mxParams{rows, cols})}})
		compare(t, "qmv_mxfp4", bytesF32(out[3]), want, 1e-5, 1e-5)
	}
}

type clampParams struct {
	N, Inter, Interleaved uint32
	Alpha, Limit          float32
}

// TestClampedSwiGLU runs clamped_swiglu, split and interleaved, against
// the Go kernels, with values past the clamp on both sides.
func TestClampedSwiGLU(t *testing.T) {
	t.Parallel()
	p := program(t, "gpt_oss.metal")
	r := newRand(41)
	const rows, inter = 3, 300
	gate, up := randn(r, rows*inter, 6), randn(r, rows*inter, 6)
	gateUp := randn(r, 2*rows*inter, 6)
	for _, interleaved := range []bool{false, true} {
		want := make([]float32, rows*inter)
		g, u := gate, up
		if interleaved {
			for i := 0; i < rows; i++ {
				kernels.ClampedSwiGLUInterleaved(want[i*inter:(i+1)*inter], gateUp[i*2*inter:(i+1)*2*inter], 1.702, 7)
			}
			g, u = gateUp, make([]float32, 1)
		} else {
			kernels.ClampedSwiGLU(want, gate, up, 1.702, 7)
		}
		out := launch(t, p, "clamped_swiglu", Launch{Groups: [3]int{(rows*inter + 255) / 256, 1, 1}, Threads: [3]int{256, 1, 1},
			Buffers: map[int][]byte{0: f32Bytes(g), 1: f32Bytes(u), 2: f32Bytes(make([]float32, len(want))),
				3: params(clampParams{rows * inter, inter, b32(interleaved), 1.702, 7})}})
		compare(t, "clamped_swiglu", bytesF32(out[2]), want, 1e-6, 1e-5)
	}
}
