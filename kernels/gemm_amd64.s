//go:build !purego

#include "textflag.h"
#include "avx2_amd64.h"

// GEMM microkernels and panel decoders for AVX2+FMA. The Go wrappers in
// gemm_simd.go check every bound before calling them.

// QUAD points AX, BX, CX at the three weight rows after SI (stride R8);
// ZERO8 (avx2_amd64.h) clears the first eight accumulators.
#define QUAD \
	LEAQ (SI)(R8*1), AX; \
	LEAQ (AX)(R8*1), BX; \
	LEAQ (BX)(R8*1), CX


// Four rows of dot products along k (a multiple of 8) for one token block:
// row i at w+i*ldw, token j at x+j*ldx, result added to out+j*ldo+i.
// The four row sums of a token are reduced with VHADDPS into one XMM, so
// they land on four consecutive floats of out.


// func tile4x3AVX2(w *float32, ldw, rows int, x *float32, ldx, k int, out *float32, ldo int)
TEXT ·tile4x3AVX2(SB), NOSPLIT, $0-64
	MOVQ w+0(FP), SI
	MOVQ ldw+8(FP), R8
	SHLQ $2, R8
	MOVQ rows+16(FP), R9
	SHRQ $2, R9
	MOVQ x+24(FP), DI
	MOVQ ldx+32(FP), R10
	SHLQ $2, R10
	LEAQ (DI)(R10*1), R13
	LEAQ (R13)(R10*1), R14
	MOVQ k+40(FP), R11
	SHLQ $2, R11
	MOVQ out+48(FP), DX
	MOVQ ldo+56(FP), R12
	SHLQ $2, R12
	// The next three tokens' rows of out (the caller's next call): the
	// sums are added to memory that has usually left the cache since the
	// previous column block.
	LEAQ (R12)(R12*2), AX
	ADDQ DX, AX
	PREFETCHT0 (AX)
	PREFETCHT0 (AX)(R12*1)
	PREFETCHT0 (AX)(R12*2)

quad3:
	QUAD
	ZERO8
	VXORPS Y8, Y8, Y8
	VXORPS Y9, Y9, Y9
	VXORPS Y10, Y10, Y10
	VXORPS Y11, Y11, Y11
	XORQ R10, R10

k3:
	VMOVUPS (DI)(R10*1), Y12
	VMOVUPS (R13)(R10*1), Y13
	VMOVUPS (R14)(R10*1), Y14
	VMOVUPS (SI)(R10*1), Y15
	VFMADD231PS Y15, Y12, Y0
	VFMADD231PS Y15, Y13, Y1
	VFMADD231PS Y15, Y14, Y2
	VMOVUPS (AX)(R10*1), Y15
	VFMADD231PS Y15, Y12, Y3
	VFMADD231PS Y15, Y13, Y4
	VFMADD231PS Y15, Y14, Y5
	VMOVUPS (BX)(R10*1), Y15
	VFMADD231PS Y15, Y12, Y6
	VFMADD231PS Y15, Y13, Y7
	VFMADD231PS Y15, Y14, Y8
	VMOVUPS (CX)(R10*1), Y15
	VFMADD231PS Y15, Y12, Y9
	VFMADD231PS Y15, Y13, Y10
	VFMADD231PS Y15, Y14, Y11
	ADDQ $32, R10
	CMPQ R10, R11
	JLT  k3

	// Token 0: rows in Y0 Y3 Y6 Y9.
	VHADDPS Y3, Y0, Y0
	VHADDPS Y9, Y6, Y6
	VHADDPS Y6, Y0, Y0
	VEXTRACTF128 $1, Y0, X12
	VADDPS X12, X0, X0
	VADDPS (DX), X0, X0
	VMOVUPS X0, (DX)
	// Token 1: Y1 Y4 Y7 Y10.
	VHADDPS Y4, Y1, Y1
	VHADDPS Y10, Y7, Y7
	VHADDPS Y7, Y1, Y1
	VEXTRACTF128 $1, Y1, X12
	VADDPS X12, X1, X1
	VADDPS (DX)(R12*1), X1, X1
	VMOVUPS X1, (DX)(R12*1)
	// Token 2: Y2 Y5 Y8 Y11.
	VHADDPS Y5, Y2, Y2
	VHADDPS Y11, Y8, Y8
	VHADDPS Y8, Y2, Y2
	VEXTRACTF128 $1, Y2, X12
	VADDPS X12, X2, X2
	VADDPS (DX)(R12*2), X2, X2
	VMOVUPS X2, (DX)(R12*2)

	LEAQ (CX)(R8*1), SI
	ADDQ $16, DX
	DECQ R9
	JNZ  quad3
	VZEROUPPER
	RET

// func tile4x1AVX2(w *float32, ldw, rows int, x *float32, k int, out *float32)
// One token; two accumulators per row hide the FMA latency.
TEXT ·tile4x1AVX2(SB), NOSPLIT, $0-48
	MOVQ w+0(FP), SI
	MOVQ ldw+8(FP), R8
	SHLQ $2, R8
	MOVQ rows+16(FP), R9
	SHRQ $2, R9
	MOVQ x+24(FP), DI
	MOVQ k+32(FP), R11
	SHLQ $2, R11
	MOVQ out+40(FP), DX

quad1:
	QUAD
	ZERO8
	XORQ R10, R10
	MOVQ R11, R12
	ANDQ $-64, R12
	JZ   k1tail

k1:
	VMOVUPS (DI)(R10*1), Y12
	VMOVUPS 32(DI)(R10*1), Y13
	VFMADD231PS (SI)(R10*1), Y12, Y0
	VFMADD231PS 32(SI)(R10*1), Y13, Y4
	VFMADD231PS (AX)(R10*1), Y12, Y1
	VFMADD231PS 32(AX)(R10*1), Y13, Y5
	VFMADD231PS (BX)(R10*1), Y12, Y2
	VFMADD231PS 32(BX)(R10*1), Y13, Y6
	VFMADD231PS (CX)(R10*1), Y12, Y3
	VFMADD231PS 32(CX)(R10*1), Y13, Y7
	ADDQ $64, R10
	CMPQ R10, R12
	JLT  k1

k1tail:
	CMPQ R10, R11
	JGE  k1done
	VMOVUPS (DI)(R10*1), Y12
	VFMADD231PS (SI)(R10*1), Y12, Y0
	VFMADD231PS (AX)(R10*1), Y12, Y1
	VFMADD231PS (BX)(R10*1), Y12, Y2
	VFMADD231PS (CX)(R10*1), Y12, Y3

k1done:
	VADDPS Y4, Y0, Y0
	VADDPS Y5, Y1, Y1
	VADDPS Y6, Y2, Y2
	VADDPS Y7, Y3, Y3
	VHADDPS Y1, Y0, Y0
	VHADDPS Y3, Y2, Y2
	VHADDPS Y2, Y0, Y0
	VEXTRACTF128 $1, Y0, X12
	VADDPS X12, X0, X0
	VADDPS (DX), X0, X0
	VMOVUPS X0, (DX)

	LEAQ (CX)(R8*1), SI
	ADDQ $16, DX
	DECQ R9
	JNZ  quad1
	VZEROUPPER
	RET

DATA shifts4<>+0(SB)/4, $0
DATA shifts4<>+4(SB)/4, $4
DATA shifts4<>+8(SB)/4, $8
DATA shifts4<>+12(SB)/4, $12
DATA shifts4<>+16(SB)/4, $16
DATA shifts4<>+20(SB)/4, $20
DATA shifts4<>+24(SB)/4, $24
DATA shifts4<>+28(SB)/4, $28
GLOBL shifts4<>(SB), RODATA|NOPTR, $32

DATA mask4<>+0(SB)/4, $15
GLOBL mask4<>(SB), RODATA|NOPTR, $4

// func dequant4AVX2(dst *float32, w *uint32, scales, biases *float32, groups, group int)
// dst[j] = scale*q_j + bias over whole groups (group a multiple of 8): one
// word is broadcast, shifted per lane and masked to its eight codes.
TEXT ·dequant4AVX2(SB), NOSPLIT, $0-48
	MOVQ dst+0(FP), DI
	MOVQ w+8(FP), SI
	MOVQ scales+16(FP), AX
	MOVQ biases+24(FP), BX
	MOVQ groups+32(FP), CX
	MOVQ group+40(FP), DX
	SHRQ $3, DX
	VMOVDQU shifts4<>(SB), Y13
	VPBROADCASTD mask4<>(SB), Y14

g4:
	VBROADCASTSS (AX), Y11
	VBROADCASTSS (BX), Y12
	MOVQ DX, R8

w4:
	VPBROADCASTD (SI), Y0
	VPSRLVD Y13, Y0, Y0
	VPAND Y14, Y0, Y0
	VCVTDQ2PS Y0, Y0
	VFMADD213PS Y12, Y11, Y0
	VMOVUPS Y0, (DI)
	ADDQ $4, SI
	ADDQ $32, DI
	DECQ R8
	JNZ  w4
	ADDQ $4, AX
	ADDQ $4, BX
	DECQ CX
	JNZ  g4
	VZEROUPPER
	RET

// func dequant8AVX2(dst *float32, w *uint32, scales, biases *float32, groups, group int)
TEXT ·dequant8AVX2(SB), NOSPLIT, $0-48
	MOVQ dst+0(FP), DI
	MOVQ w+8(FP), SI
	MOVQ scales+16(FP), AX
	MOVQ biases+24(FP), BX
	MOVQ groups+32(FP), CX
	MOVQ group+40(FP), DX
	SHRQ $3, DX

g8:
	VBROADCASTSS (AX), Y11
	VBROADCASTSS (BX), Y12
	MOVQ DX, R8

w8:
	VPMOVZXBD (SI), Y0
	VCVTDQ2PS Y0, Y0
	VFMADD213PS Y12, Y11, Y0
	VMOVUPS Y0, (DI)
	ADDQ $8, SI
	ADDQ $32, DI
	DECQ R8
	JNZ  w8
	ADDQ $4, AX
	ADDQ $4, BX
	DECQ CX
	JNZ  g8
	VZEROUPPER
	RET

// func bf16AVX2(dst *float32, src *uint16, n int)
// n a multiple of 8: widen each half-word and shift it into the high half.
TEXT ·bf16AVX2(SB), NOSPLIT, $0-24
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ n+16(FP), CX
	SHRQ $3, CX
	JZ   bfdone

bf:
	VPMOVZXWD (SI), Y0
	VPSLLD $16, Y0, Y0
	VMOVUPS Y0, (DI)
	ADDQ $16, SI
	ADDQ $32, DI
	DECQ CX
	JNZ  bf

bfdone:
	VZEROUPPER
	RET

// PREFETCH_ROWS asks with instr for the cache lines of DX bytes at each of
// CX rows R8 bytes apart from SI.
#define PREFETCH_ROWS(instr, done, row, line) \
	TESTQ CX, CX; \
	JZ   done; \
row:; \
	XORQ AX, AX; \
line:; \
	instr (SI)(AX*1); \
	ADDQ $64, AX; \
	CMPQ AX, DX; \
	JLT  line; \
	ADDQ R8, SI; \
	DECQ CX; \
	JNZ  row; \
done:; \
	RET

// func prefetchRows(p *byte, stride, rows, n int)
// The next GEMM panel's weights, into L1 while this one is computed.
TEXT ·prefetchRows(SB), NOSPLIT, $0-32
	MOVQ p+0(FP), SI
	MOVQ stride+8(FP), R8
	MOVQ rows+16(FP), CX
	MOVQ n+24(FP), DX
	PREFETCH_ROWS(PREFETCHT0, pf0done, pf0row, pf0line)

// func prefetchRowsL2(p *byte, stride, rows, n int)
// The next attention block's keys and values (more than L1 holds), into L2.
TEXT ·prefetchRowsL2(SB), NOSPLIT, $0-32
	MOVQ p+0(FP), SI
	MOVQ stride+8(FP), R8
	MOVQ rows+16(FP), CX
	MOVQ n+24(FP), DX
	PREFETCH_ROWS(PREFETCHT1, pf1done, pf1row, pf1line)
