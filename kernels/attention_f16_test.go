package kernels

import (
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"testing"

	"github.com/mlx-moe/mlx-moe/internal/allocs"
)

// randHalf is n random halves (normal values, rounded).
func randHalf(rng *rand.Rand, n int) []uint16 {
	h := make([]uint16, n)
	for i := range h {
		h[i] = F32ToF16(float32(rng.NormFloat64()))
	}
	return h
}

// TestFusedF16Kernels: the score, softmax and value kernels against their
// portable forms for every width, head dims that leave each loop's chunk
// tail (8 to 264; none, one or two chunks after the cached four-row value
// kernel's triples), key counts that leave a vector's tail, strided rows;
// the value kernels for values in cache and from memory.
// Tolerances: float32 sums in another order (checkScores; 1e-5 relative
// for the softmax and the values).
func TestFusedF16Kernels(t *testing.T) {
	simdModes(t, func(t *testing.T) {
		rng := rand.New(rand.NewPCG(31, 1))
		for _, r := range []int{2, 4, 8} {
			for _, d := range []int{8, 16, 24, 32, 40, 56, 64, 72, 136, 256, 264} {
				for _, nk := range []int{1, 3, 7, 33, 64} {
					what := fmt.Sprintf("r %d d %d keys %d", r, d, nk)
					stride := d + 8*rng.IntN(3)
					k, v := randHalf(rng, (nk-1)*stride+d), randHalf(rng, (nk-1)*stride+d)
					q := randVec(rng, r*d)

					got, want := make([]float32, attnKeys*8), make([]float32, attnKeys*8)
					attnScoresF16(r, got, q, d, k, stride, nk)
					attnScoresF16Go(r, want, q, d, k, stride, nk)
					checkScores(t, what, r, got, want, q, d, k, stride, nk)

					// The same scores into both softmaxes, a running state
					// from earlier blocks, one row yet unseen.
					copy(want, got)
					m, l := make([]float32, 8), make([]float32, 8)
					for i := range m {
						m[i], l[i] = float32(rng.NormFloat64()), 1+rng.Float32()
					}
					m[1], l[1] = float32(math.Inf(-1)), 0
					m2, l2 := append([]float32(nil), m...), append([]float32(nil), l...)
					corr, corr2 := make([]float32, 8), make([]float32, 8)
					attnSoftmax(got, nk, r, m, l, corr)
					attnSoftmaxGo(want, nk, r, m2, l2, corr2)
					close32(t, what+" p", got[:nk*r], want[:nk*r], 1e-5)
					close32(t, what+" max", m[:r], m2[:r], 0)
					close32(t, what+" sum", l[:r], l2[:r], 1e-5)
					close32(t, what+" rescale", corr[:r], corr2[:r], 1e-5)

					o := randVec(rng, r*d)
					o2 := append([]float32(nil), o...)
					attnPVF16Go(r, o2, d, corr, got, v, stride, nk)
					for _, cached := range []bool{false, true} {
						o3 := append([]float32(nil), o...)
						attnPVF16(r, o3, d, corr, got, v, stride, nk, cached)
						close32(t, fmt.Sprintf("%s cached %v out", what, cached), o3, o2, 1e-5)
					}
				}
			}
		}
	})
}

// checkScores compares scores within the float32 bound of a dk-term sum
// in another order: dk·2^-23 times the sum of the terms' magnitudes (a
// score is often a small difference of large terms).
func checkScores(t *testing.T, what string, r int, got, want, q []float32, dk int, k []uint16, ks, nk int) {
	t.Helper()
	for j := 0; j < nk; j++ {
		for i := 0; i < r; i++ {
			var mag float64
			for c := 0; c < dk; c++ {
				mag += math.Abs(float64(q[i*dk+c]) * float64(F16ToF32(k[j*ks+c])))
			}
			if e := math.Abs(float64(got[j*r+i] - want[j*r+i])); e > float64(dk)*0x1p-23*mag {
				t.Fatalf("%s: score of row %d key %d = %g, want %g", what, i, j, got[j*r+i], want[j*r+i])
			}
		}
	}
}

// TestAttentionSoftmaxOneRow: the softmax kernel with one row a vector
// (eight keys to a vector), a row with no finite score yet.
func TestAttentionSoftmaxOneRow(t *testing.T) {
	rng := rand.New(rand.NewPCG(31, 2))
	for _, nk := range []int{1, 8, 13, 64} {
		s := randVec(rng, attnKeys*8)
		s2 := append([]float32(nil), s...)
		m, l, corr := make([]float32, 8), make([]float32, 8), make([]float32, 8)
		m2, l2, corr2 := make([]float32, 8), make([]float32, 8), make([]float32, 8)
		m[0], m2[0] = float32(math.Inf(-1)), float32(math.Inf(-1))
		attnSoftmax(s, nk, 1, m, l, corr)
		attnSoftmaxGo(s2, nk, 1, m2, l2, corr2)
		close32(t, fmt.Sprintf("keys %d p", nk), s[:nk], s2[:nk], 1e-5)
		close32(t, fmt.Sprintf("keys %d sum", nk), l[:1], l2[:1], 1e-5)
		if m[0] != m2[0] || corr[0] != 0 {
			t.Fatalf("keys %d: max %v (want %v), rescale %v (want 0)", nk, m[0], m2[0], corr[0])
		}
	}
}

// TestAttentionKVFusedF16: AttentionKV over half caches against the
// reference where the fused kernels take the tile: one to eight rows
// (GQA groups of one token, two to four tokens, whose last block is
// masked and goes the float32 way), several row groups (9 to 32 rows),
// prompt chunks (tiles of 128 rows, diagonal blocks masked), decode
// units of every kv head over a key range (split with 8 and 2 workers,
// whole with 1),
// head dims 8 to 256 and dk != dv, positions around block edges, split
// decode (8 workers), latent attention (values inside the key rows), and
// ragged head dims that keep the float32 path. Tolerance 2e-5 as
// TestAttentionKV.
func TestAttentionKVFusedF16(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(0))
	simdModes(t, func(t *testing.T) {
		rng := rand.New(rand.NewPCG(31, 3))
		for _, procs := range []int{8, 2, 1} {
			runtime.GOMAXPROCS(procs)
			allHeads := 0
			for _, c := range []attnCase{
				{1, 0, 1, 1, 64, 64, 0, 0},
				{1, 200, 2, 1, 8, 8, 0, 0},
				{1, 129, 3, 1, 24, 40, 0, 0},
				{1, 700, 8, 2, 64, 64, 0, 0},
				{1, 63, 5, 1, 72, 16, 0, 0},
				{1, 64, 6, 1, 128, 136, 0, 0},
				{1, 1000, 14, 2, 16, 24, 0, 0},
				{1, 513, 8, 1, 256, 256, 0, 0},
				{2, 100, 4, 2, 64, 64, 0, 0},
				{2, 300, 8, 2, 32, 32, 0, 0},
				{3, 64, 2, 1, 16, 16, 0, 0},
				{4, 127, 4, 2, 48, 56, 0, 0},
				{1, 400, 12, 1, 64, 64, 0, 0},
				{1, 95, 11, 1, 32, 32, 0, 0},
				{1, 3000, 34, 2, 64, 64, 0, 0},
				{2, 150, 32, 2, 64, 64, 0, 0},
				{40, 130, 8, 2, 64, 64, 0, 0},
				{70, 9, 4, 2, 24, 16, 0, 0},
				{1, 100, 4, 2, 13, 7, 0, 0},
				{1, 100, 4, 2, 64, 60, 0, 0},
			} {
				want := c.dk%8 == 0 && c.dv%8 == 0
				tile := attnTile{src: &kvSource{k: &KVRows{Format: KVF16}, v: &KVRows{Format: KVF16}}, dk: c.dk, dv: c.dv}
				if got := tile.fusedF16(); got != (want && hasFusedF16()) {
					t.Fatalf("%+v: fused %v", c, got)
				}
				if tile.allHeads(c.n, c.kvHeads, c.pos0+c.n) {
					allHeads++
				}
				checkAttentionKV(t, KVF16, c, false, rng)
			}
			if hasFusedF16() && allHeads == 0 {
				t.Fatalf("%d workers: no case takes every kv head a unit", procs)
			}
			checkAttentionKV(t, KVF16, attnCase{1, 600, 16, 1, 576, 512, 0, 0}, true, rng)
			checkAttentionKV(t, KVF16, attnCase{1, 77, 4, 1, 96, 64, 0, 0}, true, rng)
			checkAttentionKV(t, KVF16, attnCase{2, 130, 2, 1, 96, 64, 0, 0}, true, rng)
		}
	})
}

// TestAttentionSinksKVFusedF16: sinks and sliding windows over half
// caches through the fused kernels (windows that start inside a block
// mask that block for some rows), against the float64 reference.
func TestAttentionSinksKVFusedF16(t *testing.T) {
	simdModes(t, func(t *testing.T) {
		rng := rand.New(rand.NewPCG(31, 4))
		for _, c := range []struct {
			sinksKVCase
			heads, kvHeads, d int
		}{
			{sinksKVCase{1, 300, 0}, 2, 1, 64}, {sinksKVCase{1, 300, 100}, 8, 1, 32}, {sinksKVCase{1, 1000, 128}, 16, 2, 64},
			{sinksKVCase{2, 300, 70}, 4, 2, 16}, {sinksKVCase{3, 90, 64}, 2, 1, 24}, {sinksKVCase{1, 500, 0}, 24, 1, 16},
			{sinksKVCase{1, 64, 64}, 4, 1, 8}, {sinksKVCase{1, 2000, 1500}, 8, 2, 16},
		} {
			checkAttentionSinksKV(t, KVF16, c.sinksKVCase, c.heads, c.kvHeads, c.d, 0, rng)
		}
	})
}

// TestAttentionKVFusedF16AllocatesNothing: decode over a half cache
// through the fused kernels, unsplit and split, one row group and
// several, keeps its scratch between calls.
func TestAttentionKVFusedF16AllocatesNothing(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(0))
	runtime.GOMAXPROCS(2)
	rng := rand.New(rand.NewPCG(31, 6))
	const keys, kvHeads, d = 2000, 2, 64
	k, _ := NewKVRows(KVF16, keys, kvHeads*d, 0)
	k.Store(0, randVec(rng, keys*kvHeads*d), kvHeads*d, keys)
	for _, heads := range []int{2, 12, 40} {
		for _, kvh := range []int{1, 2} {
			q, out := randVec(rng, heads*d), make([]float32, heads*d)
			run := func() { AttentionKV(out, q, k, 0, k, 0, 1, keys-1, heads, kvh, d, d, AttentionScale(d)) }
			run()
			run()
			if r := allocs.Steady(10, run, nil); r.PerCall != 0 {
				t.Errorf("%d heads, %d kv heads, warm: %v", heads, kvh, r)
			}
		}
	}
}

// FuzzAttentionKVF16: arbitrary shapes over half caches against the
// reference, SIMD on and off.
func FuzzAttentionKVF16(f *testing.F) {
	f.Add(uint8(1), uint16(300), uint8(3), uint8(1), uint8(7), uint8(7), uint64(1))
	f.Add(uint8(2), uint16(64), uint8(7), uint8(1), uint8(15), uint8(3), uint64(2))
	f.Fuzz(func(t *testing.T, n uint8, pos0 uint16, group, kvHeads, dk8, dv8 uint8, seed uint64) {
		kvh := 1 + int(kvHeads)%3
		c := attnCase{n: 1 + int(n)%4, pos0: int(pos0) % 700, kvHeads: kvh, heads: kvh * (1 + int(group)%12),
			dk: 8 * (1 + int(dk8)%33), dv: 8 * (1 + int(dv8)%33)}
		saved := hasAVX2FMA
		defer func() { hasAVX2FMA = saved }()
		checkAttentionKV(t, KVF16, c, false, rand.New(rand.NewPCG(seed, 7)))
		hasAVX2FMA = false
		checkAttentionKV(t, KVF16, c, false, rand.New(rand.NewPCG(seed, 7)))
	})
}

// BenchmarkAttentionF16Rows: one decode step over 8k positions of a half
// cache (2 kv heads) for 1 to 128 query rows per kv head (GQA group, or
// tokens × group) at head dims 64 and 256, through the fused kernels and
// through the float32 tile (attnFused off). GB/cpu-s divides the cache
// bytes by the process's CPU time, which the neighbours on a shared
// machine do not inflate.
func BenchmarkAttentionF16Rows(b *testing.B) {
	const pos0, kvHeads = 8192, 2
	rng := rand.New(rand.NewPCG(31, 5))
	defer func() { attnFused = true }()
	for _, d := range []int{64, 256} {
		k, _ := NewKVRows(KVF16, pos0+1, kvHeads*d, 0)
		v, _ := NewKVRows(KVF16, pos0+1, kvHeads*d, 0)
		k.Store(0, randVec(rng, (pos0+1)*kvHeads*d), kvHeads*d, pos0+1)
		v.Store(0, randVec(rng, (pos0+1)*kvHeads*d), kvHeads*d, pos0+1)
		for _, rows := range []int{1, 2, 4, 8, 16, 32, 64, 128} {
			heads := rows * kvHeads
			q := randVec(rng, heads*d)
			out := make([]float32, heads*d)
			for _, path := range []struct {
				name  string
				fused bool
			}{{"fused", true}, {"tile", false}} {
				b.Run(fmt.Sprintf("d%d/rows%d/%s", d, rows, path.name), func(b *testing.B) {
					attnFused = path.fused
					b.SetBytes(k.Bytes() + v.Bytes())
					c0 := cpuSeconds()
					for range b.N {
						AttentionKV(out, q, k, 0, v, 0, 1, pos0, heads, kvHeads, d, d, AttentionScale(d))
					}
					if c := cpuSeconds() - c0; c > 0 {
						b.ReportMetric(float64(k.Bytes()+v.Bytes())*float64(b.N)/c/1e9, "GB/cpu-s")
					}
				})
			}
		}
	}
}
