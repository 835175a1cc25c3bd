package kernels

import (
	"math"
	"unsafe"
)

// Decode-time quantized matrix-vector products. For each group the dot
// product is scale*Σ(q-c)·x + (bias+c*scale)*Σx with c the middle code, so
// x's group sums are computed once per vector and the weights are never
// dequantized into memory. Centring q keeps the two terms from being large
// and opposite (bias is typically about -c*scale), which would cost float32
// precision. 4 and 8 bits (the common cases) unpack whole words; other
// widths fall back to dequantizing a row. The SIMD kernels (qmv_amd64.go,
// qmv_arm64.go) do the same sums in the order their registers allow.

// qmvTokens is how many tokens MatMul handles with the fused form before
// dequantizing rows (which amortises over many tokens) becomes cheaper.
const qmvTokens = DecodeTokens

// DecodeTokens is the most tokens a DecodeInput holds.
const DecodeTokens = 4

// DecodeInput is up to qmvTokens rows of activations laid out once for the
// decode kernels, so every row block of a matrix, and every matrix reading
// the same x (a MoE layer's experts), shares the preparation.
type DecodeInput struct {
	// Int8 asks Prepare for int8 activations (see Int8Activations) for
	// this input alone, where the CPU has the integer kernels.
	Int8 bool

	x        []float32 // [n, cols] as given
	n, cols  int
	group    int       // group size sums were taken over (0: x is for dense matrices)
	sums     []float32 // [n, cols/group] Σx per group
	xs       []float32 // [n, cols] in the SIMD kernels' order when permuted, else x
	permuted int       // xs is x in code order in blocks of this size (2- and 4-bit SIMD kernels), or 0
	permBits int       // the width xs was permuted for
	perm     []float32 // the buffer xs uses when permuted

	// x quantized per group to intWidth-bit integers (16 with
	// Int16Activations, 8 with Int8Activations) for the integer kernels
	// of intBits-wide matrices (intBits 0: not prepared). Per group: the
	// step qdx (x ≈ qdx·xq), qsum = qdx·Σxq, and qcorr = c·Σxq for the
	// middle code c the 4-bit kernels subtract in integers.
	intBits, intWidth int
	xq                []int8
	xq16              []int16
	qdx, qsum         []float32
	qcorr             []int32
}

// Int8Activations makes the decode kernels quantize x to int8 per group
// and use integer dot products (ggml's approach) for 4- and 8-bit matrices
// where the CPU has them. It is faster where the float kernels are bound
// by arithmetic, and costs the precision of an int8 x: on every matrix of
// the trained default model it moves the held-out NLL by 0.0022 nats, more
// than the project's 0.002 bound, so it is off by default (BENCHMARKS.md,
// "CPU decode kernels"); DecodeInput.Int8 applies it to chosen inputs
// only. Set it before running a model, not while kernels run.
var Int8Activations = false

// Int16Activations makes the decode kernels quantize x to int16 per group
// for the matrices the CPU has integer kernels for (amd64 AVX2: 2 to 6 and
// 8 bits; arm64 NEON: 4 and 8 bits): twice
// the values per instruction of the float32 path, for a rounding of at
// most 2^-16 of the group's largest |x| per value. That moves the trained
// model's held-out NLL by about 1e-5 nats but the random-weight fixtures'
// logits by up to 2e-3 (they amplify any rounding), so the kernels default
// to float32, as the fidelity tests need, and the library turns this on
// (mlxmoe.Options.FloatActivations; BENCHMARKS.md, "CPU decode kernels").
// It is process-wide: set it before running a model, not while kernels run.
var Int16Activations = false

// Prepare lays out x ([n, cols], 1 <= n <= qmvTokens) for matrices
// quantized like q (nil: dense). The DecodeInput keeps x and reuses its
// buffers across calls.
func (d *DecodeInput) Prepare(x []float32, n, cols int, q *Quant) {
	d.x, d.n, d.cols, d.group, d.permuted, d.intBits = x[:n*cols], n, cols, 0, 0, 0
	d.xs = d.x
	if q == nil || q.GroupSize <= 0 || cols%q.GroupSize != 0 {
		return
	}
	d.group = q.GroupSize
	groups := cols / q.GroupSize
	d.sums = growTokens(d.sums, n, groups)
	if q.GroupSize == 32 || q.GroupSize == 64 || q.GroupSize == 128 {
		// The integer paths take the float sums in their own pass over
		// each group (quantizeGroup), beside its maximum.
		switch {
		case (d.Int8 || Int8Activations) && simdIntActivations(q.Bits, 8):
			d.prepareInt(q.Bits, 8)
			return
		case Int16Activations && simdIntActivations(q.Bits, 16):
			d.prepareInt(q.Bits, 16)
			return
		}
	}
	for t := 0; t < n; t++ {
		for g := 0; g < groups; g++ {
			var s float32
			for _, v := range x[t*cols+g*d.group : t*cols+(g+1)*d.group] {
				s += v
			}
			d.sums[t*groups+g] = s
		}
	}
	if block := simdCodeBlock(q.Bits); block > 0 && cols%block == 0 {
		d.perm = growTokens(d.perm, n, cols)
		d.xs = d.perm
		for t := 0; t < n; t++ {
			permuteCodes(d.xs[t*cols:(t+1)*cols], x[t*cols:(t+1)*cols], block, 8/q.Bits)
		}
		d.permuted, d.permBits = block, q.Bits
	}
}

// growTokens is b with length n*per, reallocated only when too small, and
// then for qmvTokens tokens: the experts of a batched decode step see from
// one to qmvTokens tokens from step to step, and their inputs must not
// allocate each time a few more arrive.
func growTokens[T any](b []T, n, per int) []T {
	if cap(b) >= n*per {
		return b[:n*per]
	}
	return make([]T, n*per, max(n, qmvTokens)*per)
}

// prepareInt quantizes x per group to width-bit integers (8 or 16) with
// the step that maps the group's largest magnitude to the largest level.
// The int16 kernels take each token's values in turn: for 4- and 8-bit
// matrices per 32 values the 16 even ones then the 16 odd ones (the nibble
// order; the 8-bit kernels read codes as words, even value in the low
// byte), for other widths in transposeBlocks' order; and qcorr =
// c·Σxq per token and group for the middle code c (the NEON kernels centre
// codes through it; the AVX2 ones keep them unsigned). The int8 layout is
// prepareInt8's.
func (d *DecodeInput) prepareInt(bits, width int) {
	n, cols, groups := d.n, d.cols, d.cols/d.group
	d.intBits, d.intWidth = bits, width
	d.qdx, d.qsum = growTokens(d.qdx, n, groups), growTokens(d.qsum, n, groups)
	if width == 8 {
		d.prepareInt8(bits)
		return
	}
	d.qcorr = growTokens(d.qcorr, n, groups)
	d.xq16 = growTokens(d.xq16, n, cols)
	// The groups are independent: a long x (a 14,336-value down
	// projection's input) is quantized on every core rather than on the
	// caller alone while the pool's workers wait for the product.
	j := int16Jobs.get()
	j.d = d
	parallelFor(n*groups, 8*d.group, j.body)
	j.d = nil
	int16Jobs.put(j)
	if bits != 4 && bits != 8 {
		for t := 0; t < n; t++ {
			transposeBlocks(d.xq16[t*cols:(t+1)*cols], int16Block(bits, cols))
		}
	}
}

// int16Job quantizes the groups of one prepareInt call; its work function
// is bound once, when the job is made, so a call allocates nothing.
type int16Job struct {
	d    *DecodeInput
	body func(lo, hi int)
}

var int16Jobs = freeList[int16Job]{init: func(j *int16Job) { j.body = j.quantize }}

// quantize rounds groups [lo, hi) of x (token-major: token t's group g is
// t·groups+g) to int16, in nibble order for 4- and 8-bit matrices.
func (j *int16Job) quantize(lo, hi int) {
	d := j.d
	groups := d.cols / d.group
	centre := int32(1) << (d.intBits - 1)
	nibbles := d.intBits == 4 || d.intBits == 8
	for i := lo; i < hi; i++ {
		t, g := i/groups, i%groups
		base := t*d.cols + g*d.group
		dx, sum, fsum := quantizeGroup(d.xq16[base:base+d.group], d.x[base:base+d.group], 32767, nibbles)
		d.qdx[i], d.qsum[i], d.qcorr[i], d.sums[i] = dx, dx*float32(sum), centre*sum, fsum
	}
}

// int16Block is the block size of the int16 input of a bits-wide matrix
// of cols columns, for widths other than 4 and 8 (transposeBlocks): 128
// for the 2-bit word kernel (rows of whole 128-value blocks), else 16.
func int16Block(bits, cols int) int {
	if wordLanes2(bits, cols) {
		return 128
	}
	return 16
}

// wordLanes2 reports whether a 2-bit matrix of cols columns is taken by
// the 2-bit word kernel, whose rows are whole 128-value blocks.
func wordLanes2(bits, cols int) bool { return bits == 2 && cols%128 == 0 }

// transposeBlocks puts each block of xq (16 or 128 values) in the order
// the int16 kernels of widths other than 4 and 8 take it: value 8i+k of a
// block goes to k·block/8 + i. For blocks of 16, lanes 2k and 2k+1 of a
// register then hold values k and k+8, whose codes lie at the same bit
// offset in their bytes; for blocks of 128 (the 2-bit word kernel: 16
// words of eight codes), code k of every word meets 16 contiguous values.
func transposeBlocks(xq []int16, block int) {
	if block == 16 {
		for b := 0; b+16 <= len(xq); b += 16 {
			d := (*[16]int16)(xq[b : b+16])
			v := *d
			d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7] = v[0], v[8], v[1], v[9], v[2], v[10], v[3], v[11]
			d[8], d[9], d[10], d[11], d[12], d[13], d[14], d[15] = v[4], v[12], v[5], v[13], v[6], v[14], v[7], v[15]
		}
		return
	}
	for b := 0; b+128 <= len(xq); b += 128 {
		d := (*[128]int16)(xq[b : b+128])
		v := *d
		for k := 0; k < 8; k++ {
			row := (*[16]int16)(d[16*k : 16*k+16])
			for i := range row {
				row[i] = v[(8*i+k)&127]
			}
		}
	}
}

// prepareInt8 is prepareInt for the int8 kernels, which take all n tokens
// in one pass over the codes, so xq is interleaved: per block of int8Block
// values (per architecture), token after token (4-bit: each block's even
// values, then its odd ones, the order the kernel unpacks nibbles in). qdx
// and qsum stay token after token; the int8 kernels need no qcorr.
func (d *DecodeInput) prepareInt8(bits int) {
	n, cols, group, groups := d.n, d.cols, d.group, d.cols/d.group
	block := int8Block(bits, group)
	d.xq = growTokens(d.xq, n, cols)
	var buf [128]int8
	for t := 0; t < n; t++ {
		for g := 0; g < groups; g++ {
			xg, i := d.x[t*cols+g*group:t*cols+(g+1)*group], t*groups+g
			dx, sum, fsum := quantizeGroup(buf[:group], xg, 127, false)
			d.qdx[i], d.qsum[i], d.sums[i] = dx, dx*float32(sum), fsum
			for b := 0; b < group; b += block {
				dst := d.xq[((g*group+b)/block*n+t)*block:][:block]
				src := buf[b : b+block]
				if bits != 4 {
					copy(dst, src)
					continue
				}
				half := block / 2
				for j := 0; j < half; j++ {
					dst[j], dst[half+j] = src[2*j], src[2*j+1]
				}
			}
		}
	}
}

// quantizeGroup rounds xg to multiples of max|xg|/levels into dst (in
// nibble order when nibbles is set) and returns the step, the sum of the
// integers and the float sum of xg (added in order, as Prepare's float
// path adds it).
func quantizeGroup[T int8 | int16](dst []T, xg []float32, levels float32, nibbles bool) (step float32, sum int32, fsum float32) {
	amax, fsum := groupStats(xg)
	if amax == 0 {
		clear(dst)
		return 0, 0, fsum
	}
	inv := levels / amax
	if !nibbles {
		for j, v := range xg {
			qv := roundLevel(v * inv)
			sum += qv
			dst[j] = T(qv)
		}
		return amax / levels, sum, fsum
	}
	// Per 32 values: the 16 even ones, then the 16 odd ones.
	for b := 0; b+32 <= len(xg); b += 32 {
		xb, db := xg[b:b+32:b+32], dst[b:b+32:b+32]
		for i := 0; i < 16; i++ {
			q0, q1 := roundLevel(xb[2*i]*inv), roundLevel(xb[2*i+1]*inv)
			sum += q0 + q1
			db[i], db[16+i] = T(q0), T(q1)
		}
	}
	return amax / levels, sum, fsum
}

// groupStats returns max|v| and the in-order sum of xg in one pass. Each
// is a chain of dependent operations, so the maximum runs over four
// independent lanes (it is exact, so the result does not depend on how
// it is split) and the sum beside it.
func groupStats(xg []float32) (amax, sum float32) {
	var m0, m1, m2, m3 float32
	i := 0
	for ; i+4 <= len(xg); i += 4 {
		v := xg[i : i+4 : i+4]
		m0, m1 = max(m0, absBits(v[0])), max(m1, absBits(v[1]))
		m2, m3 = max(m2, absBits(v[2])), max(m3, absBits(v[3]))
		sum += v[0]
		sum += v[1]
		sum += v[2]
		sum += v[3]
	}
	for ; i < len(xg); i++ {
		m0 = max(m0, absBits(xg[i]))
		sum += xg[i]
	}
	return max(max(m0, m1), max(m2, m3)), sum
}

// absBits is |f| by clearing the sign bit (abs32 without the float64 round trip).
func absBits(f float32) float32 { return math.Float32frombits(math.Float32bits(f) &^ (1 << 31)) }

// roundLevel is round32 for |f| <= 2^15 or so, the range of a scaled
// activation: f ± 0.5 is exact in float64 there, so truncating it rounds
// half away from zero, without math.Round's bit work per value.
func roundLevel(f float32) int32 {
	return int32(float64(f) + math.Copysign(0.5, float64(f)))
}

// intRowBlocks calls fn(r0, rows, t) over rows [lo, hi) and each token t,
// for kernels that take one token per call (NEON): one block for one
// token; with several, short blocks (qmvIntBlock rows) taken by every
// token in turn, so each token finds the block's codes in cache.
func intRowBlocks(d *DecodeInput, lo, hi int, fn func(r0, rows, t int)) {
	block := hi - lo
	if d.n > 1 {
		block = qmvIntBlock
	}
	for r0 := lo; r0 < hi; r0 += block {
		rows := min(block, hi-r0)
		for t := 0; t < d.n; t++ {
			fn(r0, rows, t)
		}
	}
}

// qmvIntBlock is the rows a one-token kernel call covers when several
// tokens share them: 16 rows of 14336 4-bit values are 112 KiB, well
// inside L2.
const qmvIntBlock = 16

// MatVecRows computes rows [lo, hi) of out = W·x for the prepared tokens
// (out is [n, m.Rows]). It runs on the calling goroutine: callers split
// rows (and matrices) across the worker pool themselves.
func MatVecRows(out []float32, d *DecodeInput, m *Matrix, lo, hi int) {
	if m.MX != nil {
		mxRows(out, d.x, d.n, m, lo, hi)
		return
	}
	if m.Q != nil && d.group == m.Q.GroupSize {
		if qmvRowsSIMD(out, d, m, lo, hi) {
			return
		}
		if m.Q.Bits == 4 || m.Q.Bits == 8 {
			qmvRows(out, d, m, lo, hi)
			return
		}
	}
	buf := getFloats(m.Cols)
	defer putFloats(buf)
	row := *buf
	for r := lo; r < hi; r++ {
		m.Row(r, row)
		for t := 0; t < d.n; t++ {
			out[t*m.Rows+r] = Dot(row, d.x[t*m.Cols:(t+1)*m.Cols])
		}
	}
}

// qmv computes out[t, r] for n <= qmvTokens tokens of a quantized matrix,
// rows split across the worker pool.
func qmv(out, x []float32, n int, m *Matrix) {
	j := qmvJobs.get()
	j.d.Prepare(x, n, m.Cols, m.Q)
	j.out, j.m = out, m
	parallelFor(m.Rows, m.Cols*n, j.body)
	j.out, j.m, j.d.x, j.d.xs = nil, nil, nil, nil
	qmvJobs.put(j)
}

// qmvJob is one qmv call: its prepared input, its operands and its work
// function, bound once when the job is made so a call allocates nothing.
type qmvJob struct {
	d    DecodeInput
	out  []float32
	m    *Matrix
	body func(lo, hi int)
}

func (j *qmvJob) rows(lo, hi int) { MatVecRows(j.out, &j.d, j.m, lo, hi) }

var qmvJobs = freeList[qmvJob]{init: func(j *qmvJob) { j.body = j.rows }}

// qmvRows is the Go kernel for rows [lo, hi) of a 4- or 8-bit matrix.
func qmvRows(out []float32, d *DecodeInput, m *Matrix, lo, hi int) {
	q := m.Q
	groups := m.Cols / q.GroupSize
	words := m.Cols * q.Bits / 32
	perGroup := q.GroupSize * q.Bits / 32
	for r := lo; r < hi; r++ {
		w := q.W[r*words : (r+1)*words]
		for t := 0; t < d.n; t++ {
			xt := d.x[t*m.Cols : (t+1)*m.Cols]
			var acc float32
			for g := 0; g < groups; g++ {
				s, b := q.scale(r*groups + g)
				wg := w[g*perGroup : (g+1)*perGroup]
				xg := xt[g*q.GroupSize : (g+1)*q.GroupSize]
				var dot, c float32
				if q.Bits == 4 {
					dot, c = dot4(wg, xg), 8
				} else {
					dot, c = dot8(wg, xg), 128
				}
				acc += s*dot + (b+c*s)*d.sums[t*groups+g]
			}
			out[t*m.Rows+r] = acc
		}
	}
}

// nibbles maps a byte to its two 4-bit codes less the middle code 8, so
// dot4 replaces a shift, mask and conversion per value by a table load.
var nibbles = func() (t [256][2]float32) {
	for b := range t {
		t[b] = [2]float32{float32(b&15) - 8, float32(b>>4) - 8}
	}
	return t
}()

// dot4 is Σ (q_j-8) x_j over 4-bit values packed eight to a word.
func dot4(w []uint32, x []float32) float32 {
	var s0, s1 float32
	x = x[:len(w)*8]
	for i, v := range w {
		xs := x[i*8 : i*8+8 : i*8+8]
		a, b, c, d := &nibbles[v&255], &nibbles[v>>8&255], &nibbles[v>>16&255], &nibbles[v>>24]
		s0 += a[0]*xs[0] + a[1]*xs[1] + b[0]*xs[2] + b[1]*xs[3]
		s1 += c[0]*xs[4] + c[1]*xs[5] + d[0]*xs[6] + d[1]*xs[7]
	}
	return s0 + s1
}

// centredBytes maps an 8-bit code to its value less the middle code 128.
var centredBytes = func() (t [256]float32) {
	for b := range t {
		t[b] = float32(b) - 128
	}
	return t
}()

// dot8 is Σ (q_j-128) x_j over 8-bit values packed four to a word.
func dot8(w []uint32, x []float32) float32 {
	var s0, s1 float32
	x = x[:len(w)*4]
	for i, v := range w {
		xs := x[i*4 : i*4+4 : i*4+4]
		s0 += centredBytes[v&255]*xs[0] + centredBytes[v>>8&255]*xs[1]
		s1 += centredBytes[v>>16&255]*xs[2] + centredBytes[v>>24]*xs[3]
	}
	return s0 + s1
}

// permuteCodes writes x in the order the 2- and 4-bit SIMD kernels
// consume it: a kernel widens a block's bytes and takes code k of every
// byte at once, so within each block of block values (block/perByte
// bytes) the values are ordered by their place k in the byte, then by byte.
func permuteCodes(dst, x []float32, block, perByte int) {
	bytes := block / perByte
	for b := 0; b+block <= len(x); b += block {
		for i := 0; i < bytes; i++ {
			for k := 0; k < perByte; k++ {
				dst[b+k*bytes+i] = x[b+i*perByte+k]
			}
		}
	}
}

// floatPool recycles the per-call activation scratch of the decode kernels.
var floatPool freeList[[]float32]

func getFloats(n int) *[]float32 {
	p := floatPool.get()
	*p = grow(*p, n)
	return p
}

func putFloats(p *[]float32) { floatPool.put(p) }

// quantRows is the geometry the SIMD row kernels walk a quantized matrix
// by: its codes as bytes, each row's bytes, its groups per row and the
// 32-value blocks per group.
type quantRows struct {
	w                       []byte
	rowBytes, groups, steps int
}

func rowsOf(m *Matrix) quantRows {
	q := m.Q
	return quantRows{
		w:        unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(q.W))), 4*len(q.W)),
		rowBytes: m.Cols * q.Bits / 8,
		groups:   m.Cols / q.GroupSize,
		steps:    q.GroupSize / 32,
	}
}
