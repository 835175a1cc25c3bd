package kernels

import (
	"math"
	"runtime"
)

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
	j := attnJobs.get()
	j.base = attnTile{q: q, k: kCache, v: vCache, out: out, heads: heads, group: heads / kvHeads,
		dk: dk, dv: dv, kStride: kStride, vStride: vStride, pos0: pos0, scale: scale}
	j.attend(n, kvHeads)
}

// attnJob is one Attention call: the tile its workers copy, the partial
// results of split key ranges, and the work functions of its parallel
// regions, bound once when the job is made. Jobs are recycled through
// attnJobs so a call allocates nothing.
type attnJob struct {
	base                  attnTile
	src                   kvSource // base.src points here for non-float32 caches
	n, kvHeads, bq, tiles int
	splits, rows, span    int
	po, pm, ps            []float32 // per split unit: output, row max, row sum
	tilesBody, splitBody  func(lo, hi int)
	// allHeads: a unit is every kv head of a decode token over a key range
	// (attention_f16.go), hb the heads' scratch, kvHeads per unit.
	allHeads      bool
	hb            []*attnBuffers
	headSplitBody func(lo, hi int)
}

var attnJobs = freeList[attnJob]{init: func(j *attnJob) {
	j.tilesBody, j.splitBody, j.headSplitBody = j.runTiles, j.runSplits, j.runHeadSplits
}}

// attend runs the tiles of j.base (a tile with its inputs set) over n
// tokens, then hands the job back to attnJobs.
func (j *attnJob) attend(n, kvHeads int) {
	base := &j.base
	group, pos0, dk, dv := base.group, base.pos0, base.dk, base.dv
	j.n, j.kvHeads = n, kvHeads
	j.bq = max(1, base.tileRows()/group)
	j.tiles = (n + j.bq - 1) / j.bq
	keys := pos0 + n - base.first(pos0)
	j.allHeads = base.allHeads(n, kvHeads, keys)
	units := kvHeads * j.tiles
	if j.allHeads {
		units = 1
	}
	switch j.splits = attnSplits(units, keys); {
	case j.splits > 1:
		j.attentionSplit()
	case j.allHeads:
		j.runHeads()
	default:
		parallelFor(kvHeads*j.tiles, group*j.bq*(pos0+n)*(dk+dv), j.tilesBody)
	}
	j.base, j.src = attnTile{}, kvSource{}
	attnJobs.put(j)
}

// runTiles is the work of an unsplit call: units [lo, hi) of (kv head,
// token tile), each over all its keys.
func (j *attnJob) runTiles(lo, hi int) {
	a := j.base
	a.alloc(a.group * j.bq)
	defer a.release()
	kvHeads, tiles, bq, n := j.kvHeads, j.tiles, j.bq, j.n
	for u := lo; u < hi; u++ {
		// Causal tiles grow with t: pair early and late tiles so a
		// contiguous range of units is about as much work as any other.
		g, k := u%kvHeads, u/kvHeads
		tile := k / 2
		if k%2 == 1 {
			tile = tiles - 1 - k/2
		}
		t0, t1 := tile*bq, min(n, tile*bq+bq)
		a.run(g, t0, t1, a.first(a.pos0+t0), a.pos0+t1)
		a.finish(g, t0, t1)
	}
}

// attnSplits is how many key ranges each of units tiles is cut into so
// that every core has work (decode has a tile per kv head, often fewer
// than the cores); a range is at least four key blocks.
func attnSplits(units, keys int) int {
	workers := runtime.GOMAXPROCS(0)
	if units >= workers {
		return 1
	}
	return max(1, min((workers+units-1)/units, keys/(4*attnKeys)))
}

// attentionSplit runs every tile as splits key ranges in parallel, each
// leaving its unnormalised output, row max and row sum, then merges the
// ranges of a tile (flash-decoding): rescale each by e^(max - overall max)
// and divide by the rescaled sum.
func (j *attnJob) attentionSplit() {
	base, n, kvHeads, bq, tiles, splits := &j.base, j.n, j.kvHeads, j.bq, j.tiles, j.splits
	rows, dv := base.group*bq, base.dv
	units := kvHeads * tiles * splits
	j.rows = rows
	j.po = grow(j.po, units*rows*dv)
	j.pm = grow(j.pm, units*rows)
	j.ps = grow(j.ps, units*rows)
	po, pm, ps := j.po, j.pm, j.ps
	keys := base.pos0 + n - base.first(base.pos0)
	j.span = (keys/splits + attnKeys - 1) / attnKeys * attnKeys
	if j.allHeads {
		j.hb = grow(j.hb, splits*kvHeads)
		parallelFor(splits, kvHeads*rows*j.span*(base.dk+dv), j.headSplitBody)
	} else {
		parallelFor(units, rows*j.span*(base.dk+dv), j.splitBody)
	}
	a := *base
	a.alloc(rows)
	defer a.release()
	for u := 0; u < kvHeads*tiles; u++ {
		g, tile := u%kvHeads, u/kvHeads
		t0, t1 := tile*bq, min(n, tile*bq+bq)
		r := (t1 - t0) * base.group
		for i := 0; i < r; i++ {
			m := float32(math.Inf(-1))
			for sp := 0; sp < splits; sp++ {
				m = max(m, pm[(sp*kvHeads*tiles+u)*rows+i])
			}
			o := a.o[i*dv : (i+1)*dv]
			clear(o)
			var sum float32
			for sp := 0; sp < splits; sp++ {
				v := sp*kvHeads*tiles + u
				c := expf(pm[v*rows+i] - m)
				sum += c * ps[v*rows+i]
				AddScaled(o, po[(v*rows+i)*dv:(v*rows+i+1)*dv], c)
			}
			a.rowMax[i], a.rowSum[i] = m, sum
		}
		a.finish(g, t0, t1)
	}
}

// runSplits is the work of a split call: units [lo, hi) of (kv head, token
// tile, key range), each leaving its partial results in po, pm and ps.
func (j *attnJob) runSplits(lo, hi int) {
	a := j.base
	rows, dv := j.rows, a.dv
	a.alloc(rows)
	defer a.release()
	kvHeads, tiles, bq, n, splits, span := j.kvHeads, j.tiles, j.bq, j.n, j.splits, j.span
	for u := lo; u < hi; u++ {
		g, tile, sp := u%kvHeads, u/kvHeads%tiles, u/(kvHeads*tiles)
		t0, t1 := tile*bq, min(n, tile*bq+bq)
		kb, ke := a.first(a.pos0)+sp*span, a.pos0+t1
		if sp < splits-1 {
			ke = min(ke, kb+span)
		}
		r := (t1 - t0) * a.group
		a.run(g, t0, t1, kb, ke)
		copy(j.po[u*rows*dv:], a.o[:r*dv])
		copy(j.pm[u*rows:], a.rowMax[:r])
		copy(j.ps[u*rows:], a.rowSum[:r])
	}
}

const (
	attnRows = 32 // query rows (heads of a kv group × tokens) per tile
	attnKeys = 64 // keys per block
)

// attnTile is one worker's state: the tile's scaled queries, its score
// block, its unnormalised output and the running max and sum per row.
type attnTile struct {
	q, k, v, out           []float32
	heads, group, dk, dv   int
	kStride, vStride, pos0 int
	scale                  float32
	src                    *kvSource // nil: k and v are float32
	// gpt-oss (AttentionSinks): a logit per query head in every softmax's
	// denominator, and with window > 0 only the last window positions.
	sinks  []float32
	window int
	*attnBuffers
}

// first is the first position the token at pos sees.
func (a *attnTile) first(pos int) int {
	if a.window > 0 {
		return max(0, pos-a.window+1)
	}
	return 0
}

// attnBuffers is a tile's scratch, recycled between calls through
// attnPool (decode runs attention once per layer per token).
// ps and corr are the fused f16 kernels' scores and rescales (attention_f16.go).
type attnBuffers struct{ qs, s, st, o, rowMax, rowSum, kb, vb, ps, corr []float32 }

var attnPool freeList[attnBuffers]

// alloc takes scratch for up to rows rows. Rows are counted up to a
// multiple of 8: the fused f16 kernels pad a tile's last rows and write
// eight running maxes and sums at a time.
func (a *attnTile) alloc(rows int) { a.allocFrom(&attnPool, rows) }

// allocFrom is alloc from another pool (its buffers then go back there).
func (a *attnTile) allocFrom(pool *freeList[attnBuffers], rows int) {
	b := pool.get()
	r8 := (rows + 7) &^ 7
	b.qs = grow(b.qs, r8*a.dk)
	b.s = grow(b.s, rows*attnKeys)
	b.st = grow(b.st, rows*attnKeys)
	b.o = grow(b.o, r8*a.dv)
	b.rowMax = grow(b.rowMax, r8)
	b.rowSum = grow(b.rowSum, r8)
	if a.src != nil {
		b.kb = grow(b.kb, attnKeys*a.dk)
		b.vb = grow(b.vb, attnKeys*a.dv)
		b.ps = grow(b.ps, attnKeys*8)
		b.corr = grow(b.corr, 8)
	}
	a.attnBuffers = b
}

// release hands the tile's scratch back to attnPool.
func (a *attnTile) release() {
	attnPool.put(a.attnBuffers)
	a.attnBuffers = nil
}

// grow is b with length n, reallocated only when too small.
func grow[T any](b []T, n int) []T {
	if cap(b) >= n {
		return b[:n]
	}
	return make([]T, n)
}

// run accumulates tokens t0..t1 of kv head g over keys kb..ke into the
// tile's output, row max and row sum. Row i of the tile is token
// t0+i/group, query head g*group+i%group.
func (a *attnTile) run(g, t0, t1, kb, ke int) {
	fused := a.start(g, t0, t1)
	for j0 := kb; j0 < ke; j0 += attnKeys {
		a.step(g, t0, t1, j0, ke, fused)
	}
}

// start loads the scaled queries of tokens t0..t1 of kv head g into the
// tile and empties its output, row max and row sum; it reports whether
// the tile takes the fused f16 kernels (then its rows are padded to
// fusedPad, the padding's queries zero).
func (a *attnTile) start(g, t0, t1 int) (fused bool) {
	rows, dk, dv := (t1-t0)*a.group, a.dk, a.dv
	fused, pad := a.fusedF16(), rows
	if fused {
		pad = fusedPad(rows)
		clear(a.qs[rows*dk : pad*dk])
	}
	for i := 0; i < pad; i++ {
		a.rowMax[i] = float32(math.Inf(-1))
		a.rowSum[i] = 0
		if i >= rows {
			continue
		}
		h := g*a.group + i%a.group
		t := t0 + i/a.group
		qi := a.qs[i*dk : (i+1)*dk]
		for c, v := range a.q[(t*a.heads+h)*dk : (t*a.heads+h+1)*dk] {
			qi[c] = v * a.scale
		}
	}
	clear(a.o[:pad*dv])
	return fused
}

// step adds the key block at j0 (up to attnKeys keys, none from ke on) to
// the tile of kv head g, tokens t0..t1, prefetching the next block.
func (a *attnTile) step(g, t0, t1, j0, ke int, fused bool) {
	rows, dk, dv := (t1-t0)*a.group, a.dk, a.dv
	nk := min(attnKeys, ke-j0)
	if next := j0 + attnKeys; next < ke {
		// The next block's keys and values, while this one is computed.
		nn := min(attnKeys, ke-next)
		if a.src == nil {
			prefetchFloatsL2(a.k[next*a.kStride+g*dk:], a.kStride, nn, dk)
			prefetchFloatsL2(a.v[next*a.vStride+g*dv:], a.vStride, nn, dv)
		} else {
			a.src.prefetch(g, next, nn, dk, dv)
		}
	}
	if fused && a.unmasked(t0, t1, j0, nk) {
		a.fusedBlock(g, j0, nk, rows)
		return
	}
	s, o := a.s[:rows*attnKeys], a.o[:rows*dv]
	clear(s)
	kBlk, ks, vBlk, vs := a.block(g, j0, nk)
	a.scores(s, kBlk, ks, nk, rows)
	// Online softmax: mask the future (and what is before the window),
	// exponentiate against the new running max, rescale what was
	// accumulated under the old one.
	for i := 0; i < rows; i++ {
		row := s[i*attnKeys : i*attnKeys+nk]
		pos := a.pos0 + t0 + i/a.group
		lo, valid := max(0, a.first(pos)-j0), min(nk, pos+1-j0)
		if valid <= lo {
			clear(row)
			continue
		}
		m := a.rowMax[i]
		for _, v := range row[lo:valid] {
			m = max(m, v)
		}
		corr := expf(a.rowMax[i] - m)
		sum := expShift(row[lo:valid], m)
		clear(row[:lo])
		clear(row[valid:])
		a.rowSum[i] = a.rowSum[i]*corr + sum
		a.rowMax[i] = m
		if corr != 1 {
			scaleVec(o[i*dv:(i+1)*dv], corr)
		}
	}
	accumPV(o, dv, rows, s, attnKeys, vBlk, vs, nk, dv)
}

// finish writes the tile's normalised output rows into out. A sink joins
// the softmax here: one more logit, with no value.
func (a *attnTile) finish(g, t0, t1 int) {
	dv := a.dv
	for i := 0; i < (t1-t0)*a.group; i++ {
		h := g*a.group + i%a.group
		t := t0 + i/a.group
		dst := a.out[(t*a.heads+h)*dv : (t*a.heads+h+1)*dv]
		inv := 1 / a.rowSum[i]
		if a.sinks != nil {
			m, sink := a.rowMax[i], a.sinks[h]
			top := max(m, sink)
			c := expf(m - top)
			inv = c / (a.rowSum[i]*c + expf(sink-top))
		}
		for c, v := range a.o[i*dv : (i+1)*dv] {
			dst[c] = v * inv
		}
	}
}

// scores writes s[i*attnKeys+j] = q_i·k_j for the tile's rows and the nk
// keys of k (row stride ks) through the GEMM microkernel. The queries are its "weight rows"
// (in groups of four) and the keys its "tokens", so each key row is read
// once per call, into a transposed block that is then turned around; rows
// not a multiple of four take the keys as weight rows instead.
func (a *attnTile) scores(s, k []float32, ks, nk, rows int) {
	dk := a.dk
	if rows%4 == 0 {
		st := a.st[:nk*rows]
		clear(st)
		tileKernel(a.qs, dk, rows, k, ks, nk, dk, st, rows)
		for j := 0; j < nk; j++ {
			for i, v := range st[j*rows : (j+1)*rows] {
				s[i*attnKeys+j] = v
			}
		}
		return
	}
	full := nk &^ 3
	if full > 0 {
		tileKernel(k, ks, full, a.qs, dk, rows, dk, s, attnKeys)
	}
	for j := full; j < nk; j++ {
		kj := k[j*ks : j*ks+dk]
		for i := 0; i < rows; i++ {
			s[i*attnKeys+j] = Dot(a.qs[i*dk:(i+1)*dk], kj)
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

// expShiftGo is the portable form of expShift.
func expShiftGo(x []float32, m float32) float32 {
	var sum float32
	for j, v := range x {
		p := expf(v - m)
		x[j] = p
		sum += p
	}
	return sum
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
