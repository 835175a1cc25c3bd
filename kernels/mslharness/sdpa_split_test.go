package mslharness

import (
	"fmt"
	"testing"

	"github.com/mlx-moe/mlx-moe/kernels"
)

type splitParams struct{ Chunk, Splits uint32 }

type mergeParams struct{ Heads, DV, Splits, HasGate uint32 }

// TestSDPASplit runs the split-K attention (sdpa_split_* over chunks of
// the cache, then sdpa_merge) on every cache format against the Go
// reference: a long decode, a decode with a split past the last position,
// and a prefill whose tokens end in different splits, gated and not.
func TestSDPASplit(t *testing.T) {
	t.Parallel()
	p := program(t, "attention.metal")
	r := newRand(41)
	for _, c := range []struct {
		f                              kernels.KVFormat
		n, len, heads, kvHeads, dk, dv int
		chunk, splits                  int
		gate                           bool
	}{
		{kernels.KVF32, 1, 700, 8, 2, 128, 128, 96, 8, true},
		{kernels.KVF32, 1, 70, 4, 4, 64, 48, 16, 6, false}, // split 5 is past position 69
		{kernels.KVF32, 3, 40, 4, 2, 64, 64, 13, 4, true},  // token 0 ends in split 2, tokens 1-2 in split 3
		{kernels.KVF16, 1, 300, 16, 2, 256, 256, 64, 5, false},
		{kernels.KVQ8, 1, 260, 8, 2, 128, 128, 64, 5, true},
		{kernels.KVQ4, 2, 100, 4, 1, 64, 64, 32, 4, false},
	} {
		name := fmt.Sprintf("%v n=%d len=%d splits=%d", c.f, c.n, c.len, c.splits)
		t.Run(name, func(t *testing.T) {
			kCols, vCols := c.kvHeads*c.dk, c.kvHeads*c.dv
			group := kernels.KVGroup(c.dk, c.dv, 0)
			k, err := kernels.NewKVRows(c.f, c.len, kCols, group)
			if err != nil {
				t.Fatal(err)
			}
			v, err := kernels.NewKVRows(c.f, c.len, vCols, group)
			if err != nil {
				t.Fatal(err)
			}
			k.Store(0, randn(r, c.len*kCols, 1), kCols, c.len)
			v.Store(0, randn(r, c.len*vCols, 1), vCols, c.len)
			q := randn(r, c.n*c.heads*c.dk, 1)
			gate := randn(r, c.n*c.heads*c.dv, 2)
			scale := kernels.AttentionScale(c.dk)
			pos0 := c.len - c.n
			want := make([]float32, c.n*c.heads*c.dv)
			kernels.AttentionKV(want, q, k, 0, v, 0, c.n, pos0, c.heads, c.kvHeads, c.dk, c.dv, scale)
			if c.gate {
				for i := range want {
					want[i] *= kernels.Sigmoid(gate[i])
				}
			}
			rows := c.n * c.heads
			bufs := map[int][]byte{
				0: f32Bytes(q),
				5: params(sdpaParams{uint32(pos0), uint32(c.heads), uint32(c.kvHeads), uint32(c.dk), uint32(c.dv),
					uint32(kCols), uint32(vCols), scale, 0}),
				11: params(splitParams{uint32(c.chunk), uint32(c.splits)}),
				12: f32Bytes(make([]float32, rows*c.splits*c.dv)),
				13: f32Bytes(make([]float32, rows*c.splits*2)),
			}
			kernel := "sdpa_split_" + c.f.String()
			switch c.f {
			case kernels.KVF32:
				bufs[1], bufs[2] = f32Bytes(k.F32), f32Bytes(v.F32)
			case kernels.KVF16:
				bufs[1], bufs[2] = u16Bytes(k.Half), u16Bytes(v.Half)
			default:
				bufs[1], bufs[2] = u32Bytes(k.Q), u32Bytes(v.Q)
				bufs[6], bufs[7], bufs[8], bufs[9] = u16Bytes(k.Scales), u16Bytes(k.Biases), u16Bytes(v.Scales), u16Bytes(v.Biases)
				bufs[10] = params(uint32(group))
			}
			part := launch(t, p, kernel, Launch{Groups: [3]int{c.heads, c.n, c.splits}, Threads: [3]int{256, 1, 1},
				Seed: uint64(c.len), Buffers: bufs})
			out := launch(t, p, "sdpa_merge", Launch{Groups: [3]int{c.heads, c.n, 1}, Threads: [3]int{256, 1, 1},
				Seed: uint64(c.len) + 1, Buffers: map[int][]byte{
					0: part[12], 1: part[13], 2: f32Bytes(gate), 3: f32Bytes(make([]float32, len(want))),
					4: params(mergeParams{uint32(c.heads), uint32(c.dv), uint32(c.splits), b32(c.gate)}),
				}})
			tol := 1e-5
			if c.f.Quantized() {
				tol = 1e-4
			}
			compare(t, kernel, bytesF32(out[3]), want, tol/10, tol)
			compare(t, "sdpa_merge", bytesF32(out[3]), want, tol/10, tol)
		})
	}
}
