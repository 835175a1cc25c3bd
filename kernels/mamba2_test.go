package kernels

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/mlx-moe/mlx-moe/internal/allocs"
)

func testMamba2Params(r *rand.Rand, heads, headDim, groups, stateDim int) *Mamba2Params {
	p := &Mamba2Params{Heads: heads, HeadDim: headDim, Groups: groups, StateDim: stateDim}
	for range heads {
		p.A = append(p.A, -float32(math.Exp(float64(r.Float32()*2-1))))
		p.D = append(p.D, r.Float32()*2-1)
		p.DtBias = append(p.DtBias, r.Float32()*2-1)
	}
	return p
}

// ssdQuadratic is the scan in its quadratic ("attention") form, in float64,
// from a zero state:
//
//	y_t = Σ_{s<=t} (C_t·B_s) · exp(A Σ_{r=s+1..t} dt_r) · dt_s x_s + D x_t
func ssdQuadratic(p *Mamba2Params, x, dt, b, c []float32, t int) []float64 {
	hp, gn := p.Heads*p.HeadDim, p.Groups*p.StateDim
	y := make([]float64, t*hp)
	per := p.Heads / p.Groups
	for h := range p.Heads {
		g := h / per
		steps := make([]float64, t)
		for i := range t {
			v := float64(dt[i*p.Heads+h]) + float64(p.DtBias[h])
			s := math.Log1p(math.Exp(v))
			if v > 20 {
				s = v
			}
			s = math.Max(s, float64(p.DtMin))
			if p.DtMax > 0 {
				s = math.Min(s, float64(p.DtMax))
			}
			steps[i] = s
		}
		for i := range t {
			for s := 0; s <= i; s++ {
				var cb float64
				for n := range p.StateDim {
					cb += float64(c[i*gn+g*p.StateDim+n]) * float64(b[s*gn+g*p.StateDim+n])
				}
				var sum float64
				for r := s + 1; r <= i; r++ {
					sum += steps[r]
				}
				w := cb * math.Exp(float64(p.A[h])*sum) * steps[s]
				for d := range p.HeadDim {
					y[i*hp+h*p.HeadDim+d] += w * float64(x[s*hp+h*p.HeadDim+d])
				}
			}
			for d := range p.HeadDim {
				y[i*hp+h*p.HeadDim+d] += float64(p.D[h]) * float64(x[i*hp+h*p.HeadDim+d])
			}
		}
	}
	return y
}

func TestMamba2StepMatchesQuadraticForm(t *testing.T) {
	for _, tc := range []struct {
		heads, headDim, groups, stateDim int
		dtMin, dtMax                     float32
	}{
		{4, 8, 1, 16, 0, 0},
		{6, 4, 2, 8, 0, 0},
		{4, 8, 4, 4, 0.3, 0.9}, // the clamp binds on some steps
	} {
		r := rand.New(rand.NewPCG(uint64(tc.heads), uint64(tc.groups)))
		p := testMamba2Params(r, tc.heads, tc.headDim, tc.groups, tc.stateDim)
		p.DtMin, p.DtMax = tc.dtMin, tc.dtMax
		if err := p.Check(); err != nil {
			t.Fatal(err)
		}
		const steps = 9
		hp, gn := p.Heads*p.HeadDim, p.Groups*p.StateDim
		x, dt := randVec(r, steps*hp), randVec(r, steps*p.Heads)
		b, c := randVec(r, steps*gn), randVec(r, steps*gn)
		want := ssdQuadratic(p, x, dt, b, c, steps)
		state := make([]float32, p.StateSize())
		y := make([]float32, hp)
		var worst float64
		for i := range steps {
			Mamba2Step(state, x[i*hp:], dt[i*p.Heads:], b[i*gn:], c[i*gn:], y, p)
			for j, v := range y {
				worst = math.Max(worst, math.Abs(float64(v)-want[i*hp+j]))
			}
		}
		if worst > 1e-4 {
			t.Errorf("%+v: scan differs from the quadratic form by %g", tc, worst)
		}
	}
}

func TestMamba2TimeStepClamp(t *testing.T) {
	p := &Mamba2Params{Heads: 1, DtBias: []float32{0}, DtMin: 0.5, DtMax: 2}
	for _, tc := range []struct{ raw, want float32 }{{-10, 0.5}, {0, float32(math.Log(2))}, {30, 2}} {
		if got := p.TimeStep(0, tc.raw); math.Abs(float64(got-tc.want)) > 1e-6 {
			t.Errorf("TimeStep(%g) = %g, want %g", tc.raw, got, tc.want)
		}
	}
	p.DtMax = 0 // no upper limit
	if got := p.TimeStep(0, 30); got != 30 {
		t.Errorf("TimeStep(30) without an upper limit = %g", got)
	}
}

func TestMamba2ParamsCheck(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 0))
	p := testMamba2Params(r, 4, 2, 3, 2)
	if p.Check() == nil {
		t.Error("4 heads in 3 groups accepted")
	}
	p = testMamba2Params(r, 4, 2, 2, 2)
	p.D = p.D[:3]
	if p.Check() == nil {
		t.Error("short D accepted")
	}
}

// TestConv1dBiasPrefill checks the biased convolution against a float64
// direct one, over a prompt split into pieces (the state carries across).
func TestConv1dBiasPrefill(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 0))
	const channels, kernel, steps = 10, 4, 11
	w, bias := randVec(r, channels*kernel), randVec(r, channels)
	x := randVec(r, steps*channels)
	state := make([]float32, channels*(kernel-1))
	out := make([]float32, steps*channels)
	for _, piece := range [][2]int{{0, 1}, {1, 3}, {3, 9}, {9, 10}, {10, 11}} {
		t0, t1 := piece[0], piece[1]
		Conv1dBiasPrefill(state, x[t0*channels:t1*channels], w, bias, out[t0*channels:t1*channels], t1-t0, channels, kernel)
	}
	var worst float64
	for i := range steps {
		for c := range channels {
			acc := float64(bias[c])
			for j := range kernel {
				if p := i - (kernel - 1) + j; p >= 0 {
					acc += float64(w[c*kernel+j]) * float64(x[p*channels+c])
				}
			}
			want := acc / (1 + math.Exp(-acc))
			worst = math.Max(worst, math.Abs(want-float64(out[i*channels+c])))
		}
	}
	if worst > 1e-5 {
		t.Errorf("biased conv differs from the direct float64 one by %g", worst)
	}
	for c := range channels {
		for s := range kernel - 1 {
			if got, want := state[c*(kernel-1)+s], x[(steps-(kernel-1)+s)*channels+c]; got != want {
				t.Fatalf("state channel %d entry %d = %g, want the input %g", c, s, got, want)
			}
		}
	}
}

func TestRMSNormGate(t *testing.T) {
	r := rand.New(rand.NewPCG(4, 0))
	const rows, width, dim = 3, 12, 4
	x, z, w := randVec(r, rows*width), randVec(r, rows*width), randVec(r, width)
	out := make([]float32, rows*width)
	RMSNormGate(out, x, z, w, rows, width, dim, 1e-5)
	var worst float64
	for row := range rows {
		for c0 := 0; c0 < width; c0 += dim {
			v := make([]float64, dim)
			var ss float64
			for i := range v {
				zi := float64(z[row*width+c0+i])
				v[i] = float64(x[row*width+c0+i]) * zi / (1 + math.Exp(-zi))
				ss += v[i] * v[i]
			}
			inv := 1 / math.Sqrt(ss/dim+1e-5)
			for i := range v {
				worst = math.Max(worst, math.Abs(v[i]*inv*float64(w[c0+i])-float64(out[row*width+c0+i])))
			}
		}
	}
	if worst > 1e-5 {
		t.Errorf("gated norm differs from the float64 one by %g", worst)
	}
}

// BenchmarkMamba2Step is one decode token of a Granite 4.0-H-sized layer
// (48 heads of 64, state 128, one group), the vector head-parallel form and
// its one-loop reference: the state is read and written once, so each is
// measured as state bytes moved per second against the copy bandwidth of
// the same run.
func BenchmarkMamba2Step(b *testing.B) {
	bw := copyBandwidth()
	r := rand.New(rand.NewPCG(5, 0))
	p := testMamba2Params(r, 48, 64, 1, 128)
	hp, gn := p.Heads*p.HeadDim, p.Groups*p.StateDim
	state := make([]float32, p.StateSize())
	x, dt, bb, c, y := randVec(r, hp), randVec(r, p.Heads), randVec(r, gn), randVec(r, gn), make([]float32, hp)
	moved := int64(2 * 4 * len(state))
	for _, form := range []struct {
		name string
		step func(state, x, dt, b, c, y []float32, p *Mamba2Params)
	}{{"vector", Mamba2Step}, {"go", mamba2StepGo}} {
		b.Run(form.name, func(b *testing.B) {
			b.SetBytes(moved)
			for b.Loop() {
				form.step(state, x, dt, bb, c, y, p)
			}
			b.ReportMetric(float64(moved)*float64(b.N)/b.Elapsed().Seconds()/bw, "frac-of-copy-bw")
		})
	}
}

// TestMamba2StepMatchesGo checks the vector, head-parallel form against
// the one-loop reference on a layer large enough to run in parallel.
func TestMamba2StepMatchesGo(t *testing.T) {
	r := rand.New(rand.NewPCG(6, 0))
	p := testMamba2Params(r, 48, 64, 2, 128)
	hp, gn := p.Heads*p.HeadDim, p.Groups*p.StateDim
	state := randVec(r, p.StateSize())
	ref := append([]float32(nil), state...)
	y, want := make([]float32, hp), make([]float32, hp)
	for range 3 {
		x, dt, b, c := randVec(r, hp), randVec(r, p.Heads), randVec(r, gn), randVec(r, gn)
		Mamba2Step(state, x, dt, b, c, y, p)
		mamba2StepGo(ref, x, dt, b, c, want, p)
		close32(t, "Mamba2Step y", y, want, 1e-4)
	}
	close32(t, "Mamba2Step state", state, ref, 1e-5)
}

// TestMamba2StepAllocatesNothingWhenWarm: a decode step of a layer large
// enough to run its heads in parallel allocates nothing once warm.
func TestMamba2StepAllocatesNothingWhenWarm(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 0))
	p := testMamba2Params(r, 48, 64, 1, 128)
	hp, gn := p.Heads*p.HeadDim, p.Groups*p.StateDim
	state := make([]float32, p.StateSize())
	x, dt, b, c, y := randVec(r, hp), randVec(r, p.Heads), randVec(r, gn), randVec(r, gn), make([]float32, hp)
	step := func() { Mamba2Step(state, x, dt, b, c, y, p) }
	step()
	step()
	if r := allocs.Steady(10, step, nil); r.PerCall != 0 {
		t.Errorf("a warm step: %v", r)
	}
}

// TestMamba2ScanStridedRows: a prompt through Mamba2Scan with x, B and C
// read as column views of one conv output and y written into a wider row,
// against mamba2StepGo token by token on copied-out rows; heads run in
// parallel at this size.
func TestMamba2ScanStridedRows(t *testing.T) {
	r := rand.New(rand.NewPCG(8, 0))
	p := testMamba2Params(r, 48, 32, 4, 64)
	hp, gn := p.Heads*p.HeadDim, p.Groups*p.StateDim
	const n, yWidth = 9, 1600
	width := hp + 2*gn
	conv, dt := randVec(r, n*width), randVec(r, n*p.Heads)
	state := randVec(r, p.StateSize())
	ref := append([]float32(nil), state...)
	y := make([]float32, n*yWidth)
	Mamba2Scan(state, Mamba2Rows{X: conv, Dt: dt, B: conv[hp:], C: conv[hp+gn:], Y: y,
		XStride: width, BCStride: width, YStride: yWidth}, n, p)
	want := make([]float32, hp)
	for i := range n {
		row := append([]float32(nil), conv[i*width:(i+1)*width]...)
		mamba2StepGo(ref, row[:hp], dt[i*p.Heads:], row[hp:hp+gn], row[hp+gn:], want, p)
		close32(t, "Mamba2Scan y", y[i*yWidth:i*yWidth+hp], want, 1e-4)
	}
	close32(t, "Mamba2Scan state", state, ref, 1e-5)
}

// BenchmarkMamba2Prefill is a 64-token chunk of the same layer, one scan
// over the chunk (each head's state kept in cache across the tokens)
// against 64 single-token steps (the whole state swept per token), in the
// same run, as state values updated per CPU-second (the machines are
// shared: the wall clock measures the neighbours too).
func BenchmarkMamba2Prefill(b *testing.B) {
	r := rand.New(rand.NewPCG(9, 0))
	p := testMamba2Params(r, 48, 64, 1, 128)
	hp, gn := p.Heads*p.HeadDim, p.Groups*p.StateDim
	const n = 64
	state := make([]float32, p.StateSize())
	x, dt, bb, c, y := randVec(r, n*hp), randVec(r, n*p.Heads), randVec(r, n*gn), randVec(r, n*gn), make([]float32, n*hp)
	for _, form := range []struct {
		name string
		run  func()
	}{
		{"scan", func() { Mamba2Scan(state, Mamba2Rows{X: x, Dt: dt, B: bb, C: c, Y: y}, n, p) }},
		{"steps", func() {
			for t := range n {
				Mamba2Step(state, x[t*hp:], dt[t*p.Heads:], bb[t*gn:], c[t*gn:], y[t*hp:], p)
			}
		}},
	} {
		b.Run(form.name, func(b *testing.B) {
			c0 := cpuSeconds()
			for b.Loop() {
				form.run()
			}
			if cpu := cpuSeconds() - c0; cpu > 0 {
				b.ReportMetric(float64(b.N)*n*float64(p.StateSize())/cpu/1e6, "Mvalues/CPU-s")
			}
		})
	}
}

// TestMamba2Row: the fused row update against its reference on lengths
// that exercise the 16- and 8-wide bodies and the scalar tail, SIMD on
// and off.
func TestMamba2Row(t *testing.T) {
	simdModes(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(10, 0))
		for _, n := range []int{1, 7, 8, 15, 16, 24, 33, 128} {
			s, b, c := randVec(r, n), randVec(r, n), randVec(r, n)
			ref := append([]float32(nil), s...)
			got := mamba2Row(s, b, c, 0.7, -1.3)
			want := mamba2RowGo(ref, b, c, 0.7, -1.3)
			close32(t, "mamba2Row state", s, ref, 1e-6)
			if math.Abs(float64(got-want)) > 1e-5*(1+math.Abs(float64(want))) {
				t.Errorf("n=%d: mamba2Row = %g, want %g", n, got, want)
			}
		}
	})
}
