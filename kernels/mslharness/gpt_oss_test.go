package mslharness

import (
	"testing"

	"github.com/mlx-moe/mlx-moe/kernels"
)

// TestSDPASinks runs sdpa_sinks_f32/f16/q8/q4 against
// kernels.AttentionSinksKV over the same caches (stored by KVRows.Store,
// keys bound at a column offset in one case): decode and prefill, full and
// sliding-window layers, sinks that take most of the mass and sinks that
// take almost none.
func TestSDPASinks(t *testing.T) {
	t.Parallel()
	p := program(t, "attention.metal")
	r := newRand(31)
	for _, c := range []struct {
		name                                        string
		n, len, heads, kvHeads, dk, dv, kc0, window int
		sinkScale                                   float32
	}{
		{"decode, full", 1, 40, 8, 2, 64, 64, 0, 0, 1},
		{"decode, window 16 (gpt-oss's 128, smaller)", 1, 40, 8, 2, 64, 64, 0, 16, 1},
		{"decode, window longer than the sequence", 1, 5, 4, 4, 64, 64, 0, 16, 4},
		{"prefill after a prefix, window 3, heavy sinks, keys at column 16", 7, 20, 4, 1, 64, 48, 16, 3, 8},
		{"prefill from empty, full, ragged dims", 9, 9, 6, 3, 80, 80, 0, 0, 1},
	} {
		for _, f := range []kernels.KVFormat{kernels.KVF32, kernels.KVF16, kernels.KVQ8, kernels.KVQ4} {
			t.Run(c.name+"/"+f.String(), func(t *testing.T) {
				group := kernels.KVGroup(c.dk, c.dv, c.kc0)
				k, err := kernels.NewKVRows(f, c.len, c.kc0+c.kvHeads*c.dk, group)
				if err != nil {
					t.Fatal(err)
				}
				v, err := kernels.NewKVRows(f, c.len, c.kvHeads*c.dv, group)
				if err != nil {
					t.Fatal(err)
				}
				k.Store(0, randn(r, c.len*k.Cols, 1), k.Cols, c.len)
				v.Store(0, randn(r, c.len*v.Cols, 1), v.Cols, c.len)
				q := randn(r, c.n*c.heads*c.dk, 1)
				sinks := randn(r, c.heads, c.sinkScale)
				scale := kernels.AttentionScale(c.dk)
				pos0 := c.len - c.n
				want := make([]float32, c.n*c.heads*c.dv)
				kernels.AttentionSinksKV(want, q, k, c.kc0, v, 0, c.n, pos0, c.heads, c.kvHeads, c.dk, c.dv, scale, sinks, c.window)
				buffers := map[int][]byte{
					0: f32Bytes(q), 3: f32Bytes(sinks), 4: f32Bytes(make([]float32, len(want))),
					5: params(sdpaParams{uint32(pos0), uint32(c.heads), uint32(c.kvHeads), uint32(c.dk), uint32(c.dv),
						uint32(k.Cols), uint32(v.Cols), scale, 0}),
					11: params(uint32(c.window)),
				}
				kernel := "sdpa_sinks_" + f.String()
				switch f {
				case kernels.KVF32:
					buffers[1], buffers[2] = f32Bytes(k.F32[c.kc0:]), f32Bytes(v.F32)
				case kernels.KVF16:
					buffers[1], buffers[2] = u16Bytes(k.Half[c.kc0:]), u16Bytes(v.Half)
				default:
					per := 32 / f.Bits()
					buffers[1], buffers[2] = u32Bytes(k.Q[c.kc0/per:]), u32Bytes(v.Q)
					buffers[6], buffers[7] = u16Bytes(k.Scales[c.kc0/group:]), u16Bytes(k.Biases[c.kc0/group:])
					buffers[8], buffers[9] = u16Bytes(v.Scales), u16Bytes(v.Biases)
					buffers[10] = params(uint32(group))
				}
				out := launch(t, p, kernel, Launch{Groups: [3]int{c.heads, c.n, 1}, Threads: [3]int{256, 1, 1}, Seed: uint64(c.len), Buffers: buffers})
				compare(t, kernel, bytesF32(out[4]), want, 1e-5, 1e-4)
			})
		}
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
