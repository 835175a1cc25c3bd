package kernels

import (
	"fmt"
	"math"
	"sync/atomic"
)

// Mamba-2 (the SSD layers of Granite 4.0 and other hybrid models) keeps, per
// head h, a state S_h of shape [headDim, stateDim]. One token does
//
//	dt = clamp(softplus(dt_raw + dtBias[h]), DtMin, DtMax)
//	S  = exp(dt·A[h]) · S + dt · x ⊗ B        (x: the head's headDim inputs, B: its group's stateDim)
//	y  = S·C + D[h] · x
//
// Head h reads B and C of group h/(heads/groups): transformers'
// repeat_interleave, not tiling.

// Mamba2Params are the constants of one Mamba-2 layer's scan.
type Mamba2Params struct {
	Heads, HeadDim, Groups, StateDim int
	// A is -exp(A_log) per head; D the skip weight and DtBias the time-step
	// bias per head.
	A, D, DtBias []float32
	// DtMin and DtMax clamp the time step (transformers' time_step_limit);
	// DtMax <= 0 means no upper limit.
	DtMin, DtMax float32
}

// Check reports whether the parameters are consistent.
func (p *Mamba2Params) Check() error {
	switch {
	case p.Heads <= 0 || p.HeadDim <= 0 || p.Groups <= 0 || p.StateDim <= 0:
		return fmt.Errorf("mamba2: heads %d, head dim %d, groups %d, state dim %d must be positive", p.Heads, p.HeadDim, p.Groups, p.StateDim)
	case p.Heads%p.Groups != 0:
		return fmt.Errorf("mamba2: %d heads do not divide into %d groups", p.Heads, p.Groups)
	case len(p.A) != p.Heads || len(p.D) != p.Heads || len(p.DtBias) != p.Heads:
		return fmt.Errorf("mamba2: A, D, dt_bias have %d, %d, %d values, want %d", len(p.A), len(p.D), len(p.DtBias), p.Heads)
	}
	return nil
}

// StateSize is the number of values in one layer's SSM state.
func (p *Mamba2Params) StateSize() int { return p.Heads * p.HeadDim * p.StateDim }

// TimeStep is the clamped time step of head h for the raw projection v.
func (p *Mamba2Params) TimeStep(h int, v float32) float32 {
	dt := softplus32(v + p.DtBias[h])
	dt = max(dt, p.DtMin)
	if p.DtMax > 0 {
		dt = min(dt, p.DtMax)
	}
	return dt
}

// softplus32 is torch's softplus: log(1+exp(x)), x itself above 20.
func softplus32(x float32) float32 {
	if x > 20 {
		return x
	}
	return float32(math.Log1p(math.Exp(float64(x))))
}

// Mamba2Step advances the scan by one token, in place.
//
//	state [heads, headDim, stateDim]  read and updated
//	x     [heads*headDim]
//	dt    [heads]                     raw (the kernel adds the bias, softplus, clamps)
//	b, c  [groups*stateDim]
//	y     [heads*headDim]             written (D skip included)
//
// It panics if a slice is shorter than its shape (a caller bug).
func Mamba2Step(state, x, dt, b, c, y []float32, p *Mamba2Params) {
	Mamba2Scan(state, Mamba2Rows{X: x, Dt: dt, B: b, C: c, Y: y}, 1, p)
}

// Mamba2Rows are the per-token rows of a scan over several tokens: token
// t's x is X[t*XStride:], its dt Dt[t*DtStride:], its B and C
// B[t*BCStride:] and C[t*BCStride:], its output Y[t*YStride:] (x, B and C
// are usually column views of one conv output row). A stride of 0 means
// the row's own width.
type Mamba2Rows struct {
	X, Dt, B, C, Y                       []float32
	XStride, DtStride, BCStride, YStride int
}

// strides fills the zero strides with the rows' widths.
func (r *Mamba2Rows) strides(p *Mamba2Params) {
	hp, gn := p.Heads*p.HeadDim, p.Groups*p.StateDim
	for _, s := range []struct {
		v *int
		w int
	}{{&r.XStride, hp}, {&r.DtStride, p.Heads}, {&r.BCStride, gn}, {&r.YStride, hp}} {
		if *s.v == 0 {
			*s.v = s.w
		}
	}
}

// Mamba2Scan runs n tokens through the scan (Mamba2Step token after token),
// in place. Each head runs all n tokens while its state (headDim*stateDim
// values) stays in cache, heads in parallel on large layers; each state row
// is one fused pass per token (mamba2Row: decay, add dt·x·B, dot with C).
func Mamba2Scan(state []float32, rows Mamba2Rows, n int, p *Mamba2Params) {
	rows.strides(p)
	mamba2Check(state, rows, n, p)
	if n == 0 {
		return
	}
	j := mamba2Jobs.Swap(nil)
	if j == nil {
		j = new(mamba2Job)
		j.body = j.run
	}
	j.state, j.rows, j.n, j.p = state, rows, n, p
	parallelFor(p.Heads, n*p.HeadDim*p.StateDim, j.body)
	*j = mamba2Job{body: j.body}
	mamba2Jobs.Store(j)
}

// mamba2Check panics unless every row of n tokens is inside its slice.
func mamba2Check(state []float32, r Mamba2Rows, n int, p *Mamba2Params) {
	hp, gn := p.Heads*p.HeadDim, p.Groups*p.StateDim
	need := func(v []float32, stride, width int) bool { return n == 0 || len(v) >= (n-1)*stride+width }
	if n < 0 || len(state) < p.StateSize() || p.Groups <= 0 || p.Heads%p.Groups != 0 ||
		len(p.A) < p.Heads || len(p.D) < p.Heads || len(p.DtBias) < p.Heads ||
		!need(r.X, r.XStride, hp) || !need(r.Dt, r.DtStride, p.Heads) || !need(r.B, r.BCStride, gn) ||
		!need(r.C, r.BCStride, gn) || !need(r.Y, r.YStride, hp) {
		panic(fmt.Sprintf("kernels.Mamba2Scan: n=%d heads=%d headDim=%d groups=%d stateDim=%d; got state %d, x %d/%d, dt %d/%d, b %d, c %d /%d, y %d/%d",
			n, p.Heads, p.HeadDim, p.Groups, p.StateDim, len(state), len(r.X), r.XStride, len(r.Dt), r.DtStride,
			len(r.B), len(r.C), r.BCStride, len(r.Y), r.YStride))
	}
}

// mamba2Job is one Mamba2Scan call's arguments with its work function
// bound once (a closure per call would allocate per layer per token).
type mamba2Job struct {
	state []float32
	rows  Mamba2Rows
	n     int
	p     *Mamba2Params
	body  func(lo, hi int)
}

// mamba2Jobs keeps one idle job; concurrent calls make their own.
var mamba2Jobs atomic.Pointer[mamba2Job]

// run advances heads [lo, hi) over every token.
func (j *mamba2Job) run(lo, hi int) {
	p, r := j.p, &j.rows
	per, ns, hd := p.Heads/p.Groups, p.StateDim, p.HeadDim
	for h := lo; h < hi; h++ {
		g := h / per
		hs := j.state[h*hd*ns : (h+1)*hd*ns]
		for t := range j.n {
			step := p.TimeStep(h, r.Dt[t*r.DtStride+h])
			decay := float32(math.Exp(float64(step * p.A[h])))
			bg := r.B[t*r.BCStride+g*ns:][:ns]
			cg := r.C[t*r.BCStride+g*ns:][:ns]
			x := r.X[t*r.XStride+h*hd:][:hd]
			y := r.Y[t*r.YStride+h*hd:][:hd]
			for d, xd := range x {
				y[d] = mamba2Row(hs[d*ns:(d+1)*ns], bg, cg, decay, step*xd) + p.D[h]*xd
			}
		}
	}
}

// mamba2StepGo is Mamba2Step in one loop per state row, the reference
// the vector form is tested against.
func mamba2StepGo(state, x, dt, b, c, y []float32, p *Mamba2Params) {
	mamba2Check(state, Mamba2Rows{X: x, Dt: dt, B: b, C: c, Y: y, XStride: 1, DtStride: 1, BCStride: 1, YStride: 1}, 1, p)
	per, n := p.Heads/p.Groups, p.StateDim
	for h := range p.Heads {
		step := p.TimeStep(h, dt[h])
		decay := float32(math.Exp(float64(step * p.A[h])))
		g := h / per
		bg, cg := b[g*n:(g+1)*n], c[g*n:(g+1)*n]
		for d := range p.HeadDim {
			xd := x[h*p.HeadDim+d]
			s := state[(h*p.HeadDim+d)*n : (h*p.HeadDim+d+1)*n]
			y[h*p.HeadDim+d] = mamba2RowGo(s, bg, cg, decay, step*xd) + p.D[h]*xd
		}
	}
}

// Conv1dBiasPrefill is Conv1dPrefill with a per-channel bias added before
// the SiLU (Mamba's conv1d has one):
//
//	out[i,c] = silu(bias[c] + Σ_j w[c,j] · x[i-(kernel-1)+j, c])
//
// state, x, w, out and the state update are Conv1dPrefill's; bias has
// channels values.
func Conv1dBiasPrefill(state, x, w, bias, out []float32, t, channels, kernel int) {
	hist := kernel - 1
	if t < 0 || channels <= 0 || kernel <= 0 || len(bias) < channels ||
		len(state) < channels*hist || len(x) < t*channels || len(w) < channels*kernel || len(out) < t*channels {
		panic(fmt.Sprintf("kernels.Conv1dBiasPrefill: t=%d channels=%d kernel=%d; got state %d, x %d, w %d, bias %d, out %d",
			t, channels, kernel, len(state), len(x), len(w), len(bias), len(out)))
	}
	conv1dDirect(state, x, w, bias, out, t, channels, kernel)
	conv1dShiftState(state, x, t, channels, hist)
}

// RMSNormGate is the gated norm of Mamba-2 with the gate applied first
// (norm_before_gate false): per dim-sized chunk of each row,
//
//	v = x · silu(z);  out = v / rms(v) · w
//
// Rows are width values (a multiple of dim) and w has width values: a
// chunk is normalised on its own and scaled by its own part of w.
func RMSNormGate(out, x, z, w []float32, rows, width, dim int, eps float32) {
	if dim <= 0 || width%dim != 0 || len(out) < rows*width || len(x) < rows*width || len(z) < rows*width || len(w) < width {
		panic(fmt.Sprintf("kernels.RMSNormGate: rows=%d width=%d dim=%d; got out %d, x %d, z %d, w %d",
			rows, width, dim, len(out), len(x), len(z), len(w)))
	}
	n := rows * width
	SwiGLU(out[:n], z[:n], x[:n])
	for r := range rows {
		for c0 := 0; c0 < width; c0 += dim {
			o := out[r*width+c0 : r*width+c0+dim]
			RMSNorm(o, o, w[c0:c0+dim], 1, dim, eps)
		}
	}
}

// ScaleVec writes s·x to out (the Granite multipliers); out may be x.
func ScaleVec(out, x []float32, s float32) {
	copy(out[:len(x)], x)
	scale(out[:len(x)], s)
}

// mamba2RowGo is the reference of mamba2Row.
func mamba2RowGo(s, b, c []float32, decay, dx float32) float32 {
	b, c = b[:len(s)], c[:len(s)]
	var acc float32
	for i, v := range s {
		v = decay*v + dx*b[i]
		s[i] = v
		acc += v * c[i]
	}
	return acc
}
