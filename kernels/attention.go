package kernels

import "math"

// Attention is causal scaled-dot-product attention against a cache.
// q is [n, heads, dk]; cache row j holds position j: kv head g's key at
// kCache[j*kStride+g*dk:] and value at vCache[j*vStride+g*dv:] (the strides
// let keys and values share rows, as latent attention does). Token t sits at
// position pos0+t and attends to positions 0..pos0+t. Query head h reads kv
// head h/(heads/kvHeads). out is [n, heads, dv].
func Attention(out, q, kCache, vCache []float32, n, pos0, heads, kvHeads, dk, dv, kStride, vStride int, scale float32) {
	group := heads / kvHeads
	parallelFor(n*heads, (pos0+n)*(dk+dv), func(lo, hi int) {
		scores := make([]float32, pos0+n)
		for i := lo; i < hi; i++ {
			t, h := i/heads, i%heads
			kvh := h / group
			qv := q[(t*heads+h)*dk : (t*heads+h+1)*dk]
			span := pos0 + t + 1
			s := scores[:span]
			for j := range s {
				s[j] = Dot(qv, kCache[j*kStride+kvh*dk:j*kStride+(kvh+1)*dk]) * scale
			}
			Softmax(s)
			o := out[(t*heads+h)*dv : (t*heads+h+1)*dv]
			clear(o)
			for j, p := range s {
				AddScaled(o, vCache[j*vStride+kvh*dv:j*vStride+(kvh+1)*dv], p)
			}
		}
	})
}

// AttentionScale is 1/sqrt(dk).
func AttentionScale(dk int) float32 { return float32(1 / math.Sqrt(float64(dk))) }
