#include "textflag.h"

// func dropoutAVX512(dst, x *float32, n int, k *dropArgs)
// The float32 applyDropout over n elements (a multiple of 8), 8 at a time:
// the mask hash of noise.go (mix64 twice) in 64-bit lanes, kept where
// h>>11 >= k.thresh (the same test as keepElem's float64 one, in
// integers), kept elements scaled by k.keep, dropped ones set to +0.
// dropArgs: seed, idHi (= id<<32), base, thresh uint64; keep float32.
TEXT ·dropoutAVX512(SB), NOSPLIT, $0-32
	MOVQ dst+0(FP), DI
	MOVQ x+8(FP), SI
	MOVQ n+16(FP), CX
	MOVQ k+24(FP), DX
	VPBROADCASTQ 0(DX), Z10 // seed
	VPBROADCASTQ 8(DX), Z11 // id<<32
	VPBROADCASTQ 16(DX), Z0 // base
	VPBROADCASTQ 24(DX), Z12 // thresh
	VBROADCASTSS 32(DX), Y13 // keep
	MOVQ $0x9e3779b97f4a7c15, AX
	VPBROADCASTQ AX, Z14
	MOVQ $0xbf58476d1ce4e5b9, AX
	VPBROADCASTQ AX, Z15
	MOVQ $0x94d049bb133111eb, AX
	VPBROADCASTQ AX, Z16
	MOVQ $8, AX
	VPBROADCASTQ AX, Z17
	MOVQ $0x0706050403020100, AX
	VMOVQ AX, X1
	VPMOVZXBQ X1, Z1
	VPADDQ Z1, Z0, Z0 // index of each lane: base + 0..7
	SHRQ $3, CX
	JZ   dropdone

droploop:
	VPXORQ  Z11, Z0, Z2 // id<<32 ^ i
	VPADDQ  Z14, Z2, Z2 // mix64
	VPSRLQ  $30, Z2, Z3
	VPXORQ  Z3, Z2, Z2
	VPMULLQ Z15, Z2, Z2
	VPSRLQ  $27, Z2, Z3
	VPXORQ  Z3, Z2, Z2
	VPMULLQ Z16, Z2, Z2
	VPSRLQ  $31, Z2, Z3
	VPXORQ  Z3, Z2, Z2
	VPXORQ  Z10, Z2, Z2 // seed ^ ...
	VPADDQ  Z14, Z2, Z2 // mix64
	VPSRLQ  $30, Z2, Z3
	VPXORQ  Z3, Z2, Z2
	VPMULLQ Z15, Z2, Z2
	VPSRLQ  $27, Z2, Z3
	VPXORQ  Z3, Z2, Z2
	VPMULLQ Z16, Z2, Z2
	VPSRLQ  $31, Z2, Z3
	VPXORQ  Z3, Z2, Z2
	VPSRLQ  $11, Z2, Z2
	VPCMPUQ $5, Z12, Z2, K1 // h>>11 >= thresh
	VMOVUPS (SI), Y4
	VMULPS.Z Y13, Y4, K1, Y4
	VMOVUPS Y4, (DI)
	VPADDQ  Z17, Z0, Z0
	ADDQ    $32, SI
	ADDQ    $32, DI
	DECQ    CX
	JNZ     droploop

dropdone:
	VZEROUPPER
	RET
