package kernels

import (
	"encoding/binary"
	"math"
	"math/rand/v2"
	"testing"
)

// ulps is the distance between a and b in units in the last place (the
// number of float32 values between them); NaN against NaN is 0.
func ulps(a, b float32) int64 {
	if a != a || b != b {
		if a != a && b != b {
			return 0
		}
		return math.MaxInt64
	}
	ord := func(x float32) int64 {
		u := int64(math.Float32bits(x))
		if u&(1<<31) != 0 {
			return -(u &^ (1 << 31))
		}
		return u
	}
	d := ord(a) - ord(b)
	if d < 0 {
		return -d
	}
	return d
}

// expULPBound is the accuracy of the assembly's e^x against math.Exp
// rounded to float32, over [-87.3, 88.3] (the range with normal results).
const expULPBound = 2

// TestExpVecULP states and checks the bound of ExpVec over its normal
// range, on a fine grid and at random, and its ends: +Inf above 88.72,
// about 2^-126 (the smallest normal) below -87.34, NaN kept.
func TestExpVecULP(t *testing.T) {
	simdModes(t, func(t *testing.T) {
		var x []float32
		for v := float32(-87.3); v <= 88.3; v += 0.0037 {
			x = append(x, v)
		}
		rng := rand.New(rand.NewPCG(1, 2))
		for range 20000 {
			x = append(x, float32(rng.Float64()*175.6-87.3))
		}
		got := make([]float32, len(x))
		ExpVec(got, x)
		worst := int64(0)
		for i, v := range x {
			want := float32(math.Exp(float64(v)))
			if d := ulps(got[i], want); d > worst {
				worst = d
				if d > expULPBound {
					t.Fatalf("e^%g = %g, want %g (%d ulp, bound %d)", v, got[i], want, d, expULPBound)
				}
			}
		}
		t.Logf("worst error %d ulp over %d values", worst, len(x))

		ends := []float32{89, 1000, float32(math.Inf(1)), -88, -1000, float32(math.Inf(-1)), float32(math.NaN()), 0, 0, 0, 0, 0, 0, 0, 0, 0}
		out := make([]float32, len(ends))
		ExpVec(out, ends)
		for i, v := range ends[:7] {
			switch {
			case v > 88 && !math.IsInf(float64(out[i]), 1):
				t.Errorf("e^%g = %g, want +Inf", v, out[i])
			case v < -87 && (out[i] < 0 || out[i] > 1.2e-38):
				t.Errorf("e^%g = %g, want about 2^-126", v, out[i])
			case v != v && out[i] == out[i]:
				t.Errorf("e^NaN = %g, want NaN", out[i])
			}
		}
	})
}

// activationBound is how far SigmoidVec, SiluVec and SwiGLU may be from
// their scalar references: the exponential's 2 ulp carried through 1+e
// and the division, or an absolute 1e-35 where the result is that small
// (the assembly saturates e^x at the ends of the float32 range).
func activationClose(got, want float32) bool {
	return ulps(got, want) <= 4 || math.Abs(float64(got-want)) <= 1e-35
}

// checkActivations compares the vector kernels with their references on x.
func checkActivations(t *testing.T, x []float32) {
	t.Helper()
	n := len(x)
	up := make([]float32, n)
	for i := range up {
		up[i] = float32(i%7) - 3.5
	}
	sig, silu, swi := make([]float32, n), make([]float32, n), make([]float32, n)
	SigmoidVec(sig, x)
	SiluVec(silu, x)
	SwiGLU(swi, x, up)
	for i, v := range x {
		if w := Sigmoid(v); !activationClose(sig[i], w) {
			t.Fatalf("n=%d: sigmoid(%g) = %g, want %g", n, v, sig[i], w)
		}
		if w := Silu(v); !activationClose(silu[i], w) {
			t.Fatalf("n=%d: silu(%g) = %g, want %g", n, v, silu[i], w)
		}
		if w := Silu(v) * up[i]; !activationClose(swi[i], w) {
			t.Fatalf("n=%d: swiglu(%g, %g) = %g, want %g", n, v, up[i], swi[i], w)
		}
	}
	// One value at a time (the tail path) agrees bit for bit with the
	// whole slice: results do not depend on a value's position.
	for i := range x {
		var one [1]float32
		SiluVec(one[:], x[i:i+1])
		if one[0] != silu[i] && !(one[0] != one[0] && silu[i] != silu[i]) {
			t.Fatalf("n=%d: silu(%g) alone = %g, in the slice %g", n, x[i], one[0], silu[i])
		}
	}
	// In place.
	y := append([]float32(nil), x...)
	SiluVec(y, y)
	for i := range y {
		if y[i] != silu[i] && !(y[i] != y[i] && silu[i] != silu[i]) {
			t.Fatalf("n=%d: SiluVec in place gave %g at %d, out of place %g", n, y[i], i, silu[i])
		}
	}
}

// TestActivationsMatchReference: ragged lengths (vector bodies and tails),
// ordinary values and the ends of the range, SIMD on and off.
func TestActivationsMatchReference(t *testing.T) {
	simdModes(t, func(t *testing.T) {
		rng := rand.New(rand.NewPCG(3, 4))
		for _, n := range []int{0, 1, 7, 8, 9, 31, 64, 1001} {
			x := make([]float32, n)
			for i := range x {
				x[i] = float32(rng.NormFloat64() * 6)
			}
			checkActivations(t, x)
		}
		checkActivations(t, []float32{-200, -100, -88.5, -87.5, -20, -1e-30, 0, 1e-30, 20, 87.5, 88.5, 100,
			float32(math.Inf(1)), float32(math.Inf(-1)), float32(math.NaN()), 3})
	})
}

// checkArithmetic compares Add and scale (exactly), AddScaled and mulAdd (fused
// against two roundings: within 1e-6 of the terms' size) with their
// references on x, y, and checks that AddScaled on one value alone agrees
// bit for bit with the whole slice.
func checkArithmetic(t *testing.T, x, y []float32) {
	t.Helper()
	n := len(x)
	sum, want := make([]float32, n), make([]float32, n)
	Add(sum, x, y)
	addGo(want, x, y)
	for i := range sum {
		if sum[i] != want[i] && !(sum[i] != sum[i] && want[i] != want[i]) {
			t.Fatalf("n=%d: %g + %g = %g, want %g", n, x[i], y[i], sum[i], want[i])
		}
	}
	const s = 0.37
	sx, wantSX := append([]float32(nil), x...), append([]float32(nil), x...)
	scale(sx, s)
	scaleGo(wantSX, s)
	for i := range sx {
		if sx[i] != wantSX[i] && !(sx[i] != sx[i] && wantSX[i] != wantSX[i]) {
			t.Fatalf("n=%d: %g·%g = %g, want %g", n, x[i], float32(s), sx[i], wantSX[i])
		}
	}
	scaled, ma := append([]float32(nil), y...), append([]float32(nil), y...)
	wantScaled, wantMA := append([]float32(nil), y...), append([]float32(nil), y...)
	AddScaled(scaled, x, s)
	addScaledGo(wantScaled, x, s)
	mulAdd(ma, x, x)
	mulAddGo(wantMA, x, x)
	for i := range x {
		size := math.Abs(float64(y[i])) + math.Abs(float64(x[i]))*(1+math.Abs(float64(x[i])))
		if d := math.Abs(float64(scaled[i] - wantScaled[i])); d > 1e-6*size {
			t.Fatalf("n=%d: %g + %g·%g = %g, want %g", n, y[i], float32(s), x[i], scaled[i], wantScaled[i])
		}
		if d := math.Abs(float64(ma[i] - wantMA[i])); d > 1e-6*size {
			t.Fatalf("n=%d: %g + %g² = %g, want %g", n, y[i], x[i], ma[i], wantMA[i])
		}
		one := []float32{y[i]}
		AddScaled(one, x[i:i+1], s)
		if one[0] != scaled[i] && !(one[0] != one[0] && scaled[i] != scaled[i]) {
			t.Fatalf("n=%d: AddScaled of value %d alone gave %g, in the slice %g", n, i, one[0], scaled[i])
		}
	}
}

// TestArithmeticMatchesReference: Add, AddScaled and mulAdd on ragged
// lengths, SIMD on and off.
func TestArithmeticMatchesReference(t *testing.T) {
	simdModes(t, func(t *testing.T) {
		rng := rand.New(rand.NewPCG(7, 8))
		for _, n := range []int{0, 1, 7, 8, 9, 31, 64, 1001} {
			checkArithmetic(t, randVec(rng, n), randVec(rng, n))
		}
	})
}

// FuzzActivations: arbitrary float32 bit patterns through the vector
// kernels against their references.
func FuzzActivations(f *testing.F) {
	f.Add([]byte{0, 0, 128, 63, 0, 0, 0, 192, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28})
	f.Fuzz(func(t *testing.T, b []byte) {
		x := make([]float32, len(b)/4)
		for i := range x {
			x[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
		}
		saved := hasAVX2FMA
		defer func() { hasAVX2FMA = saved }()
		checkActivations(t, x)
		checkArithmetic(t, x[:len(x)/2], x[len(x)/2:2*(len(x)/2)])
		hasAVX2FMA = false
		checkActivations(t, x)
		checkArithmetic(t, x[:len(x)/2], x[len(x)/2:2*(len(x)/2)])
	})
}

// benchBothWays times f with the SIMD kernels and with the Go references,
// alternately in the same iterations, and reports each one's values per
// CPU-second (process CPU time, which neighbours on a shared machine
// disturb much less than the wall clock) and their ratio.
func benchBothWays(b *testing.B, values int, f func()) {
	saved := hasAVX2FMA
	defer func() { hasAVX2FMA = saved }()
	var simd, ref float64
	for b.Loop() {
		hasAVX2FMA = saved
		c := cpuSeconds()
		f()
		simd += cpuSeconds() - c
		hasAVX2FMA = false
		c = cpuSeconds()
		f()
		ref += cpuSeconds() - c
	}
	n := float64(b.N) * float64(values)
	b.ReportMetric(n/simd/1e6, "simd-Mval/cpu-s")
	b.ReportMetric(n/ref/1e6, "ref-Mval/cpu-s")
	b.ReportMetric(ref/simd, "speedup-cpu")
}

// BenchmarkElementwise: the element-wise kernels over 1 MiB of values
// (a 512-token prefill's SwiGLU at intermediate size 512; RMSNorm as 128
// rows of 2048), SIMD against the Go reference in the same run.
func BenchmarkElementwise(b *testing.B) {
	const n = 1 << 18
	rng := rand.New(rand.NewPCG(5, 5))
	x, y, out := randVec(rng, n), randVec(rng, n), make([]float32, n)
	for i := range x {
		x[i] *= 8
	}
	// Qwen3-Next's conv1d: 4 taps over q, k and v channels (8192 at full
	// size, 2048 here), 128 tokens.
	const convChannels = 2048
	state, w := make([]float32, 3*convChannels), randVec(rng, 4*convChannels)
	for _, k := range []struct {
		name string
		f    func()
	}{
		{"SwiGLU", func() { SwiGLU(out, x, y) }},
		{"Sigmoid", func() { SigmoidVec(out, x) }},
		{"Silu", func() { SiluVec(out, x) }},
		{"Exp", func() { ExpVec(out, x) }},
		{"RMSNorm", func() { RMSNorm(out, x, y[:2048], n/2048, 2048, 1e-6) }},
		{"Conv1dPrefill", func() { Conv1dPrefill(state, x, w, out, n/convChannels, convChannels, 4) }},
	} {
		b.Run(k.name, func(b *testing.B) { benchBothWays(b, n, k.f) })
	}
}
