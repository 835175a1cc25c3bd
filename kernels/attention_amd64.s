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

// func accumPV4AVX2(o *float32, ldo, rows int, p *float32, ldp int, v *float32, ldv, keys, n int)
// The same sum for rows a multiple of 4 and n a multiple of 16: four
// output rows × 16 columns stay in eight registers, so each value chunk
// loaded serves four rows (the value block outgrows L1 at head dim 256).
TEXT ·accumPV4AVX2(SB), NOSPLIT, $0-72
	MOVQ o+0(FP), DI
	MOVQ ldo+8(FP), R8
	SHLQ $2, R8
	MOVQ rows+16(FP), CX
	SHRQ $2, CX
	MOVQ p+24(FP), SI
	MOVQ ldp+32(FP), R9
	SHLQ $2, R9
	LEAQ (R9)(R9*2), R15
	MOVQ v+40(FP), DX
	MOVQ ldv+48(FP), R10
	SHLQ $2, R10
	MOVQ n+64(FP), R12
	SHLQ $2, R12

pv4quad:
	// Rows i..i+3 of o at DI, DI+R8, R14, R14+R8; of p at SI + 0..3 ldp.
	LEAQ (DI)(R8*2), R14
	XORQ BX, BX

pv4col:
	VMOVUPS (DI)(BX*1), Y0
	VMOVUPS 32(DI)(BX*1), Y1
	LEAQ (DI)(R8*1), AX
	VMOVUPS (AX)(BX*1), Y2
	VMOVUPS 32(AX)(BX*1), Y3
	VMOVUPS (R14)(BX*1), Y4
	VMOVUPS 32(R14)(BX*1), Y5
	LEAQ (R14)(R8*1), AX
	VMOVUPS (AX)(BX*1), Y6
	VMOVUPS 32(AX)(BX*1), Y7
	LEAQ (DX)(BX*1), AX
	MOVQ SI, R13
	MOVQ keys+56(FP), R11
	LEAQ (SI)(R11*4), R11

pv4k:
	VMOVUPS (AX), Y8
	VMOVUPS 32(AX), Y9
	VBROADCASTSS (R13), Y10
	VFMADD231PS Y8, Y10, Y0
	VFMADD231PS Y9, Y10, Y1
	VBROADCASTSS (R13)(R9*1), Y11
	VFMADD231PS Y8, Y11, Y2
	VFMADD231PS Y9, Y11, Y3
	VBROADCASTSS (R13)(R9*2), Y12
	VFMADD231PS Y8, Y12, Y4
	VFMADD231PS Y9, Y12, Y5
	VBROADCASTSS (R13)(R15*1), Y13
	VFMADD231PS Y8, Y13, Y6
	VFMADD231PS Y9, Y13, Y7
	ADDQ R10, AX
	ADDQ $4, R13
	CMPQ R13, R11
	JLT  pv4k

	VMOVUPS Y0, (DI)(BX*1)
	VMOVUPS Y1, 32(DI)(BX*1)
	LEAQ (DI)(R8*1), AX
	VMOVUPS Y2, (AX)(BX*1)
	VMOVUPS Y3, 32(AX)(BX*1)
	VMOVUPS Y4, (R14)(BX*1)
	VMOVUPS Y5, 32(R14)(BX*1)
	LEAQ (R14)(R8*1), AX
	VMOVUPS Y6, (AX)(BX*1)
	VMOVUPS Y7, 32(AX)(BX*1)
	ADDQ $64, BX
	CMPQ BX, R12
	JLT  pv4col

	LEAQ (R14)(R8*2), DI
	LEAQ (SI)(R9*4), SI
	DECQ CX
	JNZ  pv4quad
	VZEROUPPER
	RET

// Constants of expShiftAVX2, eight lanes each.
DATA explog2e<>+0(SB)/4, $0x3fb8aa3b
DATA explog2e<>+4(SB)/4, $0x3fb8aa3b
DATA explog2e<>+8(SB)/4, $0x3fb8aa3b
DATA explog2e<>+12(SB)/4, $0x3fb8aa3b
DATA explog2e<>+16(SB)/4, $0x3fb8aa3b
DATA explog2e<>+20(SB)/4, $0x3fb8aa3b
DATA explog2e<>+24(SB)/4, $0x3fb8aa3b
DATA explog2e<>+28(SB)/4, $0x3fb8aa3b
GLOBL explog2e<>(SB), RODATA|NOPTR, $32

DATA expln2hi<>+0(SB)/4, $0x3f318000
DATA expln2hi<>+4(SB)/4, $0x3f318000
DATA expln2hi<>+8(SB)/4, $0x3f318000
DATA expln2hi<>+12(SB)/4, $0x3f318000
DATA expln2hi<>+16(SB)/4, $0x3f318000
DATA expln2hi<>+20(SB)/4, $0x3f318000
DATA expln2hi<>+24(SB)/4, $0x3f318000
DATA expln2hi<>+28(SB)/4, $0x3f318000
GLOBL expln2hi<>(SB), RODATA|NOPTR, $32

DATA expln2lo<>+0(SB)/4, $0xb95e8083
DATA expln2lo<>+4(SB)/4, $0xb95e8083
DATA expln2lo<>+8(SB)/4, $0xb95e8083
DATA expln2lo<>+12(SB)/4, $0xb95e8083
DATA expln2lo<>+16(SB)/4, $0xb95e8083
DATA expln2lo<>+20(SB)/4, $0xb95e8083
DATA expln2lo<>+24(SB)/4, $0xb95e8083
DATA expln2lo<>+28(SB)/4, $0xb95e8083
GLOBL expln2lo<>(SB), RODATA|NOPTR, $32

DATA explim<>+0(SB)/4, $0xc2ae999a
DATA explim<>+4(SB)/4, $0xc2ae999a
DATA explim<>+8(SB)/4, $0xc2ae999a
DATA explim<>+12(SB)/4, $0xc2ae999a
DATA explim<>+16(SB)/4, $0xc2ae999a
DATA explim<>+20(SB)/4, $0xc2ae999a
DATA explim<>+24(SB)/4, $0xc2ae999a
DATA explim<>+28(SB)/4, $0xc2ae999a
GLOBL explim<>(SB), RODATA|NOPTR, $32

DATA expc7<>+0(SB)/4, $0x39500d01
DATA expc7<>+4(SB)/4, $0x39500d01
DATA expc7<>+8(SB)/4, $0x39500d01
DATA expc7<>+12(SB)/4, $0x39500d01
DATA expc7<>+16(SB)/4, $0x39500d01
DATA expc7<>+20(SB)/4, $0x39500d01
DATA expc7<>+24(SB)/4, $0x39500d01
DATA expc7<>+28(SB)/4, $0x39500d01
GLOBL expc7<>(SB), RODATA|NOPTR, $32

DATA expc6<>+0(SB)/4, $0x3ab60b61
DATA expc6<>+4(SB)/4, $0x3ab60b61
DATA expc6<>+8(SB)/4, $0x3ab60b61
DATA expc6<>+12(SB)/4, $0x3ab60b61
DATA expc6<>+16(SB)/4, $0x3ab60b61
DATA expc6<>+20(SB)/4, $0x3ab60b61
DATA expc6<>+24(SB)/4, $0x3ab60b61
DATA expc6<>+28(SB)/4, $0x3ab60b61
GLOBL expc6<>(SB), RODATA|NOPTR, $32

DATA expc5<>+0(SB)/4, $0x3c088889
DATA expc5<>+4(SB)/4, $0x3c088889
DATA expc5<>+8(SB)/4, $0x3c088889
DATA expc5<>+12(SB)/4, $0x3c088889
DATA expc5<>+16(SB)/4, $0x3c088889
DATA expc5<>+20(SB)/4, $0x3c088889
DATA expc5<>+24(SB)/4, $0x3c088889
DATA expc5<>+28(SB)/4, $0x3c088889
GLOBL expc5<>(SB), RODATA|NOPTR, $32

DATA expc4<>+0(SB)/4, $0x3d2aaaab
DATA expc4<>+4(SB)/4, $0x3d2aaaab
DATA expc4<>+8(SB)/4, $0x3d2aaaab
DATA expc4<>+12(SB)/4, $0x3d2aaaab
DATA expc4<>+16(SB)/4, $0x3d2aaaab
DATA expc4<>+20(SB)/4, $0x3d2aaaab
DATA expc4<>+24(SB)/4, $0x3d2aaaab
DATA expc4<>+28(SB)/4, $0x3d2aaaab
GLOBL expc4<>(SB), RODATA|NOPTR, $32

DATA expc3<>+0(SB)/4, $0x3e2aaaab
DATA expc3<>+4(SB)/4, $0x3e2aaaab
DATA expc3<>+8(SB)/4, $0x3e2aaaab
DATA expc3<>+12(SB)/4, $0x3e2aaaab
DATA expc3<>+16(SB)/4, $0x3e2aaaab
DATA expc3<>+20(SB)/4, $0x3e2aaaab
DATA expc3<>+24(SB)/4, $0x3e2aaaab
DATA expc3<>+28(SB)/4, $0x3e2aaaab
GLOBL expc3<>(SB), RODATA|NOPTR, $32

DATA expc2<>+0(SB)/4, $0x3f000000
DATA expc2<>+4(SB)/4, $0x3f000000
DATA expc2<>+8(SB)/4, $0x3f000000
DATA expc2<>+12(SB)/4, $0x3f000000
DATA expc2<>+16(SB)/4, $0x3f000000
DATA expc2<>+20(SB)/4, $0x3f000000
DATA expc2<>+24(SB)/4, $0x3f000000
DATA expc2<>+28(SB)/4, $0x3f000000
GLOBL expc2<>(SB), RODATA|NOPTR, $32

DATA expc1<>+0(SB)/4, $0x3f800000
DATA expc1<>+4(SB)/4, $0x3f800000
DATA expc1<>+8(SB)/4, $0x3f800000
DATA expc1<>+12(SB)/4, $0x3f800000
DATA expc1<>+16(SB)/4, $0x3f800000
DATA expc1<>+20(SB)/4, $0x3f800000
DATA expc1<>+24(SB)/4, $0x3f800000
DATA expc1<>+28(SB)/4, $0x3f800000
GLOBL expc1<>(SB), RODATA|NOPTR, $32

DATA exp127<>+0(SB)/4, $127
DATA exp127<>+4(SB)/4, $127
DATA exp127<>+8(SB)/4, $127
DATA exp127<>+12(SB)/4, $127
DATA exp127<>+16(SB)/4, $127
DATA exp127<>+20(SB)/4, $127
DATA exp127<>+24(SB)/4, $127
DATA exp127<>+28(SB)/4, $127
GLOBL exp127<>(SB), RODATA|NOPTR, $32

// func expShiftAVX2(x *float32, n int, m float32) float32
// x[i] = e^(x[i]-m) for n (a multiple of 8) values, returning their sum:
// the softmax numerators of a score row. The same method as expf: k =
// round(t·log2e), r = t - k·ln2 in two parts, the degree-7 Taylor
// polynomial of e^r, 2^k built in the exponent field; lanes below -87.3
// are 0.
TEXT ·expShiftAVX2(SB), NOSPLIT, $0-28
	MOVQ x+0(FP), DI
	MOVQ n+8(FP), CX
	SHRQ $3, CX
	VBROADCASTSS m+16(FP), Y12
	VXORPS Y13, Y13, Y13
	VMOVUPS explog2e<>(SB), Y8
	VMOVUPS expln2hi<>(SB), Y9
	VMOVUPS expln2lo<>(SB), Y10
	VMOVUPS explim<>(SB), Y11
	VMOVUPS exp127<>(SB), Y14
	VMOVUPS expc7<>(SB), Y15
	TESTQ CX, CX
	JZ   expdone

exploop:
	VMOVUPS (DI), Y0
	VSUBPS Y12, Y0, Y0
	VCMPPS $1, Y11, Y0, Y7
	VMULPS Y8, Y0, Y1
	VROUNDPS $0, Y1, Y1
	VFNMADD231PS Y9, Y1, Y0
	VFNMADD231PS Y10, Y1, Y0
	VMOVAPS Y15, Y2
	VFMADD213PS expc6<>(SB), Y0, Y2
	VFMADD213PS expc5<>(SB), Y0, Y2
	VFMADD213PS expc4<>(SB), Y0, Y2
	VFMADD213PS expc3<>(SB), Y0, Y2
	VFMADD213PS expc2<>(SB), Y0, Y2
	VFMADD213PS expc1<>(SB), Y0, Y2
	VFMADD213PS expc1<>(SB), Y0, Y2
	VCVTPS2DQ Y1, Y1
	VPADDD Y14, Y1, Y1
	VPSLLD $23, Y1, Y1
	VMULPS Y1, Y2, Y2
	VANDNPS Y2, Y7, Y2
	VMOVUPS Y2, (DI)
	VADDPS Y2, Y13, Y13
	ADDQ $32, DI
	DECQ CX
	JNZ  exploop

expdone:
	VEXTRACTF128 $1, Y13, X0
	VADDPS X0, X13, X13
	VHADDPS X13, X13, X13
	VHADDPS X13, X13, X13
	VMOVSS X13, ret+24(FP)
	VZEROUPPER
	RET
