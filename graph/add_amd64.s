#include "textflag.h"

// func addF32AVX512(a, c, y *float32, n int)
// y[i] = a[i] + c[i], 64 elements per iteration; n is a multiple of 16.
TEXT ·addF32AVX512(SB), NOSPLIT, $0-32
	MOVQ a+0(FP), SI
	MOVQ c+8(FP), BX
	MOVQ y+16(FP), DI
	MOVQ n+24(FP), CX
	SHRQ $4, CX
	JZ   adddone

add4:
	CMPQ    CX, $4
	JLT     add1
	VMOVUPS (SI), Z0
	VMOVUPS 64(SI), Z1
	VMOVUPS 128(SI), Z2
	VMOVUPS 192(SI), Z3
	VADDPS  (BX), Z0, Z0
	VADDPS  64(BX), Z1, Z1
	VADDPS  128(BX), Z2, Z2
	VADDPS  192(BX), Z3, Z3
	VMOVUPS Z0, (DI)
	VMOVUPS Z1, 64(DI)
	VMOVUPS Z2, 128(DI)
	VMOVUPS Z3, 192(DI)
	ADDQ    $256, SI
	ADDQ    $256, BX
	ADDQ    $256, DI
	SUBQ    $4, CX
	JMP     add4

add1:
	TESTQ   CX, CX
	JZ      adddone
	VMOVUPS (SI), Z0
	VADDPS  (BX), Z0, Z0
	VMOVUPS Z0, (DI)
	ADDQ    $64, SI
	ADDQ    $64, BX
	ADDQ    $64, DI
	DECQ    CX
	JMP     add1

adddone:
	VZEROUPPER
	RET
