#include "textflag.h"

// AVX-512 forms of exp32 (fastmath.go) and of the float32 activations and
// softmax that use it (fastmath_amd64.go). Every lane does exp32's float32
// operations in exp32's order, each rounded once (no fused multiply-adds),
// with its special cases (overflow, underflow, NaN, subnormal results) as
// masked moves, so the results are bit-identical to the scalar code. Every
// loop (expSub, QuickGELU and GELU with their gradients) skips those fix-ups
// for a vector whose exp arguments are all within |x| <= 87, where they
// change nothing (EXPNORMAL, RANGE87, IN87): 2-3x faster, same bits.

// expConsts (fastmath_amd64.go) layout, in float32s.
#define C_LOG2E 0
#define C_SHIFT 4
#define C_LN2HI 8
#define C_LN2LO 12
#define C_P0 16
#define C_P1 20
#define C_P2 24
#define C_P3 28
#define C_P4 32
#define C_P5 36
#define C_ONE 40
#define C_HI 44
#define C_LO 48
#define C_TINY 52
#define C_INF 56
#define C_QG 60
#define C_NQG 64
#define C_ABS 140
#define C_87 148

// LOADEXP broadcasts exp32's constants (table in DX) into Z6-Z23.
#define LOADEXP \
	VBROADCASTSS C_LOG2E(DX), Z8 \
	VBROADCASTSS C_SHIFT(DX), Z9 \
	VBROADCASTSS C_LN2HI(DX), Z10 \
	VBROADCASTSS C_LN2LO(DX), Z11 \
	VBROADCASTSS C_P0(DX), Z12 \
	VBROADCASTSS C_P1(DX), Z13 \
	VBROADCASTSS C_P2(DX), Z14 \
	VBROADCASTSS C_P3(DX), Z15 \
	VBROADCASTSS C_P4(DX), Z16 \
	VBROADCASTSS C_P5(DX), Z17 \
	VBROADCASTSS C_ONE(DX), Z18 \
	VBROADCASTSS C_HI(DX), Z19 \
	VBROADCASTSS C_LO(DX), Z20 \
	VBROADCASTSS C_TINY(DX), Z21 \
	VBROADCASTSS C_INF(DX), Z22 \
	MOVL $127, AX \
	VPBROADCASTD AX, Z23 \
	MOVL $253, AX \
	VPBROADCASTD AX, Z7 \
	MOVL $-126, AX \
	VPBROADCASTD AX, Z6

// EXPNORMAL sets Y = exp32(X) lane by lane (X and Y distinct, neither
// Z24-Z29) without exp32's special cases: the same bits as EXP for lanes
// with |X| <= 87 (no overflow, no subnormal or zero result, no NaN), which
// RANGE87 checks for a whole vector before the loops use it.
#define EXPNORMAL(X, Y) \
	VMULPS     Z8, X, Z24 \
	VADDPS     Z9, Z24, Z24 \
	VSUBPS     Z9, Z24, Z24 \
	VMULPS     Z10, Z24, Z25 \
	VSUBPS     Z25, X, Z25 \
	VMULPS     Z11, Z24, Z26 \
	VSUBPS     Z26, Z25, Z25 \
	VMULPS     Z12, Z25, Z26 \
	VADDPS     Z13, Z26, Z26 \
	VMULPS     Z25, Z26, Z26 \
	VADDPS     Z14, Z26, Z26 \
	VMULPS     Z25, Z26, Z26 \
	VADDPS     Z15, Z26, Z26 \
	VMULPS     Z25, Z26, Z26 \
	VADDPS     Z16, Z26, Z26 \
	VMULPS     Z25, Z26, Z26 \
	VADDPS     Z17, Z26, Z26 \
	VMULPS     Z25, Z26, Z26 \
	VMULPS     Z25, Z26, Z26 \
	VADDPS     Z25, Z26, Z26 \
	VADDPS     Z18, Z26, Z26 \
	VCVTTPS2DQ Z24, Z27 \
	VPADDD     Z23, Z27, Z28 \
	VPSLLD     $23, Z28, Z28 \
	VMULPS     Z28, Z26, Y

// EXP sets Y = exp32(X) lane by lane (X and Y distinct, neither Z24-Z29):
// EXPNORMAL, then the fix-ups for large, small and NaN arguments.
#define EXP(X, Y) \
	EXPNORMAL(X, Y) \
	VPCMPD     $1, Z6, Z27, K1 \
	VPADDD     Z7, Z27, Z28 \
	VPSLLD     $23, Z28, Z28 \
	VMULPS     Z28, Z26, Z29 \
	VMULPS     Z21, Z29, K1, Y \
	VCMPPS     $0x1e, Z19, X, K2 \
	VMOVAPS    Z22, K2, Y \
	VCMPPS     $0x11, Z20, X, K3 \
	VPXORD     Y, Y, K3, Y \
	VCMPPS     $3, X, X, K4 \
	VMOVAPS    X, K4, Y

// RANGE87 sets the carry flag when every lane of X has |X| <= 87 (Z31
// holds 87, Z30 is scratch; a NaN lane fails).
#define RANGE87(X) \
	VANDPS.BCST C_ABS(DX), X, Z30 \
	VCMPPS      $0x12, Z31, Z30, K5 \
	KORTESTW    K5, K5

// IN87 sets K5 to the lanes of X with |X| <= 87 (no NaN), reading 87 from
// the table: RANGE87 for the GELU loops, which have no register to spare
// for the constant (Z30 is scratch).
#define IN87(X) \
	VANDPS.BCST C_ABS(DX), X, Z30 \
	VCMPPS.BCST $0x12, C_87(DX), Z30, K5

// LOAD87 sets Z31 to 87 for RANGE87.
#define LOAD87 \
	MOVL         $0x42AE0000, AX \
	VPBROADCASTD AX, Z31

// func expSubAVX512(x *float32, n int, sub float32, c *[expConstsLen]float32)
// x[i] = exp32(x[i] - sub); n is a multiple of 16.
TEXT ·expSubAVX512(SB), NOSPLIT, $0-32
	MOVQ         x+0(FP), SI
	MOVQ         n+8(FP), CX
	VBROADCASTSS sub+16(FP), Z5
	MOVQ         c+24(FP), DX
	LOADEXP
	LOAD87
	SHRQ         $4, CX
	JZ           esdone

esloop:
	VMOVUPS (SI), Z0
	VSUBPS  Z5, Z0, Z0
	RANGE87(Z0)
	JCC     esslow
	EXPNORMAL(Z0, Z1)
	JMP     esstore

esslow:
	EXP(Z0, Z1)

esstore:
	VMOVUPS Z1, (SI)
	ADDQ    $64, SI
	DECQ    CX
	JNZ     esloop

esdone:
	VZEROUPPER
	RET

// func expSubTailAVX512(x *float32, n int, sub float32, c *[expConstsLen]float32)
// x[i] = exp32(x[i] - sub) for 0 < n < 16 elements, in one masked vector
// (the lanes past n are neither read nor written; K6 masks them).
TEXT ·expSubTailAVX512(SB), NOSPLIT, $0-32
	MOVQ         x+0(FP), SI
	MOVQ         n+8(FP), CX
	VBROADCASTSS sub+16(FP), Z5
	MOVQ         c+24(FP), DX
	LOADEXP
	MOVL         $1, AX
	SHLL         CX, AX
	DECL         AX
	KMOVW        AX, K6
	VMOVUPS.Z    (SI), K6, Z0
	VSUBPS       Z5, Z0, Z0
	LOAD87
	RANGE87(Z0)
	JCC          estslow
	EXPNORMAL(Z0, Z1)
	JMP          eststore

estslow:
	EXP(Z0, Z1)

eststore:
	VMOVUPS      Z1, K6, (SI)
	VZEROUPPER
	RET

// func quickGELUAVX512(x, y *float32, n int, c *[expConstsLen]float32)
// y[i] = x[i]·s, s = 1/(1 + exp32(-1.702·x[i])); n is a multiple of 16.
TEXT ·quickGELUAVX512(SB), NOSPLIT, $0-32
	MOVQ         x+0(FP), SI
	MOVQ         y+8(FP), DI
	MOVQ         n+16(FP), CX
	MOVQ         c+24(FP), DX
	LOADEXP
	VBROADCASTSS C_NQG(DX), Z5
	LOAD87
	SHRQ         $4, CX
	JZ           qgdone

qgloop:
	VMOVUPS (SI), Z0
	VMULPS  Z5, Z0, Z1 // -1.702·x
	RANGE87(Z1)
	JCC     qgslow
	EXPNORMAL(Z1, Z2)
	JMP     qgrest

qgslow:
	EXP(Z1, Z2)

qgrest:
	VADDPS  Z18, Z2, Z2 // 1 + e
	VDIVPS  Z2, Z18, Z2 // s = 1/(1+e)
	VMULPS  Z2, Z0, Z0 // x·s
	VMOVUPS Z0, (DI)
	ADDQ    $64, SI
	ADDQ    $64, DI
	DECQ    CX
	JNZ     qgloop

qgdone:
	VZEROUPPER
	RET

// func quickGELUGradAVX512(x, dy, y *float32, n int, c *[expConstsLen]float32)
// y[i] = (s + 1.702·x·s·(1-s))·dy[i]; y may be dy; n is a multiple of 16.
TEXT ·quickGELUGradAVX512(SB), NOSPLIT, $0-40
	MOVQ         x+0(FP), SI
	MOVQ         dy+8(FP), BX
	MOVQ         y+16(FP), DI
	MOVQ         n+24(FP), CX
	MOVQ         c+32(FP), DX
	LOADEXP
	VBROADCASTSS C_NQG(DX), Z5
	VBROADCASTSS C_QG(DX), Z4
	LOAD87
	SHRQ         $4, CX
	JZ           qggdone

qggloop:
	VMOVUPS (SI), Z0
	VMULPS  Z5, Z0, Z1 // -1.702·x
	RANGE87(Z1)
	JCC     qggslow
	EXPNORMAL(Z1, Z2)
	JMP     qggrest

qggslow:
	EXP(Z1, Z2)

qggrest:
	VADDPS  Z18, Z2, Z2 // 1 + e
	VDIVPS  Z2, Z18, Z2 // s
	VMULPS  Z4, Z0, Z1 // 1.702·x
	VMULPS  Z2, Z1, Z1 // ·s
	VSUBPS  Z2, Z18, Z3 // 1 - s
	VMULPS  Z3, Z1, Z1 // ·(1-s)
	VADDPS  Z1, Z2, Z1 // s + ...
	VMULPS  (BX), Z1, Z1 // ·dy
	VMOVUPS Z1, (DI)
	ADDQ    $64, SI
	ADDQ    $64, BX
	ADDQ    $64, DI
	DECQ    CX
	JNZ     qggloop

qggdone:
	VZEROUPPER
	RET

// ERFPRE and ERFPOST set Z31 = erf32(Z1) lane by lane around Z30 =
// exp32(Z4) (EXP or EXPNORMAL, which the loops choose by IN87(Z4)), with
// Z2 = |Z1|, Z3 = Z1², Z4, Z5 and Z30 as scratch (Z5 is free between the
// two): both of erf32's branches, blended by |x| > 0.927734375.
#define ERFPRE \
	VANDPS.BCST  140(DX), Z1, Z2 \
	VMULPS       Z1, Z1, Z3 \
	VMULPS.BCST  88(DX), Z2, Z4 \
	VADDPS.BCST  92(DX), Z4, Z4 \
	VMULPS.BCST  96(DX), Z2, Z5 \
	VADDPS.BCST  100(DX), Z5, Z5 \
	VMULPS       Z3, Z4, Z4 \
	VADDPS       Z5, Z4, Z4 \
	VMULPS       Z2, Z4, Z4 \
	VSUBPS.BCST  104(DX), Z4, Z4 \
	VMULPS       Z2, Z4, Z4 \
	VSUBPS.BCST  108(DX), Z4, Z4 \
	VMULPS       Z2, Z4, Z4 \
	VSUBPS.BCST  112(DX), Z4, Z4 \
	VMULPS       Z2, Z4, Z4 \
	VSUBPS       Z2, Z4, Z4

#define ERFPOST \
	VSUBPS       Z30, Z18, Z4 \
	VANDPS.BCST  144(DX), Z1, Z5 \
	VXORPS       Z5, Z4, Z4 \
	VMULPS.BCST  116(DX), Z3, Z31 \
	VADDPS.BCST  120(DX), Z31, Z31 \
	VMULPS       Z3, Z31, Z31 \
	VSUBPS.BCST  124(DX), Z31, Z31 \
	VMULPS       Z3, Z31, Z31 \
	VADDPS.BCST  128(DX), Z31, Z31 \
	VMULPS       Z3, Z31, Z31 \
	VSUBPS.BCST  132(DX), Z31, Z31 \
	VMULPS       Z3, Z31, Z31 \
	VADDPS.BCST  136(DX), Z31, Z31 \
	VMULPS       Z1, Z31, Z31 \
	VADDPS       Z1, Z31, Z31 \
	VCMPPS.BCST  $0x1e, 84(DX), Z2, K5 \
	VMOVAPS      Z4, K5, Z31

// CDFPRE and CDFPOST set Z31 = 0.5·(1 + erf32(Z0·(1/√2))), the exact
// GELU's Φ(x), around erf32's exp (ERFPRE, ERFPOST).
#define CDFPRE \
	VMULPS.BCST 68(DX), Z0, Z1 \
	ERFPRE

#define CDFPOST \
	ERFPOST \
	VADDPS      Z18, Z31, Z31 \
	VMULPS.BCST 72(DX), Z31, Z31

// func geluAVX512(x, y *float32, n int, c *[expConstsLen]float32)
// y[i] = x[i]·Φ(x[i]) as gelu32 computes it; n is a multiple of 16.
TEXT ·geluAVX512(SB), NOSPLIT, $0-32
	MOVQ x+0(FP), SI
	MOVQ y+8(FP), DI
	MOVQ n+16(FP), CX
	MOVQ c+24(FP), DX
	LOADEXP
	SHRQ $4, CX
	JZ   gedone

geloop:
	VMOVUPS  (SI), Z0
	CDFPRE
	IN87(Z4)
	KORTESTW K5, K5
	JCC      geslow
	EXPNORMAL(Z4, Z30)
	JMP      gerest

geslow:
	EXP(Z4, Z30)

gerest:
	CDFPOST
	VMULPS  Z31, Z0, Z4
	VMOVUPS Z4, (DI)
	ADDQ    $64, SI
	ADDQ    $64, DI
	DECQ    CX
	JNZ     geloop

gedone:
	VZEROUPPER
	RET

// func geluGradAVX512(x, dy, y *float32, n int, c *[expConstsLen]float32)
// y[i] = (Φ(x) + x·φ(x))·dy[i] as gelu32 computes it; y may be dy; n is a
// multiple of 16.
TEXT ·geluGradAVX512(SB), NOSPLIT, $0-40
	MOVQ x+0(FP), SI
	MOVQ dy+8(FP), BX
	MOVQ y+16(FP), DI
	MOVQ n+24(FP), CX
	MOVQ c+32(FP), DX
	LOADEXP
	SHRQ $4, CX
	JZ   ggdone

ggloop:
	VMOVUPS     (SI), Z0
	CDFPRE
	IN87(Z4) // erf32's exp argument
	KMOVW       K5, K7
	VMULPS.BCST 80(DX), Z0, Z5 // -0.5·x
	VMULPS      Z0, Z5, Z5 // ·x: φ's exp argument
	IN87(Z5)
	KANDW       K5, K7, K5
	KORTESTW    K5, K5
	JCC         ggslow
	EXPNORMAL(Z4, Z30)
	CDFPOST
	VMULPS.BCST 80(DX), Z0, Z4 // -0.5·x
	VMULPS      Z0, Z4, Z4 // ·x
	EXPNORMAL(Z4, Z30)
	JMP         ggrest

ggslow:
	EXP(Z4, Z30)
	CDFPOST
	VMULPS.BCST 80(DX), Z0, Z4 // -0.5·x
	VMULPS      Z0, Z4, Z4 // ·x
	EXP(Z4, Z30)

ggrest:
	VMULPS.BCST 76(DX), Z0, Z5 // x·(1/√(2π))
	VMULPS      Z30, Z5, Z5
	VADDPS      Z5, Z31, Z5
	VMULPS      (BX), Z5, Z5
	VMOVUPS     Z5, (DI)
	ADDQ        $64, SI
	ADDQ        $64, BX
	ADDQ        $64, DI
	DECQ        CX
	JNZ         ggloop

ggdone:
	VZEROUPPER
	RET

// func maxAVX512(x *float32, n int) float32
// The largest of x[0..n) (n a multiple of 16, > 0), as VMAXPS sees it: for
// rows without NaN it is the scalar loop's maximum (an equal +0/-0 pair
// may give either zero, which the softmax's x - max does not see).
TEXT ·maxAVX512(SB), NOSPLIT, $0-20
	MOVQ    x+0(FP), SI
	MOVQ    n+8(FP), CX
	VMOVUPS (SI), Z0
	ADDQ    $64, SI
	SHRQ    $4, CX
	DECQ    CX
	JZ      maxdone

maxloop:
	VMAXPS (SI), Z0, Z0
	ADDQ   $64, SI
	DECQ   CX
	JNZ    maxloop

maxdone:
	VEXTRACTF64X4 $1, Z0, Y1
	VMAXPS        Y1, Y0, Y0
	VEXTRACTF128  $1, Y0, X1
	VMAXPS        X1, X0, X0
	VPERMILPS     $0x4e, X0, X1
	VMAXPS        X1, X0, X0
	VPERMILPS     $0xb1, X0, X1
	VMAXPS        X1, X0, X0
	VZEROUPPER
	MOVSS         X0, ret+16(FP)
	RET

// func scaleF32AVX512(x *float32, n int, s float32)
// x[i] *= s; n is a multiple of 16.
TEXT ·scaleF32AVX512(SB), NOSPLIT, $0-20
	MOVQ         x+0(FP), SI
	MOVQ         n+8(FP), CX
	VBROADCASTSS s+16(FP), Z1
	SHRQ         $4, CX
	JZ           sfdone

sfloop:
	VMULPS  (SI), Z1, Z0
	VMOVUPS Z0, (SI)
	ADDQ    $64, SI
	DECQ    CX
	JNZ     sfloop

sfdone:
	VZEROUPPER
	RET


// func softmaxNumAVX512(x *float32, n int, c *[expConstsLen]float32) float32
// The numerators of softmax over x[0..n) (n ≥ 1), in place: x[i] =
// exp32(x[i] − m), m the largest x[i] (as VMAXPS sees it), and returns
// their sum, added lane by lane (element i in lane i mod 16) and then
// pairwise across the lanes. The last n mod 16 elements go in one masked
// vector (K6; the lanes past n are neither read nor written). For the
// fused attention (attention_fused.go).
TEXT ·softmaxNumAVX512(SB), NOSPLIT, $0-28
	MOVQ  x+0(FP), SI
	MOVQ  n+8(FP), CX
	MOVQ  c+16(FP), DX
	MOVQ  CX, R10
	SHRQ  $4, R10                // whole vectors
	ANDQ  $15, CX
	MOVQ  CX, BX                 // the tail's length
	MOVL  $1, AX
	SHLL  CX, AX
	DECL  AX
	KMOVW AX, K6                 // the tail's lanes
	MOVQ  R10, CX

	// m: the maximum, lane by lane, then across the lanes.
	MOVL         $0xFF800000, AX // -Inf
	VPBROADCASTD AX, Z2
	MOVQ         SI, DI
	MOVQ         CX, R8
	TESTQ        R8, R8
	JZ           smmaxtail

smmax:
	VMAXPS (DI), Z2, Z2
	ADDQ   $64, DI
	DECQ   R8
	JNZ    smmax

smmaxtail:
	TESTQ         BX, BX
	JZ            smmaxred
	VMOVUPS.Z     (DI), K6, Z4
	VMAXPS        Z4, Z2, K6, Z2

smmaxred:
	VEXTRACTF64X4 $1, Z2, Y4
	VMAXPS        Y4, Y2, Y2
	VEXTRACTF128  $1, Y2, X4
	VMAXPS        X4, X2, X2
	VPERMILPS     $0x4e, X2, X4
	VMAXPS        X4, X2, X2
	VPERMILPS     $0xb1, X2, X4
	VMAXPS        X4, X2, X2
	VBROADCASTSS  X2, Z5

	LOADEXP
	LOAD87
	VXORPS Z3, Z3, Z3
	TESTQ  CX, CX
	JZ     smtail

smloop:
	VMOVUPS (SI), Z0
	VSUBPS  Z5, Z0, Z0
	RANGE87(Z0)
	JCC     smslow
	EXPNORMAL(Z0, Z1)
	JMP     smstore

smslow:
	EXP(Z0, Z1)

smstore:
	VMOVUPS Z1, (SI)
	VADDPS  Z1, Z3, Z3
	ADDQ    $64, SI
	DECQ    CX
	JNZ     smloop

smtail:
	TESTQ     BX, BX
	JZ        smsum
	VMOVUPS.Z (SI), K6, Z0
	VSUBPS    Z5, Z0, Z0
	EXP(Z0, Z1)
	VMOVUPS   Z1, K6, (SI)
	VADDPS    Z1, Z3, K6, Z3

smsum:
	VEXTRACTF64X4 $1, Z3, Y4
	VADDPS        Y4, Y3, Y3
	VEXTRACTF128  $1, Y3, X4
	VADDPS        X4, X3, X3
	VPERMILPS     $0x4e, X3, X4
	VADDPS        X4, X3, X3
	VPERMILPS     $0xb1, X3, X4
	VADDSS        X4, X3, X3
	VMOVSS        X3, ret+24(FP)
	VZEROUPPER
	RET
