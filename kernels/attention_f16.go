package kernels

import (
	"math"
	"runtime"
)

// Fused attention over half-precision caches. A decode tile has few
// query rows (the heads of one kv group, one or two tokens), so converting
// each key block to float32 scratch and running the float32 tile costs
// more than the arithmetic: the conversion stalls on memory and the score
// GEMM has a handful of rows. Instead each block of keys goes through three
// kernels that read the f16 rows themselves, r query rows at a time (r = 2,
// 4 or 8, fusedWidth; one row, three, five to seven are padded with zero
// queries), more rows as several groups of eight over the same block: the
// scores, their online softmax, the weighted values. Blocks where some row
// masks some key (the causal edge of a prompt tile, a window's start) take
// the float32 path, which updates the same running max, sum and output.
//
// Measured against the float32 tile (BenchmarkAttentionF16Rows, and the
// prompt benchmark BenchmarkAttentionKVPrefill) the fused kernels win at
// every tile height up to the largest (4·attnRows rows), so every tile
// over a half cache takes them; BENCHMARKS.md, "Fused f16 attention".

// attnFused switches the fused kernels off (for benchmarks that compare
// them with the float32 tile).
var attnFused = true

// fusedF16 reports whether the tile takes the fused kernels.
func (a *attnTile) fusedF16() bool {
	s := a.src
	return attnFused && s != nil && s.k.Format == KVF16 && s.v.Format == KVF16 && hasFusedF16() &&
		a.dk%8 == 0 && a.dv%8 == 0 && a.dk > 0 && a.dv > 0
}

// fusedWidth is the kernel width for a tile's next r rows: 8 while eight
// or more are left, else the narrowest of 2, 4, 8 that holds them.
func fusedWidth(r int) int {
	switch {
	case r <= 2:
		return 2
	case r <= 4:
		return 4
	}
	return 8
}

// fusedPad is how many rows a fused tile of rows rows computes: groups of
// eight, the last one widened to its kernel's width.
func fusedPad(rows int) int {
	if rest := rows % 8; rest != 0 {
		return rows - rest + fusedWidth(rest)
	}
	return rows
}

// unmasked reports whether every row of tokens t0..t1 sees every key of
// j0..j0+nk.
func (a *attnTile) unmasked(t0, t1, j0, nk int) bool {
	return a.first(a.pos0+t1-1) <= j0 && j0+nk <= a.pos0+t0+1
}

// fusedBlock adds keys j0..j0+nk of kv head g to the tile's rows (padded
// to fusedPad) through the fused kernels. With more than eight rows the
// block serves several row groups, so it is in cache after the first.
func (a *attnTile) fusedBlock(g, j0, nk, rows int) {
	s, dk, dv := a.src, a.dk, a.dv
	k := s.k.Half[j0*s.k.Cols+s.kc0+g*dk:]
	v := s.v.Half[j0*s.v.Cols+s.vc0+g*dv:]
	for r0 := 0; r0 < rows; r0 += 8 {
		r := fusedWidth(rows - r0)
		attnScoresF16(r, a.ps, a.qs[r0*dk:], dk, k, s.k.Cols, nk)
		attnSoftmax(a.ps, nk, r, a.rowMax[r0:], a.rowSum[r0:], a.corr)
		attnPVF16(r, a.o[r0*dv:], dv, a.corr, a.ps, v, s.v.Cols, nk, rows > 8)
	}
}

// attnLanes[w] is the row of each of eight lanes when a vector holds
// 1<<w rows of 8>>w keys: lane l is row l mod 1<<w.
var attnLanes = [4][8]int32{
	{0, 0, 0, 0, 0, 0, 0, 0},
	{0, 1, 0, 1, 0, 1, 0, 1},
	{0, 1, 2, 3, 0, 1, 2, 3},
	{0, 1, 2, 3, 4, 5, 6, 7},
}

// f16Kernels are an architecture's fused f16 score and value kernels
// (attention_amd64.s, attention_arm64.s): two query rows, four rows whose
// scores and probabilities are ps apart per key (ps 4, or 8 when a second
// call does rows 4..7), and where an architecture has them (else nil)
// eight rows' scores in one pass and a four-row value kernel for values
// in cache (pv4x3: more multiply-adds per load, fewer keys' loads in
// flight). The two- and four-row score kernels take two keys at a time or
// more and repeat the last key to fill a group. None checks bounds.
type f16Kernels struct {
	scores2 func(s *float32, q *float32, dk int, k *uint16, ks, nk int)
	scores4 func(s *float32, q *float32, dk int, k *uint16, ks, nk, ps int)
	scores8 func(s *float32, q *float32, dk int, k *uint16, ks, nk int)
	pv2     func(o *float32, dv int, corr *float32, p *float32, v *uint16, vs, nk int)
	pv4     func(o *float32, dv int, corr *float32, p *float32, v *uint16, vs, nk, ps int)
	pv4x3   func(o *float32, dv int, corr *float32, p *float32, v *uint16, vs, nk, ps int)
}

// attnScoresF16 writes s[j*r+i] = q_i·k_j for rows i < r (q row i at
// q[i*dk:]) and keys j < nk (key j the dk halves at k[j*ks:]). With the
// fused kernels (r 2, 4 or 8, dk a multiple of 8) s must hold nk rounded
// up to 4 keys times r values: a kernel's last group repeats a key.
func attnScoresF16(r int, s, q []float32, dk int, k []uint16, ks, nk int) {
	x := &attnF16
	if x.scores2 == nil || !hasFusedF16() || dk%8 != 0 || nk == 0 || (r != 2 && r != 4 && r != 8) {
		attnScoresF16Go(r, s, q, dk, k, ks, nk)
		return
	}
	_ = s[(nk+3)&^3*r-1]
	_ = q[r*dk-1]
	_ = k[(nk-1)*ks+dk-1]
	switch r {
	case 2:
		x.scores2(&s[0], &q[0], dk, &k[0], ks, nk)
	case 4:
		x.scores4(&s[0], &q[0], dk, &k[0], ks, nk, 4)
	case 8:
		if x.scores8 != nil {
			x.scores8(&s[0], &q[0], dk, &k[0], ks, nk)
			return
		}
		x.scores4(&s[0], &q[0], dk, &k[0], ks, nk, 8)
		x.scores4(&s[4], &q[4*dk], dk, &k[0], ks, nk, 8)
	}
}

// attnPVF16 sets o[i*dv+c] = o[i*dv+c]·corr[i] + Σ_j p[j*r+i]·v_j[c] for
// rows i < r, columns c < dv, keys j < nk (value j the dv halves at
// v[j*vs:]). cached says the values were read recently (another row
// group's call over the same block), which picks the four-row kernel
// that is faster in cache and slower from memory.
func attnPVF16(r int, o []float32, dv int, corr, p []float32, v []uint16, vs, nk int, cached bool) {
	x := &attnF16
	if x.pv2 == nil || !hasFusedF16() || dv%8 != 0 || nk == 0 || (r != 2 && r != 4 && r != 8) {
		attnPVF16Go(r, o, dv, corr, p, v, vs, nk)
		return
	}
	_ = o[r*dv-1]
	_ = corr[r-1]
	_ = p[nk*r-1]
	_ = v[(nk-1)*vs+dv-1]
	pv4 := x.pv4
	if cached && x.pv4x3 != nil {
		pv4 = x.pv4x3
	}
	switch r {
	case 2:
		x.pv2(&o[0], dv, &corr[0], &p[0], &v[0], vs, nk)
	case 4:
		pv4(&o[0], dv, &corr[0], &p[0], &v[0], vs, nk, 4)
	case 8:
		// Two passes of four rows: one pass of eight rows × one column
		// chunk (a broadcast per multiply-add) ran at 74 GFLOP/s in cache
		// against 82-88 (BENCHMARKS.md, "Fused f16 attention").
		pv4(&o[0], dv, &corr[0], &p[0], &v[0], vs, nk, 8)
		pv4(&o[4*dv], dv, &corr[4], &p[4], &v[0], vs, nk, 8)
	}
}

// attnScoresF16Go is the portable form of attnScoresF16: s[j*r+i] =
// q_i·k_j for rows i < r (q row i at q[i*dk:]) and keys j < nk (key j the
// dk halves at k[j*ks:]).
func attnScoresF16Go(r int, s, q []float32, dk int, k []uint16, ks, nk int) {
	for j := 0; j < nk; j++ {
		kj := k[j*ks : j*ks+dk]
		for i := 0; i < r; i++ {
			var d float32
			for c, h := range kj {
				d += q[i*dk+c] * F16ToF32(h)
			}
			s[j*r+i] = d
		}
	}
}

// attnSoftmaxGo is the portable form of attnSoftmax: for rows i < r, m[i]
// becomes the max of m[i] and the row's scores s[j*r+i] (j < nk), each
// score e^(score - m[i]), corr[i] = e^(old m[i] - m[i]) and l[i] =
// l[i]·corr[i] + the row's exponentials. A row whose max is -Inf shifts
// by 0 (its exponentials are 0, not NaN).
func attnSoftmaxGo(s []float32, nk, r int, m, l, corr []float32) {
	for i := 0; i < r; i++ {
		mx := m[i]
		for j := 0; j < nk; j++ {
			mx = max(mx, s[j*r+i])
		}
		shift := mx
		if math.IsInf(float64(mx), -1) {
			shift = 0
		}
		corr[i] = expf(m[i] - shift)
		var sum float32
		for j := 0; j < nk; j++ {
			p := expf(s[j*r+i] - shift)
			s[j*r+i] = p
			sum += p
		}
		l[i] = l[i]*corr[i] + sum
		m[i] = mx
	}
}

// attnPVF16Go is the portable form of attnPVF16: o[i*dv+c] =
// o[i*dv+c]·corr[i] + Σ_j p[j*r+i]·v_j[c] for rows i < r, columns c < dv,
// keys j < nk (value j the dv halves at v[j*vs:]).
func attnPVF16Go(r int, o []float32, dv int, corr, p []float32, v []uint16, vs, nk int) {
	for i := 0; i < r; i++ {
		oi := o[i*dv : (i+1)*dv]
		scaleVec(oi, corr[i])
		for j := 0; j < nk; j++ {
			pj := p[j*r+i]
			for c, h := range v[j*vs : j*vs+dv] {
				oi[c] += pj * F16ToF32(h)
			}
		}
	}
}

// allHeads reports whether a decode call's units should each take every
// kv head over a key range, block by block, rather than one kv head over
// all keys: the heads of a position share a cache row, and reading one
// head's slice of every row, then the next head's, is slow once the cache
// is out of the caches (converting a 67 MB half cache head by head ran at
// 3.1 GB per CPU-second against 10.6 for whole rows; through the kernels
// the change gains 12-35%, BENCHMARKS.md, "Fused f16 attention"). It
// takes the fused kernels, one token, several kv heads, and keys enough
// that every worker gets a range of at least four blocks.
func (a *attnTile) allHeads(n, kvHeads, keys int) bool {
	return n == 1 && kvHeads > 1 && a.fusedF16() && keys >= 4*attnKeys*runtime.GOMAXPROCS(0)
}

// attnHeadPool holds the all-heads units' scratch: a kv head's decode
// rows (a GQA group), far fewer than attnPool's tiles take, so the two
// sizes do not mix in one pool (a small buffer drawn for a tile would
// grow, every call).
var attnHeadPool freeList[attnBuffers]

// headScratch takes scratch for every kv head of unit u.
func (j *attnJob) headScratch(a *attnTile, u int) []*attnBuffers {
	hb := j.hb[u*j.kvHeads : (u+1)*j.kvHeads]
	for g := range hb {
		a.allocFrom(&attnHeadPool, a.group)
		hb[g] = a.attnBuffers
	}
	a.attnBuffers = nil
	return hb
}

// allHeadsRun accumulates the decode token of every kv head over keys
// kb..ke, into the heads' scratch hb: a block of every head, then the
// next block.
func (a *attnTile) allHeadsRun(hb []*attnBuffers, kb, ke int) {
	for g, b := range hb {
		a.attnBuffers = b
		a.start(g, 0, 1)
	}
	for j0 := kb; j0 < ke; j0 += attnKeys {
		for g, b := range hb {
			a.attnBuffers = b
			a.step(g, 0, 1, j0, ke, true)
		}
	}
}

// runHeads is an unsplit all-heads call (one worker): every head over
// every key, then each head's output.
func (j *attnJob) runHeads() {
	a := j.base
	j.hb = grow(j.hb, j.kvHeads)
	hb := j.headScratch(&a, 0)
	a.allHeadsRun(hb, a.first(a.pos0), a.pos0+1)
	for g, b := range hb {
		a.attnBuffers = b
		a.finish(g, 0, 1)
		attnHeadPool.put(b)
	}
}

// runHeadSplits is the work of a split all-heads call: key ranges [lo,
// hi), each over every head, leaving each head's partial results where
// runSplits leaves them (unit sp·kvHeads + g: one token, one tile).
func (j *attnJob) runHeadSplits(lo, hi int) {
	a := j.base
	rows, dv, kvHeads := j.rows, a.dv, j.kvHeads
	for sp := lo; sp < hi; sp++ {
		kb, ke := a.first(a.pos0)+sp*j.span, a.pos0+1
		if sp < j.splits-1 {
			ke = min(ke, kb+j.span)
		}
		hb := j.headScratch(&a, sp)
		a.allHeadsRun(hb, kb, ke)
		for g, b := range hb {
			u := sp*kvHeads + g
			copy(j.po[u*rows*dv:], b.o[:a.group*dv])
			copy(j.pm[u*rows:], b.rowMax[:a.group])
			copy(j.ps[u*rows:], b.rowSum[:a.group])
			attnHeadPool.put(b)
		}
	}
}
