package kernels

import (
	"fmt"
	"math"
)

// Quantize is MLX's affine quantization (mx.quantize, mode "affine"), the
// inverse of Matrix.Row's dequantization: w is [rows, cols] row-major and the
// result holds, per group of groupSize consecutive values of a row, a bf16
// scale and bias and the packed bits-wide codes. It follows MLX's GPU kernels
// (Metal and CUDA), which made the checkpoints people download:
//
//	max   = max(0, values)   (the GPU kernels start the maximum at zero; MLX's CPU kernel does not)
//	min   = min(values)
//	scale = max((max-min)/(2^bits-1), 1e-7), negated unless |min| > |max|
//	edge  = min if |min| > |max| else max
//	q0    = round(edge/scale); if q0 != 0 { scale = edge/q0; bias = edge } else { bias = 0 }
//	q     = clamp(round((w-bias)/scale), 0, 2^bits-1)
//
// so the value of largest magnitude is exact and zero lands on a code when
// the range contains it; the scale is negative when the maximum dominates.
// Rounding is half away from zero (MLX's CPU kernel rounds half to even; the
// two differ only on exact ties). Codes use the unrounded float32 scale and
// bias; the stored scale and bias are rounded to bf16 afterwards, as MLX does
// for bf16 weights.
func Quantize(w []float32, rows, cols, bits, groupSize int) (*Matrix, error) {
	switch bits {
	case 2, 3, 4, 5, 6, 8:
	default:
		return nil, fmt.Errorf("quantize: %d bits is not supported (2, 3, 4, 5, 6 or 8)", bits)
	}
	switch groupSize {
	case 32, 64, 128:
	default:
		return nil, fmt.Errorf("quantize: group size %d is not supported (32, 64 or 128)", groupSize)
	}
	if rows <= 0 || cols <= 0 || cols%groupSize != 0 {
		return nil, fmt.Errorf("quantize: a [%d, %d] matrix does not divide into rows of groups of %d", rows, cols, groupSize)
	}
	if len(w) != rows*cols {
		return nil, fmt.Errorf("quantize: %d values for a [%d, %d] matrix", len(w), rows, cols)
	}
	groups := rows * cols / groupSize
	q := &Quant{Bits: bits, GroupSize: groupSize,
		W:      make([]uint32, rows*cols*bits/32),
		Scales: make([]uint16, groups), Biases: make([]uint16, groups)}
	nBins := float32(int(1)<<bits - 1)
	// Groups never straddle rows (cols is a multiple of groupSize) and a row
	// is a whole number of words (groupSize*bits is a multiple of 32), so the
	// bit stream of the matrix is the rows' streams back to back.
	for g := 0; g < groups; g++ {
		vals := w[g*groupSize : (g+1)*groupSize]
		wMin, wMax := float32(math.MaxFloat32), float32(0)
		for _, v := range vals {
			wMin, wMax = min(wMin, v), max(wMax, v)
		}
		scale := max((wMax-wMin)/nBins, 1e-7)
		edge := wMax
		if abs32(wMin) > abs32(wMax) {
			edge = wMin
		} else {
			scale = -scale
		}
		var bias float32
		if q0 := round32(edge / scale); q0 != 0 {
			scale, bias = edge/q0, edge
		}
		q.Scales[g], q.Biases[g] = F32ToBF16(scale), F32ToBF16(bias)
		for j, v := range vals {
			code := uint32(min(max(round32((v-bias)/scale), 0), nBins))
			bit := (g*groupSize + j) * bits
			q.W[bit/32] |= code << (bit % 32)
			if bit%32+bits > 32 {
				q.W[bit/32+1] |= code >> (32 - bit%32)
			}
		}
	}
	return &Matrix{Rows: rows, Cols: cols, Q: q}, nil
}

// F32ToBF16 rounds to the nearest bfloat16 (ties to even), keeping NaNs NaN.
func F32ToBF16(f float32) uint16 {
	b := math.Float32bits(f)
	if f != f {
		return uint16(b>>16) | 0x40
	}
	return uint16((b + 0x7fff + (b>>16)&1) >> 16)
}

func abs32(x float32) float32 { return float32(math.Abs(float64(x))) }

// round32 rounds half away from zero, as Metal's round does.
func round32(x float32) float32 { return float32(math.Round(float64(x))) }
