//go:build !purego

#include "textflag.h"

// Float-path quantized row dot products (AVX2 + FMA). Each returns
//
//	Σ_g scale_g · Σ_{j in g} (q_j-c)·x_j + (bias_g + c·scale_g) · xsum_g
//
// for one row of groups groups of 32·steps values, c the middle code:
// codes are widened to int32, centred, converted to float32 and multiplied
// by x in float32, so the result matches the Go reference up to the order
// of the additions. (Without centring the two terms are large and opposite
// and a long row loses about three decimal digits.) Scales and biases are
// bf16, or fp16 when f16 is set.

// SCALES loads scale and bias number g (R8, R9) as float32 into X6, X7.
#define SCALES \
	MOVWLZX (R8), AX; \
	MOVWLZX (R9), BX; \
	TESTQ   R12, R12; \
	JNZ     3(PC); \
	SHLL    $16, AX; \
	SHLL    $16, BX; \
	VMOVD   AX, X6; \
	VMOVD   BX, X7; \
	TESTQ   R12, R12; \
	JZ      3(PC); \
	VCVTPH2PS X6, X6; \
	VCVTPH2PS X7, X7

// GROUPEND folds the group's partial dots Y2..Y5 into the row sum Y0
// (times the scale) and the bias term into X14, then steps to the next group.
#define GROUPEND \
	VADDPS      Y3, Y2, Y2; \
	VADDPS      Y5, Y4, Y4; \
	VADDPS      Y4, Y2, Y2; \
	SCALES; \
	VFMADD231SS X6, X13, X7; \
	VBROADCASTSS X6, Y6; \
	VFMADD231PS Y6, Y2, Y0; \
	VFMADD231SS (R10), X7, X14; \
	ADDQ        $2, R8; \
	ADDQ        $2, R9; \
	ADDQ        $4, R10

// RESULT reduces Y0 + X14 to the float32 result.
#define RESULT \
	VEXTRACTF128 $1, Y0, X1; \
	VADDPS       X1, X0, X0; \
	VHADDPS      X0, X0, X0; \
	VHADDPS      X0, X0, X0; \
	VADDSS       X14, X0, X0; \
	VZEROUPPER

#define ARGS \
	MOVQ    w+0(FP), SI; \
	MOVQ    x+8(FP), DI; \
	MOVQ    scales+16(FP), R8; \
	MOVQ    biases+24(FP), R9; \
	MOVQ    xsum+32(FP), R10; \
	MOVQ    groups+40(FP), CX; \
	MOVQ    steps+48(FP), R11; \
	MOVBQZX f16+56(FP), R12; \
	VXORPS  Y0, Y0, Y0; \
	VXORPS  X14, X14, X14

// CENTREFMA centres the int32 codes in Y6..Y9 (less Y11), converts them
// to float32 and accumulates their products with the next 32 x values
// into Y2..Y5, stepping DI past them.
#define CENTREFMA \
	VPSUBD      Y11, Y6, Y6; \
	VPSUBD      Y11, Y7, Y7; \
	VPSUBD      Y11, Y8, Y8; \
	VPSUBD      Y11, Y9, Y9; \
	VCVTDQ2PS   Y6, Y6; \
	VCVTDQ2PS   Y7, Y7; \
	VCVTDQ2PS   Y8, Y8; \
	VCVTDQ2PS   Y9, Y9; \
	VFMADD231PS (DI), Y6, Y2; \
	VFMADD231PS 32(DI), Y7, Y3; \
	VFMADD231PS 64(DI), Y8, Y4; \
	VFMADD231PS 96(DI), Y9, Y5; \
	ADDQ        $128, DI

// QSCALES is the scales pass: for CX groups from scales R8 and biases R9
// (bf16, or fp16 when R12 is set), it writes scale·dx (dx at R10) to R13
// and adds (bias + c·scale)·xsum (xsum at R11, c in Y12) to Y11 and X14,
// eight groups at a time then one by one. v, h, s, t and e are its labels
// (e: done), unique in the function.
#define QSCALES(v, h, s, t, e) \
v:; \
	CMPQ      CX, $8; \
	JLT       t; \
	TESTQ     R12, R12; \
	JNZ       h; \
	VPMOVZXWD (R8), Y6; \
	VPMOVZXWD (R9), Y7; \
	VPSLLD    $16, Y6, Y6; \
	VPSLLD    $16, Y7, Y7; \
	JMP       s; \
h:; \
	VCVTPH2PS (R8), Y6; \
	VCVTPH2PS (R9), Y7; \
s:; \
	VFMADD231PS Y12, Y6, Y7; \
	VFMADD231PS (R11), Y7, Y11; \
	VMULPS      (R10), Y6, Y6; \
	VMOVUPS     Y6, (R13); \
	ADDQ        $16, R8; \
	ADDQ        $16, R9; \
	ADDQ        $32, R10; \
	ADDQ        $32, R11; \
	ADDQ        $32, R13; \
	SUBQ        $8, CX; \
	JMP         v; \
t:; \
	TESTQ CX, CX; \
	JZ    e; \
	SCALES; \
	VFMADD231SS X12, X6, X7; \
	VFMADD231SS (R11), X7, X14; \
	VMULSS      (R10), X6, X6; \
	VMOVSS      X6, (R13); \
	ADDQ        $2, R8; \
	ADDQ        $2, R9; \
	ADDQ        $4, R10; \
	ADDQ        $4, R11; \
	ADDQ        $4, R13; \
	DECQ        CX; \
	JMP         t; \
e:

// REDUCE sums the lanes of y (its low half x) into x's lane 0 (t scratch).
#define REDUCE(y, x, t) \
	VEXTRACTF128 $1, y, t; \
	VADDPS       t, x, x; \
	VHADDPS      x, x, x; \
	VHADDPS      x, x, x

// Int8-activation row kernels (AVX2): x is quantized once per vector to
// int8 per group (xq = round(x/dx)), codes meet it in VPMADDUBSW (32
// products per instruction) and each group's exact integer sum becomes
// float once:
//
//	Σ_g scale_g·dx_g·Σ(q_j-c)·xq_j + (bias_g + c·scale_g)·xsum_g
//
// with xsum_g = dx_g·Σxq_j, so a result is the float path's on the
// dequantized int8 x. The 8-bit kernels centre the codes (c = 128); the
// 4-bit ones keep them unsigned (c = 0): the integer sums are exact, so
// what centring buys the float path (no per-value rounding of two large
// opposite terms) is a rounding or two per group here, and dropping it
// saves a correction per group and token. Each call computes a block of
// rows (so a MoE expert's short rows, 512 values of down, do not pay a Go
// call per row) with the scales pass inline and the group loop unrolled
// per group size (two groups a turn), asking for the codes 1 KiB ahead
// (with only a few loads in flight between the arithmetic, kernels without
// the hint reached about 0.6 of the streaming-read bandwidth, with it about
// 0.7: BENCHMARKS.md, "Int16 activations"). Each computes N = 1..4
// tokens (qrows{4,8}Q8x{N}AVX2): a block of codes is unpacked once and
// meets every token's xq, so a further token costs its multiply-adds only.
// Per token the operations and their order are the same whatever N is, so
// a token's results do not depend on the tokens beside it, to the bit.
//
// Layout for N tokens: xq per block of B values (64 for 4-bit groups of 64
// and 128, else 32) token after token; dx and xsum token after token,
// groups values each; sdx is scratch for N·(16+groups) floats: per token
// its bias term (8 lanes, then a scalar) in 64 bytes, then per token its
// groups values of scale·dx; token t's out is t·ostride values on.
//
// Registers in the group loop: SI codes, DI xq, R13 token 0's sdx, R10 the
// bytes between tokens' sdx, R11 token 2's sdx, CX groups left, R14 rows
// left, R15 out; Y0..Y3 the tokens' float sums, Y4..Y7 their group sums,
// Y8 Y9 scratch, Y10 the 4-bit g32 shifts, Y12 Y13 the unpacked codes, Y14
// int16 ones, Y15 the code mask (4-bit) or 0x80s (8-bit).

// Q8SCALES runs the scales pass (QSCALES) of the row at R8, R9 for each of
// n tokens, storing each token's bias term at sdx and leaving R8 and R9 at
// the next row.
#define Q8SCALES(n) \
	MOVQ         dx+32(FP), R10; \
	MOVQ         xsum+40(FP), R11; \
	MOVQ         sdx+48(FP), DI; \
	LEAQ         (n*64)(DI), R13; \
	MOVQ         $n, DX; \
	VBROADCASTSS c+92(FP), Y12; \
	MOVBQZX      f16+88(FP), R12; \
tok:; \
	MOVQ    groups+72(FP), CX; \
	VXORPS  Y11, Y11, Y11; \
	VXORPS  X14, X14, X14; \
	QSCALES(sv, sh, ss, st, se); \
	VMOVUPS Y11, (DI); \
	VMOVSS  X14, 32(DI); \
	ADDQ    $64, DI; \
	MOVQ    groups+72(FP), CX; \
	SUBQ    CX, R8; \
	SUBQ    CX, R8; \
	SUBQ    CX, R9; \
	SUBQ    CX, R9; \
	DECQ    DX; \
	JNZ     tok; \
	ADDQ    CX, R8; \
	ADDQ    CX, R8; \
	ADDQ    CX, R9; \
	ADDQ    CX, R9

// Q8LOOPSTART sets the group loop's pointers for n tokens and clears the
// float sums.
#define Q8LOOPSTART(n) \
	MOVL         $0x00010001, AX; \
	VMOVD        AX, X14; \
	VPBROADCASTD X14, Y14; \
	MOVQ         xq+8(FP), DI; \
	MOVQ         groups+72(FP), CX; \
	MOVQ         CX, R10; \
	SHLQ         $2, R10; \
	MOVQ         sdx+48(FP), R13; \
	ADDQ         $(n*64), R13; \
	LEAQ         (R13)(R10*2), R11; \
	VXORPS       Y0, Y0, Y0; \
	VXORPS       Y1, Y1, Y1; \
	VXORPS       Y2, Y2, Y2; \
	VXORPS       Y3, Y3, Y3

// TOKSn(M, xo, B) runs block macro M(xo', sum) for tokens 0..n-1, token t's
// xq at xo + t·B bytes into its group sum.
#define TOKS1(M, xo, B) M(xo, Y4)
#define TOKS2(M, xo, B) M(xo, Y4); M(xo+B, Y5)
#define TOKS3(M, xo, B) M(xo, Y4); M(xo+B, Y5); M(xo+2*B, Y6)
#define TOKS4(M, xo, B) M(xo, Y4); M(xo+B, Y5); M(xo+2*B, Y6); M(xo+3*B, Y7)

// ENDSn(so) ends a group for tokens 0..n-1: each group sum, as float,
// times its scale·dx so bytes past the token's sdx pointer, into its float
// sum.
#define ENDS1(so) GEND(Y4, Y0, so(R13))
#define ENDS2(so) ENDS1(so); GEND(Y5, Y1, so(R13)(R10*1))
#define ENDS3(so) ENDS2(so); GEND(Y6, Y2, so(R13)(R10*2))
#define ENDS4(so) ENDS3(so); GEND(Y7, Y3, so(R11)(R10*1))

#define GEND(a, f, sp) \
	VCVTDQ2PS    a, a; \
	VBROADCASTSS sp, Y9; \
	VFMADD231PS  Y9, a, f

// GLOOP runs BODY(wo, xo, so) over the row's groups, two a turn then the
// last one if their count is odd; a group is gb code bytes and xb xq bytes
// (all tokens'). l, t and d are its labels.
#define GLOOP(BODY, gb, xb, l, t, d, n, TOKS, ENDS) \
	SUBQ $2, CX; \
	JLT  t; \
l:; \
	BODY(0, 0, 0, n, TOKS, ENDS); \
	BODY(gb, xb, 4, n, TOKS, ENDS); \
	ADDQ $(2*gb), SI; \
	ADDQ $(2*xb), DI; \
	ADDQ $(2*xb), DX; \
	ADDQ $8, R13; \
	ADDQ $8, R11; \
	SUBQ $2, CX; \
	JGE  l; \
t:; \
	CMPQ CX, $-1; \
	JNE  d; \
	BODY(0, 0, 0, n, TOKS, ENDS); \
	ADDQ $(gb), SI; \
d:

// U4W unpacks the 64 4-bit values of 32 bytes at wo(SI): low nibbles (the
// even values) in Y12, high nibbles (the odd ones) in Y13, and asks for the
// codes 1 KiB ahead (as the int16 kernels do). M4F starts a token's group
// sum with their products with xq at xo (32 even values, then 32 odd
// ones), M4N adds them. U4B and M4B are the same for the 32 values of 16
// bytes (groups of 32): the bytes in both halves of Y12, the high half
// shifted to the high nibbles; xq 16 even values, 16 odd ones. Pair sums
// are at most 2·15·127 = 3810, and a group of 128 adds four of them per
// lane, so int16 sums cannot overflow; M4END makes them int32.
#define U4W(wo) \
	PREFETCHT0 1024+wo(SI); \
	VMOVDQU    wo(SI), Y12; \
	VPSRLW     $4, Y12, Y13; \
	VPAND      Y15, Y12, Y12; \
	VPAND      Y15, Y13, Y13

#define M4F(xo, a) \
	VPMADDUBSW xo(DI), Y12, a; \
	VPMADDUBSW xo+32(DI), Y13, Y8; \
	VPADDW     Y8, a, a

#define M4N(xo, a) \
	VPMADDUBSW xo(DI), Y12, Y8; \
	VPADDW     Y8, a, a; \
	VPMADDUBSW xo+32(DI), Y13, Y9; \
	VPADDW     Y9, a, a

#define M4END(xo, a) VPMADDWD Y14, a, a

#define U4B(wo) \
	VBROADCASTI128 wo(SI), Y12; \
	VPSRLVD        Y10, Y12, Y12; \
	VPAND          Y15, Y12, Y12

#define M4B(xo, a) VPMADDUBSW xo(DI), Y12, a

// U8 centres the 32 8-bit codes at wo(SI): q-128 in Y12, |q-128| in Y13.
// M8F and M8N multiply them with a token's xq at xo by the sign trick
// (|q-128| unsigned times xq·sign(q-128)), whose pair sums (at most
// 2·128·127) fit int16, then sum pairs to int32 and start (M8F) or add to
// (M8N) its group sum.
#define U8(wo) \
	PREFETCHT0 1024+wo(SI); \
	VMOVDQU    wo(SI), Y12; \
	VPXOR      Y15, Y12, Y12; \
	VPABSB     Y12, Y13

#define M8F(xo, a) \
	VMOVDQU    xo(DI), Y8; \
	VPSIGNB    Y12, Y8, Y8; \
	VPMADDUBSW Y8, Y13, Y8; \
	VPMADDWD   Y14, Y8, a

#define M8N(xo, a) \
	VMOVDQU    xo(DI), Y8; \
	VPSIGNB    Y12, Y8, Y8; \
	VPMADDUBSW Y8, Y13, Y8; \
	VPMADDWD   Y14, Y8, Y8; \
	VPADDD     Y8, a, a

// The group bodies for n tokens (TOKS, ENDS their macros), by width and
// group size: BODY(wo, xo, so) for a group whose codes are wo bytes, xq xo
// bytes and sdx so bytes on.
#define B4G32(wo, xo, so, n, TOKS, ENDS) \
	PREFETCHT0 1024+wo(SI); \
	U4B(wo); \
	TOKS(M4B, xo, 32); \
	TOKS(M4END, 0, 0); \
	ENDS(so)

#define B4G64(wo, xo, so, n, TOKS, ENDS) \
	U4W(wo); \
	TOKS(M4F, xo, 64); \
	TOKS(M4END, 0, 0); \
	ENDS(so)

#define B4G128(wo, xo, so, n, TOKS, ENDS) \
	U4W(wo); \
	TOKS(M4F, xo, 64); \
	U4W(wo+32); \
	TOKS(M4N, xo+n*64, 64); \
	TOKS(M4END, 0, 0); \
	ENDS(so)

#define B8G32(wo, xo, so, n, TOKS, ENDS) \
	U8(wo); \
	TOKS(M8F, xo, 32); \
	ENDS(so)

#define B8G64(wo, xo, so, n, TOKS, ENDS) \
	U8(wo); \
	TOKS(M8F, xo, 32); \
	U8(wo+32); \
	TOKS(M8N, xo+n*32, 32); \
	ENDS(so)

#define B8G128(wo, xo, so, n, TOKS, ENDS) \
	U8(wo); \
	TOKS(M8F, xo, 32); \
	U8(wo+32); \
	TOKS(M8N, xo+n*32, 32); \
	U8(wo+64); \
	TOKS(M8N, xo+n*64, 32); \
	U8(wo+96); \
	TOKS(M8N, xo+n*96, 32); \
	ENDS(so)

// QLOOPS is the group loop by group size (steps), B32, B64 and B128 its
// bodies for groups of 32, 64 and 128 values of gb code bytes and xb xq
// bytes per 32; Q4LOOPS and Q8LOOPS are the 4- and 8-bit int8 kernels',
// W4LOOPS and W8LOOPS the int16 kernels'.
#define QLOOPS(B32, B64, B128, gb, xb, n, TOKS, ENDS) \
	MOVQ steps+80(FP), AX; \
	CMPQ AX, $2; \
	JEQ  g64; \
	CMPQ AX, $4; \
	JEQ  g128; \
	GLOOP(B32, gb, xb, l32, t32, d32, n, TOKS, ENDS); \
	JMP  gdone; \
g64:; \
	GLOOP(B64, 2*gb, 2*xb, l64, t64, d64, n, TOKS, ENDS); \
	JMP  gdone; \
g128:; \
	GLOOP(B128, 4*gb, 4*xb, l128, t128, d128, n, TOKS, ENDS); \
gdone:

#define Q4LOOPS(n, TOKS, ENDS) QLOOPS(B4G32, B4G64, B4G128, 16, n*32, n, TOKS, ENDS)
#define Q8LOOPS(n, TOKS, ENDS) QLOOPS(B8G32, B8G64, B8G128, 32, n*32, n, TOKS, ENDS)
#define W4LOOPS(n, TOKS, ENDS) W16SETUP; QLOOPS(W4G32, W4G64, W4G128, 16, 64, n, TOKS, ENDS)
#define W8LOOPS(n, TOKS, ENDS) W16SETUP; QLOOPS(W8G32, W8G64, W8G128, 32, 64, n, TOKS, ENDS)

// The int16 kernels (qrows{4,8}Q16x{N}AVX2) run the same frame on int16
// x, each token's values in turn (xstride bytes apart), per 32 values the
// 16 even ones then the 16 odd ones: codes are widened to words (4-bit:
// low and high nibbles; 8-bit: codes read as words, low byte the even
// value) and meet x in VPMADDWD, 16 products per instruction, int32 sums
// that cannot overflow (at most 255·32767·2 per pair, 2^29 per group of
// 128). Codes stay unsigned (c = 0), as in the 4-bit int8 kernels.
// Registers besides the int8 kernels': R12 xstride, DX token 3's x.

// W16SETUP sets R12 and DX for the group loop.
#define W16SETUP \
	MOVQ xstride+104(FP), R12; \
	LEAQ (DI)(R12*2), DX

// WTOKSn(M, xo, B) runs M(xo, token's x, sum) for tokens 0..n-1 (B unused:
// TOKSn's form).
#define WTOKS1(M, xo, B) M(xo, (DI), Y4)
#define WTOKS2(M, xo, B) WTOKS1(M, xo, B); M(xo, (DI)(R12*1), Y5)
#define WTOKS3(M, xo, B) WTOKS2(M, xo, B); M(xo, (DI)(R12*2), Y6)
#define WTOKS4(M, xo, B) WTOKS3(M, xo, B); M(xo, (DX)(R12*1), Y7)

// UW4 and UW8 widen the 32 codes at wo(SI) to words: even values in Y12,
// odd ones in Y13 (Y15: 0x000f or 0x00ff words). MWF starts a token's group
// sum with their products with its x at xo, MWN adds them.
#define UW4(wo) \
	VPMOVZXBW wo(SI), Y12; \
	VPSRLW    $4, Y12, Y13; \
	VPAND     Y15, Y12, Y12

#define UW8(wo) \
	VMOVDQU wo(SI), Y13; \
	VPAND   Y15, Y13, Y12; \
	VPSRLW  $8, Y13, Y13

#define MWF(xo, x, a) \
	VPMADDWD xo x, Y12, a; \
	VPMADDWD xo+32 x, Y13, Y8; \
	VPADDD   Y8, a, a

#define MWN(xo, x, a) \
	VPMADDWD xo x, Y12, Y8; \
	VPADDD   Y8, a, a; \
	VPMADDWD xo+32 x, Y13, Y9; \
	VPADDD   Y9, a, a

// The int16 group bodies, as the int8 ones: WGk for k blocks of 32 values
// of cb code bytes, unpacked by U; W4G32..W8G128 for GLOOP.
#define WG1(U, cb, wo, xo, so, TOKS, ENDS) \
	PREFETCHT0 1024+wo(SI); \
	U(wo); \
	TOKS(MWF, xo, 0); \
	ENDS(so)

#define WG2(U, cb, wo, xo, so, TOKS, ENDS) \
	PREFETCHT0 1024+wo(SI); \
	U(wo); \
	TOKS(MWF, xo, 0); \
	U(wo+cb); \
	TOKS(MWN, xo+64, 0); \
	ENDS(so)

#define WG4(U, cb, wo, xo, so, TOKS, ENDS) \
	PREFETCHT0 1024+wo(SI); \
	PREFETCHT0 1024+64+wo(SI); \
	U(wo); \
	TOKS(MWF, xo, 0); \
	U(wo+cb); \
	TOKS(MWN, xo+64, 0); \
	U(wo+2*cb); \
	TOKS(MWN, xo+128, 0); \
	U(wo+3*cb); \
	TOKS(MWN, xo+192, 0); \
	ENDS(so)

#define W4G32(wo, xo, so, n, TOKS, ENDS) WG1(UW4, 16, wo, xo, so, TOKS, ENDS)
#define W4G64(wo, xo, so, n, TOKS, ENDS) WG2(UW4, 16, wo, xo, so, TOKS, ENDS)
#define W4G128(wo, xo, so, n, TOKS, ENDS) WG4(UW4, 16, wo, xo, so, TOKS, ENDS)
#define W8G32(wo, xo, so, n, TOKS, ENDS) WG1(UW8, 32, wo, xo, so, TOKS, ENDS)
#define W8G64(wo, xo, so, n, TOKS, ENDS) WG2(UW8, 32, wo, xo, so, TOKS, ENDS)
#define W8G128(wo, xo, so, n, TOKS, ENDS) WG4(UW8, 32, wo, xo, so, TOKS, ENDS)

// FIN stores token t's row result: its float sum f (low half x) plus its
// bias term at t·64(AX), to o.
#define FIN(t, f, x, o) \
	VADDPS  (t*64)(AX), f, f; \
	REDUCE(f, x, X8); \
	VADDSS  (t*64+32)(AX), x, x; \
	VMOVSS  x, o

#define FINS1 FIN(0, Y0, X0, (R15))
#define FINS2 FINS1; FIN(1, Y1, X1, (R15)(BX*4))
#define FINS3 FINS2; FIN(2, Y2, X2, (R15)(BX*8))
#define FINS4 FINS3; LEAQ (R15)(BX*8), DI; FIN(3, Y3, X3, (DI)(BX*4))

// Q8ROWS is an int8 kernel's body for n tokens (TOKS, ENDS and FINS their
// macros), LOOPS its group loop.
#define Q8ROWS(LOOPS, n, TOKS, ENDS, FINS) \
	MOVQ w+0(FP), SI; \
	MOVQ scales+16(FP), R8; \
	MOVQ biases+24(FP), R9; \
	MOVQ out+56(FP), R15; \
	MOVQ rows+64(FP), R14; \
row:; \
	Q8SCALES(n); \
	Q8LOOPSTART(n); \
	LOOPS(n, TOKS, ENDS); \
	MOVQ sdx+48(FP), AX; \
	MOVQ ostride+96(FP), BX; \
	FINS; \
	ADDQ $4, R15; \
	DECQ R14; \
	JNZ  row; \
	VZEROUPPER

// Q4CONSTS sets the 4-bit kernels' code mask and g32 shifts (dwords
// 0,0,0,0,4,4,4,4); Q8CONSTS the 8-bit kernels' 0x80s.
#define Q4CONSTS \
	MOVL         $0x0f0f0f0f, AX; \
	VMOVD        AX, X15; \
	VPBROADCASTD X15, Y15; \
	MOVL         $4, AX; \
	VMOVD        AX, X10; \
	VPBROADCASTD X10, X10; \
	VPXOR        Y9, Y9, Y9; \
	VINSERTI128  $1, X10, Y9, Y10

#define Q8CONSTS \
	MOVL         $0x80808080, AX; \
	VMOVD        AX, X15; \
	VPBROADCASTD X15, Y15

#define W4CONSTS \
	MOVL         $0x000f000f, AX; \
	VMOVD        AX, X15; \
	VPBROADCASTD X15, Y15

#define W8CONSTS \
	MOVL         $0x00ff00ff, AX; \
	VMOVD        AX, X15; \
	VPBROADCASTD X15, Y15

// func qdot4AVX2(w *byte, x *float32, scales, biases *uint16, xsum *float32, groups, steps int, f16 bool) float32
//
// x is permuted in blocks of 16: the eight even-indexed values, then the
// eight odd ones, so a byte's low and high nibbles meet their x in two
// contiguous vectors.
TEXT ·qdot4AVX2(SB), NOSPLIT, $0-68
	ARGS
	MOVL         $15, AX
	VMOVD        AX, X15
	VPBROADCASTD X15, Y15
	MOVL         $8, AX
	VMOVD        AX, X11
	VPBROADCASTD X11, Y11
	VCVTDQ2PS    X11, X13

group4:
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3
	VXORPS Y4, Y4, Y4
	VXORPS Y5, Y5, Y5
	MOVQ   R11, DX

step4:
	VPMOVZXBD (SI), Y6
	VPMOVZXBD 8(SI), Y8
	VPSRLD    $4, Y6, Y7
	VPSRLD    $4, Y8, Y9
	VPAND     Y15, Y6, Y6
	VPAND     Y15, Y8, Y8
	CENTREFMA
	ADDQ      $16, SI
	DECQ      DX
	JNZ       step4

	GROUPEND
	DECQ CX
	JNZ  group4
	RESULT
	MOVSS X0, ret+64(FP)
	RET

// func qdot2AVX2(w *byte, x *float32, scales, biases *uint16, xsum *float32, groups, steps int, f16 bool) float32
//
// x is permuted in blocks of 32 (eight bytes): code k of each byte, for k
// = 0..3, meets a contiguous vector of eight x values.
TEXT ·qdot2AVX2(SB), NOSPLIT, $0-68
	ARGS
	MOVL         $3, AX
	VMOVD        AX, X15
	VPBROADCASTD X15, Y15
	MOVL         $2, AX
	VMOVD        AX, X11
	VPBROADCASTD X11, Y11
	VCVTDQ2PS    X11, X13

group2:
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3
	VXORPS Y4, Y4, Y4
	VXORPS Y5, Y5, Y5
	MOVQ   R11, DX

step2:
	VPMOVZXBD (SI), Y6
	VPSRLD    $2, Y6, Y7
	VPSRLD    $4, Y6, Y8
	VPSRLD    $6, Y6, Y9
	VPAND     Y15, Y6, Y6
	VPAND     Y15, Y7, Y7
	VPAND     Y15, Y8, Y8
	CENTREFMA
	ADDQ      $8, SI
	DECQ      DX
	JNZ       step2

	GROUPEND
	DECQ CX
	JNZ  group2
	RESULT
	MOVSS X0, ret+64(FP)
	RET

// func qdot8AVX2(w *byte, x *float32, scales, biases *uint16, xsum *float32, groups, steps int, f16 bool) float32
TEXT ·qdot8AVX2(SB), NOSPLIT, $0-68
	ARGS
	MOVL         $128, AX
	VMOVD        AX, X11
	VPBROADCASTD X11, Y11
	VCVTDQ2PS    X11, X13

group8:
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3
	VXORPS Y4, Y4, Y4
	VXORPS Y5, Y5, Y5
	MOVQ   R11, DX

step8:
	VPMOVZXBD   (SI), Y6
	VPMOVZXBD   8(SI), Y7
	VPMOVZXBD   16(SI), Y8
	VPMOVZXBD   24(SI), Y9
	CENTREFMA
	ADDQ        $32, SI
	DECQ        DX
	JNZ         step8

	GROUPEND
	DECQ CX
	JNZ  group8
	RESULT
	MOVSS X0, ret+64(FP)
	RET

// func qdotBitsAVX2(w *byte, x *float32, scales, biases *uint16, xsum *float32, groups, steps int, f16 bool, t *bitsTable) float32
//
// Any width up to 8 bits: eight values span at most bits+1 bytes, so one
// 8-byte load per eight values, a byte shuffle putting value j's two bytes
// in lane j, a variable shift and a mask recover the codes. It reads up to
// 8-bits bytes past the last value.
TEXT ·qdotBitsAVX2(SB), NOSPLIT, $0-76
	ARGS
	MOVQ    t+64(FP), AX
	VMOVDQU (AX), Y10  // shuffle
	VMOVDQU 32(AX), Y12 // shifts
	VMOVDQU 64(AX), Y15 // mask
	MOVQ    96(AX), R13 // bytes per eight values
	VPBROADCASTD 104(AX), Y11 // middle code
	VCVTDQ2PS    X11, X13

groupB:
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3
	VXORPS Y4, Y4, Y4
	VXORPS Y5, Y5, Y5
	MOVQ   R11, DX

stepB:
	VPBROADCASTQ (SI), Y6
	ADDQ         R13, SI
	VPBROADCASTQ (SI), Y7
	ADDQ         R13, SI
	VPBROADCASTQ (SI), Y8
	ADDQ         R13, SI
	VPBROADCASTQ (SI), Y9
	ADDQ         R13, SI
	VPSHUFB      Y10, Y6, Y6
	VPSHUFB      Y10, Y7, Y7
	VPSHUFB      Y10, Y8, Y8
	VPSHUFB      Y10, Y9, Y9
	VPSRLVD      Y12, Y6, Y6
	VPSRLVD      Y12, Y7, Y7
	VPSRLVD      Y12, Y8, Y8
	VPSRLVD      Y12, Y9, Y9
	VPAND        Y15, Y6, Y6
	VPAND        Y15, Y7, Y7
	VPAND        Y15, Y8, Y8
	VPAND        Y15, Y9, Y9
	CENTREFMA
	DECQ         DX
	JNZ          stepB

	GROUPEND
	DECQ CX
	JNZ  groupB
	RESULT
	MOVSS X0, ret+72(FP)
	RET

// QKERNELS defines a family's 4-bit and 8-bit kernels for n tokens (frame
// its argument bytes, C4 C8 its constants, L4 L8 its group loops):
//
//	func qrows4Q8x{n}AVX2(w *byte, xq *int8, scales, biases *uint16, dx, xsum, sdx, out *float32, rows, groups, steps int, f16 bool, c float32, ostride int)
//	func qrows4Q16x{n}AVX2(w *byte, xq *int16, scales, biases *uint16, dx, xsum, sdx, out *float32, rows, groups, steps int, f16 bool, c float32, ostride, xstride int)
//
// and the 8-bit ones alike.
#define QKERNELS(name4, name8, frame, C4, C8, L4, L8, n, TOKS, ENDS, FINS) \
TEXT name4(SB), NOSPLIT, $0-frame; \
	C4; \
	Q8ROWS(L4, n, TOKS, ENDS, FINS); \
	RET; \
TEXT name8(SB), NOSPLIT, $0-frame; \
	C8; \
	Q8ROWS(L8, n, TOKS, ENDS, FINS); \
	RET

QKERNELS(·qrows4Q8x1AVX2, ·qrows8Q8x1AVX2, 104, Q4CONSTS, Q8CONSTS, Q4LOOPS, Q8LOOPS, 1, TOKS1, ENDS1, FINS1)
QKERNELS(·qrows4Q8x2AVX2, ·qrows8Q8x2AVX2, 104, Q4CONSTS, Q8CONSTS, Q4LOOPS, Q8LOOPS, 2, TOKS2, ENDS2, FINS2)
QKERNELS(·qrows4Q8x3AVX2, ·qrows8Q8x3AVX2, 104, Q4CONSTS, Q8CONSTS, Q4LOOPS, Q8LOOPS, 3, TOKS3, ENDS3, FINS3)
QKERNELS(·qrows4Q8x4AVX2, ·qrows8Q8x4AVX2, 104, Q4CONSTS, Q8CONSTS, Q4LOOPS, Q8LOOPS, 4, TOKS4, ENDS4, FINS4)
QKERNELS(·qrows4Q16x1AVX2, ·qrows8Q16x1AVX2, 112, W4CONSTS, W8CONSTS, W4LOOPS, W8LOOPS, 1, WTOKS1, ENDS1, FINS1)
QKERNELS(·qrows4Q16x2AVX2, ·qrows8Q16x2AVX2, 112, W4CONSTS, W8CONSTS, W4LOOPS, W8LOOPS, 2, WTOKS2, ENDS2, FINS2)
QKERNELS(·qrows4Q16x3AVX2, ·qrows8Q16x3AVX2, 112, W4CONSTS, W8CONSTS, W4LOOPS, W8LOOPS, 3, WTOKS3, ENDS3, FINS3)
QKERNELS(·qrows4Q16x4AVX2, ·qrows8Q16x4AVX2, 112, W4CONSTS, W8CONSTS, W4LOOPS, W8LOOPS, 4, WTOKS4, ENDS4, FINS4)

// The int16 kernels for 2, 3, 5 and 6 bits (qrows{2,3,5,6}Q16AVX2,
// qmv_bits_amd64.go), one token a call: per step of 16 codes (2·b bytes)
// a 16-byte broadcast, the table's shuffle (Y15) and mask (Y10), and
// VPMADDWD with 16 xq values (transposeBlocks' order) into the group sum
// Y4; per group the lanes' exact shift (Y13) takes their 2^s factors out
// before the float epilogue (GEND). Groups run through GLOOP as the other
// kernels' do; scales pass and result as Q8ROWS's for one token, c = 0
// (codes stay unsigned). A step reads 16 bytes, up to 16-2·b past the
// row's end.

// BSTEP adds step k of the group at wo (codes) and xo (x) to Y4; BFIRST
// starts Y4 with step 0.
#define BCODES(b, k, wo) \
	VBROADCASTI128 wo+k*2*b(SI), Y8; \
	VPSHUFB        Y15, Y8, Y8; \
	VPAND          Y10, Y8, Y8

#define BFIRST(b, wo, xo) \
	BCODES(b, 0, wo); \
	VPMADDWD xo(DI), Y8, Y4

#define BSTEP(b, k, wo, xo) \
	BCODES(b, k, wo); \
	VPMADDWD xo+k*32(DI), Y8, Y8; \
	VPADDD   Y8, Y4, Y4

#define BEND(so) \
	VPSRAVD Y13, Y4, Y4; \
	GEND(Y4, Y0, so(R13))

#define BG32(b, wo, xo, so) \
	PREFETCHT0 1024+wo(SI); \
	BFIRST(b, wo, xo); \
	BSTEP(b, 1, wo, xo); \
	BEND(so)

#define BG64(b, wo, xo, so) \
	PREFETCHT0 1024+wo(SI); \
	BFIRST(b, wo, xo); \
	BSTEP(b, 1, wo, xo); \
	BSTEP(b, 2, wo, xo); \
	BSTEP(b, 3, wo, xo); \
	BEND(so)

#define BG128(b, wo, xo, so) \
	PREFETCHT0 1024+wo(SI); \
	PREFETCHT0 1024+64+wo(SI); \
	BFIRST(b, wo, xo); \
	BSTEP(b, 1, wo, xo); \
	BSTEP(b, 2, wo, xo); \
	BSTEP(b, 3, wo, xo); \
	BSTEP(b, 4, wo, xo); \
	BSTEP(b, 5, wo, xo); \
	BSTEP(b, 6, wo, xo); \
	BSTEP(b, 7, wo, xo); \
	BEND(so)

// The group bodies by width, in GLOOP's form.
#define B2G32(wo, xo, so, n, TOKS, ENDS) BG32(2, wo, xo, so)
#define B2G64(wo, xo, so, n, TOKS, ENDS) BG64(2, wo, xo, so)
#define B2G128(wo, xo, so, n, TOKS, ENDS) BG128(2, wo, xo, so)
#define B3G32(wo, xo, so, n, TOKS, ENDS) BG32(3, wo, xo, so)
#define B3G64(wo, xo, so, n, TOKS, ENDS) BG64(3, wo, xo, so)
#define B3G128(wo, xo, so, n, TOKS, ENDS) BG128(3, wo, xo, so)
#define B5G32(wo, xo, so, n, TOKS, ENDS) BG32(5, wo, xo, so)
#define B5G64(wo, xo, so, n, TOKS, ENDS) BG64(5, wo, xo, so)
#define B5G128(wo, xo, so, n, TOKS, ENDS) BG128(5, wo, xo, so)
#define B6G32(wo, xo, so, n, TOKS, ENDS) BG32(6, wo, xo, so)
#define B6G64(wo, xo, so, n, TOKS, ENDS) BG64(6, wo, xo, so)
#define B6G128(wo, xo, so, n, TOKS, ENDS) BG128(6, wo, xo, so)

// B{2,3,5,6}LOOPS are the group loops by width, in Q8ROWS's form.
#define B2LOOPS(n, TOKS, ENDS) QLOOPS(B2G32, B2G64, B2G128, 8, 64, n, TOKS, ENDS)
#define B3LOOPS(n, TOKS, ENDS) QLOOPS(B3G32, B3G64, B3G128, 12, 64, n, TOKS, ENDS)
#define B5LOOPS(n, TOKS, ENDS) QLOOPS(B5G32, B5G64, B5G128, 20, 64, n, TOKS, ENDS)
#define B6LOOPS(n, TOKS, ENDS) QLOOPS(B6G32, B6G64, B6G128, 24, 64, n, TOKS, ENDS)

// BROWS is the kernel of one width (LOOPS its group loop), Q8ROWS for one
// token with the table's shuffle, mask and shifts:
//
//	func qrows{b}Q16AVX2(w *byte, xq *int16, scales, biases *uint16, dx, xsum, sdx, out *float32, rows, groups, steps int, f16 bool, c float32, t *q16Table)
#define BROWS(name, LOOPS) \
TEXT name(SB), NOSPLIT, $0-104; \
	MOVQ    t+96(FP), AX; \
	VMOVDQU (AX), Y15; \
	VMOVDQU 32(AX), Y10; \
	VMOVDQU 64(AX), Y13; \
	Q8ROWS(LOOPS, 1, WTOKS1, ENDS1, FINS1); \
	RET

BROWS(·qrows2Q16AVX2, B2LOOPS)
BROWS(·qrows3Q16AVX2, B3LOOPS)
BROWS(·qrows5Q16AVX2, B5LOOPS)
BROWS(·qrows6Q16AVX2, B6LOOPS)

// func qrows2WQ16AVX2(w *byte, xq *int16, scales, biases *uint16, dx, xsum, sdx, out *float32, rows, groups, steps int, f16 bool, c float32, perm *[8]uint32)
//
// The 2-bit int16 kernel for rows of whole 128-value blocks: a block's 32
// code bytes are 16 words of eight codes, and code k of every word, (w >>
// 2k) & 3, meets 16 xq values at once (transposeBlocks' order), so a block
// costs one load and shifts and masks besides its eight VPMADDWD. A block
// holds one group of 128, two of 64 or four of 32: its int32 lanes, as
// float, meet each lane's group's scale·dx, which perm spreads from the
// four at R13 (lane j: group perm[j]). Scales pass and result as Q8ROWS's
// for one token, c = 0.
// W2IN adds the products of the codes in m (masked by mask) with the 16
// xq values at xo(DI) to the int32 sums a.
#define W2IN(m, mask, xo, a) \
	VPAND    mask, m, Y9; \
	VPMADDWD xo(DI), Y9, Y9; \
	VPADDD   Y9, a, a

// W2BLOCK adds the block at wo(SI), xo(DI), its scale·dx at sp, to Y0.
// Codes 0 and 4 (the low bytes of the words and of the words >> 8), 7
// (the words >> 14) and 3 (>> 6) are taken at bit 0 into Y4; codes 1
// and 5 at bit 2, in place, into Y5; codes 2 and 6 at bit 4 into Y6; Y5
// and Y6 lose their factors 4 and 16 by an exact shift. Y15, Y10 and
// w2mask4 are the masks 3, 3<<2 and 3<<4 per word (Q8LOOPSTART clears
// Y0..Y3, Q8SCALES uses Y11, Y12 and Y14: the third is read from memory).
#define W2BLOCK(wo, xo, sp) \
	PREFETCHT0  1024+wo(SI); \
	VMOVDQU     wo(SI), Y8; \
	VPSRLW      $8, Y8, Y3; \
	VPAND       Y15, Y8, Y9; \
	VPMADDWD    xo(DI), Y9, Y4; \
	VPAND       Y10, Y8, Y9; \
	VPMADDWD    xo+32(DI), Y9, Y5; \
	VPAND       w2mask4<>(SB), Y8, Y9; \
	VPMADDWD    xo+64(DI), Y9, Y6; \
	VPSRLW      $6, Y8, Y7; \
	W2IN(Y7, Y15, xo+96, Y4); \
	W2IN(Y3, Y15, xo+128, Y4); \
	W2IN(Y3, Y10, xo+160, Y5); \
	W2IN(Y3, w2mask4<>(SB), xo+192, Y6); \
	VPSRLW      $14, Y8, Y9; \
	VPMADDWD    xo+224(DI), Y9, Y9; \
	VPADDD      Y9, Y4, Y4; \
	VPSRAD      $2, Y5, Y5; \
	VPSRAD      $4, Y6, Y6; \
	VPADDD      Y5, Y4, Y4; \
	VPADDD      Y6, Y4, Y4; \
	VCVTDQ2PS   Y4, Y4; \
	VMOVUPS     sp, X9; \
	VPERMPS     Y9, Y13, Y9; \
	VFMADD231PS Y9, Y4, Y0

// W2LOOP is the word kernel's block loop (Q8LOOPSTART has set DI, R13
// and Y0), in Q8ROWS's form.
#define W2LOOP(n, TOKS, ENDS) \
	MOVQ  steps+80(FP), CX; \
	SHRQ  $1, CX; \
	MOVQ  $16, R10; \
	SHRQ  CX, R10; \
	MOVQ  groups+72(FP), CX; \
	IMULQ steps+80(FP), CX; \
	SHRQ  $2, CX; \
	SUBQ  $2, CX; \
	JLT   tail2W; \
pair2W:; \
	W2BLOCK(0, 0, (R13)); \
	W2BLOCK(32, 256, (R13)(R10*1)); \
	ADDQ  $64, SI; \
	ADDQ  $512, DI; \
	LEAQ  (R13)(R10*2), R13; \
	SUBQ  $2, CX; \
	JGE   pair2W; \
tail2W:; \
	CMPQ  CX, $-1; \
	JNE   done2W; \
	W2BLOCK(0, 0, (R13)); \
	ADDQ  $32, SI; \
done2W:

TEXT ·qrows2WQ16AVX2(SB), NOSPLIT, $0-104
	MOVQ         perm+96(FP), AX
	VMOVDQU      (AX), Y13
	MOVL         $0x00030003, AX
	VMOVD        AX, X15
	VPBROADCASTD X15, Y15
	VPSLLW       $2, Y15, Y10
	Q8ROWS(W2LOOP, 1, WTOKS1, ENDS1, FINS1)
	RET

DATA w2mask4<>+0(SB)/8, $0x0030003000300030
DATA w2mask4<>+8(SB)/8, $0x0030003000300030
DATA w2mask4<>+16(SB)/8, $0x0030003000300030
DATA w2mask4<>+24(SB)/8, $0x0030003000300030
GLOBL w2mask4<>(SB), RODATA|NOPTR, $32
