package kernels

import "math"

// Kernels of gpt-oss's blocks: attention whose softmax has a learned
// per-head "sink" logit in its denominator and an optional sliding window,
// and the experts' clamped SwiGLU.

// AttentionSinks is Attention (same layouts and strides) with two changes:
// each query head h adds exp(sinks[h]) to its softmax denominator (a logit
// that takes probability mass but has no value), and with window > 0 token
// t at position p sees only positions p-window+1..p. Each (token, head)
// row is one pass over its keys; rows are split across the worker pool.
func AttentionSinks(out, q, kCache, vCache []float32, n, pos0, heads, kvHeads, dk, dv, kStride, vStride int, scale float32, sinks []float32, window int) {
	if n <= 0 {
		return
	}
	j := sinkJobs.get()
	j.out, j.q, j.k, j.v, j.sinks = out, q, kCache, vCache, sinks
	j.pos0, j.heads, j.group, j.dk, j.dv, j.kStride, j.vStride, j.scale, j.window =
		pos0, heads, heads/kvHeads, dk, dv, kStride, vStride, scale, window
	keys := pos0 + n
	if window > 0 {
		keys = min(keys, window)
	}
	parallelFor(n*heads, keys*(dk+dv), j.body)
	j.out, j.q, j.k, j.v, j.sinks = nil, nil, nil, nil, nil
	sinkJobs.put(j)
}

// sinkJob is one AttentionSinks call, its work function bound once.
type sinkJob struct {
	out, q, k, v, sinks                                  []float32
	pos0, heads, group, dk, dv, kStride, vStride, window int
	scale                                                float32
	body                                                 func(lo, hi int)
}

var sinkJobs = freeList[sinkJob]{init: func(j *sinkJob) { j.body = j.rows }}

// rows computes rows [lo, hi) of (token, head).
func (j *sinkJob) rows(lo, hi int) {
	buf := getFloats(j.pos0 + hi/j.heads + 1)
	defer putFloats(buf)
	for i := lo; i < hi; i++ {
		t, h := i/j.heads, i%j.heads
		g := h / j.group
		pos := j.pos0 + t
		first := 0
		if j.window > 0 {
			first = max(0, pos-j.window+1)
		}
		qh := j.q[(t*j.heads+h)*j.dk : (t*j.heads+h+1)*j.dk]
		s := (*buf)[:pos+1-first]
		m := j.sinks[h]
		for k := range s {
			s[k] = Dot(qh, j.k[(first+k)*j.kStride+g*j.dk:][:j.dk]) * j.scale
			m = max(m, s[k])
		}
		sum := expf(j.sinks[h] - m)
		o := j.out[(t*j.heads+h)*j.dv : (t*j.heads+h+1)*j.dv]
		clear(o)
		for k, v := range s {
			p := expf(v - m)
			sum += p
			AddScaled(o, j.v[(first+k)*j.vStride+g*j.dv:][:j.dv], p)
		}
		scaleVec(o, 1/sum)
	}
}

// ClampedSwiGLU is gpt-oss's expert activation, out[i] = (up'+1)·g·σ(α·g)
// with g = min(gate[i], limit) and up' = up[i] clamped to [-limit, limit].
// out may alias gate or up.
func ClampedSwiGLU(out, gate, up []float32, alpha, limit float32) {
	up = up[:len(gate)]
	out = out[:len(gate)]
	for i, g := range gate {
		g = min(g, limit)
		u := max(min(up[i], limit), -limit)
		out[i] = (u + 1) * g / (1 + float32(math.Exp(float64(-alpha*g))))
	}
}

// ClampedSwiGLUInterleaved is ClampedSwiGLU over gpt-oss's fused
// projection: gateUp holds 2·len(out) values, gate and up alternating.
func ClampedSwiGLUInterleaved(out, gateUp []float32, alpha, limit float32) {
	gateUp = gateUp[:2*len(out)]
	for i := range out {
		g := min(gateUp[2*i], limit)
		u := max(min(gateUp[2*i+1], limit), -limit)
		out[i] = (u + 1) * g / (1 + float32(math.Exp(float64(-alpha*g))))
	}
}
