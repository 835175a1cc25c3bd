//go:build !purego

#include "textflag.h"
#include "neon_arm64.h"

// Float-path quantized row dot products (NEON), the arm64 twins of
// qmv_amd64.s's qdot4AVX2 and qdot8AVX2 and with the same contract:
//
//	Σ_g scale_g · Σ_{j in g} (q_j-c)·x_j + (bias_g + c·scale_g) · xsum_g
//
// Codes are widened to int32, centred, converted and multiplied by x in
// float32. Instructions the Go assembler lacks are spelled as WORDs:
// SCVTF (vector) here, FADD and FADDP (vector) in neon_arm64.h, all on .4S.

#define SCVTF4S(n, d) WORD $(0x4E21D800 | (n<<5) | d)

// Registers: R0 w, R1 x, R2 scales, R3 biases, R4 xsum, R5 groups, R6 steps,
// R7 f16; V0 row sum, F1 bias sum, V20-V23 the group's partial sums,
// V24-V27 x, F17 c as float32, V30 c as int32 x4, V31 0x0f bytes.
#define ARGS \
	MOVD  w+0(FP), R0; \
	MOVD  x+8(FP), R1; \
	MOVD  scales+16(FP), R2; \
	MOVD  biases+24(FP), R3; \
	MOVD  xsum+32(FP), R4; \
	MOVD  groups+40(FP), R5; \
	MOVD  steps+48(FP), R6; \
	MOVBU f16+56(FP), R7; \
	VEOR  V0.B16, V0.B16, V0.B16; \
	VEOR  V1.B16, V1.B16, V1.B16

// CENTRE sets V30 to c (in R9) as int32 x4 and F17 to c as float32.
#define CENTRE \
	VDUP   R9, V30.S4; \
	SCVTFWS R9, F17

// GROUPSTART clears the group's partial sums and loads the step count.
#define GROUPSTART \
	VEOR V20.B16, V20.B16, V20.B16; \
	VEOR V21.B16, V21.B16, V21.B16; \
	VEOR V22.B16, V22.B16, V22.B16; \
	VEOR V23.B16, V23.B16, V23.B16; \
	MOVD R6, R8

// GROUPEND adds the partial sums, folds them into V0 times the scale and
// the bias term into F1, and steps to the next group.
#define GROUPEND \
	FADD4S(21, 20, 20); \
	FADD4S(23, 22, 22); \
	FADD4S(22, 20, 20); \
	SCALEBIAS(R2, R3, R9, R10, R7, R4); \
	VDUP    V28.S[0], V28.S4; \
	VFMLA   V28.S4, V20.S4, V0.S4

// SCALEBIAS loads the next scale and bias (bf16, or fp16 when register
// f16 is set) from ps and pb into F28 and F29 (through t1, t2), adds
// (bias + c·scale) times the next xsum value at px to F1, and leaves the
// scale in F28.
#define SCALEBIAS(ps, pb, t1, t2, f16, px) \
	MOVHU.P 2(ps), t1; \
	MOVHU.P 2(pb), t2; \
	CBNZ    f16, 6(PC); \
	LSLW    $16, t1, t1; \
	LSLW    $16, t2, t2; \
	FMOVS   t1, F28; \
	FMOVS   t2, F29; \
	JMP     5(PC); \
	FMOVS   t1, F28; \
	FMOVS   t2, F29; \
	FCVTHS  F28, F28; \
	FCVTHS  F29, F29; \
	FMADDS  F28, F29, F17, F29; \
	FMOVS.P 4(px), F18; \
	FMADDS  F18, F1, F29, F1

// RESULT reduces V0 and F1 to the float32 result in F0.
#define RESULT \
	FADDP4S(0, 0, 0); \
	FADDP4S(0, 0, 0); \
	FADDS   F1, F0, F0

// WIDEN4 turns the eight halfwords of Vh into int32 x4 in Va (low four)
// and Vb (high four), centred by V30.
#define WIDEN4(h, a, b) \
	VUXTL  h.H4, a.S4; \
	VUXTL2 h.H8, b.S4; \
	VSUB   V30.S4, a.S4, a.S4; \
	VSUB   V30.S4, b.S4, b.S4

// CVTFMA4 converts the centred codes in a..d (register numbers na..nd)
// to float32 and accumulates their products with the next 16 x values
// into V20..V23.
#define CVTFMA4(a, b, c, d, na, nb, nc, nd) \
	SCVTF4S(na, na); \
	SCVTF4S(nb, nb); \
	SCVTF4S(nc, nc); \
	SCVTF4S(nd, nd); \
	VLD1.P 64(R1), [V24.S4, V25.S4, V26.S4, V27.S4]; \
	VFMLA  a.S4, V24.S4, V20.S4; \
	VFMLA  b.S4, V25.S4, V21.S4; \
	VFMLA  c.S4, V26.S4, V22.S4; \
	VFMLA  d.S4, V27.S4, V23.S4

// Int16-activation row kernels (NEON), the arm64 twins of qrows4Q16AVX2 and
// qrows8Q16AVX2 with the same contract and input layout: xq per block of 32
// values as its 16 even values then its 16 odd ones, corr = c·Σxq per
// group. Codes are widened to halfwords and multiplied into int32 lanes
// with SMLAL/SMLAL2 (spelled as WORDs), exact per group (at most
// 255·32767·16 per lane at group 128); each group's sum, less corr, meets
// scale·dx in float32, and (bias + c·scale)·xsum is summed beside it.
//
// Registers: R0 codes, R1 xq, R2 corr, R3 scales, R4 biases, R5 dx, R6 xsum,
// R7 out, R8 rows left, R9 groups left, R10 steps left, R11 f16; V0 the
// codes' term, F1 the bias term, F17 c, V20-V23 the group's int32 sums,
// V24-V27 xq, V31 the code mask.

// SMLAL (SMLAL2) adds the products of the low (high) four halfwords of Vn
// and Vm to the int32 lanes of Vd.
#define SMLAL(d, n, m) WORD $(0x0E608000 | (m<<16) | (n<<5) | d)
#define SMLAL2(d, n, m) WORD $(0x4E608000 | (m<<16) | (n<<5) | d)

// Q16MUL multiplies the widened codes V5-V8 (even 0-7, even 8-15, odd 0-7,
// odd 8-15) by the block's 32 xq values into V20-V23.
#define Q16MUL \
	VLD1.P 64(R1), [V24.H8, V25.H8, V26.H8, V27.H8]; \
	SMLAL(20, 5, 24); \
	SMLAL2(21, 5, 24); \
	SMLAL(22, 6, 25); \
	SMLAL2(23, 6, 25); \
	SMLAL(20, 7, 26); \
	SMLAL2(21, 7, 26); \
	SMLAL(22, 8, 27); \
	SMLAL2(23, 8, 27)

// Q16GROUPSTART clears the group's sums and loads the step count.
#define Q16GROUPSTART \
	VEOR V20.B16, V20.B16, V20.B16; \
	VEOR V21.B16, V21.B16, V21.B16; \
	VEOR V22.B16, V22.B16, V22.B16; \
	VEOR V23.B16, V23.B16, V23.B16; \
	MOVD R14, R10

// Q16GROUPEND folds the group's sums less corr into V0 times scale·dx and
// (bias + c·scale)·xsum into F1, stepping to the next group.
#define Q16GROUPEND \
	VADD    V21.S4, V20.S4, V20.S4; \
	VADD    V23.S4, V22.S4, V22.S4; \
	VADD    V22.S4, V20.S4, V20.S4; \
	FMOVS.P 4(R2), F9; \
	VSUB    V9.S4, V20.S4, V20.S4; \
	GROUPFOLD

// GROUPFOLD folds the group's int32 sums in V20 into V0 times scale·dx and
// (bias + c·scale)·xsum into F1, stepping to the next group.
#define GROUPFOLD \
	SCVTF4S(20, 20); \
	SCALEBIAS(R3, R4, R12, R13, R11, R6); \
	FMOVS.P 4(R5), F19; \
	FMULS   F19, F28, F28; \
	VDUP    V28.S[0], V28.S4; \
	VFMLA   V28.S4, V20.S4, V0.S4

// Q16ARGS loads what stays fixed across rows.
#define Q16ARGS \
	MOVD  w+0(FP), R0; \
	MOVD  scales+24(FP), R3; \
	MOVD  biases+32(FP), R4; \
	MOVD  out+56(FP), R7; \
	MOVD  rows+64(FP), R8; \
	MOVD  steps+80(FP), R14; \
	MOVBU f16+88(FP), R11; \
	FMOVS c+92(FP), F17

// NEONROWS is an integer row kernel's loop over rows, groups and steps:
// ROWSTART sets a row's own pointers, GROUPSTART a group's sums, STEP reads
// and multiplies a step's codes, GROUPEND folds a group into the row (labels
// row, group, step).
#define NEONROWS(ROWSTART, GROUPSTART, STEP, GROUPEND, row, group, step) \
row:; \
	MOVD xq+8(FP), R1; \
	ROWSTART; \
	MOVD dx+40(FP), R5; \
	MOVD xsum+48(FP), R6; \
	MOVD groups+72(FP), R9; \
	VEOR V0.B16, V0.B16, V0.B16; \
	VEOR V1.B16, V1.B16, V1.B16; \
group:; \
	GROUPSTART; \
step:; \
	STEP; \
	SUBS $1, R10, R10; \
	BNE  step; \
	GROUPEND; \
	SUBS $1, R9, R9; \
	BNE  group; \
	RESULT; \
	FMOVS.P F0, 4(R7); \
	SUBS    $1, R8, R8; \
	BNE     row

// Q16ROWSTART points R2 at the row's corr; Q16STEP4 and Q16STEP8 read and
// multiply a step of 4- and 8-bit codes.
#define Q16ROWSTART MOVD corr+16(FP), R2
#define Q16STEP4 UNPACK4; Q16MUL
#define Q16STEP8 UNPACK8; Q16MUL

// UNPACK4 splits a step's 16 bytes into the halfword codes V5-V8.
#define UNPACK4 \
	VLD1.P 16(R0), [V2.B16]; \
	VAND   V31.B16, V2.B16, V3.B16; \
	VUSHR  $4, V2.B16, V4.B16; \
	VUXTL  V3.B8, V5.H8; \
	VUXTL2 V3.B16, V6.H8; \
	VUXTL  V4.B8, V7.H8; \
	VUXTL2 V4.B16, V8.H8

// UNPACK8 reads a step's 32 bytes as halfwords: their low bytes are the
// even values, their high bytes the odd ones, so no byte is widened.
#define UNPACK8 \
	VLD1.P 32(R0), [V2.B16, V3.B16]; \
	VAND   V31.B16, V2.B16, V5.B16; \
	VAND   V31.B16, V3.B16, V6.B16; \
	VUSHR  $8, V2.H8, V7.H8; \
	VUSHR  $8, V3.H8, V8.H8

// Int8-activation row kernels (NEON with the dot-product extension), the
// arm64 forms of qrows4Q8x1AVX2 and qrows8Q8x1AVX2 with the same sums:
// SDOT (spelled as a WORD) adds four int8 products to each int32 lane, so
// a block of 32 values is two SDOTs. 4-bit codes stay unsigned (0..15 are
// valid signed bytes; c = 0) and meet xq stored per block as 16 even
// values then 16 odd ones; 8-bit codes are centred to q-128 by flipping
// their top bit (c = 128) and meet xq in order. The token's blocks are
// xstep bytes apart (other tokens' blocks sit between them), so a call
// covers one token; the Go side runs the tokens in turn over row blocks.
//
// Registers as in the int16 kernels, but R1 steps by R15 (xstep) and the
// group's sums are V20 and V21.

// SDOT adds the products of Vn's and Vm's signed bytes, four per lane, to
// the int32 lanes of Vd.
#define SDOT(d, n, m) WORD $(0x4E809400 | (m<<16) | (n<<5) | d)

// Q8STEP4 and Q8STEP8 add a block of 32 values' products to V20 and V21.
#define Q8STEP4 \
	VLD1.P 16(R0), [V2.B16]; \
	VAND   V31.B16, V2.B16, V3.B16; \
	VUSHR  $4, V2.B16, V4.B16; \
	VLD1   (R1), [V24.B16, V25.B16]; \
	ADD    R15, R1, R1; \
	SDOT(20, 3, 24); \
	SDOT(21, 4, 25)

#define Q8STEP8 \
	VLD1.P 32(R0), [V2.B16, V3.B16]; \
	VEOR   V31.B16, V2.B16, V2.B16; \
	VEOR   V31.B16, V3.B16, V3.B16; \
	VLD1   (R1), [V24.B16, V25.B16]; \
	ADD    R15, R1, R1; \
	SDOT(20, 2, 24); \
	SDOT(21, 3, 25)

// Q8GROUPEND adds the group's two sums and folds them (GROUPFOLD).
#define Q8GROUPEND \
	VADD V21.S4, V20.S4, V20.S4; \
	GROUPFOLD

// Q8ROWSTART sets R15 to xstep; Q8GROUPSTART clears a group's sums and
// loads the step count.
#define Q8ROWSTART MOVD xstep+16(FP), R15

#define Q8GROUPSTART \
	VEOR V20.B16, V20.B16, V20.B16; \
	VEOR V21.B16, V21.B16, V21.B16; \
	MOVD R14, R10

// func qdot4NEON(w *byte, x *float32, scales, biases *uint16, xsum *float32, groups, steps int, f16 bool) float32
//
// x is permuted in blocks of 32: the sixteen even-indexed values, then the
// sixteen odd ones (a byte's low nibble is the even value).
TEXT ·qdot4NEON(SB), NOSPLIT, $0-68
	ARGS
	VMOVI $15, V31.B16
	MOVD  $8, R9
	CENTRE

group4:
	GROUPSTART

step4:
	VLD1.P 16(R0), [V2.B16]
	VAND   V31.B16, V2.B16, V3.B16
	VUSHR  $4, V2.B16, V4.B16
	VUXTL  V3.B8, V5.H8
	VUXTL2 V3.B16, V6.H8
	VUXTL  V4.B8, V7.H8
	VUXTL2 V4.B16, V8.H8
	WIDEN4(V5, V9, V10)
	WIDEN4(V6, V11, V12)
	WIDEN4(V7, V13, V14)
	WIDEN4(V8, V15, V16)
	CVTFMA4(V9, V10, V11, V12, 9, 10, 11, 12)
	CVTFMA4(V13, V14, V15, V16, 13, 14, 15, 16)
	SUBS   $1, R8, R8
	BNE    step4

	GROUPEND
	SUBS $1, R5, R5
	BNE  group4
	RESULT
	FMOVS F0, ret+64(FP)
	RET

// func qdot8NEON(w *byte, x *float32, scales, biases *uint16, xsum *float32, groups, steps int, f16 bool) float32
TEXT ·qdot8NEON(SB), NOSPLIT, $0-68
	ARGS
	MOVD $128, R9
	CENTRE

group8:
	GROUPSTART
	LSL $1, R8, R8 // 16 values a step

step8:
	VLD1.P 16(R0), [V2.B16]
	VUXTL  V2.B8, V5.H8
	VUXTL2 V2.B16, V6.H8
	WIDEN4(V5, V9, V10)
	WIDEN4(V6, V11, V12)
	CVTFMA4(V9, V10, V11, V12, 9, 10, 11, 12)
	SUBS   $1, R8, R8
	BNE    step8

	GROUPEND
	SUBS $1, R5, R5
	BNE  group8
	RESULT
	FMOVS F0, ret+64(FP)
	RET

// func qrows4Q16NEON(w *byte, xq *int16, corr *int32, scales, biases *uint16, dx, xsum, out *float32, rows, groups, steps int, f16 bool, c float32)
TEXT ·qrows4Q16NEON(SB), NOSPLIT, $0-96
	Q16ARGS
	VMOVI $15, V31.B16
	NEONROWS(Q16ROWSTART, Q16GROUPSTART, Q16STEP4, Q16GROUPEND, row4w, group4w, step4w)
	RET

// func qrows8Q16NEON(w *byte, xq *int16, corr *int32, scales, biases *uint16, dx, xsum, out *float32, rows, groups, steps int, f16 bool, c float32)
TEXT ·qrows8Q16NEON(SB), NOSPLIT, $0-96
	Q16ARGS
	MOVD $0x00ff00ff, R12
	VDUP R12, V31.S4
	NEONROWS(Q16ROWSTART, Q16GROUPSTART, Q16STEP8, Q16GROUPEND, row8w, group8w, step8w)
	RET

// func qrows4Q8NEON(w *byte, xq *int8, xstep int, scales, biases *uint16, dx, xsum, out *float32, rows, groups, steps int, f16 bool, c float32)
TEXT ·qrows4Q8NEON(SB), NOSPLIT, $0-96
	Q16ARGS
	VMOVI $15, V31.B16
	NEONROWS(Q8ROWSTART, Q8GROUPSTART, Q8STEP4, Q8GROUPEND, row4b, group4b, step4b)
	RET

// func qrows8Q8NEON(w *byte, xq *int8, xstep int, scales, biases *uint16, dx, xsum, out *float32, rows, groups, steps int, f16 bool, c float32)
TEXT ·qrows8Q8NEON(SB), NOSPLIT, $0-96
	Q16ARGS
	VMOVI $128, V31.B16
	NEONROWS(Q8ROWSTART, Q8GROUPSTART, Q8STEP8, Q8GROUPEND, row8b, group8b, step8b)
	RET
