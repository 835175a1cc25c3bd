package kernels

import (
	"fmt"
	"math"
)

// KVFormat is how a KV cache stores its values: float32, IEEE half, or
// MLX-style affine quantization (QuantizedKVCache: per group of a row's
// consecutive values a half-precision scale and bias and 8- or 4-bit
// codes, value = scale*code + bias).
type KVFormat int

const (
	KVF32 KVFormat = iota
	KVF16
	KVQ8
	KVQ4
)

// KVFormatBits is the format for --kv-bits: 32, 16 (0 means 16), 8 or 4.
func KVFormatBits(bits int) (KVFormat, error) {
	switch bits {
	case 32:
		return KVF32, nil
	case 0, 16:
		return KVF16, nil
	case 8:
		return KVQ8, nil
	case 4:
		return KVQ4, nil
	}
	return 0, fmt.Errorf("KV cache bits %d: want 16, 8 or 4 (32 for float32)", bits)
}

// Bits is the width of one stored value (codes only, for 8 and 4).
func (f KVFormat) Bits() int {
	switch f {
	case KVF16:
		return 16
	case KVQ8:
		return 8
	case KVQ4:
		return 4
	}
	return 32
}

// Quantized reports whether values are stored as codes with a scale and
// bias per group.
func (f KVFormat) Quantized() bool { return f == KVQ8 || f == KVQ4 }

func (f KVFormat) String() string {
	switch f {
	case KVF32:
		return "f32"
	case KVF16:
		return "f16"
	case KVQ8:
		return "q8"
	case KVQ4:
		return "q4"
	}
	return fmt.Sprintf("KVFormat(%d)", int(f))
}

// KVGroupSize is MLX's QuantizedKVCache group size.
const KVGroupSize = 64

// KVGroup is the quantization group for a cache whose rows are read in
// pieces of the given widths (head dims, offsets of a value view): 64 when
// it divides them all, else the largest of 32, 16 and 8 that does (tiny
// test models), 0 when none does (the cache cannot be quantized).
func KVGroup(widths ...int) int {
	for _, g := range []int{KVGroupSize, 32, 16, 8} {
		ok := true
		for _, w := range widths {
			ok = ok && w%g == 0
		}
		if ok {
			return g
		}
	}
	return 0
}

// KVRows is a KV cache's storage: Rows positions of Cols values in Format.
// Exactly one of F32, Half and Q (with Scales and Biases, half precision,
// one per Group values of a row) holds the data.
type KVRows struct {
	Format            KVFormat
	Rows, Cols, Group int
	F32               []float32
	Half              []uint16
	Q                 []uint32
	Scales, Biases    []uint16
}

// KVBytes is the size of a rows×cols cache in format f with the given
// group (ignored unless quantized).
func KVBytes(f KVFormat, rows, cols, group int) int64 {
	n := int64(rows) * int64(cols)
	switch f {
	case KVF16:
		return 2 * n
	case KVQ8, KVQ4:
		return n*int64(f.Bits())/8 + 2*2*n/int64(group)
	}
	return 4 * n
}

// NewKVRows allocates a zeroed cache. A quantized one needs cols to be a
// multiple of group and group a multiple of 8.
func NewKVRows(f KVFormat, rows, cols, group int) (*KVRows, error) {
	c := &KVRows{Format: f, Rows: rows, Cols: cols, Group: group}
	n := rows * cols
	switch f {
	case KVF32:
		c.F32 = make([]float32, n)
	case KVF16:
		c.Half = make([]uint16, n)
	case KVQ8, KVQ4:
		if group <= 0 || group%8 != 0 || cols%group != 0 {
			return nil, fmt.Errorf("KV cache: %d columns do not divide into quantization groups of %d", cols, group)
		}
		c.Q = make([]uint32, n*f.Bits()/32)
		c.Scales, c.Biases = make([]uint16, n/group), make([]uint16, n/group)
	default:
		return nil, fmt.Errorf("KV cache: unknown format %v", f)
	}
	return c, nil
}

// Bytes is the memory the cache holds.
func (c *KVRows) Bytes() int64 { return KVBytes(c.Format, c.Rows, c.Cols, c.Group) }

// Store writes n rows of src (row stride ld, Cols values each) into rows
// row0.. of the cache, converting or quantizing them.
func (c *KVRows) Store(row0 int, src []float32, ld, n int) {
	for t := 0; t < n; t++ {
		in := src[t*ld : t*ld+c.Cols]
		r := row0 + t
		switch c.Format {
		case KVF32:
			copy(c.F32[r*c.Cols:], in)
		case KVF16:
			out := c.Half[r*c.Cols : (r+1)*c.Cols]
			for i, v := range in {
				out[i] = F32ToF16(v)
			}
		default:
			c.quantizeRow(r, in)
		}
	}
}

// quantizeRow quantizes one row group by group. As in MLX's affine
// quantization the value of largest magnitude is the bias (code 0, exact
// up to half rounding) and the codes step towards the other edge; the
// step is computed from the stored half bias and widened by one half ulp
// when rounding made it too short to reach that edge, so no value is
// clamped and each loads as its nearest code's value.
func (c *KVRows) quantizeRow(r int, in []float32) {
	bits := c.Format.Bits()
	nBins := float32(int(1)<<bits - 1)
	perWord := 32 / bits
	words := c.Q[r*c.Cols/perWord : (r+1)*c.Cols/perWord]
	clear(words)
	for g := 0; g < c.Cols/c.Group; g++ {
		vals := in[g*c.Group : (g+1)*c.Group]
		lo, hi := vals[0], vals[0]
		for _, v := range vals {
			lo, hi = min(lo, v), max(hi, v)
		}
		edge, far := hi, lo
		if abs32(lo) > abs32(hi) {
			edge, far = lo, hi
		}
		gi := r*c.Cols/c.Group + g
		c.Biases[gi] = F32ToF16(edge)
		bias := F16ToF32(c.Biases[gi])
		s16 := F32ToF16((far - bias) / nBins)
		if s := F16ToF32(s16); s != 0 && (far-bias)/s > nBins {
			s16++ // one ulp more magnitude (sign and magnitude format)
		}
		c.Scales[gi] = s16
		inv := float32(0)
		if s := F16ToF32(s16); s != 0 {
			inv = 1 / s
		}
		for j, v := range vals {
			code := uint32(min(max(round32((v-bias)*inv), 0), nBins))
			i := g*c.Group + j
			words[i/perWord] |= code << (uint(i%perWord) * uint(bits))
		}
	}
}

// Load writes rows row0..row0+n, columns c0..c0+cols of the cache as
// float32 into dst (row stride ldd). For a quantized cache c0 and cols are
// multiples of Group.
func (c *KVRows) Load(dst []float32, ldd, row0, n, c0, cols int) {
	if c.Format == KVF16 && n > 0 {
		off := row0*c.Cols + c0
		f16Rows(dst, ldd, c.Half[off:], c.Cols, n, cols)
		return
	}
	for t := 0; t < n; t++ {
		out := dst[t*ldd : t*ldd+cols]
		off := (row0+t)*c.Cols + c0
		switch c.Format {
		case KVF32:
			copy(out, c.F32[off:off+cols])
		case KVF16:
			f16Row(out, c.Half[off:off+cols])
		case KVQ8:
			dequantKV8(out, c.Q[off/4:(off+cols)/4], c.Scales[off/c.Group:], c.Biases[off/c.Group:], c.Group)
		case KVQ4:
			dequantKV4(out, c.Q[off/8:(off+cols)/8], c.Scales[off/c.Group:], c.Biases[off/c.Group:], c.Group)
		}
	}
}

// CopyRows copies the first n rows of src (same format and shape).
func (c *KVRows) CopyRows(src *KVRows, n int) {
	e := n * c.Cols
	switch c.Format {
	case KVF32:
		copy(c.F32, src.F32[:e])
	case KVF16:
		copy(c.Half, src.Half[:e])
	default:
		copy(c.Q, src.Q[:e*c.Format.Bits()/32])
		copy(c.Scales, src.Scales[:e/c.Group])
		copy(c.Biases, src.Biases[:e/c.Group])
	}
}

// dequantKV8Go is the portable form of dequantKV8: 8-bit codes, four to a
// word, one scale and bias per group values.
func dequantKV8Go(out []float32, q []uint32, scales, biases []uint16, group int) {
	for g := 0; g < len(out)/group; g++ {
		s, b := F16ToF32(scales[g]), F16ToF32(biases[g])
		for i, w := range q[g*group/4 : (g+1)*group/4] {
			o := out[g*group+4*i : g*group+4*i+4]
			o[0] = s*float32(w&0xff) + b
			o[1] = s*float32(w>>8&0xff) + b
			o[2] = s*float32(w>>16&0xff) + b
			o[3] = s*float32(w>>24) + b
		}
	}
}

// dequantKV4Go is the portable form of dequantKV4.
func dequantKV4Go(out []float32, q []uint32, scales, biases []uint16, group int) {
	for g := 0; g < len(out)/group; g++ {
		s, b := F16ToF32(scales[g]), F16ToF32(biases[g])
		for i, w := range q[g*group/8 : (g+1)*group/8] {
			o := out[g*group+8*i : g*group+8*i+8]
			for j := range o {
				o[j] = s*float32(w>>(4*j)&0xf) + b
			}
		}
	}
}

// f16RowsGo is the portable form of f16Rows.
func f16RowsGo(dst []float32, ldd int, src []uint16, lds, rows, n int) {
	for r := 0; r < rows; r++ {
		f16Row(dst[r*ldd:r*ldd+n], src[r*lds:r*lds+n])
	}
}

// f16RowGo is the portable form of f16Row.
func f16RowGo(dst []float32, src []uint16) {
	for i, h := range src {
		dst[i] = F16ToF32(h)
	}
}

// F32ToF16 rounds to the nearest IEEE half (ties to even): beyond 65504 it
// is ±Inf, below 2^-24 ±0, NaN stays NaN.
func F32ToF16(f float32) uint16 {
	b := math.Float32bits(f)
	sign := uint16(b>>16) & 0x8000
	exp := int(b>>23&0xff) - 127 + 15
	mant := b & 0x7fffff
	switch {
	case b&0x7fffffff > 0x7f800000: // NaN
		return sign | 0x7e00
	case exp >= 0x1f:
		return sign | 0x7c00
	case exp <= 0:
		if exp < -10 {
			return sign
		}
		// Subnormal: shift the mantissa (with its implicit 1) into place.
		mant |= 0x800000
		shift := uint(14 - exp)
		h := mant >> shift
		rem := mant & (1<<shift - 1)
		half := uint32(1) << (shift - 1)
		if rem > half || rem == half && h&1 == 1 {
			h++
		}
		return sign | uint16(h)
	}
	h := uint32(exp)<<10 | mant>>13
	rem := mant & 0x1fff
	if rem > 0x1000 || rem == 0x1000 && h&1 == 1 {
		h++ // may carry into the exponent, up to Inf: still correct
	}
	return sign | uint16(h)
}
