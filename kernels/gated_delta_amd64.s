//go:build !purego

#include "textflag.h"

// func deltaSweepAVX2(s, out, delta, kn, qn *float32, dk, dv, n int, decay float32)
// The decode step's sweep over one head's state S [dk, dv] (row stride dv)
// for its first n columns (a multiple of 8): S[i,j] = decay·S[i,j] +
// kn[i]·delta[j] and out[j] += qn[i]·S[i,j] (the new S), fused. Eight
// columns at a time, out's eight in Y0 across all dk rows, so out is read
// and written once.
TEXT ·deltaSweepAVX2(SB), NOSPLIT, $0-68
	MOVQ s+0(FP), DI
	MOVQ out+8(FP), SI
	MOVQ delta+16(FP), DX
	MOVQ kn+24(FP), R8
	MOVQ qn+32(FP), R9
	MOVQ dk+40(FP), R10
	MOVQ dv+48(FP), R11
	SHLQ $2, R11
	MOVQ n+56(FP), CX
	SHRQ $3, CX
	VBROADCASTSS decay+64(FP), Y7
	TESTQ CX, CX
	JZ   swdone
	TESTQ R10, R10
	JZ   swdone

swcol:
	VMOVUPS (SI), Y0
	VMOVUPS (DX), Y1
	MOVQ DI, AX
	XORQ BX, BX

swrow:
	VBROADCASTSS (R8)(BX*4), Y2
	VBROADCASTSS (R9)(BX*4), Y3
	VMULPS (AX), Y7, Y4
	VFMADD231PS Y2, Y1, Y4
	VMOVUPS Y4, (AX)
	VFMADD231PS Y3, Y4, Y0
	ADDQ R11, AX
	INCQ BX
	CMPQ BX, R10
	JLT  swrow
	VMOVUPS Y0, (SI)
	ADDQ $32, DI
	ADDQ $32, SI
	ADDQ $32, DX
	DECQ CX
	JNZ  swcol
	VZEROUPPER

swdone:
	RET
