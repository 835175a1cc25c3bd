//go:build !purego

#include "textflag.h"

// The exponential of the element-wise kernels, one float32 per 4 bytes:
// broadcast into registers (and the frame) when a kernel starts.
DATA ewconst<>+0(SB)/4, $0x3fb8aa3b  // log2(e)
DATA ewconst<>+4(SB)/4, $0x3f318000  // ln2, high part
DATA ewconst<>+8(SB)/4, $0xb95e8083  // ln2, low part
DATA ewconst<>+12(SB)/4, $0x42fe0000 // 127, the exponent bias
DATA ewconst<>+16(SB)/4, $0x3f800000 // 1
DATA ewconst<>+20(SB)/4, $0x39500d01 // 1/7!
DATA ewconst<>+24(SB)/4, $0x42b17218 // 88.72: above it e^x is +Inf
DATA ewconst<>+28(SB)/4, $0xc2aeac4f // -87.34: below it e^x is taken as 2^-126
DATA ewconst<>+32(SB)/4, $0x3ab60b61 // 1/6!
DATA ewconst<>+36(SB)/4, $0x3c088889 // 1/5!
DATA ewconst<>+40(SB)/4, $0x3d2aaaab // 1/4!
DATA ewconst<>+44(SB)/4, $0x3e2aaaab // 1/3!
DATA ewconst<>+48(SB)/4, $0x3f000000 // 1/2!
GLOBL ewconst<>(SB), RODATA|NOPTR, $52

// EWSETUP loads the constants: Y8 log2e, Y9 ln2hi, Y10 ln2lo, Y11 127,
// Y12 1, Y13 1/7!, Y14 the upper clamp, Y15 the lower clamp, and 1/6! ..
// 1/2! into the frame at 0(SP) .. 128(SP) (memory operands of the FMAs:
// there are not registers enough).
#define EWSETUP \
	VBROADCASTSS ewconst<>+0(SB), Y8; \
	VBROADCASTSS ewconst<>+4(SB), Y9; \
	VBROADCASTSS ewconst<>+8(SB), Y10; \
	VBROADCASTSS ewconst<>+12(SB), Y11; \
	VBROADCASTSS ewconst<>+16(SB), Y12; \
	VBROADCASTSS ewconst<>+20(SB), Y13; \
	VBROADCASTSS ewconst<>+24(SB), Y14; \
	VBROADCASTSS ewconst<>+28(SB), Y15; \
	VBROADCASTSS ewconst<>+32(SB), Y0; \
	VMOVUPS Y0, 0(SP); \
	VBROADCASTSS ewconst<>+36(SB), Y0; \
	VMOVUPS Y0, 32(SP); \
	VBROADCASTSS ewconst<>+40(SB), Y0; \
	VMOVUPS Y0, 64(SP); \
	VBROADCASTSS ewconst<>+44(SB), Y0; \
	VMOVUPS Y0, 96(SP); \
	VBROADCASTSS ewconst<>+48(SB), Y0; \
	VMOVUPS Y0, 128(SP)

// EXPY0 replaces the eight lanes of Y0 by e^Y0 (clobbers Y1, Y2): x is
// clamped to [-87.34, 88.72] (a NaN stays NaN), k = round(x·log2e), r = x -
// k·ln2 in two parts (|r| <= ln2/2), e^r by its degree-7 Taylor polynomial,
// 2^k built in the exponent field (k = 128 gives +Inf). The clamps take x
// as their second operand so that a NaN passes through.
#define EXPY0 \
	VMINPS Y0, Y14, Y0; \
	VMAXPS Y0, Y15, Y0; \
	VMULPS Y8, Y0, Y1; \
	VROUNDPS $0, Y1, Y1; \
	VFNMADD231PS Y9, Y1, Y0; \
	VFNMADD231PS Y10, Y1, Y0; \
	VMOVAPS Y13, Y2; \
	VFMADD213PS 0(SP), Y0, Y2; \
	VFMADD213PS 32(SP), Y0, Y2; \
	VFMADD213PS 64(SP), Y0, Y2; \
	VFMADD213PS 96(SP), Y0, Y2; \
	VFMADD213PS 128(SP), Y0, Y2; \
	VFMADD213PS Y12, Y0, Y2; \
	VFMADD213PS Y12, Y0, Y2; \
	VADDPS Y11, Y1, Y1; \
	VCVTPS2DQ Y1, Y1; \
	VPSLLD $23, Y1, Y1; \
	VMULPS Y1, Y2, Y0

// func activationAVX2(out, x, up *float32, n, op int)
// For n (a multiple of 8) values: op 0 (actExp) out = e^x, 1 (actSigmoid)
// out = 1/(1+e^-x), 2 (actSilu) out = x/(1+e^-x), 3 (actSwiGLU) out =
// x/(1+e^-x)·up. The branches on op are the same every vector.
TEXT ·activationAVX2(SB), NOSPLIT, $160-40
	MOVQ out+0(FP), DI
	MOVQ x+8(FP), SI
	MOVQ up+16(FP), DX
	MOVQ n+24(FP), CX
	MOVQ op+32(FP), BX
	SHRQ $3, CX
	JZ   actdone
	EWSETUP
	VXORPS Y7, Y7, Y7

actloop:
	VMOVUPS (SI), Y3
	VMOVAPS Y3, Y0
	TESTQ BX, BX
	JZ   actexp
	VSUBPS Y3, Y7, Y0

actexp:
	EXPY0
	TESTQ BX, BX
	JZ   actstore
	VADDPS Y12, Y0, Y0
	CMPQ BX, $1
	JNE  actsilu
	VDIVPS Y0, Y12, Y0
	JMP  actstore

actsilu:
	VDIVPS Y0, Y3, Y0
	CMPQ BX, $3
	JNE  actstore
	VMULPS (DX), Y0, Y0
	ADDQ $32, DX

actstore:
	VMOVUPS Y0, (DI)
	ADDQ $32, SI
	ADDQ $32, DI
	DECQ CX
	JNZ  actloop
	VZEROUPPER

actdone:
	RET

// func sumSquaresAVX2(x *float32, n int) float32
// Σ x[i]² over n (a multiple of 8) values, in four 8-lane accumulators
// over 32 values at a time, then one over the last vectors.
TEXT ·sumSquaresAVX2(SB), NOSPLIT, $0-20
	MOVQ x+0(FP), SI
	MOVQ n+8(FP), CX
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3

sq32:
	CMPQ CX, $32
	JLT  sq8
	VMOVUPS (SI), Y4
	VMOVUPS 32(SI), Y5
	VMOVUPS 64(SI), Y6
	VMOVUPS 96(SI), Y7
	VFMADD231PS Y4, Y4, Y0
	VFMADD231PS Y5, Y5, Y1
	VFMADD231PS Y6, Y6, Y2
	VFMADD231PS Y7, Y7, Y3
	ADDQ $128, SI
	SUBQ $32, CX
	JMP  sq32

sq8:
	CMPQ CX, $8
	JLT  sqsum
	VMOVUPS (SI), Y4
	VFMADD231PS Y4, Y4, Y0
	ADDQ $32, SI
	SUBQ $8, CX
	JMP  sq8

sqsum:
	VADDPS Y1, Y0, Y0
	VADDPS Y3, Y2, Y2
	VADDPS Y2, Y0, Y0
	VEXTRACTF128 $1, Y0, X1
	VADDPS X1, X0, X0
	VHADDPS X0, X0, X0
	VHADDPS X0, X0, X0
	VMOVSS X0, ret+16(FP)
	VZEROUPPER
	RET

// func arithAVX2(out, a, b *float32, n int, s float32, op int)
// For n (a multiple of 8) values: op 0 (arAdd) out = a+b, 1 (arScale) out
// = a·s, 2 (arScaleMul) out = a·s·b (two roundings, in that order), 3
// (arAddScaled) out += s·a and 4 (arMulAdd) out += a·b (fused). b is not
// read by ops 1 and 3.
TEXT ·arithAVX2(SB), NOSPLIT, $0-48
	MOVQ out+0(FP), DI
	MOVQ a+8(FP), SI
	MOVQ b+16(FP), DX
	MOVQ n+24(FP), CX
	VBROADCASTSS s+32(FP), Y7
	MOVQ op+40(FP), BX
	SHRQ $3, CX
	JZ   ardone

arloop:
	VMOVUPS (SI), Y1
	CMPQ BX, $1
	JA   arfused
	JE   arscale
	VADDPS (DX), Y1, Y0
	JMP  arnext

arscale:
	VMULPS Y7, Y1, Y0
	JMP  arstore

arfused:
	CMPQ BX, $3
	JA   armuladd
	JE   araddscaled
	VMULPS Y7, Y1, Y0
	VMULPS (DX), Y0, Y0
	JMP  arnext

araddscaled:
	VMOVUPS (DI), Y0
	VFMADD231PS Y7, Y1, Y0
	JMP  arstore

armuladd:
	VMOVUPS (DI), Y0
	VFMADD231PS (DX), Y1, Y0

arnext:
	ADDQ $32, DX

arstore:
	VMOVUPS Y0, (DI)
	ADDQ $32, SI
	ADDQ $32, DI
	DECQ CX
	JNZ  arloop
	VZEROUPPER

ardone:
	RET
