//go:build !purego

#include "textflag.h"
#include "avx2_amd64.h"

// The fused f16 kernels' argument loads (macros that name FP arguments
// stand before the first TEXT, where vet does not take them for another
// function's).

// SCORESPROLOGUE loads the score kernels' arguments: s DI, q SI, q row
// bytes R8 (and 3·R8 in R10), key row DX, key row bytes R9, keys CX,
// 8-value chunks of a row R11.
#define SCORESPROLOGUE \
	MOVQ s+0(FP), DI; \
	MOVQ q+8(FP), SI; \
	MOVQ dk+16(FP), R11; \
	MOVQ R11, R8; \
	SHLQ $2, R8; \
	LEAQ (R8)(R8*2), R10; \
	MOVQ k+24(FP), DX; \
	MOVQ ks+32(FP), R9; \
	SHLQ $1, R9; \
	MOVQ nk+40(FP), CX; \
	SHRQ $3, R11

// PVPROLOGUE loads the value kernels' arguments: o DI, o row bytes R8
// (3·R8 in R10), corr BX, p SI, value row DX, value row bytes R9, keys
// R11, 8-column chunks of a row CX.
#define PVPROLOGUE \
	MOVQ o+0(FP), DI; \
	MOVQ dv+8(FP), CX; \
	MOVQ CX, R8; \
	SHLQ $2, R8; \
	LEAQ (R8)(R8*2), R10; \
	MOVQ corr+16(FP), BX; \
	MOVQ p+24(FP), SI; \
	MOVQ v+32(FP), DX; \
	MOVQ vs+40(FP), R9; \
	SHLQ $1, R9; \
	MOVQ nk+48(FP), R11; \
	SHRQ $3, CX

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

// EXPCONSTS loads EXPPS's constants: Y8 log2e, Y9 and Y10 ln2 in a high
// and a low part, Y11 the cut-off -87.3, Y14 the exponent bias 127, Y15
// the degree-7 coefficient.
#define EXPCONSTS \
	VMOVUPS explog2e<>(SB), Y8; \
	VMOVUPS expln2hi<>(SB), Y9; \
	VMOVUPS expln2lo<>(SB), Y10; \
	VMOVUPS explim<>(SB), Y11; \
	VMOVUPS exp127<>(SB), Y14; \
	VMOVUPS expc7<>(SB), Y15

// EXPPS sets p = e^t lane by lane, 0 where t < -87.3 (-Inf included), by
// expf's method: k = round(t·log2e), r = t - k·ln2 in two parts, the
// degree-7 Taylor polynomial of e^r, 2^k built in the exponent field. t
// and k are clobbered, msk is scratch; the constants are EXPCONSTS's.
#define EXPPS(t, k, p, msk) \
	VCMPPS       $1, Y11, t, msk; \
	VMULPS       Y8, t, k; \
	VROUNDPS     $0, k, k; \
	VFNMADD231PS Y9, k, t; \
	VFNMADD231PS Y10, k, t; \
	VMOVAPS      Y15, p; \
	VFMADD213PS  expc6<>(SB), t, p; \
	VFMADD213PS  expc5<>(SB), t, p; \
	VFMADD213PS  expc4<>(SB), t, p; \
	VFMADD213PS  expc3<>(SB), t, p; \
	VFMADD213PS  expc2<>(SB), t, p; \
	VFMADD213PS  expc1<>(SB), t, p; \
	VFMADD213PS  expc1<>(SB), t, p; \
	VCVTPS2DQ    k, k; \
	VPADDD       Y14, k, k; \
	VPSLLD       $23, k, k; \
	VMULPS       k, p, p; \
	VANDNPS      p, msk, p

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
	EXPCONSTS
	TESTQ CX, CX
	JZ   expdone

exploop:
	VMOVUPS (DI), Y0
	VSUBPS Y12, Y0, Y0
	EXPPS(Y0, Y1, Y2, Y7)
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

// Fused decode attention over half-precision caches: a block of keys of
// one kv head against r (2, 4 or 8) query rows, read straight from the f16
// cache rows (VCVTPH2PS in registers, no converted copy). Three steps per
// block: the scores s[j*r+i] = q_i·k_j (attnScoresF16xR), their online
// softmax (attnSoftmaxAVX2, lanes of one vector are r rows of 8/r keys),
// and o_i = o_i·corr_i + Σ_j p[j*r+i]·v_j (attnPVF16xR). Eight
// accumulators in every loop: r rows × 8/r column chunks, so each
// converted chunk serves r rows and no sum waits on the one before
// (ZERO8, avx2_amd64.h, clears them).

// REDUCE8 sums each of Y0..Y7 into lane i of Y0 (a horizontal-add
// transpose; Y1, Y2, Y4, Y6 scratch).
#define REDUCE8 \
	VHADDPS    Y1, Y0, Y0; \
	VHADDPS    Y3, Y2, Y2; \
	VHADDPS    Y5, Y4, Y4; \
	VHADDPS    Y7, Y6, Y6; \
	VHADDPS    Y2, Y0, Y0; \
	VHADDPS    Y6, Y4, Y4; \
	VPERM2F128 $0x20, Y4, Y0, Y1; \
	VPERM2F128 $0x31, Y4, Y0, Y2; \
	VADDPS     Y2, Y1, Y0

// NEXTKEY sets b to the row after a, or to a itself when fewer than n
// keys are left in CX (a block's last group repeats its last key; the
// scores it writes past the block are never read).
#define NEXTKEY(a, b, n) \
	LEAQ    (a)(R9*1), b; \
	CMPQ    CX, $n; \
	CMOVQLT a, b

// func attnScoresF16x2AVX2(s *float32, q *float32, dk int, k *uint16, ks, nk int)
// s[j*2+i] = q[i*dk:(i+1)*dk]·k[j*ks:j*ks+dk] (half) for rows i < 2,
// keys j < nk (≥ 1), dk a multiple of 8; s is written up to nk rounded up
// to 4 keys. Four keys at a time, the two query chunks in registers: an
// accumulator per (key, row), so a chunk's two loads and four conversions
// feed eight multiply-adds, and the reduction yields the four keys'
// scores in s's order.
TEXT ·attnScoresF16x2AVX2(SB), NOSPLIT, $0-48
	SCORESPROLOGUE

s2keys:
	MOVQ DX, AX
	NEXTKEY(AX, BX, 2)
	NEXTKEY(BX, R12, 3)
	NEXTKEY(R12, R13, 4)
	ZERO8
	MOVQ SI, R14
	MOVQ R11, R15
	XORQ R10, R10

s2chunk:
	VMOVUPS     (R14), Y12
	VMOVUPS     (R14)(R8*1), Y13
	VCVTPH2PS   (AX)(R10*1), Y8
	VCVTPH2PS   (BX)(R10*1), Y9
	VCVTPH2PS   (R12)(R10*1), Y10
	VCVTPH2PS   (R13)(R10*1), Y11
	VFMADD231PS Y12, Y8, Y0
	VFMADD231PS Y13, Y8, Y1
	VFMADD231PS Y12, Y9, Y2
	VFMADD231PS Y13, Y9, Y3
	VFMADD231PS Y12, Y10, Y4
	VFMADD231PS Y13, Y10, Y5
	VFMADD231PS Y12, Y11, Y6
	VFMADD231PS Y13, Y11, Y7
	ADDQ        $16, R10
	ADDQ        $32, R14
	DECQ        R15
	JNZ         s2chunk

	REDUCE8
	VMOVUPS Y0, (DI)
	ADDQ    $32, DI
	LEAQ    (R13)(R9*1), DX
	SUBQ    $4, CX
	JG      s2keys
	VZEROUPPER
	RET

// func attnScoresF16x4AVX2(s *float32, q *float32, dk int, k *uint16, ks, nk, ps int)
// The same for rows i < 4 and two keys at a time, s[j*ps+i] (ps 4, or 8
// when a second call does rows 4..7 at s[4:]); s is written up to nk
// rounded up to 2 keys. The query chunks are the multiply-adds' memory
// operands (as fast as holding them in registers here, in fewer
// instructions).
TEXT ·attnScoresF16x4AVX2(SB), NOSPLIT, $0-56
	SCORESPROLOGUE
	MOVQ ps+48(FP), R13
	SHLQ $2, R13

s4keys:
	MOVQ DX, AX
	NEXTKEY(AX, BX, 2)
	ZERO8
	MOVQ SI, R14
	MOVQ R11, R15
	XORQ R12, R12

s4chunk:
	VCVTPH2PS   (AX)(R12*1), Y8
	VCVTPH2PS   (BX)(R12*1), Y9
	VFMADD231PS (R14), Y8, Y0
	VFMADD231PS (R14)(R8*1), Y8, Y1
	VFMADD231PS (R14)(R8*2), Y8, Y2
	VFMADD231PS (R14)(R10*1), Y8, Y3
	VFMADD231PS (R14), Y9, Y4
	VFMADD231PS (R14)(R8*1), Y9, Y5
	VFMADD231PS (R14)(R8*2), Y9, Y6
	VFMADD231PS (R14)(R10*1), Y9, Y7
	ADDQ        $16, R12
	ADDQ        $32, R14
	DECQ        R15
	JNZ         s4chunk

	REDUCE8
	VMOVUPS      X0, (DI)
	VEXTRACTF128 $1, Y0, (DI)(R13*1)
	LEAQ         (DI)(R13*2), DI
	LEAQ         (BX)(R9*1), DX
	SUBQ         $2, CX
	JG           s4keys
	VZEROUPPER
	RET

// func attnScoresF16x8AVX2(s *float32, q *float32, dk int, k *uint16, ks, nk int)
// The same for rows i < 8 and one key at a time (s[j*8+i]): an
// accumulator per row, the query chunks the multiply-adds' memory operands
// (rows 0-3 from R14, 4-7 from R13), so each key chunk is converted once
// for all eight rows and the reduction yields a key's eight scores in s's
// order.
TEXT ·attnScoresF16x8AVX2(SB), NOSPLIT, $0-48
	SCORESPROLOGUE
	LEAQ (SI)(R8*1), R13
	LEAQ (SI)(R8*2), R14
	LEAQ (SI)(R10*1), R15
	LEAQ (SI)(R8*4), BX
	LEAQ (BX)(R8*1), AX
	LEAQ (BX)(R8*2), R8
	LEAQ (BX)(R10*1), R10
	SHLQ $4, R11

s8keys:
	ZERO8
	XORQ R12, R12

s8chunk:
	VCVTPH2PS   (DX)(R12*1), Y8
	VFMADD231PS (SI)(R12*2), Y8, Y0
	VFMADD231PS (R13)(R12*2), Y8, Y1
	VFMADD231PS (R14)(R12*2), Y8, Y2
	VFMADD231PS (R15)(R12*2), Y8, Y3
	VFMADD231PS (BX)(R12*2), Y8, Y4
	VFMADD231PS (AX)(R12*2), Y8, Y5
	VFMADD231PS (R8)(R12*2), Y8, Y6
	VFMADD231PS (R10)(R12*2), Y8, Y7
	ADDQ        $16, R12
	CMPQ        R12, R11
	JNE         s8chunk

	REDUCE8
	VMOVUPS Y0, (DI)
	ADDQ    $32, DI
	ADDQ    R9, DX
	DECQ    CX
	JNZ     s8keys
	VZEROUPPER
	RET

DATA attnninf<>+0(SB)/4, $0xff800000
GLOBL attnninf<>(SB), RODATA|NOPTR, $4

DATA attneight<>+0(SB)/4, $8
GLOBL attneight<>(SB), RODATA|NOPTR, $4

DATA attnlane<>+0(SB)/4, $0
DATA attnlane<>+4(SB)/4, $1
DATA attnlane<>+8(SB)/4, $2
DATA attnlane<>+12(SB)/4, $3
DATA attnlane<>+16(SB)/4, $4
DATA attnlane<>+20(SB)/4, $5
DATA attnlane<>+24(SB)/4, $6
DATA attnlane<>+28(SB)/4, $7
GLOBL attnlane<>(SB), RODATA|NOPTR, $32

// FOLD combines x's lanes of one row (lane l is row l%r, r in DX) with op
// so that every lane holds its row's result (t scratch; a, b labels
// unique in the function, b the end).
#define FOLD(op, x, t, b) \
	CMPQ       DX, $8; \
	JGE        b; \
	VPERM2F128 $1, x, x, t; \
	op         t, x, x; \
	CMPQ       DX, $4; \
	JGE        b; \
	VPERMILPS  $0x4e, x, t; \
	op         t, x, x; \
	CMPQ       DX, $2; \
	JGE        b; \
	VPERMILPS  $0xb1, x, t; \
	op         t, x, x; \
b:

// func attnSoftmaxAVX2(s *float32, n, r int, rows *int32, m, l, corr *float32)
// One block's online softmax for r rows (1, 2, 4 or 8): s holds n (≥ 1)
// scores, s[j*r+i] for row i, and is read and written up to n rounded up
// to 8 (the lanes past n become 0). rows is the lane-to-row pattern l%r.
// m and l (8 values each) are the running max and sum of the rows: m
// becomes the max with this block's scores, s the scores' e^(s - m), l
// the old sum rescaled plus theirs; corr (8 values) gets each row's
// rescale e^(old m - new m) for its output. Lanes r..7 of m, l and corr
// are written with copies. A row whose max is still -Inf shifts by 0, so
// its exponentials are 0, not NaN.
TEXT ·attnSoftmaxAVX2(SB), NOSPLIT, $0-56
	MOVQ         s+0(FP), DI
	MOVQ         n+8(FP), CX
	MOVQ         r+16(FP), DX
	MOVQ         rows+24(FP), AX
	VMOVDQU      (AX), Y6
	EXPCONSTS
	VBROADCASTSS attnninf<>(SB), Y5
	VMOVAPS      Y5, Y3
	VMOVDQU      attnlane<>(SB), Y4
	VPBROADCASTD n+8(FP), Y12
	VPBROADCASTD attneight<>(SB), Y13
	ADDQ         $7, CX
	SHRQ         $3, CX
	MOVQ         CX, BX
	MOVQ         DI, SI

smmax:
	// -Inf past n, then the running max.
	VMOVUPS   (SI), Y0
	VPCMPGTD  Y4, Y12, Y1
	VBLENDVPS Y1, Y0, Y5, Y0
	VMOVUPS   Y0, (SI)
	VMAXPS    Y0, Y3, Y3
	VPADDD    Y13, Y4, Y4
	ADDQ      $32, SI
	DECQ      BX
	JNZ       smmax
	FOLD(VMAXPS, Y3, Y0, smmaxed)

	MOVQ    m+32(FP), AX
	VPERMPS (AX), Y6, Y7
	VMAXPS  Y7, Y3, Y3
	VMOVUPS Y3, (AX)
	VCMPPS  $0, Y5, Y3, Y0
	VANDNPS Y3, Y0, Y12
	VSUBPS  Y12, Y7, Y0
	EXPPS(Y0, Y1, Y4, Y7)
	MOVQ    corr+48(FP), AX
	VMOVUPS Y4, (AX)
	VXORPS  Y13, Y13, Y13
	MOVQ    DI, SI

smexp:
	VMOVUPS (SI), Y0
	VSUBPS  Y12, Y0, Y0
	EXPPS(Y0, Y1, Y2, Y7)
	VMOVUPS Y2, (SI)
	VADDPS  Y2, Y13, Y13
	ADDQ    $32, SI
	DECQ    CX
	JNZ     smexp
	FOLD(VADDPS, Y13, Y0, smsummed)

	MOVQ        l+40(FP), AX
	VPERMPS     (AX), Y6, Y0
	VFMADD231PS Y4, Y0, Y13
	VMOVUPS     Y13, (AX)
	VZEROUPPER
	RET

// PVKEYS starts a pass over the keys: value pointer AX, p pointer R13,
// count R14.
#define PVKEYS \
	MOVQ DX, AX; \
	MOVQ SI, R13; \
	MOVQ R11, R14

// SCALED sets y to the 8 floats at mem times row i's rescale, broadcast
// from corr into t.
#define SCALED(i, mem, t, y) \
	VBROADCASTSS i*4(BX), t; \
	VMULPS       mem, t, y

// PV4NEXT moves the four-row value kernels to the next key (value row AX,
// its probabilities R13 ps apart) and loops to key while keys are left.
#define PV4NEXT(key) \
	ADDQ R9, AX; \
	ADDQ R12, R13; \
	DECQ R14; \
	JNZ  key

// PV4PAIR adds every key's values to two column chunks of four rows
// (Y0-Y1 row 0 ... Y6-Y7 row 3) at DI and DX, then moves DI and DX to the
// next chunks (key a label unique in the function).
#define PV4PAIR(key) \
	SCALED(0, (DI), Y8, Y0); \
	VMULPS 32(DI), Y8, Y1; \
	SCALED(1, (DI)(R8*1), Y8, Y2); \
	VMULPS 32(DI)(R8*1), Y8, Y3; \
	SCALED(2, (DI)(R8*2), Y8, Y4); \
	VMULPS 32(DI)(R8*2), Y8, Y5; \
	SCALED(3, (DI)(R10*1), Y8, Y6); \
	VMULPS 32(DI)(R10*1), Y8, Y7; \
	PVKEYS; \
key: \
	VCVTPH2PS    (AX), Y8; \
	VCVTPH2PS    16(AX), Y9; \
	VBROADCASTSS (R13), Y10; \
	VFMADD231PS  Y10, Y8, Y0; \
	VFMADD231PS  Y10, Y9, Y1; \
	VBROADCASTSS 4(R13), Y11; \
	VFMADD231PS  Y11, Y8, Y2; \
	VFMADD231PS  Y11, Y9, Y3; \
	VBROADCASTSS 8(R13), Y12; \
	VFMADD231PS  Y12, Y8, Y4; \
	VFMADD231PS  Y12, Y9, Y5; \
	VBROADCASTSS 12(R13), Y13; \
	VFMADD231PS  Y13, Y8, Y6; \
	VFMADD231PS  Y13, Y9, Y7; \
	PV4NEXT(key); \
	VMOVUPS Y0, (DI); \
	VMOVUPS Y1, 32(DI); \
	VMOVUPS Y2, (DI)(R8*1); \
	VMOVUPS Y3, 32(DI)(R8*1); \
	VMOVUPS Y4, (DI)(R8*2); \
	VMOVUPS Y5, 32(DI)(R8*2); \
	VMOVUPS Y6, (DI)(R10*1); \
	VMOVUPS Y7, 32(DI)(R10*1); \
	ADDQ    $64, DI; \
	ADDQ    $32, DX

// PV4ONE is PV4PAIR for one column chunk (Y0, Y2, Y4, Y6).
#define PV4ONE(key) \
	SCALED(0, (DI), Y8, Y0); \
	SCALED(1, (DI)(R8*1), Y8, Y2); \
	SCALED(2, (DI)(R8*2), Y8, Y4); \
	SCALED(3, (DI)(R10*1), Y8, Y6); \
	PVKEYS; \
key: \
	VCVTPH2PS    (AX), Y8; \
	VBROADCASTSS (R13), Y10; \
	VFMADD231PS  Y10, Y8, Y0; \
	VBROADCASTSS 4(R13), Y11; \
	VFMADD231PS  Y11, Y8, Y2; \
	VBROADCASTSS 8(R13), Y12; \
	VFMADD231PS  Y12, Y8, Y4; \
	VBROADCASTSS 12(R13), Y13; \
	VFMADD231PS  Y13, Y8, Y6; \
	PV4NEXT(key); \
	VMOVUPS      Y0, (DI); \
	VMOVUPS      Y2, (DI)(R8*1); \
	VMOVUPS      Y4, (DI)(R8*2); \
	VMOVUPS      Y6, (DI)(R10*1)

// func attnPVF16x4AVX2(o *float32, dv int, corr *float32, p *float32, v *uint16, vs, nk, ps int)
// o[i*dv+c] = o[i*dv+c]·corr[i] + Σ_j p[j*ps+i]·v[j*vs+c] (half) for
// i < 4, c < dv (a multiple of 8), j < nk (≥ 1); ps is 4, or 8 when a
// second call does rows 4..7. Two column chunks at a time while every
// key's value chunks are added, an odd last chunk alone.
TEXT ·attnPVF16x4AVX2(SB), NOSPLIT, $0-64
	PVPROLOGUE
	MOVQ ps+56(FP), R12
	SHLQ $2, R12
	MOVQ CX, R15
	SHRQ $1, CX
	JZ   pv4tail

pv4col:
	PV4PAIR(pv4key)
	DECQ CX
	JNZ  pv4col

pv4tail:
	TESTQ $1, R15
	JZ    pv4done
	PV4ONE(pv4one)

pv4done:
	VZEROUPPER
	RET

// func attnPVF16x4x3AVX2(o *float32, dv int, corr *float32, p *float32, v *uint16, vs, nk, ps int)
// The same sum three column chunks at a time (Y0-Y2 row 0 ... Y9-Y11 row
// 3, the converted chunks in Y12-Y14, each row's probability broadcast
// into Y15 in turn): a key's three conversions and four broadcasts feed
// twelve multiply-adds, against two and four for eight in
// attnPVF16x4AVX2. Faster with the values in cache, slower streaming
// them from memory (fewer keys' loads fit in flight). A last two chunks
// go together, a last one alone.
TEXT ·attnPVF16x4x3AVX2(SB), NOSPLIT, $0-64
	PVPROLOGUE
	MOVQ ps+56(FP), R12
	SHLQ $2, R12
	MOVQ CX, R15

pv43tri:
	CMPQ R15, $3
	JLT  pv43pair
	SCALED(0, (DI), Y15, Y0)
	VMULPS 32(DI), Y15, Y1
	VMULPS 64(DI), Y15, Y2
	SCALED(1, (DI)(R8*1), Y15, Y3)
	VMULPS 32(DI)(R8*1), Y15, Y4
	VMULPS 64(DI)(R8*1), Y15, Y5
	SCALED(2, (DI)(R8*2), Y15, Y6)
	VMULPS 32(DI)(R8*2), Y15, Y7
	VMULPS 64(DI)(R8*2), Y15, Y8
	SCALED(3, (DI)(R10*1), Y15, Y9)
	VMULPS 32(DI)(R10*1), Y15, Y10
	VMULPS 64(DI)(R10*1), Y15, Y11
	PVKEYS

pv43key:
	VCVTPH2PS    (AX), Y12
	VCVTPH2PS    16(AX), Y13
	VCVTPH2PS    32(AX), Y14
	VBROADCASTSS (R13), Y15
	VFMADD231PS  Y15, Y12, Y0
	VFMADD231PS  Y15, Y13, Y1
	VFMADD231PS  Y15, Y14, Y2
	VBROADCASTSS 4(R13), Y15
	VFMADD231PS  Y15, Y12, Y3
	VFMADD231PS  Y15, Y13, Y4
	VFMADD231PS  Y15, Y14, Y5
	VBROADCASTSS 8(R13), Y15
	VFMADD231PS  Y15, Y12, Y6
	VFMADD231PS  Y15, Y13, Y7
	VFMADD231PS  Y15, Y14, Y8
	VBROADCASTSS 12(R13), Y15
	VFMADD231PS  Y15, Y12, Y9
	VFMADD231PS  Y15, Y13, Y10
	VFMADD231PS  Y15, Y14, Y11
	PV4NEXT(pv43key)

	VMOVUPS Y0, (DI)
	VMOVUPS Y1, 32(DI)
	VMOVUPS Y2, 64(DI)
	VMOVUPS Y3, (DI)(R8*1)
	VMOVUPS Y4, 32(DI)(R8*1)
	VMOVUPS Y5, 64(DI)(R8*1)
	VMOVUPS Y6, (DI)(R8*2)
	VMOVUPS Y7, 32(DI)(R8*2)
	VMOVUPS Y8, 64(DI)(R8*2)
	VMOVUPS Y9, (DI)(R10*1)
	VMOVUPS Y10, 32(DI)(R10*1)
	VMOVUPS Y11, 64(DI)(R10*1)
	ADDQ    $96, DI
	ADDQ    $48, DX
	SUBQ    $3, R15
	JMP     pv43tri

pv43pair:
	CMPQ R15, $2
	JLT  pv43tail
	SUBQ $2, R15
	PV4PAIR(pv43pkey)

pv43tail:
	TESTQ R15, R15
	JZ    pv43done
	PV4ONE(pv43one)

pv43done:
	VZEROUPPER
	RET

// func attnPVF16x2AVX2(o *float32, dv int, corr *float32, p *float32, v *uint16, vs, nk int)
// The same for two rows (p[j*2+i]): four column chunks at a time (Y0-Y3
// row 0, Y4-Y7 row 1), the last one to three chunks one at a time.
TEXT ·attnPVF16x2AVX2(SB), NOSPLIT, $0-56
	PVPROLOGUE
	MOVQ CX, R15
	SHRQ $2, CX
	JZ   pv2tail

pv2col:
	SCALED(0, (DI), Y12, Y0)
	VMULPS 32(DI), Y12, Y1
	VMULPS 64(DI), Y12, Y2
	VMULPS 96(DI), Y12, Y3
	SCALED(1, (DI)(R8*1), Y13, Y4)
	VMULPS 32(DI)(R8*1), Y13, Y5
	VMULPS 64(DI)(R8*1), Y13, Y6
	VMULPS 96(DI)(R8*1), Y13, Y7
	PVKEYS

pv2key:
	VCVTPH2PS    (AX), Y8
	VCVTPH2PS    16(AX), Y9
	VCVTPH2PS    32(AX), Y10
	VCVTPH2PS    48(AX), Y11
	VBROADCASTSS (R13), Y12
	VBROADCASTSS 4(R13), Y13
	VFMADD231PS  Y12, Y8, Y0
	VFMADD231PS  Y12, Y9, Y1
	VFMADD231PS  Y12, Y10, Y2
	VFMADD231PS  Y12, Y11, Y3
	VFMADD231PS  Y13, Y8, Y4
	VFMADD231PS  Y13, Y9, Y5
	VFMADD231PS  Y13, Y10, Y6
	VFMADD231PS  Y13, Y11, Y7
	ADDQ         R9, AX
	ADDQ         $8, R13
	DECQ         R14
	JNZ          pv2key

	VMOVUPS Y0, (DI)
	VMOVUPS Y1, 32(DI)
	VMOVUPS Y2, 64(DI)
	VMOVUPS Y3, 96(DI)
	VMOVUPS Y4, (DI)(R8*1)
	VMOVUPS Y5, 32(DI)(R8*1)
	VMOVUPS Y6, 64(DI)(R8*1)
	VMOVUPS Y7, 96(DI)(R8*1)
	ADDQ    $128, DI
	ADDQ    $64, DX
	DECQ    CX
	JNZ     pv2col

pv2tail:
	ANDQ $3, R15
	JZ   pv2done

pv2chunk:
	SCALED(0, (DI), Y12, Y0)
	SCALED(1, (DI)(R8*1), Y13, Y4)
	PVKEYS

pv2one:
	VCVTPH2PS    (AX), Y8
	VBROADCASTSS (R13), Y12
	VBROADCASTSS 4(R13), Y13
	VFMADD231PS  Y12, Y8, Y0
	VFMADD231PS  Y13, Y8, Y4
	ADDQ         R9, AX
	ADDQ         $8, R13
	DECQ         R14
	JNZ          pv2one
	VMOVUPS      Y0, (DI)
	VMOVUPS      Y4, (DI)(R8*1)
	ADDQ         $32, DI
	ADDQ         $16, DX
	DECQ         R15
	JNZ          pv2chunk

pv2done:
	VZEROUPPER
	RET
