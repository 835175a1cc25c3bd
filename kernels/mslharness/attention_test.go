package mslharness

import (
	"testing"

	"github.com/mlx-moe/mlx-moe/kernels"
)

type sdpaParams struct {
	Pos0, Heads, KVHeads, DK, DV, KStride, VStride uint32
	Scale                                          float32
	HasGate                                        uint32
}

// roundF16 rounds every value to half precision, as a half KV cache stores it.
func roundF16(x []float32) ([]float32, []uint16) {
	r := make([]float32, len(x))
	h := make([]uint16, len(x))
	for i, v := range x {
		h[i] = f32ToF16(v)
		r[i] = kernels.F16ToF32(h[i])
	}
	return r, h
}

// TestSDPA covers decoding (n = 1) and prefill (n tokens, causal).
func TestSDPA(t *testing.T) {
	t.Parallel()
	p := program(t, "attention.metal")
	r := newRand(9)
	for _, c := range []struct {
		name                                string
		n, len, heads, kvHeads, dk, dv, pad int
		gate, f16                           bool
	}{
		{"decode, one position", 1, 1, 4, 4, 64, 64, 0, false, false},
		{"decode, GQA 16:2, gated (qwen3-next)", 1, 300, 16, 2, 256, 256, 0, true, false},
		{"decode, ragged dims, padded rows", 1, 37, 6, 3, 80, 48, 8, false, false},
		{"decode, half cache", 1, 129, 8, 2, 128, 128, 0, true, true},
		{"prefill from empty, GQA, gated", 9, 9, 4, 2, 64, 64, 0, true, false},
		{"prefill after a prefix, half cache", 5, 70, 4, 1, 128, 96, 4, false, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			kStride, vStride := c.kvHeads*c.dk+c.pad, c.kvHeads*c.dv+c.pad
			q := randn(r, c.n*c.heads*c.dk, 1)
			k := randn(r, c.len*kStride, 1)
			v := randn(r, c.len*vStride, 1)
			gate := randn(r, c.n*c.heads*c.dv, 2)
			kb, vb, kernel := f32Bytes(k), f32Bytes(v), "sdpa_f32"
			if c.f16 {
				var kh, vh []uint16
				k, kh = roundF16(k)
				v, vh = roundF16(v)
				kb, vb, kernel = u16Bytes(kh), u16Bytes(vh), "sdpa_f16"
			}
			scale := kernels.AttentionScale(c.dk)
			want := make([]float32, c.n*c.heads*c.dv)
			pos0 := c.len - c.n
			kernels.Attention(want, q, k, v, c.n, pos0, c.heads, c.kvHeads, c.dk, c.dv, kStride, vStride, scale)
			if c.gate {
				for i := range want {
					want[i] *= kernels.Sigmoid(gate[i])
				}
			}
			out := launch(t, p, kernel, Launch{Groups: [3]int{c.heads, c.n, 1}, Threads: [3]int{256, 1, 1}, Seed: uint64(c.len),
				Buffers: map[int][]byte{
					0: f32Bytes(q), 1: kb, 2: vb, 3: f32Bytes(gate), 4: f32Bytes(make([]float32, len(want))),
					5: params(sdpaParams{uint32(pos0), uint32(c.heads), uint32(c.kvHeads), uint32(c.dk), uint32(c.dv),
						uint32(kStride), uint32(vStride), scale, b32(c.gate)}),
				}})
			compare(t, kernel, bytesF32(out[4]), want, 1e-6, 1e-5)
		})
	}
}

// TestKVStoreF16 stores rows read through a padded row stride into a half
// cache after a prefix, including values at half's edges (subnormal,
// overflow to infinity), and compares every stored bit with KVRows.Store,
// the CPU executor's conversion.
func TestKVStoreF16(t *testing.T) {
	t.Parallel()
	p := program(t, "attention.metal")
	r := newRand(17)
	const rows, cols, ld, row0, n = 12, 300, 310, 5, 6
	src := randn(r, n*ld, 4)
	copy(src, []float32{1e-6, -3e-8, 70000, -65519, 65520, 6.1e-5, 0})
	want, err := kernels.NewKVRows(kernels.KVF16, rows, cols, 0)
	if err != nil {
		t.Fatal(err)
	}
	want.Store(row0, src, ld, n)
	// The kernel writes from the bound row on: bind the cache past the
	// prefix, as the executor does.
	out := launch(t, p, "kv_store_f16", Launch{Groups: [3]int{(cols + 255) / 256, n, 1}, Threads: [3]int{256, 1, 1},
		Buffers: map[int][]byte{0: f32Bytes(src), 1: make([]byte, 2*(rows-row0)*cols), 2: params(kvStoreParams{cols, ld})}})
	got := bytesU16(out[1])
	for i, h := range want.Half[row0*cols:] {
		if got[i] != h {
			t.Fatalf("kv_store_f16: value %d (row %d) is %#04x, KVRows.Store gives %#04x (from %g)", i, row0+i/cols, got[i], h, src[i/cols*ld+i%cols])
		}
	}
}

type kvStoreParams struct{ Cols, LD uint32 }
