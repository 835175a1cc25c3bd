//go:build !purego

#include "textflag.h"

// func accumPVAVX2(o *float32, ldo, rows int, p *float32, ldp int, v *float32, ldv, keys, n int)
// o[i*ldo+c] += Σ_j p[i*ldp+j]·v[j*ldv+c] for i < rows, j < keys (≥ 1),
// c < n (a multiple of 8). An output row's 64-column chunk stays in eight
// registers while every key's value row is added into it, so the output is
// read and written once per call, not once per key.
TEXT ·accumPVAVX2(SB), NOSPLIT, $0-72
	MOVQ o+0(FP), DI
	MOVQ ldo+8(FP), R8
	SHLQ $2, R8
	MOVQ rows+16(FP), CX
	MOVQ p+24(FP), SI
	MOVQ ldp+32(FP), R9
	SHLQ $2, R9
	MOVQ v+40(FP), DX
	MOVQ ldv+48(FP), R10
	SHLQ $2, R10
	MOVQ keys+56(FP), R11
	SHLQ $2, R11
	MOVQ n+64(FP), R12
	SHLQ $2, R12

pvrow:
	XORQ BX, BX

pvcol64:
	LEAQ 256(BX), AX
	CMPQ AX, R12
	JGT  pvcol8
	VMOVUPS (DI)(BX*1), Y0
	VMOVUPS 32(DI)(BX*1), Y1
	VMOVUPS 64(DI)(BX*1), Y2
	VMOVUPS 96(DI)(BX*1), Y3
	VMOVUPS 128(DI)(BX*1), Y4
	VMOVUPS 160(DI)(BX*1), Y5
	VMOVUPS 192(DI)(BX*1), Y6
	VMOVUPS 224(DI)(BX*1), Y7
	LEAQ (DX)(BX*1), AX
	XORQ R13, R13

pvk64:
	VBROADCASTSS (SI)(R13*1), Y8
	VFMADD231PS (AX), Y8, Y0
	VFMADD231PS 32(AX), Y8, Y1
	VFMADD231PS 64(AX), Y8, Y2
	VFMADD231PS 96(AX), Y8, Y3
	VFMADD231PS 128(AX), Y8, Y4
	VFMADD231PS 160(AX), Y8, Y5
	VFMADD231PS 192(AX), Y8, Y6
	VFMADD231PS 224(AX), Y8, Y7
	ADDQ R10, AX
	ADDQ $4, R13
	CMPQ R13, R11
	JLT  pvk64
	VMOVUPS Y0, (DI)(BX*1)
	VMOVUPS Y1, 32(DI)(BX*1)
	VMOVUPS Y2, 64(DI)(BX*1)
	VMOVUPS Y3, 96(DI)(BX*1)
	VMOVUPS Y4, 128(DI)(BX*1)
	VMOVUPS Y5, 160(DI)(BX*1)
	VMOVUPS Y6, 192(DI)(BX*1)
	VMOVUPS Y7, 224(DI)(BX*1)
	ADDQ $256, BX
	JMP  pvcol64

pvcol8:
	CMPQ BX, R12
	JGE  pvrowdone
	VMOVUPS (DI)(BX*1), Y0
	VXORPS Y1, Y1, Y1
	LEAQ (DX)(BX*1), AX
	XORQ R13, R13

pvk8:
	VBROADCASTSS (SI)(R13*1), Y8
	VFMADD231PS (AX), Y8, Y0
	ADDQ R10, AX
	ADDQ $4, R13
	CMPQ R13, R11
	JGE  pvk8done
	VBROADCASTSS (SI)(R13*1), Y8
	VFMADD231PS (AX), Y8, Y1
	ADDQ R10, AX
	ADDQ $4, R13
	CMPQ R13, R11
	JLT  pvk8

pvk8done:
	VADDPS Y1, Y0, Y0
	VMOVUPS Y0, (DI)(BX*1)
	ADDQ $32, BX
	JMP  pvcol8

pvrowdone:
	ADDQ R8, DI
	ADDQ R9, SI
	DECQ CX
	JNZ  pvrow
	VZEROUPPER
	RET
