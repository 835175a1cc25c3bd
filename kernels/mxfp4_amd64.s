//go:build !purego

#include "textflag.h"

// func mxdot4AVX2(w *byte, x *float32, scales *byte, table *float32, groups int) float32
//
// One row of an MXFP4 matrix dotted with x: per group of 32 values (16
// bytes, the even element in the low nibble), the E2M1 codes are looked up
// as twice their value in int8 (VPSHUFB), put back in element order,
// widened, converted and multiplied with x; the group's sum is scaled by
// table[scale byte] (half the E8M0 scale, undoing the doubling).
TEXT ·mxdot4AVX2(SB), NOSPLIT, $0-44
	MOVQ   w+0(FP), SI
	MOVQ   x+8(FP), DI
	MOVQ   scales+16(FP), R8
	MOVQ   table+24(FP), R9
	MOVQ   groups+32(FP), CX
	VXORPS Y0, Y0, Y0

	// X12: twice the E2M1 values, as int8; X15: the nibble mask.
	MOVQ         $0x0c08060403020100, AX
	MOVQ         AX, X12
	MOVQ         $0xf4f8fafcfdfeff00, AX
	MOVQ         AX, X1
	VPUNPCKLQDQ  X1, X12, X12
	MOVL         $0x0f0f0f0f, AX
	VMOVD        AX, X15
	VPBROADCASTD X15, X15

group:
	VMOVDQU    (SI), X1
	VPSRLW     $4, X1, X2
	VPAND      X15, X1, X1
	VPAND      X15, X2, X2
	VPSHUFB    X1, X12, X1
	VPSHUFB    X2, X12, X2
	VPUNPCKLBW X2, X1, X3
	VPUNPCKHBW X2, X1, X4
	VPMOVSXBD  X3, Y6
	VPSRLDQ    $8, X3, X3
	VPMOVSXBD  X3, Y7
	VPMOVSXBD  X4, Y8
	VPSRLDQ    $8, X4, X4
	VPMOVSXBD  X4, Y9
	VCVTDQ2PS  Y6, Y6
	VCVTDQ2PS  Y7, Y7
	VCVTDQ2PS  Y8, Y8
	VCVTDQ2PS  Y9, Y9
	VMULPS     (DI), Y6, Y6
	VMULPS     32(DI), Y7, Y7
	VFMADD231PS 64(DI), Y8, Y6
	VFMADD231PS 96(DI), Y9, Y7
	VADDPS     Y7, Y6, Y6
	MOVBLZX    (R8), AX
	VBROADCASTSS (R9)(AX*4), Y5
	VFMADD231PS Y5, Y6, Y0
	ADDQ       $16, SI
	ADDQ       $128, DI
	INCQ       R8
	DECQ       CX
	JNZ        group

	VEXTRACTF128 $1, Y0, X1
	VADDPS       X1, X0, X0
	VHADDPS      X0, X0, X0
	VHADDPS      X0, X0, X0
	VZEROUPPER
	MOVSS        X0, ret+40(FP)
	RET
