//go:build !purego

#include "textflag.h"

// func f16AVX2(dst *float32, src *uint16, n int)
// dst[i] = float32(src[i]) for i < n (a multiple of 8), with F16C.
TEXT ·f16AVX2(SB), NOSPLIT, $0-24
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ n+16(FP), CX
	SHRQ $3, CX

f16loop:
	VCVTPH2PS (SI), Y0
	VMOVUPS   Y0, (DI)
	ADDQ      $16, SI
	ADDQ      $32, DI
	DECQ      CX
	JNZ       f16loop
	VZEROUPPER
	RET

// func dequantKV8AVX2(out *float32, q *uint32, s, b float32, n int)
// out[i] = s*byte i of q + b for i < n (a multiple of 8).
TEXT ·dequantKV8AVX2(SB), NOSPLIT, $0-32
	MOVQ         out+0(FP), DI
	MOVQ         q+8(FP), SI
	VBROADCASTSS s+16(FP), Y1
	VBROADCASTSS b+20(FP), Y2
	MOVQ         n+24(FP), CX
	SHRQ         $3, CX

kv8loop:
	VPMOVZXBD   (SI), Y0
	VCVTDQ2PS   Y0, Y0
	VMOVAPS     Y2, Y3
	VFMADD231PS Y0, Y1, Y3
	VMOVUPS     Y3, (DI)
	ADDQ        $8, SI
	ADDQ        $32, DI
	DECQ        CX
	JNZ         kv8loop
	VZEROUPPER
	RET
