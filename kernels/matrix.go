package kernels

import (
	"fmt"
	"math"
	"runtime"
)

// Matrix is a [Rows, Cols] weight used as y = W x. Exactly one storage is
// set: F32, BF16, Q (MLX affine quantization) or MX (a microscaling float
// format, mxfp4.go).
type Matrix struct {
	Rows, Cols int
	F32        []float32
	BF16       []uint16
	Q          *Quant
	MX         *MXQuant
}

// Quant is MLX affine quantization: w = scale*q + bias per group of
// GroupSize consecutive elements of a row. Each row is a little-endian bit
// stream of Cols*Bits bits packed in uint32 words; element j occupies bits
// [Bits*j, Bits*j+Bits). Scales and Biases are [Rows, Cols/GroupSize] in
// bf16, or fp16 when F16Scales is set.
type Quant struct {
	Bits, GroupSize int
	W               []uint32
	Scales, Biases  []uint16
	F16Scales       bool
}

// Check reports whether the storage sizes match the shape.
func (m *Matrix) Check() error {
	n := m.Rows * m.Cols
	switch {
	case m.MX != nil:
		return m.MX.check(m.Rows, m.Cols)
	case m.Q != nil:
		q := m.Q
		if q.GroupSize <= 0 || m.Cols%q.GroupSize != 0 || (m.Cols*q.Bits)%32 != 0 {
			return fmt.Errorf("%d columns do not divide into groups of %d at %d bits", m.Cols, q.GroupSize, q.Bits)
		}
		if len(q.W) != m.Rows*m.Cols*q.Bits/32 || len(q.Scales) != n/q.GroupSize || len(q.Biases) != n/q.GroupSize {
			return fmt.Errorf("quantized [%d,%d] at %d bits/group %d needs %d words and %d scales/biases, have %d, %d, %d",
				m.Rows, m.Cols, q.Bits, q.GroupSize, m.Rows*m.Cols*q.Bits/32, n/q.GroupSize, len(q.W), len(q.Scales), len(q.Biases))
		}
	case m.F32 != nil:
		if len(m.F32) != n {
			return fmt.Errorf("[%d,%d] needs %d floats, have %d", m.Rows, m.Cols, n, len(m.F32))
		}
	case m.BF16 != nil:
		if len(m.BF16) != n {
			return fmt.Errorf("[%d,%d] needs %d bf16 values, have %d", m.Rows, m.Cols, n, len(m.BF16))
		}
	default:
		return fmt.Errorf("matrix has no storage")
	}
	return nil
}

// BF16ToF32 converts a bfloat16 bit pattern.
func BF16ToF32(b uint16) float32 { return math.Float32frombits(uint32(b) << 16) }

// F16ToF32 converts an IEEE half-precision bit pattern.
func F16ToF32(h uint16) float32 {
	sign := uint32(h>>15) << 31
	exp := uint32(h>>10) & 0x1f
	mant := uint32(h) & 0x3ff
	switch {
	case exp == 0 && mant == 0:
		return math.Float32frombits(sign)
	case exp == 0: // subnormal
		e := uint32(127 - 15 + 1)
		for mant&0x400 == 0 {
			mant <<= 1
			e--
		}
		return math.Float32frombits(sign | e<<23 | (mant&0x3ff)<<13)
	case exp == 0x1f:
		return math.Float32frombits(sign | 0xff<<23 | mant<<13)
	}
	return math.Float32frombits(sign | (exp+127-15)<<23 | mant<<13)
}

func (q *Quant) scale(i int) (float32, float32) {
	if q.F16Scales {
		return F16ToF32(q.Scales[i]), F16ToF32(q.Biases[i])
	}
	return BF16ToF32(q.Scales[i]), BF16ToF32(q.Biases[i])
}

// Row dequantizes (or converts) row r into dst[:Cols].
func (m *Matrix) Row(r int, dst []float32) {
	if m.Q != nil && dequantFast(m.Q) {
		sc := rowScratch.get()
		m.quantRow(dst[:m.Cols], r, 0, m.Cols, sc)
		rowScratch.put(sc)
		return
	}
	m.rowRange(r, 0, m.Cols, dst)
}

// rowScratch recycles Row's scales and biases: an embedding lookup
// dequantizes a row per token and should allocate nothing.
var rowScratch freeList[gemmScratch]

// MatMul computes out[t, r] = sum_c W[r, c] * x[t, c] for n tokens
// (x is [n, Cols], out is [n, Rows]). Rows are split across goroutines.
// Dense matrices and prompts (n > qmvTokens) go through the blocked GEMM.
func MatMul(out, x []float32, n int, m *Matrix) {
	if m.Q != nil && n <= qmvTokens {
		qmv(out, x, n, m)
		return
	}
	if m.MX != nil && n <= qmvTokens {
		mxMatMul(out, x, n, m)
		return
	}
	gemm(out, x, n, m)
}

// Dot is the float32 inner product.
func Dot(a, b []float32) float32 {
	b = b[:len(a)]
	var s0, s1, s2, s3 float32
	i := 0
	for ; i+4 <= len(a); i += 4 {
		s0 += a[i] * b[i]
		s1 += a[i+1] * b[i+1]
		s2 += a[i+2] * b[i+2]
		s3 += a[i+3] * b[i+3]
	}
	for ; i < len(a); i++ {
		s0 += a[i] * b[i]
	}
	return (s0 + s1) + (s2 + s3)
}

// parallelFor splits [0, n) across the available cores when the total work
// (n items of cost each) is large enough to pay for the handoff to the
// worker pool (pool.go).
func parallelFor(n, cost int, body func(lo, hi int)) {
	workers := min(runtime.GOMAXPROCS(0), n)
	if workers <= 1 || n*cost < 1<<15 {
		body(0, n)
		return
	}
	runParallel(n, workers, body)
}

// Bytes is the storage size of the matrix.
func (m *Matrix) Bytes() int {
	switch {
	case m.MX != nil:
		return len(m.MX.W) + len(m.MX.Scales)
	case m.Q != nil:
		return 4*len(m.Q.W) + 2*len(m.Q.Scales) + 2*len(m.Q.Biases)
	case m.F32 != nil:
		return 4 * len(m.F32)
	}
	return 2 * len(m.BF16)
}
