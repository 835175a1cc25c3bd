package kernels

import (
	"fmt"
	"math"
	"sync/atomic"
)

// Gated DeltaNet (the linear-attention layers of Qwen3-Next and Qwen3.5) keeps,
// per value head h, a matrix state S_h of shape [dk, dv]. One token does
//
//	q̂ = l2norm(q)/sqrt(dk), k̂ = l2norm(k)       (per key head, eps 1e-6 inside the rsqrt)
//	S  = exp(g) * S
//	δ  = beta * (v - Sᵀk̂)
//	S  = S + k̂ δᵀ
//	o  = Sᵀq̂
//
// Value head h reads key head h/(hv/hk): the key heads are repeated
// interleaved (transformers' repeat_interleave), not tiled.

// GatedDeltaDefaultChunk is the chunk length GatedDeltaChunked uses when it
// is given chunk <= 0. On the CPU, 8 and 16 measure fastest; from 32 up the
// per-chunk triangular work (which grows with the chunk) costs more than the
// shared state sweeps save (BenchmarkGatedDeltaPrefill).
const GatedDeltaDefaultChunk = 16

// deltaL2Eps is the epsilon inside rsqrt(sum(x²)+eps) of the q/k normalisation.
const deltaL2Eps = 1e-6

// GatedDeltaStep advances the gated delta rule by one token, in place.
//
//	state [hv, dk, dv]  read and updated
//	q, k  [hk, dk]      raw (the kernel normalises and scales them)
//	v     [hv, dv]
//	g     [hv]          log decay: state is multiplied by exp(g) (see GatedDeltaGates)
//	beta  [hv]          already passed through sigmoid
//	out   [hv, dv]      written
//
// hv must be a multiple of hk. It panics if a slice is shorter than its shape
// (a caller bug, like an index out of range).
func GatedDeltaStep(state, q, k, v, g, beta, out []float32, hk, hv, dk, dv int) {
	deltaCheck("GatedDeltaStep", state, q, k, v, g, beta, out, 1, hk, hv, dk, dv)
	j := deltaStepJobs.Swap(nil)
	if j == nil {
		j = new(deltaStepJob)
		j.body = j.run
	}
	j.state, j.q, j.k, j.v, j.g, j.beta, j.out = state, q, k, v, g, beta, out
	j.hk, j.hv, j.dk, j.dv = hk, hv, dk, dv
	parallelFor(hv, dk*dv, j.body)
	*j = deltaStepJob{body: j.body}
	deltaStepJobs.Store(j)
}

// deltaStepJob is one GatedDeltaStep call's arguments with its work
// function bound once (a closure per call would be a heap allocation per
// layer per token: the worker pool keeps the function).
type deltaStepJob struct {
	state, q, k, v, g, beta, out []float32
	hk, hv, dk, dv               int
	body                         func(lo, hi int)
}

// deltaStepJobs keeps one idle job (a sync.Pool would be emptied by every
// other GC, and a decode step would allocate a new one); concurrent calls
// make their own.
var deltaStepJobs atomic.Pointer[deltaStepJob]

// run advances value heads [lo, hi).
func (j *deltaStepJob) run(lo, hi int) {
	dk, dv := j.dk, j.dv
	// Head-sized scratch on the stack for the usual sizes (<= 256).
	var qBuf, kBuf, dBuf [256]float32
	qn, kn, delta := qBuf[:0], kBuf[:0], dBuf[:0]
	if dk > len(qBuf) || dv > len(dBuf) {
		qn, kn, delta = make([]float32, 0, dk), make([]float32, 0, dk), make([]float32, 0, dv)
	}
	qn, kn, delta = qn[:dk], kn[:dk], delta[:dv]
	group := j.hv / j.hk
	qScale := deltaQueryScale(dk)
	for h := lo; h < hi; h++ {
		kh := h / group
		deltaL2Normalize(qn, j.q[kh*dk:(kh+1)*dk], qScale)
		deltaL2Normalize(kn, j.k[kh*dk:(kh+1)*dk], 1)
		deltaStepHead(j.state[h*dk*dv:(h+1)*dk*dv], qn, kn, j.v[h*dv:(h+1)*dv],
			j.g[h], j.beta[h], j.out[h*dv:(h+1)*dv], delta)
	}
}

// deltaStepHead is one token of one value head with q, k already normalised.
// delta is scratch of length dv.
func deltaStepHead(s, qn, kn, v []float32, g, beta float32, out, delta []float32) {
	dv := len(v)
	decay := float32(math.Exp(float64(g)))
	// δ = beta*(v - decay*Sᵀk): the decay is applied to the product, not to S, so
	// S is read once here and once below.
	clear(delta)
	deltaMulAdd(delta, kn, s, 1, len(kn), dv, 0, dv, 0)
	v = v[:len(delta)]
	for j, m := range delta {
		delta[j] = beta * (v[j] - decay*m)
	}
	// S = decay*S + k̂δᵀ and o = Sᵀq̂ in the same sweep over S.
	clear(out)
	out = out[:len(delta)]
	dk := len(kn)
	n8 := deltaSweep(s, out, delta, kn, qn, decay)
	if n8 == len(delta) {
		return
	}
	// The columns the vector sweep left (all of them without one).
	s, out, delta = s[n8:], out[n8:], delta[n8:]
	// Four rows at a time, every row resliced to len(delta) so the inner
	// loops carry no bounds checks.
	i := 0
	for ; i+4 <= dk; i += 4 {
		r0 := s[i*dv:][:len(delta)]
		r1 := s[(i+1)*dv:][:len(delta)]
		r2 := s[(i+2)*dv:][:len(delta)]
		r3 := s[(i+3)*dv:][:len(delta)]
		k0, k1, k2, k3 := kn[i], kn[i+1], kn[i+2], kn[i+3]
		q0, q1, q2, q3 := qn[i], qn[i+1], qn[i+2], qn[i+3]
		for j, d := range delta {
			x0 := decay*r0[j] + k0*d
			x1 := decay*r1[j] + k1*d
			x2 := decay*r2[j] + k2*d
			x3 := decay*r3[j] + k3*d
			r0[j], r1[j], r2[j], r3[j] = x0, x1, x2, x3
			out[j] += q0*x0 + q1*x1 + q2*x2 + q3*x3
		}
	}
	for ; i < dk; i++ {
		r := s[i*dv:][:len(delta)]
		ki, qi := kn[i], qn[i]
		for j, d := range delta {
			x := decay*r[j] + ki*d
			r[j] = x
			out[j] += qi * x
		}
	}
}

// GatedDeltaChunked runs t tokens of the gated delta rule in the chunked
// (parallel) form and leaves in state what t calls of GatedDeltaStep would.
//
//	state [hv, dk, dv]  read and updated
//	q, k  [t, hk, dk]   raw
//	v     [t, hv, dv]
//	g     [t, hv]       log decay
//	beta  [t, hv]
//	out   [t, hv, dv]   written
//
// Within a chunk of n tokens the n delta-rule updates are folded into one
// triangular solve (the UT/WY transform): with cumulative log decay G_i and
// A_ij = beta_i (k̂_i·k̂_j) exp(G_i-G_j) for j < i, the corrected values
// U = (I+A)⁻¹ diag(beta) V and decayed keys W = (I+A)⁻¹ diag(beta e^G) K̂
// give
//
//	Vnew = U - W S
//	o_i  = e^{G_i} q̂_i S + Σ_{j≤i} (q̂_i·k̂_j) e^{G_i-G_j} Vnew_j
//	S   ← e^{G_n} S + Σ_j e^{G_n-G_j} k̂_j Vnew_jᵀ
//
// so the state is swept three times per chunk instead of twice per token, and
// the work becomes matrix products.
// chunk <= 0 means GatedDeltaDefaultChunk; t need not be a multiple of it.
func GatedDeltaChunked(state, q, k, v, g, beta, out []float32, t, hk, hv, dk, dv, chunk int) {
	deltaCheck("GatedDeltaChunked", state, q, k, v, g, beta, out, t, hk, hv, dk, dv)
	if t == 0 {
		return
	}
	if chunk <= 0 {
		chunk = GatedDeltaDefaultChunk
	}
	chunk = min(chunk, t)
	parallelFor(hv, t*dk*dv, func(lo, hi int) {
		sc := newDeltaChunkScratch(chunk, dk, dv)
		for h := lo; h < hi; h++ {
			s := state[h*dk*dv : (h+1)*dk*dv]
			for t0 := 0; t0 < t; t0 += chunk {
				sc.run(s, q, k, v, g, beta, out, t0, min(chunk, t-t0), h, hk, hv, dk, dv)
			}
		}
	})
}

// deltaChunkScratch holds one worker's per-chunk buffers (c = chunk length).
type deltaChunkScratch struct {
	c   int
	qn  []float32 // [c, dk] normalised, scaled queries; later multiplied by e^{G_i}
	kn  []float32 // [c, dk] normalised keys
	cum []float32 // [c] cumulative log decay G_i within the chunk
	bt  []float32 // [c] beta
	neg []float32 // [c, c] -A_ij (j < i), the forward-substitution coefficients
	qk  []float32 // [c, c] (q̂_i·k̂_j) e^{G_i-G_j} (j <= i)
	uw  []float32 // [c, dv+dk] row i: U_i (later Vnew_i) | -W_i
	kdT []float32 // [dk, c] e^{G_n-G_j} k̂_j, transposed
}

func newDeltaChunkScratch(c, dk, dv int) *deltaChunkScratch {
	return &deltaChunkScratch{
		c:   c,
		qn:  make([]float32, c*dk),
		kn:  make([]float32, c*dk),
		cum: make([]float32, c),
		bt:  make([]float32, c),
		neg: make([]float32, c*c),
		qk:  make([]float32, c*c),
		uw:  make([]float32, c*(dv+dk)),
		kdT: make([]float32, dk*c),
	}
}

// run processes tokens [t0, t0+n) of value head h against its state s.
func (sc *deltaChunkScratch) run(s, q, k, v, g, beta, out []float32, t0, n, h, hk, hv, dk, dv int) {
	c := sc.c
	kh := h / (hv / hk)
	qScale := deltaQueryScale(dk)
	var cum float32
	for i := range n {
		tok := t0 + i
		deltaL2Normalize(sc.qn[i*dk:(i+1)*dk], q[(tok*hk+kh)*dk:(tok*hk+kh+1)*dk], qScale)
		deltaL2Normalize(sc.kn[i*dk:(i+1)*dk], k[(tok*hk+kh)*dk:(tok*hk+kh+1)*dk], 1)
		cum += g[tok*hv+h]
		sc.cum[i] = cum
		sc.bt[i] = beta[tok*hv+h]
	}

	// Pairwise terms. Only j <= i is formed, so every exponent is G_i-G_j <= 0
	// for decaying gates and nothing overflows.
	for i := range n {
		ki := sc.kn[i*dk : (i+1)*dk]
		qi := sc.qn[i*dk : (i+1)*dk]
		for j := 0; j <= i; j++ {
			kj := sc.kn[j*dk : (j+1)*dk]
			e := float32(math.Exp(float64(sc.cum[i] - sc.cum[j])))
			sc.qk[i*c+j] = Dot(qi, kj) * e
			if j < i {
				sc.neg[i*c+j] = -sc.bt[i] * Dot(ki, kj) * e
			}
		}
	}

	// Forward substitution for (I+A)[U | -W] = [diag(beta)V | -diag(beta e^G)K̂].
	ld := dv + dk
	for i := range n {
		row := sc.uw[i*ld : (i+1)*ld]
		b := sc.bt[i]
		vi := v[((t0+i)*hv+h)*dv : ((t0+i)*hv+h+1)*dv]
		for j, x := range vi {
			row[j] = b * x
		}
		bk := -b * float32(math.Exp(float64(sc.cum[i])))
		for j, x := range sc.kn[i*dk : (i+1)*dk] {
			row[dv+j] = bk * x
		}
		deltaMulAdd(row, sc.neg[i*c:], sc.uw, 1, i, ld, 0, ld, 0)
	}

	// Vnew = U - W S, written over U.
	deltaMulAdd(sc.uw, sc.uw[dv:], s, n, dk, dv, ld, dv, ld)

	// o_i = e^{G_i} q̂_i S + Σ_{j<=i} qk_ij Vnew_j.
	ostride := hv * dv
	o := out[(t0*hv+h)*dv:]
	for i := range n {
		e := float32(math.Exp(float64(sc.cum[i])))
		scale(sc.qn[i*dk:(i+1)*dk], e)
		clear(o[i*ostride : i*ostride+dv])
	}
	deltaMulAdd(o, sc.qn, s, n, dk, dv, dk, dv, ostride)
	for i := range n {
		deltaMulAdd(o[i*ostride:], sc.qk[i*c:], sc.uw, 1, i+1, dv, 0, ld, 0)
	}

	// S = e^{G_n} S + Σ_j e^{G_n-G_j} k̂_j Vnew_jᵀ.
	last := sc.cum[n-1]
	for j := range n {
		e := float32(math.Exp(float64(last - sc.cum[j])))
		for d, x := range sc.kn[j*dk : (j+1)*dk] {
			sc.kdT[d*c+j] = e * x
		}
	}
	scale(s, float32(math.Exp(float64(last))))
	deltaMulAdd(s, sc.kdT, sc.uw, dk, n, dv, c, ld, dv)
}

// GatedDeltaGates turns the in_proj_ba outputs into the recurrence's gates,
// for a [t, hv] and b [t, hv]:
//
//	g[t,h]    = -exp(aLog[h]) * softplus(a[t,h] + dtBias[h])   (log decay, <= 0)
//	beta[t,h] = sigmoid(b[t,h])
//
// softplus is torch's (x for x > 20). g and beta are [t, hv] and may alias a and b.
func GatedDeltaGates(g, beta, a, b, aLog, dtBias []float32, t, hv int) {
	if len(g) < t*hv || len(beta) < t*hv || len(a) < t*hv || len(b) < t*hv || len(aLog) < hv || len(dtBias) < hv {
		panic(fmt.Sprintf("kernels.GatedDeltaGates: t=%d hv=%d needs g, beta, a, b of %d and aLog, dtBias of %d; got %d, %d, %d, %d, %d, %d",
			t, hv, t*hv, hv, len(g), len(beta), len(a), len(b), len(aLog), len(dtBias)))
	}
	for h := range hv {
		rate := -math.Exp(float64(aLog[h]))
		for i := range t {
			x := float64(a[i*hv+h] + dtBias[h])
			sp := x
			if x <= 20 {
				sp = math.Log1p(math.Exp(x))
			}
			g[i*hv+h] = float32(rate * sp)
		}
	}
	SigmoidVec(beta[:t*hv], b[:t*hv])
}

// GatedRMSNorm is Qwen3-Next's gated RMSNorm of the delta-rule output, per row
// of dim values (rows = tokens*hv, dim = dv):
//
//	out = w * x/sqrt(mean(x²)+eps) * silu(z)
//
// w is used as stored (this norm is not zero-centred in either HF or MLX
// files). out may alias x.
func GatedRMSNorm(out, x, z, w []float32, rows, dim int, eps float32) {
	if len(out) < rows*dim || len(x) < rows*dim || len(z) < rows*dim || len(w) < dim {
		panic(fmt.Sprintf("kernels.GatedRMSNorm: rows=%d dim=%d needs out, x, z of %d and w of %d; got %d, %d, %d, %d",
			rows, dim, rows*dim, dim, len(out), len(x), len(z), len(w)))
	}
	RMSNorm(out, x, w, rows, dim, eps)
	SwiGLU(out[:rows*dim], z[:rows*dim], out[:rows*dim])
}

// deltaQueryScale is the 1/sqrt(dk) applied to the normalised query.
func deltaQueryScale(dk int) float32 {
	return float32(1 / math.Sqrt(float64(dk)))
}

// deltaL2Normalize writes scale * x/sqrt(sum(x²)+1e-6) to dst.
func deltaL2Normalize(dst, x []float32, scale float32) {
	inv := float32(1 / math.Sqrt(float64(Dot(x, x)+deltaL2Eps)))
	for i, xi := range x {
		dst[i] = xi * inv * scale
	}
}

// deltaMulAddGo is the reference of deltaMulAdd: C += A·B for row-major
// A [m, kd], B [kd, n], C [m, n] with leading dimensions lda, ldb, ldc
// (unused for m == 1). It takes two rows of C and four rows of B at a time,
// so each B element loaded feeds two multiply-adds and each C element is
// loaded and stored once per four.
func deltaMulAddGo(c, a, b []float32, m, kd, n, lda, ldb, ldc int) {
	i := 0
	for ; i+2 <= m; i += 2 {
		c0 := c[i*ldc : i*ldc+n]
		c1 := c[(i+1)*ldc:][:len(c0)]
		x := a[i*lda : i*lda+kd]
		y := a[(i+1)*lda:][:len(x)]
		kk := 0
		for ; kk+4 <= kd; kk += 4 {
			x0, x1, x2, x3 := x[kk], x[kk+1], x[kk+2], x[kk+3]
			y0, y1, y2, y3 := y[kk], y[kk+1], y[kk+2], y[kk+3]
			b0 := b[kk*ldb:][:len(c0)]
			b1 := b[(kk+1)*ldb:][:len(c0)]
			b2 := b[(kk+2)*ldb:][:len(c0)]
			b3 := b[(kk+3)*ldb:][:len(c0)]
			for j := range c0 {
				v0, v1, v2, v3 := b0[j], b1[j], b2[j], b3[j]
				c0[j] += x0*v0 + x1*v1 + x2*v2 + x3*v3
				c1[j] += y0*v0 + y1*v1 + y2*v2 + y3*v3
			}
		}
		for ; kk < kd; kk++ {
			xk, yk := x[kk], y[kk]
			bk := b[kk*ldb:][:len(c0)]
			for j, v := range bk {
				c0[j] += xk * v
				c1[j] += yk * v
			}
		}
	}
	if i == m {
		return
	}
	// The odd last row.
	ci := c[i*ldc : i*ldc+n]
	x := a[i*lda : i*lda+kd]
	kk := 0
	for ; kk+4 <= kd; kk += 4 {
		x0, x1, x2, x3 := x[kk], x[kk+1], x[kk+2], x[kk+3]
		b0 := b[kk*ldb:][:len(ci)]
		b1 := b[(kk+1)*ldb:][:len(ci)]
		b2 := b[(kk+2)*ldb:][:len(ci)]
		b3 := b[(kk+3)*ldb:][:len(ci)]
		for j := range ci {
			ci[j] += x0*b0[j] + x1*b1[j] + x2*b2[j] + x3*b3[j]
		}
	}
	for ; kk < kd; kk++ {
		xk := x[kk]
		for j, v := range b[kk*ldb:][:len(ci)] {
			ci[j] += xk * v
		}
	}
}

// deltaCheck panics with the shapes when a slice is too short or the head
// counts do not fit (hv must be a multiple of hk).
func deltaCheck(fn string, state, q, k, v, g, beta, out []float32, t, hk, hv, dk, dv int) {
	deltaCheckHeads(fn, t, hk, hv, dk, dv)
	if len(state) < hv*dk*dv || len(q) < t*hk*dk || len(k) < t*hk*dk || len(v) < t*hv*dv ||
		len(g) < t*hv || len(beta) < t*hv || len(out) < t*hv*dv {
		panic(fmt.Sprintf("kernels.%s: t=%d hk=%d hv=%d dk=%d dv=%d needs state %d, q/k %d, v/out %d, g/beta %d; got state %d, q %d, k %d, v %d, g %d, beta %d, out %d",
			fn, t, hk, hv, dk, dv, hv*dk*dv, t*hk*dk, t*hv*dv, t*hv,
			len(state), len(q), len(k), len(v), len(g), len(beta), len(out)))
	}
}

func deltaCheckHeads(fn string, t, hk, hv, dk, dv int) {
	if t < 0 || hk <= 0 || hv <= 0 || dk <= 0 || dv <= 0 || hv%hk != 0 {
		panic(fmt.Sprintf("kernels.%s: bad shape t=%d hk=%d hv=%d dk=%d dv=%d (want positive sizes, hv a multiple of hk)",
			fn, t, hk, hv, dk, dv))
	}
}
