package kernels

import "math"

// Kernels of gpt-oss's blocks: attention whose softmax has a learned
// per-head "sink" logit in its denominator and an optional sliding window,
// and the experts' clamped SwiGLU.

// AttentionSinks is Attention (same layouts and strides) with two changes:
// each query head h adds exp(sinks[h]) to its softmax denominator (a logit
// that takes probability mass but has no value), and with window > 0 token
// t at position p sees only positions p-window+1..p.
func AttentionSinks(out, q, kCache, vCache []float32, n, pos0, heads, kvHeads, dk, dv, kStride, vStride int, scale float32, sinks []float32, window int) {
	if n <= 0 {
		return
	}
	j := sinkJobs.get()
	j.kf, j.vf, j.kStride, j.vStride = kCache, vCache, kStride, vStride
	j.attend(out, q, n, pos0, heads, kvHeads, dk, dv, scale, sinks, window, 1)
}

// AttentionSinksKV is AttentionSinks against caches in any KVFormat, read
// as AttentionKV reads them: kv head g's key of position j is columns
// kc0+g*dk.. of row j of k, its value columns vc0+g*dv.. of row j of v.
// Half and quantized rows are converted a key block at a time, once per
// tile of tokens.
func AttentionSinksKV(out, q []float32, k *KVRows, kc0 int, v *KVRows, vc0 int, n, pos0, heads, kvHeads, dk, dv int, scale float32, sinks []float32, window int) {
	if n <= 0 {
		return
	}
	if k.Format == KVF32 && v.Format == KVF32 {
		AttentionSinks(out, q, k.F32[kc0:], v.F32[vc0:], n, pos0, heads, kvHeads, dk, dv, k.Cols, v.Cols, scale, sinks, window)
		return
	}
	j := sinkJobs.get()
	j.k, j.kc0, j.v, j.vc0 = k, kc0, v, vc0
	// Converting a block costs about what attending to it does: taller
	// tiles convert each key for more tokens.
	j.attend(out, q, n, pos0, heads, kvHeads, dk, dv, scale, sinks, window, max(1, attnRows/(heads/kvHeads)))
}

// sinkKeys is the key block of the sink kernels.
const sinkKeys = 64

// sinkJob is one sink-attention call, its work function bound once. A unit
// of work is every query head of one kv head over a tile of bq tokens;
// keys are visited in blocks with an online softmax whose running max and
// sum start at the sink (logit sinks[h], weight 1, no value).
type sinkJob struct {
	out, q, sinks                          []float32
	kf, vf                                 []float32 // float32 caches (k == nil)
	kStride, vStride                       int
	k, v                                   *KVRows // other formats
	kc0, vc0                               int
	n, pos0, heads, kvHeads, group, dk, dv int
	window, bq, tiles                      int
	scale                                  float32
	body                                   func(lo, hi int)
}

var sinkJobs = freeList[sinkJob]{init: func(j *sinkJob) { j.body = j.run }}

// sinkBuffers is a worker's scratch, recycled through sinkPool.
type sinkBuffers struct{ m, l, o, s, kb, vb []float32 }

var sinkPool freeList[sinkBuffers]

// attend runs the job over n tokens in tiles of bq, then hands it back.
func (j *sinkJob) attend(out, q []float32, n, pos0, heads, kvHeads, dk, dv int, scale float32, sinks []float32, window, bq int) {
	j.out, j.q, j.sinks = out, q, sinks
	j.n, j.pos0, j.heads, j.kvHeads, j.group, j.dk, j.dv = n, pos0, heads, kvHeads, heads/kvHeads, dk, dv
	j.window, j.bq, j.tiles, j.scale = window, bq, (n+bq-1)/bq, scale
	keys := pos0 + n
	if window > 0 {
		keys = min(keys, window+bq)
	}
	parallelFor(kvHeads*j.tiles, j.group*bq*keys*(dk+dv), j.body)
	*j = sinkJob{body: j.body}
	sinkJobs.put(j)
}

// first is the first position the token at pos sees.
func (j *sinkJob) first(pos int) int {
	if j.window > 0 {
		return max(0, pos-j.window+1)
	}
	return 0
}

// block returns keys j0..j0+nk and their values for kv head g with their
// row strides: the float32 caches themselves, or those rows converted into
// b's scratch.
func (j *sinkJob) block(b *sinkBuffers, g, j0, nk int) (k []float32, ks int, v []float32, vs int) {
	if j.k == nil {
		return j.kf[j0*j.kStride+g*j.dk:], j.kStride, j.vf[j0*j.vStride+g*j.dv:], j.vStride
	}
	j.k.Load(b.kb, j.dk, j0, nk, j.kc0+g*j.dk, j.dk)
	j.v.Load(b.vb, j.dv, j0, nk, j.vc0+g*j.dv, j.dv)
	return b.kb, j.dk, b.vb, j.dv
}

// run computes units [lo, hi) of (kv head, token tile).
func (j *sinkJob) run(lo, hi int) {
	group, dk, dv := j.group, j.dk, j.dv
	rows := group * j.bq
	b := sinkPool.get()
	defer sinkPool.put(b)
	b.m, b.l, b.o, b.s = grow(b.m, rows), grow(b.l, rows), grow(b.o, rows*dv), grow(b.s, sinkKeys)
	if j.k != nil {
		b.kb, b.vb = grow(b.kb, sinkKeys*dk), grow(b.vb, sinkKeys*dv)
	}
	for u := lo; u < hi; u++ {
		g, tile := u%j.kvHeads, u/j.kvHeads
		t0, t1 := tile*j.bq, min(j.n, tile*j.bq+j.bq)
		rows := (t1 - t0) * group
		// Row i is token t0+i/group, query head g*group+i%group.
		for i := 0; i < rows; i++ {
			b.m[i], b.l[i] = j.sinks[g*group+i%group], 1
		}
		clear(b.o[:rows*dv])
		end := j.pos0 + t1
		for j0 := j.first(j.pos0 + t0); j0 < end; j0 += sinkKeys {
			nk := min(sinkKeys, end-j0)
			kb, ks, vb, vs := j.block(b, g, j0, nk)
			for i := 0; i < rows; i++ {
				t, h := t0+i/group, g*group+i%group
				pos := j.pos0 + t
				a, z := max(j0, j.first(pos)), min(j0+nk, pos+1)
				if a >= z {
					continue // outside this token's window or in its future
				}
				qh := j.q[(t*j.heads+h)*dk : (t*j.heads+h+1)*dk]
				s, m := b.s[:z-a], b.m[i]
				for c := range s {
					s[c] = Dot(qh, kb[(a-j0+c)*ks:][:dk]) * j.scale
					m = max(m, s[c])
				}
				o := b.o[i*dv : (i+1)*dv]
				if corr := expf(b.m[i] - m); corr != 1 {
					scaleVec(o, corr)
					b.l[i] *= corr
				}
				b.l[i] += expShift(s, m)
				b.m[i] = m
				for c, p := range s {
					AddScaled(o, vb[(a-j0+c)*vs:][:dv], p)
				}
			}
		}
		for i := 0; i < rows; i++ {
			t, h := t0+i/group, g*group+i%group
			dst := j.out[(t*j.heads+h)*dv : (t*j.heads+h+1)*dv]
			inv := 1 / b.l[i]
			for c, v := range b.o[i*dv : (i+1)*dv] {
				dst[c] = v * inv
			}
		}
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
