#include "textflag.h"

// AVX-512 kernels of the optimiser step (optim_amd64.go). Every lane does
// the float32 operations of adamKernelGo, sumSquaresGo and scaleGo in the
// same order, each rounded once (IEEE-754 hardware arithmetic; the first
// moment's fused multiply-add is VFMADD231PS), so the results are
// bit-identical to the pure-Go kernels.

// func adamAVX512(w, gr, m, v *float32, n int, k *[8]float32, decay bool)
// n is a multiple of 16; k = {decayMul, b1, 1-b1, b2, 1-b2, sqrt(1-b2^t), eps, stepSize, gradScale}:
// the gradient is read as g*gradScale (one rounded product; exactly g for 1).
TEXT ·adamAVX512(SB), NOSPLIT, $0-49
	MOVQ w+0(FP), DI
	MOVQ gr+8(FP), SI
	MOVQ m+16(FP), R8
	MOVQ v+24(FP), R9
	MOVQ n+32(FP), CX
	MOVQ k+40(FP), DX
	MOVBLZX decay+48(FP), AX
	VBROADCASTSS 0(DX), Z16  // decayMul
	VBROADCASTSS 4(DX), Z17  // b1
	VBROADCASTSS 8(DX), Z18  // 1-b1
	VBROADCASTSS 12(DX), Z19 // b2
	VBROADCASTSS 16(DX), Z20 // 1-b2
	VBROADCASTSS 20(DX), Z21 // sqrt(1-b2^t)
	VBROADCASTSS 24(DX), Z22 // eps
	VBROADCASTSS 28(DX), Z23 // stepSize
	VBROADCASTSS 32(DX), Z24 // gradScale
	SHRQ $4, CX
	JZ   adamdone

adamloop:
	VMOVUPS (DI), Z0 // p
	TESTQ   AX, AX
	JZ      nodecay
	VMULPS  Z16, Z0, Z0 // p = p*decayMul

nodecay:
	VMOVUPS     (SI), Z1      // g
	VMULPS      Z24, Z1, Z1   // g*gradScale
	VMOVUPS     (R8), Z2      // m
	VMULPS      Z17, Z2, Z2   // m*b1
	VFMADD231PS Z18, Z1, Z2   // m = fma(g, 1-b1, m*b1)
	VMOVUPS     (R9), Z3      // v
	VMULPS      Z19, Z3, Z3   // v*b2
	VMULPS      Z20, Z1, Z4   // (1-b2)*g
	VMULPS      Z1, Z4, Z4    // ((1-b2)*g)*g
	VADDPS      Z4, Z3, Z3    // v
	VMOVUPS     Z2, (R8)
	VMOVUPS     Z3, (R9)
	VSQRTPS     Z3, Z5        // sqrt(v)
	VDIVPS      Z21, Z5, Z5   // sqrt(v)/sqrt(1-b2^t)
	VADDPS      Z22, Z5, Z5   // denom = ... + eps
	VMULPS      Z23, Z2, Z6   // stepSize*m
	VDIVPS      Z5, Z6, Z6    // stepSize*m/denom
	VADDPS      Z6, Z0, Z0    // p + ...
	VMOVUPS     Z0, (DI)
	ADDQ        $64, DI
	ADDQ        $64, SI
	ADDQ        $64, R8
	ADDQ        $64, R9
	DECQ        CX
	JNZ         adamloop

adamdone:
	VZEROUPPER
	RET

// func sumSquaresAVX2(gr *float32, n int) (s0, s1, s2, s3 float64)
// n is a multiple of 4: lane j of the accumulator sums the squares of
// g[i+j] for i = 0, 4, 8, ..., as the four accumulators of sumSquaresGo do
// (each square and each sum rounded to float64 on its own).
TEXT ·sumSquaresAVX2(SB), NOSPLIT, $0-48
	MOVQ      gr+0(FP), SI
	MOVQ      n+8(FP), CX
	VXORPD    Y0, Y0, Y0
	SHRQ      $2, CX
	JZ        ssdone

ssloop:
	VCVTPS2PD (SI), Y1
	VMULPD    Y1, Y1, Y1
	VADDPD    Y1, Y0, Y0
	ADDQ      $16, SI
	DECQ      CX
	JNZ       ssloop

ssdone:
	VEXTRACTF128 $1, Y0, X1
	MOVSD        X0, s0+16(FP)
	MOVHPD       X0, s1+24(FP)
	MOVSD        X1, s2+32(FP)
	MOVHPD       X1, s3+40(FP)
	VZEROUPPER
	RET

// func scaleAVX512(gr *float32, n int, s float32)
// g[i] *= s; n is a multiple of 16.
TEXT ·scaleAVX512(SB), NOSPLIT, $0-20
	MOVQ         gr+0(FP), SI
	MOVQ         n+8(FP), CX
	VBROADCASTSS s+16(FP), Z1
	SHRQ         $4, CX
	JZ           scdone

scloop:
	VMULPS  (SI), Z1, Z0
	VMOVUPS Z0, (SI)
	ADDQ    $64, SI
	DECQ    CX
	JNZ     scloop

scdone:
	VZEROUPPER
	RET
