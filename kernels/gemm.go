package kernels

// Prefill matrix products (many tokens) as a blocked GEMM.
//
// out[t, r] = Σ_c W[r, c]·x[t, c]: both operands are contiguous along c, so
// the microkernel computes dot products along c with vector accumulators
// (4 weight rows × gemmTile tokens, reduced once per block; gemmTile is per
// architecture: 3 on amd64, 4 with NEON's 32 vector registers).
// Each worker owns a range of 16-row weight panels. A panel's slice of kc
// columns is dequantized (or converted) once into a float32 block that stays
// in L1 and is multiplied against a block of tokens whose activations stay
// in L2, so the weights are decoded n/gemmTokens times per call instead of
// once per token, and each activation is read from memory once per panel
// block instead of once per row.

const (
	gemmPanel  = 16                        // weight rows dequantized together
	gemmKC     = 384                       // columns per block (a multiple of 8 and of 32, 64, 128)
	gemmTokens = 150 / gemmTile * gemmTile // tokens per block (a multiple of gemmTile)
)

// gemm computes out[t, r] for n tokens of any matrix (quantized at any width
// or dense). Columns beyond the last multiple of 8 (dense matrices only)
// are added by a scalar pass.
func gemm(out, x []float32, n int, m *Matrix) {
	rows, cols := m.Rows, m.Cols
	j := gemmJobs.get()
	j.out, j.x, j.n, j.m = out[:n*rows], x[:n*cols], n, m
	clear(j.out)
	j.kc = gemmKC
	if m.Q != nil {
		// Blocks start on a group so a block's scales are whole groups.
		j.kc = max(m.Q.GroupSize, gemmKC/m.Q.GroupSize*m.Q.GroupSize)
	}
	j.kmain = cols &^ 7
	// Column block k0 of every token, packed contiguously (token t at
	// xp[k0*n+t*kw:]): x's own row stride is often a multiple of 4 KiB,
	// which maps a token block's rows onto a few cache sets.
	j.xp = grow(j.xp, n*j.kmain)
	parallelFor(n, cols, j.packBody)
	panels := (rows + gemmPanel - 1) / gemmPanel
	parallelFor(panels, gemmPanel*cols*n, j.panelsBody)
	j.out, j.x, j.m = nil, nil, nil
	gemmJobs.put(j)
}

// gemmJob is one gemm call: its operands, the packed activations and the
// work functions of its two parallel regions, bound once when the job is
// made. Jobs (with their packed buffer, as large as a prompt's input) are
// recycled through gemmJobs: prefill makes thousands of small expert
// products, and a decode step's dense products allocate nothing.
type gemmJob struct {
	out, x               []float32
	n, kc, kmain         int
	m                    *Matrix
	xp                   []float32
	packBody, panelsBody func(lo, hi int)
}

var gemmJobs = freeList[gemmJob]{init: func(j *gemmJob) {
	j.packBody, j.panelsBody = j.pack, j.panels
}}

// pack copies tokens [lo, hi) into the column blocks of xp.
func (j *gemmJob) pack(lo, hi int) {
	cols, kmain, n := j.m.Cols, j.kmain, j.n
	for k0 := 0; k0 < kmain; k0 += j.kc {
		kw := min(kmain, k0+j.kc) - k0
		for t := lo; t < hi; t++ {
			copy(j.xp[k0*n+t*kw:k0*n+(t+1)*kw], j.x[t*cols+k0:])
		}
	}
}

// panels multiplies weight panels [lo, hi) with every token.
func (j *gemmJob) panels(lo, hi int) {
	m, out, x, n, kc, kmain := j.m, j.out, j.x, j.n, j.kc, j.kmain
	rows, cols := m.Rows, m.Cols
	w := getGemmWorker(gemmPanel * kc)
	defer gemmWorkers.put(w)
	buf := w.panel
	for t0 := 0; t0 < n; t0 += gemmTokens {
		t1 := min(n, t0+gemmTokens)
		for k0 := 0; k0 < kmain; k0 += kc {
			k1 := min(kmain, k0+kc)
			kw := k1 - k0
			xb := j.xp[k0*n+t0*kw : k0*n+t1*kw]
			for p := lo; p < hi; p++ {
				r0 := p * gemmPanel
				rr := min(gemmPanel, rows-r0)
				m.panel(buf, kw, r0, rr, k0, k1, &w.sc)
				if p+1 < hi {
					m.prefetchPanel(r0+gemmPanel, min(gemmPanel, rows-r0-gemmPanel), k0, k1)
				}
				gemmBlock(out[t0*rows+r0:], rows, buf, kw, rr, xb, kw, t1-t0, kw)
			}
		}
	}
	if kmain < cols {
		w.tail = grow(w.tail, cols-kmain)
		for r := lo * gemmPanel; r < min(rows, hi*gemmPanel); r++ {
			m.rowRange(r, kmain, cols, w.tail)
			for t := 0; t < n; t++ {
				out[t*rows+r] += Dot(w.tail, x[t*cols+kmain:(t+1)*cols])
			}
		}
	}
}

// gemmWorker is one participant's scratch in a gemm region: the
// dequantized panel, a row's scales and biases, and the scalar tail row.
type gemmWorker struct {
	panel, tail []float32
	sc          gemmScratch
}

// gemmWorkers recycles the workers' scratch between calls.
var gemmWorkers freeList[gemmWorker]

// getGemmWorker takes a worker's scratch with a panel of n floats.
func getGemmWorker(n int) *gemmWorker {
	w := gemmWorkers.get()
	w.panel = grow(w.panel, n)
	return w
}

// gemmBlock adds the products of rr panel rows (w, row stride ldw) with nt
// tokens of x (row stride ldx) over k columns into out (row stride ldo).
// Whole groups of four rows write straight into out; a last partial group
// goes through a small tile.
func gemmBlock(out []float32, ldo int, w []float32, ldw, rr int, x []float32, ldx, nt, k int) {
	full := rr &^ 3
	for t := 0; t < nt; t += gemmTile {
		nj := min(gemmTile, nt-t)
		if full > 0 {
			tileKernel(w, ldw, full, x[t*ldx:], ldx, nj, k, out[t*ldo:], ldo)
		}
		if full < rr {
			var tile [4 * gemmTile]float32
			tileKernel(w[full*ldw:], ldw, 4, x[t*ldx:], ldx, nj, k, tile[:], 4)
			for j := 0; j < nj; j++ {
				for i := 0; i < rr-full; i++ {
					out[(t+j)*ldo+full+i] += tile[j*4+i]
				}
			}
		}
	}
}

// tileGo is the portable microkernel: out[j*ldo+i] += Σ_c w[i*ldw+c]·x[j*ldx+c]
// for i < rows (a multiple of 4), j < nt, c < k.
func tileGo(w []float32, ldw, rows int, x []float32, ldx, nt, k int, out []float32, ldo int) {
	for i := 0; i < rows; i += 2 {
		w0, w1 := w[i*ldw:i*ldw+k], w[(i+1)*ldw:(i+1)*ldw+k]
		for j := 0; j < nt; j++ {
			xs := x[j*ldx : j*ldx+k]
			var a0, a1, a2, a3, b0, b1, b2, b3 float32
			c := 0
			for ; c+4 <= k; c += 4 {
				x0, x1, x2, x3 := xs[c], xs[c+1], xs[c+2], xs[c+3]
				a0 += w0[c] * x0
				a1 += w0[c+1] * x1
				a2 += w0[c+2] * x2
				a3 += w0[c+3] * x3
				b0 += w1[c] * x0
				b1 += w1[c+1] * x1
				b2 += w1[c+2] * x2
				b3 += w1[c+3] * x3
			}
			for ; c < k; c++ {
				a0 += w0[c] * xs[c]
				b0 += w1[c] * xs[c]
			}
			out[j*ldo+i] += (a0 + a1) + (a2 + a3)
			out[j*ldo+i+1] += (b0 + b1) + (b2 + b3)
		}
	}
}

// gemmScratch holds one row's scales and biases as float32 while a panel
// is dequantized.
type gemmScratch struct{ scales, biases []float32 }

// panel writes rows r0..r0+rr, columns k0..k1 of m as float32 into dst with
// row stride ld, and zeroes the rows up to the next multiple of four.
func (m *Matrix) panel(dst []float32, ld, r0, rr, k0, k1 int, sc *gemmScratch) {
	kw := k1 - k0
	for i := 0; i < rr; i++ {
		r, d := r0+i, dst[i*ld:i*ld+kw]
		switch {
		case m.F32 != nil:
			copy(d, m.F32[r*m.Cols+k0:r*m.Cols+k1])
		case m.BF16 != nil:
			bf16Row(d, m.BF16[r*m.Cols+k0:r*m.Cols+k1])
		case m.MX != nil:
			m.mxRowRange(r, k0, k1, d)
		default:
			m.quantRow(d, r, k0, k1, sc)
		}
	}
	for i := rr; i < (rr+3)&^3; i++ {
		clear(dst[i*ld : i*ld+kw])
	}
}

// quantRow dequantizes columns k0..k1 (k0 on a group boundary) of row r.
func (m *Matrix) quantRow(dst []float32, r, k0, k1 int, sc *gemmScratch) {
	q := m.Q
	if !dequantFast(q) {
		m.rowRange(r, k0, k1, dst)
		return
	}
	groups := m.Cols / q.GroupSize
	g0, g1 := r*groups+k0/q.GroupSize, r*groups+k1/q.GroupSize
	sc.scales, sc.biases = sc.scales[:0], sc.biases[:0]
	if q.F16Scales {
		for g := g0; g < g1; g++ {
			sc.scales = append(sc.scales, F16ToF32(q.Scales[g]))
			sc.biases = append(sc.biases, F16ToF32(q.Biases[g]))
		}
	} else {
		for g := g0; g < g1; g++ {
			sc.scales = append(sc.scales, BF16ToF32(q.Scales[g]))
			sc.biases = append(sc.biases, BF16ToF32(q.Biases[g]))
		}
	}
	words := m.Cols * q.Bits / 32
	w := q.W[r*words+k0*q.Bits/32 : r*words+k1*q.Bits/32]
	dequantGroups(dst, w, sc.scales, sc.biases, q.Bits, q.GroupSize)
}

// rowRange dequantizes (or converts) columns k0..k1 of row r into dst,
// straight from the storage definitions; k0 may be any column.
func (m *Matrix) rowRange(r, k0, k1 int, dst []float32) {
	dst = dst[:k1-k0]
	switch {
	case m.F32 != nil:
		copy(dst, m.F32[r*m.Cols+k0:])
		return
	case m.BF16 != nil:
		for j, b := range m.BF16[r*m.Cols+k0 : r*m.Cols+k1] {
			dst[j] = BF16ToF32(b)
		}
		return
	case m.MX != nil:
		m.mxRowRange(r, k0, k1, dst)
		return
	}
	q := m.Q
	bitsPerRow := m.Cols * q.Bits
	groups := m.Cols / q.GroupSize
	mask := uint32(1)<<q.Bits - 1
	w := q.W[r*bitsPerRow/32 : (r+1)*bitsPerRow/32]
	for j := k0; j < k1; j++ {
		s, b := q.scale(r*groups + j/q.GroupSize)
		bit := j * q.Bits
		v := w[bit/32] >> (bit % 32)
		if bit%32+q.Bits > 32 {
			v |= w[bit/32+1] << (32 - bit%32)
		}
		dst[j-k0] = s*float32(v&mask) + b
	}
}

// dequantGroupsGo is the portable form of dequantGroups: whole groups of a
// 4- or 8-bit row, scales and biases already float32.
func dequantGroupsGo(dst []float32, w []uint32, scales, biases []float32, bits, group int) {
	per := 32 / bits
	mask := uint32(1)<<bits - 1
	for g, s := range scales {
		b := biases[g]
		for j := g * group; j < (g+1)*group; j += per {
			v := w[j/per]
			for k := range per {
				dst[j+k] = s*float32(v>>(k*bits)&mask) + b
			}
		}
	}
}

// dequantFast reports whether a quantization has the word-aligned form
// dequantGroups handles: 4 or 8 bits in groups of whole 8-element runs.
func dequantFast(q *Quant) bool {
	return (q.Bits == 4 || q.Bits == 8) && q.GroupSize%8 == 0
}

// bf16RowGo is the portable form of bf16Row.
func bf16RowGo(dst []float32, src []uint16) {
	for j, b := range src {
		dst[j] = BF16ToF32(b)
	}
}
