#include "textflag.h"

// AVX-512 kernels for bf16 weights (bf16.go) and the bandwidth probe
// (bandwidth.go). A bf16 value is the top half of a float32, so widening is
// a zero-extension to 32 bits and a 16-bit left shift: exact.

// REDUCE4 sums one dot product's four accumulators into the low lane of
// xa: (a+b) + (c+d), then the halves, quarters and the last four lanes
// pairwise. Every dot-product kernel here ends with it, so their results
// are bit-identical for the same accumulators (b's registers are clobbered).
#define REDUCE4(a, b, c, d, ya, yb, xa, xb) \
	VADDPS        b, a, a; \
	VADDPS        d, c, c; \
	VADDPS        c, a, a; \
	VEXTRACTF64X4 $1, a, yb; \
	VADDPS        yb, ya, ya; \
	VEXTRACTF128  $1, ya, xb; \
	VADDPS        xb, xa, xa; \
	VHADDPS       xa, xa, xa; \
	VHADDPS       xa, xa, xa

// ZERO16 clears Z0-Z15 (sixteen accumulators).
#define ZERO16 \
	VPXORD Z0, Z0, Z0; \
	VPXORD Z1, Z1, Z1; \
	VPXORD Z2, Z2, Z2; \
	VPXORD Z3, Z3, Z3; \
	VPXORD Z4, Z4, Z4; \
	VPXORD Z5, Z5, Z5; \
	VPXORD Z6, Z6, Z6; \
	VPXORD Z7, Z7, Z7; \
	VPXORD Z8, Z8, Z8; \
	VPXORD Z9, Z9, Z9; \
	VPXORD Z10, Z10, Z10; \
	VPXORD Z11, Z11, Z11; \
	VPXORD Z12, Z12, Z12; \
	VPXORD Z13, Z13, Z13; \
	VPXORD Z14, Z14, Z14; \
	VPXORD Z15, Z15, Z15

// func sumF32AVX512(x *float32, n int) float32
// n is a multiple of 64.
TEXT ·sumF32AVX512(SB), NOSPLIT, $0-20
	MOVQ x+0(FP), SI
	MOVQ n+8(FP), CX
	VPXORD Z0, Z0, Z0
	VPXORD Z1, Z1, Z1
	VPXORD Z2, Z2, Z2
	VPXORD Z3, Z3, Z3
	SHRQ $6, CX
	JZ   sumdone

sumloop:
	VADDPS (SI), Z0, Z0
	VADDPS 64(SI), Z1, Z1
	VADDPS 128(SI), Z2, Z2
	VADDPS 192(SI), Z3, Z3
	ADDQ   $256, SI
	DECQ   CX
	JNZ    sumloop

sumdone:
	VADDPS        Z1, Z0, Z0
	VADDPS        Z3, Z2, Z2
	VADDPS        Z2, Z0, Z0
	VEXTRACTF64X4 $1, Z0, Y1
	VADDPS        Y1, Y0, Y0
	VEXTRACTF128  $1, Y0, X1
	VADDPS        X1, X0, X0
	VHADDPS       X0, X0, X0
	VHADDPS       X0, X0, X0
	VZEROUPPER
	MOVSS         X0, ret+16(FP)
	RET

// func widenBF16AVX512(dst *float32, src *uint16, n int)
// n is a multiple of 16.
TEXT ·widenBF16AVX512(SB), NOSPLIT, $0-24
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ n+16(FP), CX
	SHRQ $4, CX
	JZ   widendone

widenloop:
	VPMOVZXWD (SI), Z0
	VPSLLD    $16, Z0, Z0
	VMOVUPS   Z0, (DI)
	ADDQ      $32, SI
	ADDQ      $64, DI
	DECQ      CX
	JNZ       widenloop

widendone:
	VZEROUPPER
	RET

// func dot1BF16AVX512(w *uint16, x *float32, k int) float32
// Σ_{i<k} widen(w[i])·x[i]; k is a multiple of 16. One weight row is one
// sequential stream, which the hardware prefetcher follows at close to the
// core's full read bandwidth (interleaving four rows, as an earlier kernel did,
// measured 1.45x slower from memory on Zen 5). Four accumulators take the
// 64-element blocks and the first also takes the 16-element tail, so the
// result depends only on w, x and k: never on the batch or the row split.
TEXT ·dot1BF16AVX512(SB), NOSPLIT, $0-28
	MOVQ   w+0(FP), SI
	MOVQ   x+8(FP), DI
	MOVQ   k+16(FP), CX
	MOVQ   CX, R11
	VPXORD Z0, Z0, Z0
	VPXORD Z1, Z1, Z1
	VPXORD Z2, Z2, Z2
	VPXORD Z3, Z3, Z3
	SHRQ   $6, CX
	JZ     d1tail

d1loop:
	VPMOVZXWD   (SI), Z5
	VPMOVZXWD   32(SI), Z6
	VPMOVZXWD   64(SI), Z7
	VPMOVZXWD   96(SI), Z8
	VPSLLD      $16, Z5, Z5
	VPSLLD      $16, Z6, Z6
	VPSLLD      $16, Z7, Z7
	VPSLLD      $16, Z8, Z8
	VFMADD231PS (DI), Z5, Z0
	VFMADD231PS 64(DI), Z6, Z1
	VFMADD231PS 128(DI), Z7, Z2
	VFMADD231PS 192(DI), Z8, Z3
	ADDQ        $128, SI
	ADDQ        $256, DI
	DECQ        CX
	JNZ         d1loop

d1tail:
	ANDQ        $63, R11
	SHRQ        $4, R11
	JZ          d1done

d1tloop:
	VPMOVZXWD   (SI), Z5
	VPSLLD      $16, Z5, Z5
	VFMADD231PS (DI), Z5, Z0
	ADDQ        $32, SI
	ADDQ        $64, DI
	DECQ        R11
	JNZ         d1tloop

d1done:
	REDUCE4(Z0, Z1, Z2, Z3, Y0, Y1, X0, X1)
	MOVSS X0, ret+24(FP)
	VZEROUPPER
	RET

// func dot1x4BF16AVX512(w *uint16, x *float32, ldx int, k int, y *float32)
// y[r] = Σ_{i<k} widen(w[i])·x[r*ldx+i] for r = 0..3; k is a multiple of 16.
// One weight row against four x rows: the row is read and widened once for
// all four, which is what makes a batched decode step compute-light. Each
// x row keeps its own four accumulators, filled and reduced exactly as in
// dot1BF16AVX512, so y[r] is bit-identical to dot1BF16AVX512(w, x[r*ldx:], k)
// and a sequence's result does not depend on the rows it is batched with.
TEXT ·dot1x4BF16AVX512(SB), NOSPLIT, $0-40
	MOVQ   w+0(FP), SI
	MOVQ   x+8(FP), DI
	MOVQ   ldx+16(FP), BX
	SHLQ   $2, BX
	MOVQ   k+24(FP), CX
	MOVQ   y+32(FP), DX
	LEAQ   (DI)(BX*1), R8
	LEAQ   (R8)(BX*1), R9
	LEAQ   (R9)(BX*1), R10
	MOVQ   CX, R11
	ZERO16
	SHRQ   $6, CX
	JZ     d4tail

d4loop:
	VPMOVZXWD   (SI), Z16
	VPMOVZXWD   32(SI), Z17
	VPMOVZXWD   64(SI), Z18
	VPMOVZXWD   96(SI), Z19
	VPSLLD      $16, Z16, Z16
	VPSLLD      $16, Z17, Z17
	VPSLLD      $16, Z18, Z18
	VPSLLD      $16, Z19, Z19
	VFMADD231PS (DI), Z16, Z0
	VFMADD231PS 64(DI), Z17, Z1
	VFMADD231PS 128(DI), Z18, Z2
	VFMADD231PS 192(DI), Z19, Z3
	VFMADD231PS (R8), Z16, Z4
	VFMADD231PS 64(R8), Z17, Z5
	VFMADD231PS 128(R8), Z18, Z6
	VFMADD231PS 192(R8), Z19, Z7
	VFMADD231PS (R9), Z16, Z8
	VFMADD231PS 64(R9), Z17, Z9
	VFMADD231PS 128(R9), Z18, Z10
	VFMADD231PS 192(R9), Z19, Z11
	VFMADD231PS (R10), Z16, Z12
	VFMADD231PS 64(R10), Z17, Z13
	VFMADD231PS 128(R10), Z18, Z14
	VFMADD231PS 192(R10), Z19, Z15
	ADDQ        $128, SI
	ADDQ        $256, DI
	ADDQ        $256, R8
	ADDQ        $256, R9
	ADDQ        $256, R10
	DECQ        CX
	JNZ         d4loop

d4tail:
	ANDQ        $63, R11
	SHRQ        $4, R11
	JZ          d4done

d4tloop:
	VPMOVZXWD   (SI), Z16
	VPSLLD      $16, Z16, Z16
	VFMADD231PS (DI), Z16, Z0
	VFMADD231PS (R8), Z16, Z4
	VFMADD231PS (R9), Z16, Z8
	VFMADD231PS (R10), Z16, Z12
	ADDQ        $32, SI
	ADDQ        $64, DI
	ADDQ        $64, R8
	ADDQ        $64, R9
	ADDQ        $64, R10
	DECQ        R11
	JNZ         d4tloop

d4done:
	REDUCE4(Z0, Z1, Z2, Z3, Y0, Y1, X0, X1)
	MOVSS X0, 0(DX)
	REDUCE4(Z4, Z5, Z6, Z7, Y4, Y5, X4, X5)
	MOVSS X4, 4(DX)
	REDUCE4(Z8, Z9, Z10, Z11, Y8, Y9, X8, X9)
	MOVSS X8, 8(DX)
	REDUCE4(Z12, Z13, Z14, Z15, Y12, Y13, X12, X13)
	MOVSS X12, 12(DX)
	VZEROUPPER
	RET

// func dot4x1BF16AVX512(w *uint16, ldw int, x *float32, k int, y *float32)
// y[r] = Σ_{i<k} widen(w[r*ldw+i])·x[i] for r = 0..3; k is a multiple of 16.
// Four weight rows against one x row: across a batch of x rows the four
// rows stay in L1 and each x block is loaded once for all four, which is
// what a many-row decode step needs. Each weight row keeps its own four
// accumulators, filled and reduced exactly as in dot1BF16AVX512, so y[r] is
// bit-identical to dot1BF16AVX512(w[r*ldw:], x, k).
TEXT ·dot4x1BF16AVX512(SB), NOSPLIT, $0-40
	MOVQ   w+0(FP), SI
	MOVQ   ldw+8(FP), BX
	SHLQ   $1, BX
	MOVQ   x+16(FP), DI
	MOVQ   k+24(FP), CX
	MOVQ   y+32(FP), DX
	LEAQ   (SI)(BX*1), R8
	LEAQ   (R8)(BX*1), R9
	LEAQ   (R9)(BX*1), R10
	MOVQ   CX, R11
	ZERO16
	SHRQ   $6, CX
	JZ     d41tail

d41loop:
	VMOVUPS     (DI), Z16
	VMOVUPS     64(DI), Z17
	VMOVUPS     128(DI), Z18
	VMOVUPS     192(DI), Z19
	VPMOVZXWD   (SI), Z20
	VPMOVZXWD   32(SI), Z21
	VPMOVZXWD   64(SI), Z22
	VPMOVZXWD   96(SI), Z23
	VPSLLD      $16, Z20, Z20
	VPSLLD      $16, Z21, Z21
	VPSLLD      $16, Z22, Z22
	VPSLLD      $16, Z23, Z23
	VFMADD231PS Z16, Z20, Z0
	VFMADD231PS Z17, Z21, Z1
	VFMADD231PS Z18, Z22, Z2
	VFMADD231PS Z19, Z23, Z3
	VPMOVZXWD   (R8), Z20
	VPMOVZXWD   32(R8), Z21
	VPMOVZXWD   64(R8), Z22
	VPMOVZXWD   96(R8), Z23
	VPSLLD      $16, Z20, Z20
	VPSLLD      $16, Z21, Z21
	VPSLLD      $16, Z22, Z22
	VPSLLD      $16, Z23, Z23
	VFMADD231PS Z16, Z20, Z4
	VFMADD231PS Z17, Z21, Z5
	VFMADD231PS Z18, Z22, Z6
	VFMADD231PS Z19, Z23, Z7
	VPMOVZXWD   (R9), Z20
	VPMOVZXWD   32(R9), Z21
	VPMOVZXWD   64(R9), Z22
	VPMOVZXWD   96(R9), Z23
	VPSLLD      $16, Z20, Z20
	VPSLLD      $16, Z21, Z21
	VPSLLD      $16, Z22, Z22
	VPSLLD      $16, Z23, Z23
	VFMADD231PS Z16, Z20, Z8
	VFMADD231PS Z17, Z21, Z9
	VFMADD231PS Z18, Z22, Z10
	VFMADD231PS Z19, Z23, Z11
	VPMOVZXWD   (R10), Z20
	VPMOVZXWD   32(R10), Z21
	VPMOVZXWD   64(R10), Z22
	VPMOVZXWD   96(R10), Z23
	VPSLLD      $16, Z20, Z20
	VPSLLD      $16, Z21, Z21
	VPSLLD      $16, Z22, Z22
	VPSLLD      $16, Z23, Z23
	VFMADD231PS Z16, Z20, Z12
	VFMADD231PS Z17, Z21, Z13
	VFMADD231PS Z18, Z22, Z14
	VFMADD231PS Z19, Z23, Z15
	ADDQ        $128, SI
	ADDQ        $128, R8
	ADDQ        $128, R9
	ADDQ        $128, R10
	ADDQ        $256, DI
	DECQ        CX
	JNZ         d41loop

d41tail:
	ANDQ        $63, R11
	SHRQ        $4, R11
	JZ          d41done

d41tloop:
	VMOVUPS     (DI), Z16
	VPMOVZXWD   (SI), Z20
	VPSLLD      $16, Z20, Z20
	VFMADD231PS Z16, Z20, Z0
	VPMOVZXWD   (R8), Z21
	VPSLLD      $16, Z21, Z21
	VFMADD231PS Z16, Z21, Z4
	VPMOVZXWD   (R9), Z22
	VPSLLD      $16, Z22, Z22
	VFMADD231PS Z16, Z22, Z8
	VPMOVZXWD   (R10), Z23
	VPSLLD      $16, Z23, Z23
	VFMADD231PS Z16, Z23, Z12
	ADDQ        $32, SI
	ADDQ        $32, R8
	ADDQ        $32, R9
	ADDQ        $32, R10
	ADDQ        $64, DI
	DECQ        R11
	JNZ         d41tloop

d41done:
	REDUCE4(Z0, Z1, Z2, Z3, Y0, Y1, X0, X1)
	MOVSS X0, 0(DX)
	REDUCE4(Z4, Z5, Z6, Z7, Y4, Y5, X4, X5)
	MOVSS X4, 4(DX)
	REDUCE4(Z8, Z9, Z10, Z11, Y8, Y9, X8, X9)
	MOVSS X8, 8(DX)
	REDUCE4(Z12, Z13, Z14, Z15, Y12, Y13, X12, X13)
	MOVSS X12, 12(DX)
	VZEROUPPER
	RET
