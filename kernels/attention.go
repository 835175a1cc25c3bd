package kernels

import "math"

// Attention is causal scaled-dot-product attention against a cache.
// q is [n, heads, dk]; cache row j holds position j: kv head g's key at
// kCache[j*kStride+g*dk:] and value at vCache[j*vStride+g*dv:] (the strides
// let keys and values share rows, as latent attention does). Token t sits at
// position pos0+t and attends to positions 0..pos0+t. Query head h reads kv
// head h/(heads/kvHeads). out is [n, heads, dv].
//
// It is tiled flash-attention style: a tile is every query head of one kv
// head over a few tokens; keys are visited in blocks with an online softmax
// (running max and sum per query row, earlier output rescaled when the max
// grows), so memory is O(tile × block) whatever the length, and each key
// and value row is read once per tile rather than once per query head.
// attentionReference is the direct form it is tested against.
func Attention(out, q, kCache, vCache []float32, n, pos0, heads, kvHeads, dk, dv, kStride, vStride int, scale float32) {
	if n <= 0 {
		return
	}
	group := heads / kvHeads
	bq := max(1, attnRows/group)
	tiles := (n + bq - 1) / bq
	parallelFor(kvHeads*tiles, group*bq*(pos0+n)*(dk+dv), func(lo, hi int) {
		a := attnTile{q: q, k: kCache, v: vCache, out: out, heads: heads, group: group,
			dk: dk, dv: dv, kStride: kStride, vStride: vStride, pos0: pos0, scale: scale}
		a.alloc(group * bq)
		for u := lo; u < hi; u++ {
			// Causal tiles grow with t: pair early and late tiles so a
			// contiguous range of units is about as much work as any other.
			g, k := u%kvHeads, u/kvHeads
			tile := k / 2
			if k%2 == 1 {
				tile = tiles - 1 - k/2
			}
			a.run(g, tile*bq, min(n, tile*bq+bq))
		}
	})
}

const (
	attnRows = 32 // query rows (heads of a kv group × tokens) per tile
	attnKeys = 64 // keys per block
)

// attnTile is one worker's state: the tile's scaled queries, its score
// block, its unnormalised output and the running max and sum per row.
type attnTile struct {
	q, k, v, out             []float32
	heads, group, dk, dv     int
	kStride, vStride, pos0   int
	scale                    float32
	qs, s, o, rowMax, rowSum []float32
}

func (a *attnTile) alloc(rows int) {
	a.qs = make([]float32, rows*a.dk)
	a.s = make([]float32, rows*attnKeys)
	a.o = make([]float32, rows*a.dv)
	a.rowMax = make([]float32, rows)
	a.rowSum = make([]float32, rows)
}

// run computes tokens t0..t1 for kv head g. Row i of the tile is token
// t0+i/group, query head g*group+i%group.
func (a *attnTile) run(g, t0, t1 int) {
	rows, dk, dv := (t1-t0)*a.group, a.dk, a.dv
	for i := 0; i < rows; i++ {
		h := g*a.group + i%a.group
		t := t0 + i/a.group
		qi := a.qs[i*dk : (i+1)*dk]
		for c, v := range a.q[(t*a.heads+h)*dk : (t*a.heads+h+1)*dk] {
			qi[c] = v * a.scale
		}
		a.rowMax[i] = float32(math.Inf(-1))
		a.rowSum[i] = 0
	}
	o := a.o[:rows*dv]
	clear(o)
	end := a.pos0 + t1 // keys of the tile's last token, exclusive
	for j0 := 0; j0 < end; j0 += attnKeys {
		nk := min(attnKeys, end-j0)
		s := a.s[:rows*attnKeys]
		clear(s)
		// Scores: keys as the "weight rows", the tile's queries as tokens.
		k := a.k[j0*a.kStride+g*dk:]
		full := nk &^ 3
		if full > 0 {
			tileKernel(k, a.kStride, full, a.qs, dk, rows, dk, s, attnKeys)
		}
		for j := full; j < nk; j++ {
			kj := k[j*a.kStride : j*a.kStride+dk]
			for i := 0; i < rows; i++ {
				s[i*attnKeys+j] = Dot(a.qs[i*dk:(i+1)*dk], kj)
			}
		}
		// Online softmax: mask the future, exponentiate against the new
		// running max, rescale what was accumulated under the old one.
		for i := 0; i < rows; i++ {
			row := s[i*attnKeys : i*attnKeys+nk]
			valid := min(nk, a.pos0+t0+i/a.group+1-j0)
			if valid <= 0 {
				clear(row)
				continue
			}
			m := a.rowMax[i]
			for _, v := range row[:valid] {
				m = max(m, v)
			}
			corr := expf(a.rowMax[i] - m)
			var sum float32
			for j, v := range row[:valid] {
				p := expf(v - m)
				row[j] = p
				sum += p
			}
			clear(row[valid:])
			a.rowSum[i] = a.rowSum[i]*corr + sum
			a.rowMax[i] = m
			if corr != 1 {
				scaleVec(o[i*dv:(i+1)*dv], corr)
			}
		}
		accumPV(o, dv, rows, s, attnKeys, a.v[j0*a.vStride+g*dv:], a.vStride, nk, dv)
	}
	for i := 0; i < rows; i++ {
		h := g*a.group + i%a.group
		t := t0 + i/a.group
		dst := a.out[(t*a.heads+h)*dv : (t*a.heads+h+1)*dv]
		inv := 1 / a.rowSum[i]
		for c, v := range o[i*dv : (i+1)*dv] {
			dst[c] = v * inv
		}
	}
}

// accumPVGo is the portable form of accumPV: o[i*ldo+c] += Σ_j
// p[i*ldp+j]·v[j*ldv+c] for i < rows, j < keys, c < n.
func accumPVGo(o []float32, ldo, rows int, p []float32, ldp int, v []float32, ldv, keys, n int) {
	for i := 0; i < rows; i++ {
		oi := o[i*ldo : i*ldo+n]
		for j, pj := range p[i*ldp : i*ldp+keys] {
			AddScaled(oi, v[j*ldv:j*ldv+n], pj)
		}
	}
}

func scaleVec(x []float32, s float32) {
	for i := range x {
		x[i] *= s
	}
}

// expf is e^x in float32 for the softmax (within 2 ulp; 0 below -87.3,
// where float32 would go subnormal): x = k·ln2 + r with |r| ≤ ln2/2, e^r by
// its degree-7 Taylor polynomial, 2^k built in the exponent field.
func expf(x float32) float32 {
	switch {
	case x != x:
		return x
	case x < -87.3:
		return 0
	case x > 88:
		return float32(math.Exp(float64(x)))
	}
	const (
		log2e = 1.44269504088896341
		ln2hi = 0.693359375
		ln2lo = -2.12194440e-4
	)
	k := float32(math.Round(float64(x * log2e)))
	r := x - k*ln2hi - k*ln2lo
	p := 1 + r*(1+r*(1.0/2+r*(1.0/6+r*(1.0/24+r*(1.0/120+r*(1.0/720+r*(1.0/5040)))))))
	return p * math.Float32frombits(uint32(int32(k)+127)<<23)
}

// attentionReference is the direct form of Attention: every score of a
// row, a softmax, a weighted sum of values.
func attentionReference(out, q, kCache, vCache []float32, n, pos0, heads, kvHeads, dk, dv, kStride, vStride int, scale float32) {
	group := heads / kvHeads
	scores := make([]float32, pos0+n)
	for i := 0; i < n*heads; i++ {
		t, h := i/heads, i%heads
		kvh := h / group
		qv := q[(t*heads+h)*dk : (t*heads+h+1)*dk]
		s := scores[:pos0+t+1]
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
}

// AttentionScale is 1/sqrt(dk).
func AttentionScale(dk int) float32 { return float32(1 / math.Sqrt(float64(dk))) }
