package mslharness

import (
	"fmt"
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

// TestKVStoreQuant quantizes rows (read through a padded row stride, after
// a prefix) into 8- and 4-bit caches, with a constant group, a group whose
// largest magnitude is negative and tiny groups of 8, and compares every
// code, scale and bias with KVRows.Store.
func TestKVStoreQuant(t *testing.T) {
	t.Parallel()
	p := program(t, "attention.metal")
	for _, c := range []struct {
		f               kernels.KVFormat
		cols, ld, group int
	}{
		{kernels.KVQ8, 256, 260, 64},
		{kernels.KVQ4, 256, 256, 64},
		{kernels.KVQ8, 48, 50, 8},
		{kernels.KVQ4, 96, 100, 32},
	} {
		t.Run(fmt.Sprintf("%v/g%d", c.f, c.group), func(t *testing.T) {
			const rows, row0, n = 6, 2, 3
			r := newRand(uint64(c.cols + c.group))
			src := randn(r, n*c.ld, 3)
			for i := range c.group {
				src[i] = 0.25 // constant: a zero scale
				src[c.ld+i] -= 9
			}
			want, err := kernels.NewKVRows(c.f, rows, c.cols, c.group)
			if err != nil {
				t.Fatal(err)
			}
			want.Store(row0, src, c.ld, n)
			perRow, groups := c.cols*c.f.Bits()/32, c.cols/c.group
			kernel := fmt.Sprintf("kv_store_q%d", c.f.Bits())
			out := launch(t, p, kernel, Launch{Groups: [3]int{(groups + 63) / 64, n, 1}, Threads: [3]int{64, 1, 1},
				Buffers: map[int][]byte{0: f32Bytes(src), 1: make([]byte, 4*n*perRow), 2: make([]byte, 2*n*groups),
					3: make([]byte, 2*n*groups), 4: params(kvStoreParams{uint32(c.cols), uint32(c.ld)}), 5: params(uint32(c.group))}})
			for _, part := range []struct {
				name      string
				got, want []uint32
			}{
				{"codes", bytesU32(out[1]), want.Q[row0*perRow : (row0+n)*perRow]},
				{"scales", widen(bytesU16(out[2])), widen(want.Scales[row0*groups : (row0+n)*groups])},
				{"biases", widen(bytesU16(out[3])), widen(want.Biases[row0*groups : (row0+n)*groups])},
			} {
				for i := range part.want {
					if part.got[i] != part.want[i] {
						t.Fatalf("%s: %s word %d is %#x, KVRows.Store gives %#x", kernel, part.name, i, part.got[i], part.want[i])
					}
				}
			}
		})
	}
}

func widen(x []uint16) []uint32 {
	out := make([]uint32, len(x))
	for i, v := range x {
		out[i] = uint32(v)
	}
	return out
}

// TestSDPAQuant runs sdpa_q8 and sdpa_q4 over caches quantized by
// KVRows.Store, bound at a column offset (the second kv head's keys, and
// MLA's latent values inside the key rows), against kernels.AttentionKV.
func TestSDPAQuant(t *testing.T) {
	t.Parallel()
	p := program(t, "attention.metal")
	r := newRand(23)
	for _, c := range []struct {
		name                                string
		f                                   kernels.KVFormat
		n, len, heads, kvHeads, dk, dv, kc0 int
		shared                              bool // values are columns kc0+dk-dv.. of the key rows
		gate                                bool
	}{
		{"decode q8, GQA 8:2, gated", kernels.KVQ8, 1, 130, 8, 2, 128, 128, 0, false, true},
		{"prefill q4 after a prefix", kernels.KVQ4, 4, 40, 4, 1, 64, 64, 64, false, false},
		{"decode q8, latent values in the key rows", kernels.KVQ8, 1, 33, 4, 1, 96, 64, 0, true, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			group := kernels.KVGroup(c.dk, c.dv, c.kc0)
			kCols := c.kc0 + c.kvHeads*c.dk
			k, err := kernels.NewKVRows(c.f, c.len, kCols, group)
			if err != nil {
				t.Fatal(err)
			}
			k.Store(0, randn(r, c.len*kCols, 1), kCols, c.len)
			v, vc0 := k, c.kc0+c.dk-c.dv
			if !c.shared {
				vc0 = 0
				if v, err = kernels.NewKVRows(c.f, c.len, c.kvHeads*c.dv, group); err != nil {
					t.Fatal(err)
				}
				v.Store(0, randn(r, c.len*v.Cols, 1), v.Cols, c.len)
			}
			q := randn(r, c.n*c.heads*c.dk, 1)
			gate := randn(r, c.n*c.heads*c.dv, 2)
			scale := kernels.AttentionScale(c.dk)
			pos0 := c.len - c.n
			want := make([]float32, c.n*c.heads*c.dv)
			kernels.AttentionKV(want, q, k, c.kc0, v, vc0, c.n, pos0, c.heads, c.kvHeads, c.dk, c.dv, scale)
			if c.gate {
				for i := range want {
					want[i] *= kernels.Sigmoid(gate[i])
				}
			}
			per := 32 / c.f.Bits()
			kernel := fmt.Sprintf("sdpa_q%d", c.f.Bits())
			out := launch(t, p, kernel, Launch{Groups: [3]int{c.heads, c.n, 1}, Threads: [3]int{256, 1, 1}, Seed: uint64(c.len),
				Buffers: map[int][]byte{
					0: f32Bytes(q), 1: u32Bytes(k.Q[c.kc0/per:]), 2: u32Bytes(v.Q[vc0/per:]), 3: f32Bytes(gate),
					4: f32Bytes(make([]float32, len(want))),
					5: params(sdpaParams{uint32(pos0), uint32(c.heads), uint32(c.kvHeads), uint32(c.dk), uint32(c.dv),
						uint32(k.Cols), uint32(v.Cols), scale, b32(c.gate)}),
					6: u16Bytes(k.Scales[c.kc0/group:]), 7: u16Bytes(k.Biases[c.kc0/group:]),
					8: u16Bytes(v.Scales[vc0/group:]), 9: u16Bytes(v.Biases[vc0/group:]), 10: params(uint32(group)),
				}})
			compare(t, kernel, bytesF32(out[4]), want, 1e-5, 1e-4)
		})
	}
}
