//go:build !purego

#include "textflag.h"
#include "neon_arm64.h"

// GEMM microkernels and panel decoders for NEON, the arm64 twins of
// gemm_amd64.s. The Go wrappers in gemm_simd.go check every bound before
// calling them. SCVTF (vector, .4S) is spelled as a WORD like those in
// neon_arm64.h.
#define SCVTF4S(n, d) WORD $(0x4E21D800 | ((n)<<5) | (d))

// Microkernels: four rows of dot products along k (a multiple of 8) for
// each token, row i at w+i*ldw, token j at x+j*ldx, the four sums of a
// token added to out+j*ldo..+3. Each (row, token) pair has one .4S
// accumulator, reduced with FADDP once per call.
//
// Registers: R0 the quad's first row, R1 ldw bytes, R2 quads left, R3 x,
// R5 8-column steps, R6 out, R8-R11 the tokens' x, R12-R15 the quad's
// rows, R16 steps left, R17 an out row; V16-V23 x, V24-V31 w.

// TILEARGS loads the arguments the microkernels share: w, ldw and rows
// (as bytes and quads) and x.
#define TILEARGS \
	MOVD w+0(FP), R0; \
	MOVD ldw+8(FP), R1; \
	MOVD rows+16(FP), R2; \
	MOVD x+24(FP), R3; \
	LSL  $2, R1, R1; \
	LSR  $2, R2, R2

// WIDEARGS loads the rest of the arguments of the kernels of several
// tokens: ldx and ldo as bytes, k as 8-column steps, out.
#define WIDEARGS \
	MOVD ldx+32(FP), R4; \
	MOVD k+40(FP), R5; \
	MOVD out+48(FP), R6; \
	MOVD ldo+56(FP), R7; \
	LSL  $2, R4, R4; \
	LSR  $3, R5, R5; \
	LSL  $2, R7, R7

// QUADROWS points R12-R15 at the quad's rows and loads the step count.
#define QUADROWS \
	MOVD R0, R12; \
	ADD  R1, R12, R13; \
	ADD  R1, R13, R14; \
	ADD  R1, R14, R15; \
	MOVD R5, R16

// WROWS loads the next 8 columns of the quad's rows into V24-V31 (row i's
// two halves in V(24+2i), V(25+2i)).
#define WROWS \
	VLD1.P 32(R12), [V24.S4, V25.S4]; \
	VLD1.P 32(R13), [V26.S4, V27.S4]; \
	VLD1.P 32(R14), [V28.S4, V29.S4]; \
	VLD1.P 32(R15), [V30.S4, V31.S4]

// TOKEN adds x times the four rows' halves w0..w3 into accumulators a..d.
#define TOKEN(x, w0, w1, w2, w3, a, b, c, d) \
	VFMLA w0.S4, x.S4, a.S4; \
	VFMLA w1.S4, x.S4, b.S4; \
	VFMLA w2.S4, x.S4, c.S4; \
	VFMLA w3.S4, x.S4, d.S4

// REDUCE leaves in Va the sums of Va, Vb, Vc, Vd's lanes (one each).
#define REDUCE(a, b, c, d) \
	FADDP4S(b, a, a); \
	FADDP4S(d, c, c); \
	FADDP4S(c, a, a)

// ADDOUT adds Va's four sums into the floats at R17 and steps R17 to the
// next token's row of out (R7 bytes on).
#define ADDOUT(a, va) \
	VLD1 (R17), [V16.S4]; \
	FADD4S(16, a, a); \
	VST1 [va.S4], (R17); \
	ADD  R7, R17, R17

// NEXTQUAD steps to the next quad of rows and its four floats of out,
// back to label quad while quads are left.
#define NEXTQUAD(quad) \
	ADD  $16, R6, R6; \
	ADD  R1<<2, R0, R0; \
	SUBS $1, R2, R2; \
	BNE  quad

// Panel decoders: dst[j] = scale*q_j + bias over whole groups (group a
// multiple of 8), the codes widened to int32 and converted.
//
// Registers: R0 dst, R1 codes, R2 scales, R3 biases, R4 groups left, R5
// group, R6 codes left in the group; V28 the scale, V29 the bias, V31 the
// 4-bit mask; V9-V10 codes as halfwords, V11-V14 as int32, V19-V22
// results.

// GROUPARGS loads the decoders' arguments.
#define GROUPARGS \
	MOVD dst+0(FP), R0; \
	MOVD w+8(FP), R1; \
	MOVD scales+16(FP), R2; \
	MOVD biases+24(FP), R3; \
	MOVD groups+32(FP), R4; \
	MOVD group+40(FP), R5

// GROUPSTART broadcasts the next scale and bias and sets the group's code
// count.
#define GROUPSTART \
	FMOVS.P 4(R2), F28; \
	FMOVS.P 4(R3), F29; \
	VDUP    V28.S[0], V28.S4; \
	VDUP    V29.S[0], V29.S4; \
	MOVD    R5, R6

// WORDS widens the eight halfword codes in Vh to int32 x4: codes 0-3 in
// Va, 4-7 in Vc.
#define WORDS(h, a, c) \
	VUXTL  h.H4, a.S4; \
	VUXTL2 h.H8, c.S4

// AFFINE converts the int32 codes in Vs (register number ns) and writes
// bias + scale·code to Vd.
#define AFFINE(s, ns, d) \
	SCVTF4S(ns, ns); \
	VMOV  V29.B16, d.B16; \
	VFMLA V28.S4, s.S4, d.S4

// NIBBLES splits the bytes of V2 into their low (V3) and high (V4) nibbles
// and interleaves them back into code order: codes 0-15 in V5, 16-31 in V6.
#define NIBBLES \
	VAND  V31.B16, V2.B16, V3.B16; \
	VUSHR $4, V2.B16, V4.B16; \
	VZIP1 V4.B16, V3.B16, V5.B16; \
	VZIP2 V4.B16, V3.B16, V6.B16

// EIGHT decodes the eight byte codes in the low half of V5 to dst.
#define EIGHT \
	VUXTL  V5.B8, V9.H8; \
	WORDS(V9, V11, V12); \
	AFFINE(V11, 11, V19); \
	AFFINE(V12, 12, V20); \
	VST1.P [V19.S4, V20.S4], 32(R0)

// SIXTEEN decodes the sixteen byte codes in Vb to dst.
#define SIXTEEN(b) \
	VUXTL  b.B8, V9.H8; \
	VUXTL2 b.B16, V10.H8; \
	WORDS(V9, V11, V12); \
	WORDS(V10, V13, V14); \
	AFFINE(V11, 11, V19); \
	AFFINE(V12, 12, V20); \
	AFFINE(V13, 13, V21); \
	AFFINE(V14, 14, V22); \
	VST1.P [V19.S4, V20.S4, V21.S4, V22.S4], 64(R0)

// func tile4x4NEON(w *float32, ldw, rows int, x *float32, ldx, k int, out *float32, ldo int)
// Four tokens: token j's accumulators are V(4j)..V(4j+3), rows 0..3. Per 8
// columns: 8 loads of two registers and 32 FMLAs (128 multiply-adds), and
// 16 independent accumulators cover the FMA latency.
TEXT ·tile4x4NEON(SB), NOSPLIT, $0-64
	TILEARGS
	WIDEARGS

quad4:
	QUADROWS
	MOVD R3, R8
	ADD  R4, R8, R9
	ADD  R4, R9, R10
	ADD  R4, R10, R11
	ZERO16

k4:
	VLD1.P 32(R8), [V16.S4, V17.S4]
	VLD1.P 32(R9), [V18.S4, V19.S4]
	VLD1.P 32(R10), [V20.S4, V21.S4]
	VLD1.P 32(R11), [V22.S4, V23.S4]
	WROWS
	TOKEN(V16, V24, V26, V28, V30, V0, V1, V2, V3)
	TOKEN(V18, V24, V26, V28, V30, V4, V5, V6, V7)
	TOKEN(V20, V24, V26, V28, V30, V8, V9, V10, V11)
	TOKEN(V22, V24, V26, V28, V30, V12, V13, V14, V15)
	TOKEN(V17, V25, V27, V29, V31, V0, V1, V2, V3)
	TOKEN(V19, V25, V27, V29, V31, V4, V5, V6, V7)
	TOKEN(V21, V25, V27, V29, V31, V8, V9, V10, V11)
	TOKEN(V23, V25, V27, V29, V31, V12, V13, V14, V15)
	SUBS $1, R16, R16
	BNE  k4

	REDUCE(0, 1, 2, 3)
	REDUCE(4, 5, 6, 7)
	REDUCE(8, 9, 10, 11)
	REDUCE(12, 13, 14, 15)
	MOVD R6, R17
	ADDOUT(0, V0)
	ADDOUT(4, V4)
	ADDOUT(8, V8)
	ADDOUT(12, V12)

	NEXTQUAD(quad4)
	RET

// func tile4x2NEON(w *float32, ldw, rows int, x *float32, ldx, k int, out *float32, ldo int)
// Two tokens (the remainder of 2 or 3 after tile4x4NEON's whole tiles):
// token j's rows accumulate the columns' low halves in V(8j)..V(8j+3) and
// the high halves in V(8j+4)..V(8j+7), 16 independent accumulators again.
TEXT ·tile4x2NEON(SB), NOSPLIT, $0-64
	TILEARGS
	WIDEARGS

quad2:
	QUADROWS
	MOVD R3, R8
	ADD  R4, R8, R9
	ZERO16

k2:
	VLD1.P 32(R8), [V16.S4, V17.S4]
	VLD1.P 32(R9), [V18.S4, V19.S4]
	WROWS
	TOKEN(V16, V24, V26, V28, V30, V0, V1, V2, V3)
	TOKEN(V18, V24, V26, V28, V30, V8, V9, V10, V11)
	TOKEN(V17, V25, V27, V29, V31, V4, V5, V6, V7)
	TOKEN(V19, V25, V27, V29, V31, V12, V13, V14, V15)
	SUBS $1, R16, R16
	BNE  k2

	FADD4S(4, 0, 0)
	FADD4S(5, 1, 1)
	FADD4S(6, 2, 2)
	FADD4S(7, 3, 3)
	FADD4S(12, 8, 8)
	FADD4S(13, 9, 9)
	FADD4S(14, 10, 10)
	FADD4S(15, 11, 11)
	REDUCE(0, 1, 2, 3)
	REDUCE(8, 9, 10, 11)
	MOVD R6, R17
	ADDOUT(0, V0)
	ADDOUT(8, V8)

	NEXTQUAD(quad2)
	RET

// func tile4x1NEON(w *float32, ldw, rows int, x *float32, k int, out *float32)
// One token: row i's two halves accumulate in V(2i), V(2i+1).
TEXT ·tile4x1NEON(SB), NOSPLIT, $0-48
	TILEARGS
	MOVD k+32(FP), R5
	MOVD out+40(FP), R6
	LSR  $3, R5, R5

quad1:
	QUADROWS
	MOVD R3, R8
	VEOR V0.B16, V0.B16, V0.B16
	VEOR V1.B16, V1.B16, V1.B16
	VEOR V2.B16, V2.B16, V2.B16
	VEOR V3.B16, V3.B16, V3.B16
	VEOR V4.B16, V4.B16, V4.B16
	VEOR V5.B16, V5.B16, V5.B16
	VEOR V6.B16, V6.B16, V6.B16
	VEOR V7.B16, V7.B16, V7.B16

k1:
	VLD1.P 32(R8), [V16.S4, V17.S4]
	WROWS
	TOKEN(V16, V24, V26, V28, V30, V0, V2, V4, V6)
	TOKEN(V17, V25, V27, V29, V31, V1, V3, V5, V7)
	SUBS $1, R16, R16
	BNE  k1

	FADD4S(1, 0, 0)
	FADD4S(3, 2, 2)
	FADD4S(5, 4, 4)
	FADD4S(7, 6, 6)
	REDUCE(0, 2, 4, 6)
	VLD1   (R6), [V16.S4]
	FADD4S(16, 0, 0)
	VST1   [V0.S4], (R6)
	NEXTQUAD(quad1)
	RET

// func dequant4NEON(dst *float32, w *uint32, scales, biases *float32, groups, group int)
// 32 codes (16 bytes) a step while the group has them, then 8 (a word).
TEXT ·dequant4NEON(SB), NOSPLIT, $0-48
	GROUPARGS
	VMOVI $15, V31.B16

g4:
	GROUPSTART
	CMP $32, R6
	BLT t4

m4:
	VLD1.P 16(R1), [V2.B16]
	NIBBLES
	SIXTEEN(V5)
	SIXTEEN(V6)
	SUB $32, R6, R6
	CMP $32, R6
	BGE m4

t4:
	CBZ     R6, e4
	FMOVS.P 4(R1), F2
	NIBBLES
	EIGHT
	SUB     $8, R6, R6
	B       t4

e4:
	SUBS $1, R4, R4
	BNE  g4
	RET

// func dequant8NEON(dst *float32, w *uint32, scales, biases *float32, groups, group int)
// 16 codes a step while the group has them, then 8.
TEXT ·dequant8NEON(SB), NOSPLIT, $0-48
	GROUPARGS

g8:
	GROUPSTART
	CMP $16, R6
	BLT t8

m8:
	VLD1.P 16(R1), [V5.B16]
	SIXTEEN(V5)
	SUB $16, R6, R6
	CMP $16, R6
	BGE m8

t8:
	CBZ     R6, e8
	FMOVD.P 8(R1), F5
	EIGHT
	SUB     $8, R6, R6
	B       t8

e8:
	SUBS $1, R4, R4
	BNE  g8
	RET

// func bf16NEON(dst *float32, src *uint16, n int)
// n a multiple of 8: each half-word is interleaved with a zero one below
// it, which makes it the high half of its float.
TEXT ·bf16NEON(SB), NOSPLIT, $0-24
	MOVD dst+0(FP), R0
	MOVD src+8(FP), R1
	MOVD n+16(FP), R2
	LSR  $3, R2, R2
	CBZ  R2, bfdone
	VEOR V0.B16, V0.B16, V0.B16

bf:
	VLD1.P 16(R1), [V1.H8]
	VZIP1  V1.H8, V0.H8, V2.H8
	VZIP2  V1.H8, V0.H8, V3.H8
	VST1.P [V2.S4, V3.S4], 32(R0)
	SUBS   $1, R2, R2
	BNE    bf

bfdone:
	RET
