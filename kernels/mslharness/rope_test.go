package mslharness

import (
	"testing"

	"github.com/mlx-moe/mlx-moe/kernels"
)

type ropeParams struct {
	Heads, HeadDim, RotaryDim uint32
	Scale                     float32
	Interleaved               uint32
}

func TestRope(t *testing.T) {
	t.Parallel()
	p := program(t, "rope.metal")
	r := newRand(6)
	yarn := &kernels.YaRN{Factor: 4, OriginalMaxPositions: 4096, BetaFast: 32, BetaSlow: 1}
	for _, c := range []struct {
		name                   string
		heads, headDim, rotary int
		base                   float64
		yarn                   *kernels.YaRN
		interleaved            bool
	}{
		{"full neox", 4, 128, 128, 10000, nil, false},
		{"partial rotary (qwen3-next 25%)", 3, 256, 64, 10000000, nil, false},
		{"interleaved", 2, 64, 64, 10000, nil, true},
		{"yarn, odd rotary pairs", 2, 96, 96, 1000000, yarn, false},
	} {
		n := 3
		pos := []int32{0, 17, 40000}
		inv, scale := kernels.RopeInvFreq(c.rotary, c.base, c.yarn)
		x := randn(r, n*c.heads*c.headDim, 1)
		want := append([]float32(nil), x...)
		kernels.Rope(want, pos, n, c.heads, c.headDim, &kernels.RopeParams{RotaryDim: c.rotary, InvFreq: inv, Scale: scale, Interleaved: c.interleaved})
		il := uint32(0)
		if c.interleaved {
			il = 1
		}
		half := c.rotary / 2
		out := launch(t, p, "rope", Launch{
			Groups: [3]int{(half + 31) / 32, c.heads, n}, Threads: [3]int{32, 1, 1},
			Buffers: map[int][]byte{
				0: f32Bytes(x), 1: i32Bytes(pos), 2: f32Bytes(inv),
				3: params(ropeParams{uint32(c.heads), uint32(c.headDim), uint32(c.rotary), scale, il}),
			},
		})
		t.Run(c.name, func(t *testing.T) { compare(t, "rope", bytesF32(out[0]), want, 0, 2e-6) })
	}
}
