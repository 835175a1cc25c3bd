package kernels

import (
	"math"
	"math/rand/v2"
	"testing"
)

// naiveMamba1 is transformers' JambaMambaMixer.slow_forward for a whole
// sequence from a zero state, after the projections, in float64: a padded
// depthwise conv1d with bias cut to the sequence length and SiLU, then the
// discretized recurrence (discrete_A = exp(A dt), deltaB_u = dt B x), the
// read-out with C, the D skip and the silu(z) gate. x, dt, z are [t, ch]
// (dt before dt_proj's bias and the softplus); b, c [t, n]; it returns the
// conv output and the scan output.
func naiveMamba1(x, w, bias, dt, dtBias, b, c, z, a, d []float32, t, ch, n, kernel int) (conv, out []float64) {
	conv = make([]float64, t*ch)
	for k := range ch {
		padded := make([]float64, kernel-1, kernel-1+t)
		for i := range t {
			padded = append(padded, float64(x[i*ch+k]))
		}
		for i := range t {
			acc := float64(bias[k])
			for j := range kernel {
				acc += float64(w[k*kernel+j]) * padded[i+j]
			}
			conv[i*ch+k] = acc / (1 + math.Exp(-acc))
		}
	}
	out = make([]float64, t*ch)
	h := make([]float64, ch*n)
	for i := range t {
		for k := range ch {
			dtv, u := math.Log1p(math.Exp(float64(dt[i*ch+k]+dtBias[k]))), conv[i*ch+k]
			var y float64
			for j := range n {
				dA := math.Exp(float64(a[k*n+j]) * dtv)
				h[k*n+j] = dA*h[k*n+j] + dtv*float64(b[i*n+j])*u
				y += h[k*n+j] * float64(c[i*n+j])
			}
			y += u * float64(d[k])
			zv := float64(z[i*ch+k])
			out[i*ch+k] = y * zv / (1 + math.Exp(-zv))
		}
	}
	return conv, out
}

// TestMamba1MatchesNaive checks the conv and scan kernels against the
// naive whole-sequence forward, run as one prefill, in chunks, and token by
// token (the decode path), which must all leave the same state.
func TestMamba1MatchesNaive(t *testing.T) {
	rng := rand.New(rand.NewPCG(41, 42))
	for _, tc := range []struct{ ch, n, kernel, t int }{
		{6, 4, 4, 9}, {3, 2, 2, 1}, {8, 16, 4, 2}, {5, 3, 1, 4}, {64, 16, 4, 23},
		{512, 16, 4, 9}, // enough work for the scan to split channels across the cores
	} {
		x := deltaRandn(rng, tc.t*tc.ch, 1)
		w := deltaRandn(rng, tc.ch*tc.kernel, 0.5)
		bias := deltaRandn(rng, tc.ch, 0.5)
		dt, dtBias := deltaRandn(rng, tc.t*tc.ch, 1), deltaRandn(rng, tc.ch, 1)
		dt[0] = 25 - dtBias[0] // above softplus's threshold
		b := deltaRandn(rng, tc.t*tc.n, 1)
		c := deltaRandn(rng, tc.t*tc.n, 1)
		z := deltaRandn(rng, tc.t*tc.ch, 1)
		a := make([]float32, tc.ch*tc.n)
		for i := range a {
			a[i] = -float32(math.Exp(rng.NormFloat64()))
		}
		d := deltaRandn(rng, tc.ch, 1)
		wantConv, want := naiveMamba1(x, w, bias, dt, dtBias, b, c, z, a, d, tc.t, tc.ch, tc.n, tc.kernel)

		for _, chunk := range []int{tc.t, 3, 1} {
			convState := make([]float32, tc.ch*(tc.kernel-1))
			ssm := make([]float32, tc.ch*tc.n)
			conv := make([]float32, tc.t*tc.ch)
			out := make([]float32, tc.t*tc.ch)
			for s := 0; s < tc.t; s += chunk {
				m := min(chunk, tc.t-s)
				r := func(v []float32, w int) []float32 { return v[s*w : (s+m)*w] }
				Mamba1Conv(convState, r(x, tc.ch), w, bias, r(conv, tc.ch), m, tc.ch, tc.kernel)
				Mamba1Scan(ssm, r(conv, tc.ch), r(dt, tc.ch), dtBias, r(b, tc.n), r(c, tc.n), r(z, tc.ch), a, d, r(out, tc.ch), m, tc.ch, tc.n)
			}
			if dc := deltaMaxDiff(conv, wantConv); dc > 1e-5 {
				t.Errorf("%+v chunk %d: conv differs from the naive forward by %g", tc, chunk, dc)
			}
			if do := deltaMaxDiff(out, want); do > 1e-4 {
				t.Errorf("%+v chunk %d: scan differs from the naive forward by %g", tc, chunk, do)
			}
			// The history is the conv's own, whatever the bias: Qwen3-Next's
			// conv from a zero state leaves the same last inputs.
			wantState := make([]float32, len(convState))
			Conv1dPrefill(wantState, x, w, make([]float32, len(x)), tc.t, tc.ch, tc.kernel)
			if ds := deltaMaxDiff(convState, wantState); ds != 0 {
				t.Errorf("%+v chunk %d: conv state differs from the last inputs by %g", tc, chunk, ds)
			}
		}
	}
}

// TestMamba1ConvWithoutBias checks that a nil bias is a zero bias.
func TestMamba1ConvWithoutBias(t *testing.T) {
	rng := rand.New(rand.NewPCG(43, 44))
	const ch, kernel, n = 7, 4, 5
	x, w := deltaRandn(rng, n*ch, 1), deltaRandn(rng, ch*kernel, 1)
	got, want := make([]float32, n*ch), make([]float32, n*ch)
	Mamba1Conv(make([]float32, ch*(kernel-1)), x, w, nil, got, n, ch, kernel)
	Mamba1Conv(make([]float32, ch*(kernel-1)), x, w, make([]float32, ch), want, n, ch, kernel)
	if d := deltaMaxDiff(got, want); d != 0 {
		t.Fatalf("nil bias differs from a zero bias by %g", d)
	}
	if d := deltaMaxDiff(got, naiveCausalConv(x, w, n, ch, kernel)); d > 1e-5 {
		t.Fatalf("without bias the conv differs from Qwen3-Next's by %g", d)
	}
}

// BenchmarkMamba1Scan: one decode step of a Jamba-v0.1-sized mamba layer's
// scan (8192 channels, d_state 16), reported against the same layer's
// 4-bit in_proj matvec (16384 x 4096, group 64) run in the same benchmark,
// both in CPU seconds of the process (on a shared machine the wall clock
// measures the neighbours too): the share the scan adds to the layer's
// largest weight stream.
func BenchmarkMamba1Scan(b *testing.B) {
	rng := rand.New(rand.NewPCG(5, 6))
	const ch, n, hidden, reps = 8192, 16, 4096, 20
	in := randomQuant(rng, 2*ch, hidden, 4, 64, false)
	h, proj := randVec(rng, hidden), make([]float32, 2*ch)
	cpu0 := cpuSeconds()
	for range reps {
		MatMul(proj, h, 1, in)
	}
	inProj := (cpuSeconds() - cpu0) / reps
	state, a := make([]float32, ch*n), make([]float32, ch*n)
	for i := range a {
		a[i] = -float32(i%n + 1)
	}
	x, dt, z, out := randVec(rng, ch), randVec(rng, ch), randVec(rng, ch), make([]float32, ch)
	bias, d, bv, cv := randVec(rng, ch), randVec(rng, ch), randVec(rng, n), randVec(rng, n)
	b.ResetTimer()
	cpu0 = cpuSeconds()
	for i := 0; i < b.N; i++ {
		Mamba1Scan(state, x, dt, bias, bv, cv, z, a, d, out, 1, ch, n)
	}
	scan := (cpuSeconds() - cpu0) / float64(b.N)
	b.ReportMetric(scan*1e6, "cpu-µs/op")
	b.ReportMetric(scan/inProj, "x-in_proj-cpu")
}
