//go:build !purego

#include "textflag.h"

// SCVTF, FADD and FADDP (vector, .4S) and SSHLL #0 (SXTL: signed widening)
// are spelled as WORDs: the Go assembler lacks them.
#define SCVTF4S(n, d) WORD $(0x4E21D800 | (n<<5) | d)
#define FADD4S(m, n, d) WORD $(0x4E20D400 | (m<<16) | (n<<5) | d)
#define FADDP4S(m, n, d) WORD $(0x6E20D400 | (m<<16) | (n<<5) | d)
#define SXTL8H(n, d) WORD $(0x0F08A400 | (n<<5) | d)
#define SXTL28H(n, d) WORD $(0x4F08A400 | (n<<5) | d)
#define SXTL4S(n, d) WORD $(0x0F10A400 | (n<<5) | d)
#define SXTL24S(n, d) WORD $(0x4F10A400 | (n<<5) | d)

// func mxdot4NEON(w *byte, x *float32, scales *byte, table *float32, lut *byte, groups int) float32
//
// The NEON twin of mxdot4AVX2: per group of 32 values (16 bytes), TBL
// looks the E2M1 codes up as twice their value in int8 (lut), ZIP puts
// them back in element order, they are widened, converted and multiplied
// with x; the group's sum is scaled by table[scale byte] (half the E8M0
// scale). Registers: R0 w, R1 x, R2 scales, R3 table, R5 groups; V0 the
// row sum, V20-V23 the group's partial sums, V30 lut, V31 0x0f bytes.
TEXT ·mxdot4NEON(SB), NOSPLIT, $0-52
	MOVD  w+0(FP), R0
	MOVD  x+8(FP), R1
	MOVD  scales+16(FP), R2
	MOVD  table+24(FP), R3
	MOVD  lut+32(FP), R4
	MOVD  groups+40(FP), R5
	VLD1  (R4), [V30.B16]
	VMOVI $15, V31.B16
	VEOR  V0.B16, V0.B16, V0.B16

group:
	VLD1.P 16(R0), [V2.B16]
	VAND   V31.B16, V2.B16, V3.B16
	VUSHR  $4, V2.B16, V4.B16
	VTBL   V3.B16, [V30.B16], V5.B16
	VTBL   V4.B16, [V30.B16], V6.B16
	VZIP1  V6.B16, V5.B16, V7.B16
	VZIP2  V6.B16, V5.B16, V8.B16
	SXTL8H(7, 9)
	SXTL28H(7, 10)
	SXTL8H(8, 11)
	SXTL28H(8, 12)
	SXTL4S(9, 13)
	SXTL24S(9, 14)
	SXTL4S(10, 15)
	SXTL24S(10, 16)
	SXTL4S(11, 17)
	SXTL24S(11, 18)
	SXTL4S(12, 19)
	SXTL24S(12, 24)
	SCVTF4S(13, 13)
	SCVTF4S(14, 14)
	SCVTF4S(15, 15)
	SCVTF4S(16, 16)
	SCVTF4S(17, 17)
	SCVTF4S(18, 18)
	SCVTF4S(19, 19)
	SCVTF4S(24, 24)
	VEOR   V20.B16, V20.B16, V20.B16
	VEOR   V21.B16, V21.B16, V21.B16
	VEOR   V22.B16, V22.B16, V22.B16
	VEOR   V23.B16, V23.B16, V23.B16
	VLD1.P 64(R1), [V25.S4, V26.S4, V27.S4, V28.S4]
	VFMLA  V13.S4, V25.S4, V20.S4
	VFMLA  V14.S4, V26.S4, V21.S4
	VFMLA  V15.S4, V27.S4, V22.S4
	VFMLA  V16.S4, V28.S4, V23.S4
	VLD1.P 64(R1), [V25.S4, V26.S4, V27.S4, V28.S4]
	VFMLA  V17.S4, V25.S4, V20.S4
	VFMLA  V18.S4, V26.S4, V21.S4
	VFMLA  V19.S4, V27.S4, V22.S4
	VFMLA  V24.S4, V28.S4, V23.S4
	FADD4S(21, 20, 20)
	FADD4S(23, 22, 22)
	FADD4S(22, 20, 20)
	MOVBU.P 1(R2), R9
	MOVWU  (R3)(R9<<2), R10
	FMOVS  R10, F29
	VDUP   V29.S[0], V29.S4
	VFMLA  V29.S4, V20.S4, V0.S4
	SUBS   $1, R5, R5
	BNE    group

	FADDP4S(0, 0, 0)
	FADDP4S(0, 0, 0)
	FMOVS F0, ret+48(FP)
	RET
