//go:build !purego

#include "textflag.h"

// func mamba2RowAVX2(s, b, c *float32, n int, decay, dx float32) float32
// One Mamba-2 state row in one pass: s[i] = decay*s[i] + dx*b[i], returning
// Σ s[i]*c[i] over the new values. n is a multiple of 8.
TEXT ·mamba2RowAVX2(SB), NOSPLIT, $0-44
	MOVQ         s+0(FP), DI
	MOVQ         b+8(FP), SI
	MOVQ         c+16(FP), DX
	MOVQ         n+24(FP), CX
	VBROADCASTSS decay+32(FP), Y14
	VBROADCASTSS dx+36(FP), Y15
	VXORPS       Y0, Y0, Y0
	VXORPS       Y1, Y1, Y1

row16:
	CMPQ        CX, $16
	JLT         row8
	VMOVUPS     (DI), Y2
	VMOVUPS     32(DI), Y3
	VMULPS      Y14, Y2, Y2
	VMULPS      Y14, Y3, Y3
	VFMADD231PS (SI), Y15, Y2
	VFMADD231PS 32(SI), Y15, Y3
	VMOVUPS     Y2, (DI)
	VMOVUPS     Y3, 32(DI)
	VFMADD231PS (DX), Y2, Y0
	VFMADD231PS 32(DX), Y3, Y1
	ADDQ        $64, DI
	ADDQ        $64, SI
	ADDQ        $64, DX
	SUBQ        $16, CX
	JMP         row16

row8:
	CMPQ        CX, $8
	JLT         rowsum
	VMOVUPS     (DI), Y2
	VMULPS      Y14, Y2, Y2
	VFMADD231PS (SI), Y15, Y2
	VMOVUPS     Y2, (DI)
	VFMADD231PS (DX), Y2, Y0

rowsum:
	VADDPS       Y1, Y0, Y0
	VEXTRACTF128 $1, Y0, X1
	VADDPS       X1, X0, X0
	VHADDPS      X0, X0, X0
	VHADDPS      X0, X0, X0
	VMOVSS       X0, ret+40(FP)
	VZEROUPPER
	RET
