package mslharness

import (
	"math"
	"sort"
	"testing"

	"github.com/mlx-moe/mlx-moe/kernels"
)

// nearestF16 rounds to the nearest half (ties to even) by search over all
// finite halves: an independent reference for metal_compat.h's conversion.
func nearestF16(table []uint16, x float32) uint16 {
	if math.IsNaN(float64(x)) {
		return 0x7e00
	}
	sign := uint16(0)
	if math.Signbit(float64(x)) {
		sign, x = 0x8000, -x
	}
	if x >= 65520 { // halfway between the largest half and 2^16 rounds up
		return sign | 0x7c00
	}
	i := sort.Search(len(table), func(i int) bool { return kernels.F16ToF32(table[i]) >= x })
	if i == len(table) {
		return sign | table[len(table)-1]
	}
	hi := table[i]
	if i == 0 || kernels.F16ToF32(hi) == x {
		return sign | hi
	}
	lo := table[i-1]
	dl, dh := float64(x)-float64(kernels.F16ToF32(lo)), float64(kernels.F16ToF32(hi))-float64(x)
	if dl < dh || (dl == dh && lo&1 == 0) {
		return sign | lo
	}
	return sign | hi
}

func TestCompatConversions(t *testing.T) {
	t.Parallel()
	p := program(t, "testdata/compat.metal")
	var table []uint16 // non-negative finite halves, ascending
	for h := range uint16(0x7c00) {
		table = append(table, h)
	}
	r := newRand(18)
	x := []float32{0, float32(math.Copysign(0, -1)), 1, -2.5, 65504, 65519, 65520, 1e6, -1e6,
		float32(math.Inf(1)), 5.96e-8, 2.98e-8, 2.99e-8, 1e-10, 6.1e-5, 3.0e-5, float32(math.NaN())}
	for range 2000 {
		x = append(x, float32(r.NormFloat64()*math.Pow(2, float64(r.IntN(40)-24))))
	}
	n := len(x)
	out := launch(t, p, "convert", oneD(n, map[int][]byte{0: f32Bytes(x), 1: u16Bytes(make([]uint16, n)), 2: u16Bytes(make([]uint16, n)),
		3: u32Bytes([]uint32{uint32(n)})}))
	h, b := bytesU16(out[1]), bytesU16(out[2])
	for i, v := range x {
		if want := nearestF16(table, v); h[i] != want {
			t.Errorf("half(%g) = %#04x, want %#04x", v, h[i], want)
		}
		if math.IsNaN(float64(v)) {
			if !math.IsNaN(float64(kernels.BF16ToF32(b[i]))) {
				t.Errorf("bfloat(NaN) = %#04x, not a NaN", b[i])
			}
		} else if want := f32ToBF16(v); b[i] != want {
			t.Errorf("bfloat(%g) = %#04x, want %#04x", v, b[i], want)
		}
	}
}

// A threadgroup of 48 threads: a full SIMD-group and one of 16 lanes.
func TestCompatSimdFunctions(t *testing.T) {
	t.Parallel()
	p := program(t, "testdata/compat.metal")
	const n = 48
	x := make([]float32, n)
	for i := range x {
		x[i] = float32((i*37)%23) - 11 // small integers: sums are exact
	}
	out := launch(t, p, "simd_ops", Launch{Groups: [3]int{1, 1, 1}, Threads: [3]int{n, 1, 1}, Seed: 5,
		Buffers: map[int][]byte{0: f32Bytes(x), 1: f32Bytes(make([]float32, 11*n))}})
	got := bytesF32(out[1])
	for tid := range n {
		base, lanes := tid/32*32, min(32, n-tid/32*32)
		lane := tid - base
		g := x[base : base+lanes]
		var sum, prefix float32
		mx, mn, prod, anyEq, allGt := g[0], g[0], float32(1), float32(0), float32(2)
		for i, v := range g {
			sum += v
			mx, mn = max(mx, v), min(mn, v)
			if i < lane {
				prefix += v
			}
			if v > 0 {
				prod *= 2
			}
			if v == 11 {
				anyEq = 1
			}
			if v <= -12 {
				allGt = 0
			}
		}
		down, xor := g[lane], g[lane]
		if lane+3 < lanes {
			down = g[lane+3]
		}
		if lane^5 < lanes {
			xor = g[lane^5]
		}
		up := g[lane]
		if lane >= 2 {
			up = g[lane-2]
		}
		want := []float32{sum, mx, mn, prefix, down, xor, g[7], prefix + g[lane], up, prod, anyEq + allGt}
		for k, w := range want {
			if got[tid*11+k] != w {
				t.Errorf("thread %d, op %d: %g, want %g", tid, k, got[tid*11+k], w)
			}
		}
	}
}
