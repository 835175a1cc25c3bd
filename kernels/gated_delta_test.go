package kernels

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"syscall"
	"testing"
	"time"
)

// deltaShape is one head configuration of a gated delta layer.
type deltaShape struct{ hk, hv, dk, dv int }

func (s deltaShape) String() string {
	return fmt.Sprintf("hk=%d,hv=%d,dk=%d,dv=%d", s.hk, s.hv, s.dk, s.dv)
}

var deltaTestShapes = []deltaShape{
	{1, 1, 4, 4},
	{2, 4, 32, 32},  // the qwen3_next fixtures' layout
	{1, 3, 8, 12},   // odd group size, dk != dv, dk not a multiple of 4
	{2, 2, 7, 5},    // no grouping, odd sizes
	{4, 8, 64, 64},  // big enough to run the heads on several goroutines
	{2, 4, 16, 128}, // dv much larger than dk
}

// deltaInputs is a random token sequence for one layer, with decays and betas
// in the ranges the real gates produce.
type deltaInputs struct {
	t             int
	q, k, v, g, b []float32
	state         []float32
}

func newDeltaInputs(rng *rand.Rand, s deltaShape, t int) deltaInputs {
	in := deltaInputs{
		t:     t,
		q:     deltaRandn(rng, t*s.hk*s.dk, 1),
		k:     deltaRandn(rng, t*s.hk*s.dk, 1),
		v:     deltaRandn(rng, t*s.hv*s.dv, 1),
		g:     make([]float32, t*s.hv),
		b:     make([]float32, t*s.hv),
		state: deltaRandn(rng, s.hv*s.dk*s.dv, 0.5),
	}
	for i := range in.g {
		in.g[i] = -2 * rng.Float32()
		in.b[i] = rng.Float32()
	}
	return in
}

func deltaRandn(rng *rand.Rand, n int, scale float32) []float32 {
	x := make([]float32, n)
	for i := range x {
		x[i] = scale * float32(rng.NormFloat64())
	}
	return x
}

// deltaRepeatInterleave is torch.repeat_interleave(x, r, dim=heads) for x of
// shape [rows, heads, d]: every head is repeated r times in place.
func deltaRepeatInterleave(x []float32, rows, heads, d, r int) []float32 {
	var y []float32
	for row := range rows {
		for h := range heads {
			src := x[(row*heads+h)*d : (row*heads+h+1)*d]
			for range r {
				y = append(y, src...)
			}
		}
	}
	return y
}

// naiveGatedDelta transcribes transformers' torch_recurrent_gated_delta_rule
// (use_qk_l2norm_in_kernel=True) in float64: q and k repeated to hv heads,
// l2-normalised, q scaled by 1/sqrt(dk), then per token decay, delta update,
// read-out. It updates state and returns out [t, hv, dv].
func naiveGatedDelta(state []float64, in deltaInputs, s deltaShape) []float64 {
	r := s.hv / s.hk
	q := deltaRepeatInterleave(in.q, in.t, s.hk, s.dk, r)
	k := deltaRepeatInterleave(in.k, in.t, s.hk, s.dk, r)
	l2 := func(x []float32) []float64 {
		var ss float32
		for _, xi := range x {
			ss += xi * xi
		}
		inv := 1 / math.Sqrt(float64(ss)+1e-6)
		y := make([]float64, len(x))
		for i, xi := range x {
			y[i] = float64(xi) * inv
		}
		return y
	}
	out := make([]float64, in.t*s.hv*s.dv)
	for t := range in.t {
		for h := range s.hv {
			qh := l2(q[(t*s.hv+h)*s.dk : (t*s.hv+h+1)*s.dk])
			kh := l2(k[(t*s.hv+h)*s.dk : (t*s.hv+h+1)*s.dk])
			for i := range qh {
				qh[i] /= math.Sqrt(float64(s.dk))
			}
			st := state[h*s.dk*s.dv : (h+1)*s.dk*s.dv]
			decay := math.Exp(float64(in.g[t*s.hv+h]))
			for i := range st {
				st[i] *= decay
			}
			beta := float64(in.b[t*s.hv+h])
			for j := range s.dv {
				var mem float64
				for i := range s.dk {
					mem += st[i*s.dv+j] * kh[i]
				}
				delta := (float64(in.v[(t*s.hv+h)*s.dv+j]) - mem) * beta
				var o float64
				for i := range s.dk {
					st[i*s.dv+j] += kh[i] * delta
					o += st[i*s.dv+j] * qh[i]
				}
				out[(t*s.hv+h)*s.dv+j] = o
			}
		}
	}
	return out
}

// deltaSteps runs GatedDeltaStep over every token of in, the reference the
// chunked form must reproduce.
func deltaSteps(state []float32, in deltaInputs, s deltaShape) []float32 {
	out := make([]float32, in.t*s.hv*s.dv)
	qk, v, hv := s.hk*s.dk, s.hv*s.dv, s.hv
	for t := range in.t {
		GatedDeltaStep(state, in.q[t*qk:(t+1)*qk], in.k[t*qk:(t+1)*qk], in.v[t*v:(t+1)*v],
			in.g[t*hv:(t+1)*hv], in.b[t*hv:(t+1)*hv], out[t*v:(t+1)*v], s.hk, s.hv, s.dk, s.dv)
	}
	return out
}

func deltaMaxDiff[T float32 | float64](a []float32, b []T) float64 {
	var m float64
	for i := range a {
		d := math.Abs(float64(a[i]) - float64(b[i]))
		if math.IsNaN(d) {
			return math.Inf(1)
		}
		m = max(m, d)
	}
	return m
}

func deltaTo64(x []float32) []float64 {
	y := make([]float64, len(x))
	for i, v := range x {
		y[i] = float64(v)
	}
	return y
}

// TestGatedDeltaStepMatchesNaive: SIMD on and off (the step sweeps the
// state with the vector kernels or with its four-row Go loop).
func TestGatedDeltaStepMatchesNaive(t *testing.T) {
	simdModes(t, testGatedDeltaStepMatchesNaive)
}

func testGatedDeltaStepMatchesNaive(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, s := range deltaTestShapes {
		in := newDeltaInputs(rng, s, 6)
		want := deltaTo64(in.state)
		wantOut := naiveGatedDelta(want, in, s)
		got := append([]float32(nil), in.state...)
		gotOut := deltaSteps(got, in, s)
		if d := deltaMaxDiff(gotOut, wantOut); d > 1e-5 {
			t.Errorf("%v: out differs from the naive recurrence by %g", s, d)
		}
		if d := deltaMaxDiff(got, want); d > 1e-5 {
			t.Errorf("%v: state differs from the naive recurrence by %g", s, d)
		}
	}
}

// With a zero state one step gives out_h = beta_h (q̂·k̂)/sqrt(dk) v_h, where q̂,
// k̂ come from key head h/(hv/hk). Key head 0 has q = k (q̂·k̂ = 1), key head 1
// has q ⟂ k (q̂·k̂ = 0), so value heads 0,1 must answer and 2,3 be silent; the
// tiled mapping (h % hk) would silence heads 1 and 3 instead.
func TestGatedDeltaStepGroupsValueHeadsByRepeatInterleave(t *testing.T) {
	const hk, hv, dk, dv = 2, 4, 4, 3
	q := []float32{1, 2, 0, 0 /* head 1 */, 1, 0, 0, 0}
	k := []float32{1, 2, 0, 0 /* head 1 */, 0, 3, 0, 0}
	v := []float32{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}
	g := []float32{-0.5, -0.5, -0.5, -0.5}
	beta := []float32{0.5, 0.25, 0.5, 0.25}
	state := make([]float32, hv*dk*dv)
	out := make([]float32, hv*dv)
	GatedDeltaStep(state, q, k, v, g, beta, out, hk, hv, dk, dv)
	for h := range hv {
		qk := 1.0
		if h/(hv/hk) == 1 {
			qk = 0
		}
		for j := range dv {
			want := float64(beta[h]) * qk / math.Sqrt(dk) * float64(v[h*dv+j])
			if d := math.Abs(float64(out[h*dv+j]) - want); d > 1e-6 {
				t.Errorf("value head %d: out[%d] = %g, want %g", h, j, out[h*dv+j], want)
			}
		}
	}
}

func TestGatedDeltaChunkedMatchesSteps(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	var worst float64
	for _, s := range deltaTestShapes {
		for _, steps := range []int{1, 2, 7, 16, 63, 64, 65, 130} {
			for _, chunk := range []int{0, 16, 5} {
				in := newDeltaInputs(rng, s, steps)
				want := append([]float32(nil), in.state...)
				wantOut := deltaSteps(want, in, s)
				got := append([]float32(nil), in.state...)
				gotOut := make([]float32, steps*s.hv*s.dv)
				GatedDeltaChunked(got, in.q, in.k, in.v, in.g, in.b, gotOut, steps, s.hk, s.hv, s.dk, s.dv, chunk)
				dOut, dState := deltaMaxDiff(gotOut, wantOut), deltaMaxDiff(got, want)
				worst = max(worst, dOut, dState)
				if dOut > 1e-4 || dState > 1e-4 {
					t.Errorf("%v t=%d chunk=%d: chunked differs from steps by %g (out), %g (state)", s, steps, chunk, dOut, dState)
				}
			}
		}
	}
	t.Logf("largest |chunked - steps| over all cases: %.3g", worst)
}

// A prefill continued by decode steps must equal decoding every token.
func TestGatedDeltaChunkedThenSteps(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	s := deltaShape{2, 4, 32, 32}
	const prefill, total = 37, 45
	in := newDeltaInputs(rng, s, total)
	want := append([]float32(nil), in.state...)
	wantOut := deltaSteps(want, in, s)

	got := append([]float32(nil), in.state...)
	gotOut := make([]float32, total*s.hv*s.dv)
	GatedDeltaChunked(got, in.q, in.k, in.v, in.g, in.b, gotOut, prefill, s.hk, s.hv, s.dk, s.dv, 16)
	rest := deltaInputs{
		t: total - prefill,
		q: in.q[prefill*s.hk*s.dk:], k: in.k[prefill*s.hk*s.dk:], v: in.v[prefill*s.hv*s.dv:],
		g: in.g[prefill*s.hv:], b: in.b[prefill*s.hv:],
	}
	copy(gotOut[prefill*s.hv*s.dv:], deltaSteps(got, rest, s))
	if d := deltaMaxDiff(gotOut, wantOut); d > 1e-4 {
		t.Errorf("prefill+decode differs from decoding every token by %g (out)", d)
	}
	if d := deltaMaxDiff(got, want); d > 1e-4 {
		t.Errorf("prefill+decode differs from decoding every token by %g (state)", d)
	}
}

func TestGatedDeltaChunkedExtremeGates(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	s := deltaShape{1, 2, 8, 8}
	const steps = 40
	cases := map[string]func(in *deltaInputs){
		"no decay, full beta": func(in *deltaInputs) {
			for i := range in.g {
				in.g[i], in.b[i] = 0, 1
			}
		},
		"beta zero": func(in *deltaInputs) { clear(in.b) },
		"decay underflows": func(in *deltaInputs) {
			for i := range in.g {
				in.g[i] = -200 * rng.Float32()
			}
		},
		"zero query and key": func(in *deltaInputs) {
			clear(in.q[3*s.dk : 9*s.dk])
			clear(in.k[5*s.dk : 12*s.dk])
		},
	}
	for name, edit := range cases {
		in := newDeltaInputs(rng, s, steps)
		edit(&in)
		want := deltaTo64(in.state)
		wantOut := naiveGatedDelta(want, in, s)
		got := append([]float32(nil), in.state...)
		gotOut := make([]float32, steps*s.hv*s.dv)
		GatedDeltaChunked(got, in.q, in.k, in.v, in.g, in.b, gotOut, steps, s.hk, s.hv, s.dk, s.dv, 16)
		if d := deltaMaxDiff(gotOut, wantOut); d > 1e-4 {
			t.Errorf("%s: out differs from the naive recurrence by %g", name, d)
		}
		if d := deltaMaxDiff(got, want); d > 1e-4 {
			t.Errorf("%s: state differs from the naive recurrence by %g", name, d)
		}
	}
}

func TestGatedDeltaRejectsBadShapes(t *testing.T) {
	for name, call := range map[string]func(){
		"hv not a multiple of hk": func() {
			x := make([]float32, 64)
			GatedDeltaStep(x, x, x, x, x, x, x, 2, 3, 2, 2)
		},
		"short state": func() {
			x := make([]float32, 64)
			GatedDeltaChunked(x[:7], x, x, x, x, x, x, 2, 1, 2, 2, 2, 0)
		},
	} {
		msg := deltaPanicMessage(call)
		if !strings.Contains(msg, "kernels.GatedDelta") {
			t.Errorf("%s: panic %q does not name the kernel", name, msg)
		}
	}
}

func deltaPanicMessage(f func()) (msg string) {
	defer func() { msg = fmt.Sprint(recover()) }()
	f()
	return ""
}

func TestGatedDeltaGates(t *testing.T) {
	const steps, hv = 3, 4
	a := []float32{-30, -1, 0, 0.5, 2, 19.9, 25, 100, -5, 3, -0.1, 7}
	b := []float32{-20, -1, 0, 1, 20, 3, -3, 0.25, 5, -5, 0.5, -0.5}
	aLog := []float32{-1, 0, 0.7, 2.5}
	dtBias := []float32{0.5, -0.2, 1, 0}
	g := make([]float32, steps*hv)
	beta := make([]float32, steps*hv)
	GatedDeltaGates(g, beta, a, b, aLog, dtBias, steps, hv)
	for i := range g {
		h := i % hv
		x := float64(a[i]) + float64(dtBias[h])
		softplus := math.Log(1 + math.Exp(x))
		if x > 20 {
			softplus = x // torch's threshold
		}
		wantG := -math.Exp(float64(aLog[h])) * softplus
		wantBeta := 1 / (1 + math.Exp(-float64(b[i])))
		if math.Abs(float64(g[i])-wantG) > 1e-5*max(1, math.Abs(wantG)) {
			t.Errorf("g[%d] (a=%g, h=%d) = %g, want %g", i, a[i], h, g[i], wantG)
		}
		if math.Abs(float64(beta[i])-wantBeta) > 1e-6 {
			t.Errorf("beta[%d] (b=%g) = %g, want %g", i, b[i], beta[i], wantBeta)
		}
		if g[i] > 0 {
			t.Errorf("g[%d] = %g is not a decay", i, g[i])
		}
	}
	// In place over the projections, as a caller would do.
	ga, bb := append([]float32(nil), a...), append([]float32(nil), b...)
	GatedDeltaGates(ga, bb, ga, bb, aLog, dtBias, steps, hv)
	if d := deltaMaxDiff(ga, g); d != 0 {
		t.Errorf("in place g differs by %g", d)
	}
	if d := deltaMaxDiff(bb, beta); d != 0 {
		t.Errorf("in place beta differs by %g", d)
	}
}

func TestGatedRMSNormOfDeltaOutput(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 10))
	const rows, dim, eps = 5, 24, 1e-6
	x := deltaRandn(rng, rows*dim, 2)
	clear(x[2*dim : 3*dim]) // an all-zero row must give zeros, not NaN
	z := deltaRandn(rng, rows*dim, 3)
	z[0], z[1] = -200, 200 // silu saturation
	w := deltaRandn(rng, dim, 1)
	want := make([]float64, rows*dim)
	for r := range rows {
		var ss float64
		for _, xi := range x[r*dim : (r+1)*dim] {
			ss += float64(xi) * float64(xi)
		}
		inv := 1 / math.Sqrt(ss/dim+eps)
		for i := range dim {
			zi := float64(z[r*dim+i])
			want[r*dim+i] = float64(w[i]) * float64(x[r*dim+i]) * inv * zi / (1 + math.Exp(-zi))
		}
	}
	out := make([]float32, rows*dim)
	GatedRMSNorm(out, x, z, w, rows, dim, eps)
	if d := deltaMaxDiff(out, want); d > 1e-5 {
		t.Errorf("GatedRMSNorm differs from the formula by %g", d)
	}
	GatedRMSNorm(x, x, z, w, rows, dim, eps)
	if d := deltaMaxDiff(x, out); d != 0 {
		t.Errorf("GatedRMSNorm in place differs by %g", d)
	}
}

// BenchmarkGatedDeltaPrefill times a 512-token prefill of one layer both ways
// in the same iteration: t GatedDeltaStep calls (the baseline) and one
// GatedDeltaChunked call. The machines are shared, so it reports tokens/s of
// each from the fastest iteration, and the speed ratio chunked/step both by
// wall time (those fastest iterations) and by process CPU time summed over
// all iterations, which other processes disturb much less.
func BenchmarkGatedDeltaPrefill(b *testing.B) {
	const t, dk, dv = 512, 128, 128
	for _, hv := range []int{4, 8, 16, 32} {
		for _, chunk := range []int{8, 16, 32, 64} {
			s := deltaShape{hv / 2, hv, dk, dv}
			b.Run(fmt.Sprintf("hv=%d/chunk=%d", hv, chunk), func(b *testing.B) {
				in := newDeltaInputs(rand.New(rand.NewPCG(11, 12)), s, t)
				out := make([]float32, t*s.hv*s.dv)
				st := make([]float32, len(in.state))
				stepWall, chunkWall := time.Duration(math.MaxInt64), time.Duration(math.MaxInt64)
				var stepCPU, chunkCPU time.Duration
				for b.Loop() {
					copy(st, in.state)
					wall, cpu := time.Now(), deltaProcessCPU(b)
					deltaSteps(st, in, s)
					stepWall = min(stepWall, time.Since(wall))
					stepCPU += deltaProcessCPU(b) - cpu
					copy(st, in.state)
					wall, cpu = time.Now(), deltaProcessCPU(b)
					GatedDeltaChunked(st, in.q, in.k, in.v, in.g, in.b, out, t, s.hk, s.hv, s.dk, s.dv, chunk)
					chunkWall = min(chunkWall, time.Since(wall))
					chunkCPU += deltaProcessCPU(b) - cpu
				}
				b.ReportMetric(t/stepWall.Seconds(), "step-tok/s")
				b.ReportMetric(t/chunkWall.Seconds(), "chunked-tok/s")
				b.ReportMetric(stepWall.Seconds()/chunkWall.Seconds(), "chunked/step-wall")
				b.ReportMetric(stepCPU.Seconds()/chunkCPU.Seconds(), "chunked/step-cpu")
			})
		}
	}
}

// deltaProcessCPU is the user+system CPU time this process has used.
func deltaProcessCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatalf("getrusage: %v", err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// checkDeltaMulAdd compares deltaMulAdd with a float64 product on random
// data of the given shape, with padded leading dimensions.
func checkDeltaMulAdd(t *testing.T, rng *rand.Rand, m, kd, n, pad int) {
	t.Helper()
	lda, ldb, ldc := kd+pad, n+pad, n+2*pad
	if m == 1 {
		lda, ldc = 0, 0
	}
	a := randVec(rng, max(1, (m-1)*lda+kd))
	b := randVec(rng, max(1, (kd-1)*ldb+n))
	c := randVec(rng, max(1, (m-1)*ldc+n))
	want := make([]float64, len(c))
	for i := range c {
		want[i] = float64(c[i])
	}
	for i := range m {
		for j := range n {
			for k := range kd {
				want[i*ldc+j] += float64(a[i*lda+k]) * float64(b[k*ldb+j])
			}
		}
	}
	deltaMulAdd(c, a, b, m, kd, n, lda, ldb, ldc)
	for i := range m {
		for j := range n {
			if d := math.Abs(float64(c[i*ldc+j]) - want[i*ldc+j]); d > 1e-5*float64(kd+1) {
				t.Fatalf("m=%d kd=%d n=%d pad=%d: C[%d,%d] = %g, want %g", m, kd, n, pad, i, j, c[i*ldc+j], want[i*ldc+j])
			}
		}
	}
}

// TestDeltaMulAddMatchesProduct: the delta rule's products on ragged
// shapes (single rows, odd row counts, column tails), SIMD on and off.
func TestDeltaMulAddMatchesProduct(t *testing.T) {
	simdModes(t, func(t *testing.T) {
		rng := rand.New(rand.NewPCG(8, 9))
		for _, s := range [][3]int{{1, 1, 1}, {1, 16, 128}, {2, 3, 7}, {3, 5, 8}, {5, 16, 17}, {16, 128, 128}, {7, 9, 73}, {4, 1, 200}} {
			for _, pad := range []int{0, 3} {
				checkDeltaMulAdd(t, rng, s[0], s[1], s[2], pad)
			}
		}
	})
}

// FuzzDeltaMulAdd: arbitrary small shapes against the float64 product, SIMD
// on and off.
func FuzzDeltaMulAdd(f *testing.F) {
	f.Add(uint8(3), uint8(5), uint8(17), uint8(1), uint64(1))
	f.Fuzz(func(t *testing.T, m, kd, n, pad uint8, seed uint64) {
		rng := rand.New(rand.NewPCG(seed, 1))
		saved := hasAVX2FMA
		defer func() { hasAVX2FMA = saved }()
		shape := [4]int{1 + int(m)%20, 1 + int(kd)%40, 1 + int(n)%150, int(pad) % 4}
		checkDeltaMulAdd(t, rng, shape[0], shape[1], shape[2], shape[3])
		hasAVX2FMA = false
		checkDeltaMulAdd(t, rng, shape[0], shape[1], shape[2], shape[3])
	})
}

// BenchmarkDeltaMulAdd: the chunked delta rule's state product (16 tokens
// against a 128x128 head state, Vnew = U - W S) and its single-row form,
// SIMD against the Go reference in the same run; values are multiply-adds.
func BenchmarkDeltaMulAdd(b *testing.B) {
	rng := rand.New(rand.NewPCG(5, 6))
	for _, s := range [][3]int{{16, 128, 128}, {1, 128, 128}} {
		m, kd, n := s[0], s[1], s[2]
		a, bm, c := randVec(rng, m*kd), randVec(rng, kd*n), make([]float32, m*n)
		b.Run(fmt.Sprintf("m=%d", m), func(b *testing.B) {
			benchBothWays(b, m*kd*n, func() { deltaMulAdd(c, a, bm, m, kd, n, kd, n, n) })
		})
	}
}

// BenchmarkGatedDeltaStep: one decode token of a Qwen3-Next linear-attention
// layer (16 key heads, 32 value heads, 128x128 states), SIMD against the Go
// reference in the same run; values are state elements swept.
func BenchmarkGatedDeltaStep(b *testing.B) {
	s := deltaShape{16, 32, 128, 128}
	in := newDeltaInputs(rand.New(rand.NewPCG(13, 14)), s, 1)
	out := make([]float32, s.hv*s.dv)
	st := append([]float32(nil), in.state...)
	benchBothWays(b, s.hv*s.dk*s.dv, func() {
		GatedDeltaStep(st, in.q, in.k, in.v, in.g, in.b, out, s.hk, s.hv, s.dk, s.dv)
	})
}

// FuzzGatedDeltaStep: arbitrary head shapes and a few tokens against the
// naive recurrence, SIMD on and off.
func FuzzGatedDeltaStep(f *testing.F) {
	f.Add(uint8(1), uint8(3), uint8(8), uint8(12), uint64(1))
	f.Add(uint8(2), uint8(2), uint8(33), uint8(41), uint64(2))
	f.Fuzz(func(t *testing.T, hk, group, dk, dv uint8, seed uint64) {
		k := 1 + int(hk)%3
		s := deltaShape{k, k * (1 + int(group)%3), 1 + int(dk)%70, 1 + int(dv)%70}
		saved := hasAVX2FMA
		defer func() { hasAVX2FMA = saved }()
		for _, on := range []bool{saved, false} {
			hasAVX2FMA = on
			in := newDeltaInputs(rand.New(rand.NewPCG(seed, 3)), s, 3)
			want := deltaTo64(in.state)
			wantOut := naiveGatedDelta(want, in, s)
			got := append([]float32(nil), in.state...)
			gotOut := deltaSteps(got, in, s)
			if d := deltaMaxDiff(gotOut, wantOut); d > 1e-5 {
				t.Fatalf("%v simd=%v: out differs from the naive recurrence by %g", s, on, d)
			}
			if d := deltaMaxDiff(got, want); d > 1e-5 {
				t.Fatalf("%v simd=%v: state differs from the naive recurrence by %g", s, on, d)
			}
		}
	})
}
