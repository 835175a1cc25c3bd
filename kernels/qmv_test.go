package kernels

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

// qmvReference is the decode product in float64 from Matrix.Row's
// dequantization, with the bound its float32 forms must meet: a few float32
// roundings of Σ|w·x| per row.
func qmvReference(x []float32, n int, m *Matrix) (want, bound []float64) {
	row := make([]float32, m.Cols)
	want, bound = make([]float64, n*m.Rows), make([]float64, n*m.Rows)
	for r := 0; r < m.Rows; r++ {
		m.Row(r, row)
		for t := 0; t < n; t++ {
			var s, a float64
			for c, w := range row {
				p := float64(w) * float64(x[t*m.Cols+c])
				s += p
				a += math.Abs(p)
			}
			want[t*m.Rows+r], bound[t*m.Rows+r] = s, 1e-6*a*math.Sqrt(float64(m.Cols))/8+1e-30
		}
	}
	return want, bound
}

// decodePath is a setting of the SIMD feature flags and the activation
// type that a test runs the decode kernels under.
type decodePath struct {
	name string
	simd bool
	act  int // integer activations of this width (8, 16), or 0: float32
}

// decodePaths are the Go kernels and each SIMD path this machine has.
func decodePaths() []decodePath {
	paths := []decodePath{{"go", false, 0}}
	if simdKernels && (hasAVX2FMA || hasNEON) {
		paths = append(paths, decodePath{"simd", true, 0})
	}
	if simdKernels && simdIntActivations(4, 16) {
		paths = append(paths, decodePath{"simd-int16", true, 16})
	}
	if simdKernels && simdIntActivations(4, 8) {
		paths = append(paths, decodePath{"simd-int8", true, 8})
	}
	return paths
}

// withFeatures runs fn on path p: the SIMD feature flags of this machine
// cleared for the Go path, and the activation type as p says.
func withFeatures(p decodePath, fn func()) {
	avx2, neon, int8, int16 := hasAVX2FMA, hasNEON, Int8Activations, Int16Activations
	hasAVX2FMA, hasNEON = avx2 && p.simd, neon && p.simd
	Int8Activations, Int16Activations = p.act == 8, p.act == 16
	defer func() { hasAVX2FMA, hasNEON, Int8Activations, Int16Activations = avx2, neon, int8, int16 }()
	fn()
}

// intDequantized is x as the integer kernels see it: per group of group
// values, rounded to the nearest multiple of max|x|/levels.
func intDequantized(x []float32, group int, levels float32) []float32 {
	out := make([]float32, len(x))
	for g := 0; g < len(x); g += group {
		var amax float32
		for _, v := range x[g : g+group] {
			amax = max(amax, float32(math.Abs(float64(v))))
		}
		if amax == 0 {
			continue
		}
		// The same float32 steps as the kernel, so no value rounds the
		// other way.
		inv, dx := levels/amax, amax/levels
		for j, v := range x[g : g+group] {
			out[g+j] = float32(math.Round(float64(v*inv))) * dx
		}
	}
	return out
}

// checkQMV runs the decode product of m on every path and compares it with
// the float64 reference (of the integer-rounded x on the integer paths).
func checkQMV(t *testing.T, rng *rand.Rand, m *Matrix, n int) {
	t.Helper()
	x := randVec(rng, n*m.Cols)
	want, bound := qmvReference(x, n, m)
	rounded := map[int][2][]float64{}
	for _, width := range []int{8, 16} {
		w, b := qmvReference(intDequantized(x, m.Q.GroupSize, float32(int(1)<<(width-1)-1)), n, m)
		rounded[width] = [2][]float64{w, b}
	}
	for _, p := range decodePaths() {
		out := make([]float32, n*m.Rows)
		withFeatures(p, func() { MatMul(out, x, n, m) })
		ref, refBound := want, bound
		if p.act != 0 && simdIntActivations(m.Q.Bits, p.act) && m.Q.GroupSize <= 128 && m.Q.GroupSize%32 == 0 {
			ref, refBound = rounded[p.act][0], rounded[p.act][1]
		}
		for i, w := range ref {
			// The Go path dequantizes whole rows for widths other than 4
			// and 8, which costs a rounding per value.
			tol := refBound[i]
			if m.Q.Bits != 4 && m.Q.Bits != 8 {
				tol *= 8
			}
			if d := math.Abs(float64(out[i]) - w); d > tol {
				t.Fatalf("%s path, %d-bit group %d f16 %v [%d,%d] n %d: out[%d] = %.9g, want %.9g (|diff| %.3g > %.3g)",
					p.name, m.Q.Bits, m.Q.GroupSize, m.Q.F16Scales, m.Rows, m.Cols, n, i, out[i], w, d, tol)
			}
		}
	}
}

// TestQMVPathsMatchReference covers every width, group size and scale type
// on ragged shapes: odd group counts, single rows, row counts that split
// unevenly across workers, and 1 to qmvTokens tokens.
func TestQMVPathsMatchReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 11))
	for _, bits := range []int{2, 3, 4, 5, 6, 8} {
		for _, group := range []int{32, 64, 128} {
			for _, f16 := range []bool{false, true} {
				// {3, 4}: whole 128-value blocks at every group size (the
				// 2-bit int16 word kernel).
				for _, shape := range [][2]int{{1, 1}, {7, 3}, {33, 5}, {130, 2}, {9, 11}, {3, 4}} {
					m := randomQuant(rng, shape[0], shape[1]*group, bits, group, f16)
					for _, n := range []int{1, 2, 3, qmvTokens} {
						checkQMV(t, rng, m, n)
					}
				}
			}
		}
	}
}

// TestQMVOtherGroupSizes: group sizes the SIMD kernels do not take (16,
// 256) fall back to the Go kernels on every path.
func TestQMVOtherGroupSizes(t *testing.T) {
	rng := rand.New(rand.NewPCG(14, 14))
	for _, bits := range []int{3, 4, 8} {
		for _, group := range []int{16, 256} {
			checkQMV(t, rng, randomQuant(rng, 9, 2*256, bits, group, false), 2)
		}
	}
}

// TestQMVLargeParallel runs shapes big enough to be split across workers.
func TestQMVLargeParallel(t *testing.T) {
	rng := rand.New(rand.NewPCG(12, 12))
	for _, bits := range []int{3, 4, 8} {
		checkQMV(t, rng, randomQuant(rng, 515, 1024, bits, 64, false), 1)
	}
}

// FuzzQMV compares every decode path with the reference on fuzzed shapes,
// widths and data.
func FuzzQMV(f *testing.F) {
	f.Add(uint8(2), uint8(1), uint8(3), uint8(2), uint8(1), false, uint64(1))
	f.Add(uint8(5), uint8(0), uint8(1), uint8(7), uint8(4), true, uint64(2))
	f.Add(uint8(0), uint8(0), uint8(5), uint8(4), uint8(3), false, uint64(3))
	f.Add(uint8(1), uint8(2), uint8(2), uint8(0), uint8(1), true, uint64(4))
	f.Fuzz(func(t *testing.T, bitsIdx, groupIdx, rows, groups, n uint8, f16 bool, seed uint64) {
		bits := []int{2, 3, 4, 5, 6, 8}[int(bitsIdx)%6]
		group := []int{32, 64, 128}[int(groupIdx)%3]
		r, g, tokens := 1+int(rows)%64, 1+int(groups)%12, 1+int(n)%qmvTokens
		rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
		m := randomQuant(rng, r, g*group, bits, group, f16)
		t.Run(fmt.Sprint(bits, group, r, g, tokens), func(t *testing.T) { checkQMV(t, rng, m, tokens) })
	})
}

// TestStreamReadSumsWords checks the bandwidth reader's checksum against a
// plain sum, on and off the SIMD path, with a ragged tail.
func TestStreamReadSumsWords(t *testing.T) {
	rng := rand.New(rand.NewPCG(13, 13))
	b := make([]byte, 3<<20+4099)
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	var want uint64
	for i, v := range b {
		want += uint64(v) << (8 * (i % 8))
	}
	for _, p := range decodePaths() {
		var got uint64
		withFeatures(p, func() { got = StreamRead(b) })
		if got != want {
			t.Fatalf("%s: StreamRead = %#x, want %#x", p.name, got, want)
		}
	}
}

// BenchmarkQMVRows is the decode kernels' arithmetic rate per width on one
// goroutine: a 16x4096 group-64 matrix small enough to stay in L1, so the
// figure is what the kernel can do when memory keeps up (compare 4-bit's
// bytes/s with the other widths'), by wall and by CPU time.
func BenchmarkQMVRows(b *testing.B) {
	rng := rand.New(rand.NewPCG(15, 15))
	for _, p := range decodePaths() {
		for _, bits := range []int{2, 3, 4, 5, 6, 8} {
			m := randomQuant(rng, 16, 4096, bits, 64, false)
			x := randVec(rng, m.Cols)
			out := make([]float32, m.Rows)
			b.Run(fmt.Sprintf("%s/%dbit", p.name, bits), func(b *testing.B) {
				withFeatures(p, func() {
					d := &DecodeInput{}
					d.Prepare(x, 1, m.Cols, m.Q)
					b.SetBytes(int64(m.Bytes()))
					c0 := cpuSeconds()
					for i := 0; i < b.N; i++ {
						MatVecRows(out, d, m, 0, m.Rows)
					}
					values := float64(m.Rows*m.Cols) * float64(b.N)
					b.ReportMetric(values/b.Elapsed().Seconds()/1e9, "Gvalues/s")
					// On a shared machine the CPU time is the steadier figure.
					if c := cpuSeconds() - c0; c > 0 {
						b.ReportMetric(values/c/1e9, "Gvalues/cpu-s")
					}
				})
			})
		}
	}
}

// TestRoundLevelMatchesRound32: the activation quantizer's rounding is
// round32's over the range it is used on, halves and their neighbours
// included, so int16 and int8 inputs are what the reference rounds to.
func TestRoundLevelMatchesRound32(t *testing.T) {
	rng := rand.New(rand.NewPCG(16, 16))
	check := func(f float32) {
		if got, want := roundLevel(f), int32(round32(f)); got != want {
			t.Fatalf("roundLevel(%v) = %d, round32 gives %d", f, got, want)
		}
	}
	for k := -32768; k <= 32768; k++ {
		h := float32(k) + 0.5
		check(h)
		check(math.Nextafter32(h, 0))
		check(math.Nextafter32(h, float32(math.Inf(1))))
		check(math.Nextafter32(h, float32(math.Inf(-1))))
	}
	for i := 0; i < 1e6; i++ {
		check(float32((rng.Float64()*2 - 1) * 32767.5))
	}
}

// TestQMVIntTokensMatchOneByOne: on integer activations, a token's row
// results do not depend on how many tokens share the call (the multi-token
// kernels add in the one-token kernels' order), to the bit, for every
// token count.
func TestQMVIntTokensMatchOneByOne(t *testing.T) {
	rng := rand.New(rand.NewPCG(17, 17))
	for _, width := range []int{8, 16} {
		if !simdKernels || !simdIntActivations(4, width) {
			t.Logf("no int%d kernels on this machine", width)
			continue
		}
		p := decodePath{fmt.Sprintf("simd-int%d", width), true, width}
		for _, bits := range []int{2, 3, 4, 5, 6, 8} {
			if !simdIntActivations(bits, width) {
				continue
			}
			for _, cols := range [][2]int{{32, 5 * 32}, {64, 5 * 64}, {128, 5 * 128}, {32, 8 * 32}, {64, 4 * 64}} {
				group := cols[0]
				m := randomQuant(rng, 37, cols[1], bits, group, group == 64)
				x := randVec(rng, qmvTokens*m.Cols)
				withFeatures(p, func() {
					one := make([]float32, m.Rows)
					for n := 2; n <= qmvTokens; n++ {
						all := make([]float32, n*m.Rows)
						MatMul(all, x, n, m)
						for tok := 0; tok < n; tok++ {
							MatMul(one, x[tok*m.Cols:(tok+1)*m.Cols], 1, m)
							for r, v := range one {
								if got := all[tok*m.Rows+r]; math.Float32bits(got) != math.Float32bits(v) {
									t.Fatalf("int%d, %d-bit group %d: token %d row %d is %v with %d tokens, %v alone", width, bits, group, tok, r, got, n, v)
								}
							}
						}
					}
				})
			}
		}
	}
}

// TestQMVNoColumns: a matrix of rows without columns gives zeros on every
// path and width, without reading codes or x.
func TestQMVNoColumns(t *testing.T) {
	for _, p := range decodePaths() {
		for _, bits := range []int{2, 3, 4, 5, 6, 8} {
			m := &Matrix{Rows: 3, Cols: 0, Q: &Quant{Bits: bits, GroupSize: 64}}
			out := make([]float32, 2*m.Rows)
			withFeatures(p, func() { MatMul(out, nil, 2, m) })
			for i, v := range out {
				if v != 0 {
					t.Fatalf("%s path, %d-bit: out[%d] = %v, want 0", p.name, bits, i, v)
				}
			}
		}
	}
}

// TestQMVIntExtremes: every code at its largest and every x at the
// group's largest magnitude, of one sign, give the integer kernels their
// largest sums; they must match the reference (no int32 lane overflows),
// for every width and group size, on rows of whole 128-value blocks and
// not.
func TestQMVIntExtremes(t *testing.T) {
	for _, width := range []int{8, 16} {
		p := decodePath{fmt.Sprintf("simd-int%d", width), true, width}
		for _, bits := range []int{2, 3, 4, 5, 6, 8} {
			if !simdKernels || !simdIntActivations(bits, width) {
				continue
			}
			for _, shape := range [][2]int{{32, 4}, {32, 5}, {64, 4}, {64, 5}, {128, 4}, {128, 5}} {
				group := shape[0]
				m := randomQuant(rand.New(rand.NewPCG(21, 21)), 5, shape[1]*group, bits, group, false)
				for i := range m.Q.W {
					m.Q.W[i] = ^uint32(0)
				}
				for i := range m.Q.Scales {
					m.Q.Scales[i], m.Q.Biases[i] = F32ToBF16(1), 0
				}
				for _, sign := range []float32{1, -1} {
					x := make([]float32, qmvTokens*m.Cols)
					for i := range x {
						x[i] = sign
					}
					want, bound := qmvReference(x, qmvTokens, m)
					out := make([]float32, len(want))
					withFeatures(p, func() { MatMul(out, x, qmvTokens, m) })
					for i, w := range want {
						if d := math.Abs(float64(out[i]) - w); d > 8*bound[i] {
							t.Fatalf("int%d, %d-bit group %d, x %v: out[%d] = %v, want %v", width, bits, group, sign, i, out[i], w)
						}
					}
				}
			}
		}
	}
}

// BenchmarkQMVRowsTokens is the integer kernels' rate for 1 to qmvTokens
// tokens on one goroutine, a 64x4096 group-64 matrix in cache: token-values
// (rows·cols·tokens) per CPU second, so a kernel that unpacks each block of
// codes once for all tokens shows a rising figure with the token count.
func BenchmarkQMVRowsTokens(b *testing.B) {
	rng := rand.New(rand.NewPCG(18, 18))
	for _, p := range decodePaths() {
		if p.act == 0 {
			continue
		}
		for _, bits := range []int{4, 8} {
			m := randomQuant(rng, 64, 4096, bits, 64, false)
			x := randVec(rng, qmvTokens*m.Cols)
			out := make([]float32, qmvTokens*m.Rows)
			for n := 1; n <= qmvTokens; n++ {
				b.Run(fmt.Sprintf("%s/%dbit/n%d", p.name, bits, n), func(b *testing.B) {
					benchIntRows(b, p, m, x[:n*m.Cols], n, out, "Gtokvalues/cpu-s")
				})
			}
		}
	}
}

// TestGroupStatsMatchesReference: the four-lane maximum and the sum beside
// it are bitwise the one-lane maximum of |v| and the in-order sum, for
// every length (tails included) and with a NaN.
func TestGroupStatsMatchesReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for n := 0; n <= 130; n++ {
		xg := make([]float32, n)
		for i := range xg {
			xg[i] = float32(rng.NormFloat64() * math.Exp(rng.NormFloat64()*3))
		}
		if n == 77 {
			xg[40] = float32(math.NaN())
		}
		var wantMax, wantSum float32
		for _, v := range xg {
			wantMax = max(wantMax, abs32(v))
			wantSum += v
		}
		gotMax, gotSum := groupStats(xg)
		if math.Float32bits(gotMax) != math.Float32bits(wantMax) && !(isNaN32(gotMax) && isNaN32(wantMax)) {
			t.Errorf("n=%d: max %v, want %v", n, gotMax, wantMax)
		}
		if math.Float32bits(gotSum) != math.Float32bits(wantSum) && !(isNaN32(gotSum) && isNaN32(wantSum)) {
			t.Errorf("n=%d: sum %v, want %v", n, gotSum, wantSum)
		}
	}
}

func isNaN32(f float32) bool { return f != f }

// TestPrepareIntSumsMatchFloat: the integer paths take the per-group float
// sums in quantizeGroup's pass; they must be bitwise the float path's, which
// any kernel reading d.sums for this input relies on.
func TestPrepareIntSumsMatchFloat(t *testing.T) {
	if !simdIntActivations(4, 16) {
		t.Skip("no integer-activation kernels on this build")
	}
	rng := rand.New(rand.NewPCG(5, 6))
	// 14,336 columns: long enough that the int16 path quantizes its groups
	// on every core.
	for _, cols := range []int{4 * 128, 112 * 128} {
		for _, group := range []int{32, 64, 128} {
			for _, n := range []int{1, 3} {
				checkPrepareInt(t, rng, cols, group, n)
			}
		}
	}
}

// checkPrepareInt: the int paths' float sums are the float path's, bit for
// bit, and the int16 path's steps and integers are those of each group
// quantized alone.
func checkPrepareInt(t *testing.T, rng *rand.Rand, cols, group, n int) {
	x := make([]float32, n*cols)
	for i := range x {
		x[i] = float32(rng.NormFloat64())
	}
	q := &Quant{Bits: 4, GroupSize: group}
	var float, i16, i8 DecodeInput
	float.Prepare(x, n, cols, q)
	Int16Activations = true
	i16.Prepare(x, n, cols, q)
	Int16Activations = false
	i8.Int8 = true
	i8.Prepare(x, n, cols, q)
	if i16.intWidth != 16 || i8.intWidth != 8 {
		t.Fatalf("group %d: integer paths not taken (widths %d, %d)", group, i16.intWidth, i8.intWidth)
	}
	for g, want := range float.sums {
		if math.Float32bits(i16.sums[g]) != math.Float32bits(want) || math.Float32bits(i8.sums[g]) != math.Float32bits(want) {
			t.Fatalf("cols %d group %d n=%d: sums[%d] int16 %v int8 %v, float %v", cols, group, n, g, i16.sums[g], i8.sums[g], want)
		}
	}
	xq := make([]int16, group)
	for g := range float.sums {
		dx, _, _ := quantizeGroup(xq, x[g*group:(g+1)*group], 32767, true)
		if i16.qdx[g] != dx || !slices.Equal(i16.xq16[g*group:(g+1)*group], xq) {
			t.Fatalf("cols %d group %d n=%d: group %d quantized differently from the group alone", cols, group, n, g)
		}
	}
}

// BenchmarkQMVShortRows is the integer 4-bit kernels' rate on short rows
// (a MoE expert's down product: 512 values, 8 groups of 64) against long
// ones (4096 values) of the same bytes, in cache, on one goroutine: the
// gap between the two is the kernels' per-row cost (scales pass, set-up,
// the row sum's dependency chain, lane reduction, store), which a long
// row amortizes.
func BenchmarkQMVShortRows(b *testing.B) {
	rng := rand.New(rand.NewPCG(19, 19))
	for _, p := range decodePaths() {
		if p.act == 0 {
			continue
		}
		for _, cols := range []int{512, 4096} {
			m := randomQuant(rng, 64*4096/cols, cols, 4, 64, false)
			x := randVec(rng, m.Cols)
			out := make([]float32, m.Rows)
			b.Run(fmt.Sprintf("%s/cols%d", p.name, cols), func(b *testing.B) {
				benchIntRows(b, p, m, x, 1, out, "Gvalues/cpu-s")
			})
		}
	}
}

// benchIntRows times MatVecRows over all of m for the n tokens of x on
// path p and reports rows·cols·n values per CPU second as unit.
func benchIntRows(b *testing.B, p decodePath, m *Matrix, x []float32, n int, out []float32, unit string) {
	withFeatures(p, func() {
		d := &DecodeInput{}
		d.Prepare(x, n, m.Cols, m.Q)
		c0 := cpuSeconds()
		for i := 0; i < b.N; i++ {
			MatVecRows(out, d, m, 0, m.Rows)
		}
		if c := cpuSeconds() - c0; c > 0 {
			b.ReportMetric(float64(m.Rows*m.Cols*n)*float64(b.N)/c/1e9, unit)
		}
	})
}

// BenchmarkQMVFromMemory is the int16 decode path per width on one token
// through 4096x14336 group-64 matrices, enough copies of each (at least
// 192 MiB of weights, six times the L3 of the machines this runs on) that
// the weights come from DRAM, on the worker pool (MatMul). Each iteration
// reads every copy of the width and every copy of a 4-bit set in turn, so
// the rate over 4-bit's (the figure the kernels are held to) is measured
// under the same load, by the wall clock and by the process's CPU time.
func BenchmarkQMVFromMemory(b *testing.B) {
	if !simdKernels || !simdIntActivations(4, 16) {
		b.Skip("no int16 kernels on this machine")
	}
	p := decodePath{"simd-int16", true, 16}
	rng := rand.New(rand.NewPCG(20, 20))
	x := randVec(rng, 14336)
	out := make([]float32, 4096)
	copies := func(bits int) ([]*Matrix, float64) {
		base := randomQuant(rng, 4096, 14336, bits, 64, false)
		ms := []*Matrix{base}
		for len(ms)*base.Bytes() < 192<<20 {
			q := *base.Q
			q.W = append([]uint32(nil), q.W...)
			q.Scales = append([]uint16(nil), q.Scales...)
			q.Biases = append([]uint16(nil), q.Biases...)
			ms = append(ms, &Matrix{Rows: base.Rows, Cols: base.Cols, Q: &q})
		}
		return ms, float64(len(ms) * base.Bytes())
	}
	// pass reads every matrix of ms once and returns the wall and CPU
	// seconds it took.
	pass := func(ms []*Matrix) (wall, cpu float64) {
		c0, t0 := cpuSeconds(), time.Now()
		for _, m := range ms {
			MatMul(out, x, 1, m)
		}
		return time.Since(t0).Seconds(), cpuSeconds() - c0
	}
	set4, bytes4 := copies(4)
	for _, bits := range []int{2, 3, 5, 6, 8} {
		ms, bytes := copies(bits)
		b.Run(fmt.Sprintf("%s/%dbit", p.name, bits), func(b *testing.B) {
			var wall, cpu, wall4, cpu4 float64
			withFeatures(p, func() {
				for i := 0; i < b.N; i++ {
					w, c := pass(set4)
					wall4, cpu4 = wall4+w, cpu4+c
					w, c = pass(ms)
					wall, cpu = wall+w, cpu+c
				}
			})
			n := float64(b.N)
			b.ReportMetric(bytes*n/wall/1e9, "GB/s")
			b.ReportMetric(bytes4*n/wall4/1e9, "4bit-GB/s")
			b.ReportMetric(bytes/wall/(bytes4/wall4), "of-4bit")
			if cpu > 0 && cpu4 > 0 {
				b.ReportMetric(bytes/cpu/(bytes4/cpu4), "of-4bit-cpu")
			}
		})
	}
}

// TestQMVIgnoresWhatFollowsTheCodes: a row's result is the same bits
// whether the codes' backing array ends with the matrix or goes on past it
// (a tensor inside a larger buffer), on every decode path and width: the
// kernels that read past a row's last code must not compute that row
// another way when they cannot, or a resident and a paged expert would
// disagree.
func TestQMVIgnoresWhatFollowsTheCodes(t *testing.T) {
	rng := rand.New(rand.NewPCG(31, 31))
	for _, p := range decodePaths() {
		for _, bits := range []int{2, 3, 4, 5, 6, 8} {
			for _, group := range []int{32, 64, 128} {
				// 3 groups: 2-bit rows that are not whole 128-value blocks.
				m := randomQuant(rng, 9, 3*group, bits, group, group == 64)
				wide := *m.Q
				wide.W = make([]uint32, len(m.Q.W), len(m.Q.W)+16)
				copy(wide.W, m.Q.W)
				mw := *m
				mw.Q = &wide
				for n := 1; n <= qmvTokens; n++ {
					x := randVec(rng, n*m.Cols)
					exact, roomy := make([]float32, n*m.Rows), make([]float32, n*m.Rows)
					withFeatures(p, func() {
						MatMul(exact, x, n, m)
						MatMul(roomy, x, n, &mw)
					})
					for i := range exact {
						if math.Float32bits(exact[i]) != math.Float32bits(roomy[i]) {
							t.Fatalf("%s, %d-bit group %d, %d tokens: output %d is %v with the codes at the end of their array, %v with room after them", p.name, bits, group, n, i, exact[i], roomy[i])
						}
					}
				}
			}
		}
	}
}
