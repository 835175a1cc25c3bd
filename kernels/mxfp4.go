package kernels

import (
	"fmt"
	"math"
)

// Microscaling float formats (MLX's quantization modes "mxfp4", "mxfp8"
// and "nvfp4", and the *_blocks/*_scales tensors of OpenAI's gpt-oss
// checkpoints): each element is a small float code, each group of
// consecutive elements of a row shares one scale, and there is no bias.
// A row's codes are packed little-endian: 4-bit codes two to a byte, the
// even element in the low nibble (MLX's uint32 words and gpt-oss's uint8
// blocks are the same bytes).

// MXMode is a microscaling format.
type MXMode uint8

const (
	// MXFP4 is E2M1 codes in groups of 32 with an E8M0 (power of two) scale.
	MXFP4 MXMode = iota + 1
	// MXFP8 is E4M3 codes in groups of 32 with an E8M0 scale.
	MXFP8
	// NVFP4 is E2M1 codes in groups of 16 with an E4M3 scale.
	NVFP4
)

// ParseMXMode maps MLX's mode names to formats.
func ParseMXMode(s string) (MXMode, bool) {
	switch s {
	case "mxfp4":
		return MXFP4, true
	case "mxfp8":
		return MXFP8, true
	case "nvfp4":
		return NVFP4, true
	}
	return 0, false
}

// String is MLX's name of the mode.
func (m MXMode) String() string {
	switch m {
	case MXFP4:
		return "mxfp4"
	case MXFP8:
		return "mxfp8"
	case NVFP4:
		return "nvfp4"
	}
	return fmt.Sprintf("MXMode(%d)", int(m))
}

// Bits is the width of one code.
func (m MXMode) Bits() int {
	if m == MXFP8 {
		return 8
	}
	return 4
}

// GroupSize is the number of elements sharing a scale.
func (m MXMode) GroupSize() int {
	if m == NVFP4 {
		return 16
	}
	return 32
}

// MXQuant is a matrix in a microscaling format: W holds Rows*Cols*Bits/8
// bytes of codes, row after row; Scales holds one byte per group,
// [Rows, Cols/GroupSize].
type MXQuant struct {
	Mode   MXMode
	W      []byte
	Scales []byte
}

// fp4Values are the 16 E2M1 values (sign, two exponent bits, one mantissa
// bit; no infinities or NaN).
var fp4Values = [16]float32{0, 0.5, 1, 1.5, 2, 3, 4, 6, 0, -0.5, -1, -1.5, -2, -3, -4, -6}

// fp4Pairs maps a byte to its two E2M1 values, low nibble first.
var fp4Pairs = func() (t [256][2]float32) {
	for b := range t {
		t[b] = [2]float32{fp4Values[b&15], fp4Values[b>>4]}
	}
	return t
}()

// fp8Values maps an E4M3 byte to its value.
var fp8Values = func() (t [256]float32) {
	for b := range t {
		t[b] = FP8E4M3ToF32(uint8(b))
	}
	return t
}()

// e8m0Values maps an E8M0 byte to 2^(b-127) (255 is NaN).
var e8m0Values = func() (t [256]float32) {
	for b := range t {
		t[b] = float32(math.Ldexp(1, b-127))
	}
	t[255] = float32(math.NaN())
	return t
}()

// e8m0Halves is half of each E8M0 scale: the SIMD kernels look codes up
// as twice their value (integers) and undo it with the scale.
var e8m0Halves = func() (t [256]float32) {
	for b := range t {
		t[b] = e8m0Values[b] / 2
	}
	return t
}()

// scale decodes group g's scale.
func (q *MXQuant) scale(g int) float32 {
	if q.Mode == NVFP4 {
		return fp8Values[q.Scales[g]]
	}
	return e8m0Values[q.Scales[g]]
}

// checkMX reports whether q's sizes match a [rows, cols] matrix.
func (q *MXQuant) check(rows, cols int) error {
	bits, group := q.Mode.Bits(), q.Mode.GroupSize()
	if q.Mode < MXFP4 || q.Mode > NVFP4 {
		return fmt.Errorf("unknown microscaling mode %d", q.Mode)
	}
	if cols%group != 0 {
		return fmt.Errorf("%d columns do not divide into %s groups of %d", cols, q.Mode, group)
	}
	if len(q.W) != rows*cols*bits/8 || len(q.Scales) != rows*cols/group {
		return fmt.Errorf("%s [%d,%d] needs %d code bytes and %d scales, have %d, %d",
			q.Mode, rows, cols, rows*cols*bits/8, rows*cols/group, len(q.W), len(q.Scales))
	}
	return nil
}

// mxRowRange dequantizes columns k0..k1 of row r into dst.
func (m *Matrix) mxRowRange(r, k0, k1 int, dst []float32) {
	q := m.MX
	dst = dst[:k1-k0]
	group := q.Mode.GroupSize()
	groups := m.Cols / group
	if q.Mode == MXFP8 {
		w := q.W[r*m.Cols : (r+1)*m.Cols]
		for j := k0; j < k1; j++ {
			dst[j-k0] = fp8Values[w[j]] * q.scale(r*groups+j/group)
		}
		return
	}
	w := q.W[r*m.Cols/2 : (r+1)*m.Cols/2]
	for j := k0; j < k1; j++ {
		dst[j-k0] = fp4Pairs[w[j/2]][j&1] * q.scale(r*groups+j/group)
	}
}

// mxRows computes rows [lo, hi) of out = W·x for n tokens of x ([n, Cols];
// out is [n, Rows]) without dequantizing into memory: per group, the
// scale times the codes' values dotted with x.
func mxRows(out, x []float32, n int, m *Matrix, lo, hi int) {
	if mxRowsSIMD(out, x, n, m, lo, hi) {
		return
	}
	mxRowsGo(out, x, n, m, lo, hi)
}

// mxRowsGo is the portable form of mxRows.
func mxRowsGo(out, x []float32, n int, m *Matrix, lo, hi int) {
	q := m.MX
	group := q.Mode.GroupSize()
	groups := m.Cols / group
	rowBytes := m.Cols * q.Mode.Bits() / 8
	gBytes := group * q.Mode.Bits() / 8
	for r := lo; r < hi; r++ {
		w := q.W[r*rowBytes : (r+1)*rowBytes]
		for t := 0; t < n; t++ {
			xt := x[t*m.Cols : (t+1)*m.Cols]
			var acc float32
			for g := 0; g < groups; g++ {
				wg := w[g*gBytes : (g+1)*gBytes]
				xg := xt[g*group : (g+1)*group]
				var dot float32
				if q.Mode == MXFP8 {
					dot = dotFP8(wg, xg)
				} else {
					dot = dotFP4(wg, xg)
				}
				acc += q.scale(r*groups+g) * dot
			}
			out[t*m.Rows+r] = acc
		}
	}
}

// dotFP4 is Σ value(code_j)·x_j over E2M1 codes packed two to a byte.
func dotFP4(w []byte, x []float32) float32 {
	var s0, s1 float32
	x = x[:2*len(w)]
	i := 0
	for ; i+2 <= len(w); i += 2 {
		a, b := &fp4Pairs[w[i]], &fp4Pairs[w[i+1]]
		xs := x[2*i : 2*i+4 : 2*i+4]
		s0 += a[0]*xs[0] + a[1]*xs[1]
		s1 += b[0]*xs[2] + b[1]*xs[3]
	}
	for ; i < len(w); i++ {
		a := &fp4Pairs[w[i]]
		s0 += a[0]*x[2*i] + a[1]*x[2*i+1]
	}
	return s0 + s1
}

// dotFP8 is Σ value(code_j)·x_j over E4M3 codes.
func dotFP8(w []byte, x []float32) float32 {
	var s0, s1 float32
	x = x[:len(w)]
	i := 0
	for ; i+2 <= len(w); i += 2 {
		s0 += fp8Values[w[i]] * x[i]
		s1 += fp8Values[w[i+1]] * x[i+1]
	}
	for ; i < len(w); i++ {
		s0 += fp8Values[w[i]] * x[i]
	}
	return s0 + s1
}

// mxMatMul is MatMul for a microscaling matrix and a few tokens: rows split
// across the worker pool.
func mxMatMul(out, x []float32, n int, m *Matrix) {
	j := mxJobs.get()
	j.out, j.x, j.n, j.m = out, x, n, m
	parallelFor(m.Rows, m.Cols*n, j.body)
	j.out, j.x, j.m = nil, nil, nil
	mxJobs.put(j)
}

// mxJob is one mxMatMul call with its work function bound once, so a call
// allocates nothing.
type mxJob struct {
	out, x []float32
	n      int
	m      *Matrix
	body   func(lo, hi int)
}

var mxJobs = freeList[mxJob]{init: func(j *mxJob) {
	j.body = func(lo, hi int) { mxRows(j.out, j.x, j.n, j.m, lo, hi) }
}}
