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

// Lane i of the 4-bit unpacking shifts its copy of the word by 4i.
DATA kv4shift<>+0(SB)/4, $0
DATA kv4shift<>+4(SB)/4, $4
DATA kv4shift<>+8(SB)/4, $8
DATA kv4shift<>+12(SB)/4, $12
DATA kv4shift<>+16(SB)/4, $16
DATA kv4shift<>+20(SB)/4, $20
DATA kv4shift<>+24(SB)/4, $24
DATA kv4shift<>+28(SB)/4, $28
GLOBL kv4shift<>(SB), RODATA|NOPTR, $32

DATA kv4mask<>+0(SB)/4, $15
GLOBL kv4mask<>(SB), RODATA|NOPTR, $4

// func dequantKV4AVX2(out *float32, q *uint32, s, b float32, n int)
// out[i] = s*nibble i of q + b for i < n (a multiple of 8): each word
// is broadcast to eight lanes, shifted by 0, 4, ..., 28 and masked.
TEXT ·dequantKV4AVX2(SB), NOSPLIT, $0-32
	MOVQ         out+0(FP), DI
	MOVQ         q+8(FP), SI
	VBROADCASTSS s+16(FP), Y1
	VBROADCASTSS b+20(FP), Y2
	MOVQ         n+24(FP), CX
	SHRQ         $3, CX
	VMOVDQU      kv4shift<>(SB), Y4
	VPBROADCASTD kv4mask<>(SB), Y5

kv4loop:
	VPBROADCASTD (SI), Y0
	VPSRLVD      Y4, Y0, Y0
	VPAND        Y5, Y0, Y0
	VCVTDQ2PS    Y0, Y0
	VMOVAPS      Y2, Y3
	VFMADD231PS  Y0, Y1, Y3
	VMOVUPS      Y3, (DI)
	ADDQ         $4, SI
	ADDQ         $32, DI
	DECQ         CX
	JNZ          kv4loop
	VZEROUPPER
	RET

// func f16RowsAVX2(dst *float32, ldd int, src *uint16, lds int, rows, n int)
// dst[r*ldd+i] = float32(src[r*lds+i]) for r < rows (≥ 1), i < n (a
// multiple of 8): a block of cache rows in one call.
TEXT ·f16RowsAVX2(SB), NOSPLIT, $0-48
	MOVQ dst+0(FP), DI
	MOVQ ldd+8(FP), R8
	SHLQ $2, R8
	MOVQ src+16(FP), SI
	MOVQ lds+24(FP), R9
	SHLQ $1, R9
	MOVQ rows+32(FP), DX
	MOVQ n+40(FP), R10
	SHRQ $3, R10

f16rows:
	MOVQ DI, AX
	MOVQ SI, BX
	MOVQ R10, CX

f16cols:
	VCVTPH2PS (BX), Y0
	VMOVUPS   Y0, (AX)
	ADDQ      $16, BX
	ADDQ      $32, AX
	DECQ      CX
	JNZ       f16cols
	ADDQ      R8, DI
	ADDQ      R9, SI
	DECQ      DX
	JNZ       f16rows
	VZEROUPPER
	RET
