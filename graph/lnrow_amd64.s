#include "textflag.h"

// AVX-512 passes of the float32 LayerNorm forward (lnrow.go): the row sums
// in lnLanes = 32 float64 partial sums (Z0-Z3, element j of a block in lane
// j of the four registers), reduced in lnReduce's order, and the output,
// each operation rounded on its own as in the Go code.

// LNREDUCE sets X0 to lnReduce of Z0-Z3.
#define LNREDUCE \
	VADDPD        Z1, Z0, Z0 \
	VADDPD        Z3, Z2, Z2 \
	VADDPD        Z2, Z0, Z0 \
	VEXTRACTF64X4 $1, Z0, Y1 \
	VADDPD        Y1, Y0, Y0 \
	VEXTRACTF128  $1, Y0, X1 \
	VADDPD        X1, X0, X0 \
	VPERMILPD     $1, X0, X1 \
	VADDSD        X1, X0, X0

// func lnSumAVX512(x *float32, n int) float64
// Σ x[0..n) as lnSumRef orders it; n is a positive multiple of 32.
TEXT ·lnSumAVX512(SB), NOSPLIT, $0-24
	MOVQ   x+0(FP), SI
	MOVQ   n+8(FP), CX
	SHRQ   $5, CX
	VXORPD Z0, Z0, Z0
	VXORPD Z1, Z1, Z1
	VXORPD Z2, Z2, Z2
	VXORPD Z3, Z3, Z3

lsloop:
	VCVTPS2PD (SI), Z4
	VCVTPS2PD 32(SI), Z5
	VCVTPS2PD 64(SI), Z6
	VCVTPS2PD 96(SI), Z7
	VADDPD    Z4, Z0, Z0
	VADDPD    Z5, Z1, Z1
	VADDPD    Z6, Z2, Z2
	VADDPD    Z7, Z3, Z3
	ADDQ      $128, SI
	DECQ      CX
	JNZ       lsloop
	LNREDUCE
	VZEROUPPER
	MOVSD     X0, ret+16(FP)
	RET

// func lnSqDevAVX512(x *float32, n int, mu float64) float64
// Σ (x[i]-mu)² as lnSumRef orders it, each square rounded before it is
// added; n is a positive multiple of 32.
TEXT ·lnSqDevAVX512(SB), NOSPLIT, $0-32
	MOVQ         x+0(FP), SI
	MOVQ         n+8(FP), CX
	VBROADCASTSD mu+16(FP), Z8
	SHRQ         $5, CX
	VXORPD       Z0, Z0, Z0
	VXORPD       Z1, Z1, Z1
	VXORPD       Z2, Z2, Z2
	VXORPD       Z3, Z3, Z3

lqloop:
	VCVTPS2PD (SI), Z4
	VCVTPS2PD 32(SI), Z5
	VCVTPS2PD 64(SI), Z6
	VCVTPS2PD 96(SI), Z7
	VSUBPD    Z8, Z4, Z4
	VSUBPD    Z8, Z5, Z5
	VSUBPD    Z8, Z6, Z6
	VSUBPD    Z8, Z7, Z7
	VMULPD    Z4, Z4, Z4
	VMULPD    Z5, Z5, Z5
	VMULPD    Z6, Z6, Z6
	VMULPD    Z7, Z7, Z7
	VADDPD    Z4, Z0, Z0
	VADDPD    Z5, Z1, Z1
	VADDPD    Z6, Z2, Z2
	VADDPD    Z7, Z3, Z3
	ADDQ      $128, SI
	DECQ      CX
	JNZ       lqloop
	LNREDUCE
	VZEROUPPER
	MOVSD     X0, ret+24(FP)
	RET

// func lnApplyAVX512(x, gain, bias, y *float32, n int, mu, rstd float64)
// y[i] = float32((x[i]-mu)·rstd)·gain[i] + bias[i]; n is a multiple of 16.
TEXT ·lnApplyAVX512(SB), NOSPLIT, $0-56
	MOVQ         x+0(FP), SI
	MOVQ         gain+8(FP), AX
	MOVQ         bias+16(FP), BX
	MOVQ         y+24(FP), DI
	MOVQ         n+32(FP), CX
	VBROADCASTSD mu+40(FP), Z8
	VBROADCASTSD rstd+48(FP), Z9
	SHRQ         $4, CX
	JZ           ladone

laloop:
	VCVTPS2PD    (SI), Z4
	VCVTPS2PD    32(SI), Z5
	VSUBPD       Z8, Z4, Z4
	VSUBPD       Z8, Z5, Z5
	VMULPD       Z9, Z4, Z4
	VMULPD       Z9, Z5, Z5
	VCVTPD2PS    Z4, Y4
	VCVTPD2PS    Z5, Y5
	VINSERTF32X8 $1, Y5, Z4, Z4
	VMULPS       (AX), Z4, Z4
	VADDPS       (BX), Z4, Z4
	VMOVUPS      Z4, (DI)
	ADDQ         $64, SI
	ADDQ         $64, AX
	ADDQ         $64, BX
	ADDQ         $64, DI
	DECQ         CX
	JNZ          laloop

ladone:
	VZEROUPPER
	RET
