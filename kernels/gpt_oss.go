package kernels

import "math"

// Kernels of gpt-oss's blocks: attention whose softmax has a learned
// per-head "sink" logit in its denominator and an optional sliding window,
// and the experts' clamped SwiGLU.

// AttentionSinks is Attention (same layouts and strides, the same tiled
// kernel) with two changes: each query head h adds exp(sinks[h]) to its
// softmax denominator (a logit that takes probability mass but has no
// value), and with window > 0 token t at position p sees only positions
// p-window+1..p.
func AttentionSinks(out, q, kCache, vCache []float32, n, pos0, heads, kvHeads, dk, dv, kStride, vStride int, scale float32, sinks []float32, window int) {
	if n <= 0 {
		return
	}
	j := attnJobs.get()
	j.base = attnTile{q: q, k: kCache, v: vCache, out: out, heads: heads, group: heads / kvHeads,
		dk: dk, dv: dv, kStride: kStride, vStride: vStride, pos0: pos0, scale: scale, sinks: sinks, window: window}
	j.attend(n, kvHeads)
}

// AttentionSinksKV is AttentionSinks against caches in any KVFormat, read
// as AttentionKV reads them (kv head g's key of position j is columns
// kc0+g*dk.. of row j of k, its value columns vc0+g*dv.. of row j of v).
func AttentionSinksKV(out, q []float32, k *KVRows, kc0 int, v *KVRows, vc0 int, n, pos0, heads, kvHeads, dk, dv int, scale float32, sinks []float32, window int) {
	if n <= 0 {
		return
	}
	if k.Format == KVF32 && v.Format == KVF32 {
		AttentionSinks(out, q, k.F32[kc0:], v.F32[vc0:], n, pos0, heads, kvHeads, dk, dv, k.Cols, v.Cols, scale, sinks, window)
		return
	}
	j := attnJobs.get()
	j.src = kvSource{k: k, kc0: kc0, v: v, vc0: vc0}
	j.base = attnTile{q: q, out: out, heads: heads, group: heads / kvHeads,
		dk: dk, dv: dv, pos0: pos0, scale: scale, src: &j.src, sinks: sinks, window: window}
	j.attend(n, kvHeads)
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
