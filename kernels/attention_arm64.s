//go:build !purego

#include "textflag.h"
#include "neon_arm64.h"

// The NEON twins of the fused f16 attention kernels (attention_amd64.s):
// scores of 2 or 4 query rows against two keys at a time, and the weighted
// values of 2 or 4 rows, 8 columns at a time, read straight from the half
// rows. FCVTL/FCVTL2 (half to single) and FMLA by element are spelled as
// WORDs like those in neon_arm64.h: the Go assembler lacks them.
#define FCVTL(n, d) WORD $(0x0E217800 | ((n)<<5) | (d))
#define FCVTL2(n, d) WORD $(0x4E217800 | ((n)<<5) | (d))

// FMLAE: Vd.4S += Vn.4S · Vm.S[i].
#define FMLAE(m, i, n, d) WORD $(0x4F801000 | (((i)&1)<<21) | (((m)>>4)<<20) | (((m)&15)<<16) | (((i)>>1)<<11) | ((n)<<5) | (d))

// SPROLOGUE loads the score kernels' arguments: s R0, q R1, 8-value
// chunks of a row R2, key row R3, key row bytes R4, keys R5, q row bytes
// R7.
#define SPROLOGUE \
	MOVD s+0(FP), R0; \
	MOVD q+8(FP), R1; \
	MOVD dk+16(FP), R2; \
	MOVD k+24(FP), R3; \
	MOVD ks+32(FP), R4; \
	MOVD nk+40(FP), R5; \
	LSL  $2, R2, R7; \
	LSR  $3, R2, R2; \
	LSL  $1, R4, R4

// KEYPAIR points R8 at the key row R3 and R9 at the next one, or at the
// same row when it is the last key (R5 keys left), and R10 at the
// chunks.
#define KEYPAIR \
	MOVD R3, R8; \
	ADD  R4, R3, R9; \
	CMP  $2, R5; \
	CSEL LT, R3, R9, R9; \
	MOVD R2, R10

// KCHUNK loads the next chunk of both keys as single precision: key 1
// into V26-V27, key 2 into V28-V29.
#define KCHUNK \
	VLD1.P 16(R8), [V24.H8]; \
	VLD1.P 16(R9), [V25.H8]; \
	FCVTL(24, 26); \
	FCVTL2(24, 27); \
	FCVTL(25, 28); \
	FCVTL2(25, 29)

// ROWFMA adds query row chunk (ql, qh) times both keys into (a1, a2) and
// (b1, b2).
#define ROWFMA(ql, qh, a1, a2, b1, b2) \
	VFMLA ql.S4, V26.S4, a1.S4; \
	VFMLA qh.S4, V27.S4, a2.S4; \
	VFMLA ql.S4, V28.S4, b1.S4; \
	VFMLA qh.S4, V29.S4, b2.S4

// ROWSUMS leaves in a the four sums of (a, a+1), (b, b+1), (c, c+1),
// (d, d+1), each pair one row's two halves.
#define ROWSUMS(a, b, c, d) \
	FADD4S(a+1, a, a); \
	FADD4S(b+1, b, b); \
	FADD4S(c+1, c, c); \
	FADD4S(d+1, d, d); \
	FADDP4S(b, a, a); \
	FADDP4S(d, c, c); \
	FADDP4S(c, a, a)

// PPROLOGUE loads the value kernels' arguments: o R0, o row bytes R7,
// 8-column chunks R1, corr R2, p R3, value row R4, value row bytes R5,
// keys R6.
#define PPROLOGUE \
	MOVD o+0(FP), R0; \
	MOVD dv+8(FP), R1; \
	MOVD corr+16(FP), R2; \
	MOVD p+24(FP), R3; \
	MOVD v+32(FP), R4; \
	MOVD vs+40(FP), R5; \
	MOVD nk+48(FP), R6; \
	LSL  $2, R1, R7; \
	LSR  $3, R1, R1; \
	LSL  $1, R5, R5

// OROW sets (V<n>, V<n+1>), which are v1 and v2, to the 8 floats at r
// times the rescale in lane i of V31 (V16-V17 scratch).
#define OROW(r, i, v1, v2, n) \
	VLD1 (r), [V16.S4, V17.S4]; \
	VEOR v1.B16, v1.B16, v1.B16; \
	VEOR v2.B16, v2.B16, v2.B16; \
	FMLAE(31, i, 16, n); \
	FMLAE(31, i, 17, n+1)

// VCHUNK loads the 8 halves at R10 as single precision into V25-V26 and
// steps R10 to the next value row.
#define VCHUNK \
	VLD1 (R10), [V24.H8]; \
	ADD  R5, R10, R10; \
	FCVTL(24, 25); \
	FCVTL2(24, 26)

// func attnScoresF16x2NEON(s *float32, q *float32, dk int, k *uint16, ks, nk int)
// s[j*2+i] = q_i·k_j (half) for rows i < 2, keys j < nk (≥ 1), dk a
// multiple of 8, two keys at a time (s written up to nk rounded up to 2):
// accumulators V0-V3 key 1 (row 0 halves, row 1 halves), V4-V7 key 2.
TEXT ·attnScoresF16x2NEON(SB), NOSPLIT, $0-48
	SPROLOGUE

s2pair:
	KEYPAIR
	ZERO16
	MOVD R1, R11
	ADD  R7, R1, R12

s2chunk:
	KCHUNK
	VLD1.P 32(R11), [V16.S4, V17.S4]
	VLD1.P 32(R12), [V18.S4, V19.S4]
	ROWFMA(V16, V17, V0, V1, V4, V5)
	ROWFMA(V18, V19, V2, V3, V6, V7)
	SUBS   $1, R10, R10
	BNE    s2chunk

	ROWSUMS(0, 2, 4, 6)
	VST1.P [V0.S4], 16(R0)
	ADD    R4<<1, R3, R3
	SUBS   $2, R5, R5
	BGT    s2pair
	RET

// func attnScoresF16x4NEON(s *float32, q *float32, dk int, k *uint16, ks, nk, ps int)
// The same for rows i < 4, s[j*ps+i] (ps 4, or 8 when a second call does
// rows 4..7 at s[4:]): V0-V7 key 1 (rows 0-3, two halves each), V8-V15
// key 2.
TEXT ·attnScoresF16x4NEON(SB), NOSPLIT, $0-56
	SPROLOGUE
	MOVD ps+48(FP), R6
	LSL  $2, R6, R6

s4pair:
	KEYPAIR
	ZERO16
	MOVD R1, R11
	ADD  R7, R1, R12
	ADD  R7, R12, R13
	ADD  R7, R13, R14

s4chunk:
	KCHUNK
	VLD1.P 32(R11), [V16.S4, V17.S4]
	VLD1.P 32(R12), [V18.S4, V19.S4]
	VLD1.P 32(R13), [V20.S4, V21.S4]
	VLD1.P 32(R14), [V22.S4, V23.S4]
	ROWFMA(V16, V17, V0, V1, V8, V9)
	ROWFMA(V18, V19, V2, V3, V10, V11)
	ROWFMA(V20, V21, V4, V5, V12, V13)
	ROWFMA(V22, V23, V6, V7, V14, V15)
	SUBS   $1, R10, R10
	BNE    s4chunk

	ROWSUMS(0, 2, 4, 6)
	ROWSUMS(8, 10, 12, 14)
	VST1 [V0.S4], (R0)
	ADD  R6, R0, R0
	VST1 [V8.S4], (R0)
	ADD  R6, R0, R0
	ADD  R4<<1, R3, R3
	SUBS $2, R5, R5
	BGT  s4pair
	RET

// func attnPVF16x2NEON(o *float32, dv int, corr *float32, p *float32, v *uint16, vs, nk int)
// o[i*dv+c] = o[i*dv+c]·corr[i] + Σ_j p[j*2+i]·v[j*vs+c] (half) for
// i < 2, c < dv (a multiple of 8), j < nk (≥ 1): 8 columns of both rows
// in V0-V3 while every key's value chunk is added.
TEXT ·attnPVF16x2NEON(SB), NOSPLIT, $0-56
	PPROLOGUE
	FMOVD (R2), F31

pv2col:
	ADD  R7, R0, R8
	OROW(R0, 0, V0, V1, 0)
	OROW(R8, 1, V2, V3, 2)
	MOVD R4, R10
	MOVD R3, R11
	MOVD R6, R12

pv2key:
	VCHUNK
	FMOVD.P 8(R11), F27
	FMLAE(27, 0, 25, 0)
	FMLAE(27, 0, 26, 1)
	FMLAE(27, 1, 25, 2)
	FMLAE(27, 1, 26, 3)
	SUBS    $1, R12, R12
	BNE     pv2key

	VST1   [V2.S4, V3.S4], (R8)
	VST1.P [V0.S4, V1.S4], 32(R0)
	ADD    $16, R4, R4
	SUBS   $1, R1, R1
	BNE    pv2col
	RET

// func attnPVF16x4NEON(o *float32, dv int, corr *float32, p *float32, v *uint16, vs, nk, ps int)
// The same for rows i < 4, p[j*ps+i] (ps 4, or 8 when a second call does
// rows 4..7): V0-V7.
TEXT ·attnPVF16x4NEON(SB), NOSPLIT, $0-64
	PPROLOGUE
	MOVD ps+56(FP), R13
	LSL  $2, R13, R13
	VLD1 (R2), [V31.S4]

pv4col:
	ADD  R7, R0, R8
	ADD  R7, R8, R9
	ADD  R7, R9, R14
	OROW(R0, 0, V0, V1, 0)
	OROW(R8, 1, V2, V3, 2)
	OROW(R9, 2, V4, V5, 4)
	OROW(R14, 3, V6, V7, 6)
	MOVD R4, R10
	MOVD R3, R11
	MOVD R6, R12

pv4key:
	VCHUNK
	VLD1 (R11), [V27.S4]
	ADD  R13, R11, R11
	FMLAE(27, 0, 25, 0)
	FMLAE(27, 0, 26, 1)
	FMLAE(27, 1, 25, 2)
	FMLAE(27, 1, 26, 3)
	FMLAE(27, 2, 25, 4)
	FMLAE(27, 2, 26, 5)
	FMLAE(27, 3, 25, 6)
	FMLAE(27, 3, 26, 7)
	SUBS $1, R12, R12
	BNE  pv4key

	VST1   [V2.S4, V3.S4], (R8)
	VST1   [V4.S4, V5.S4], (R9)
	VST1   [V6.S4, V7.S4], (R14)
	VST1.P [V0.S4, V1.S4], 32(R0)
	ADD    $16, R4, R4
	SUBS   $1, R1, R1
	BNE    pv4col
	RET
