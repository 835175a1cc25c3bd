package kernels

import "math"

// FP8E4M3ToF32 decodes an OCP float8 e4m3fn value (no infinities; 0x7f and
// 0xff are NaN).
func FP8E4M3ToF32(b uint8) float32 {
	sign := float32(1)
	if b&0x80 != 0 {
		sign = -1
	}
	exp := int(b>>3) & 0xf
	mant := float32(b & 7)
	switch {
	case exp == 0xf && b&7 == 7:
		return float32(math.NaN())
	case exp == 0:
		return sign * mant / 8 * float32(math.Ldexp(1, -6))
	}
	return sign * (1 + mant/8) * float32(math.Ldexp(1, exp-7))
}
