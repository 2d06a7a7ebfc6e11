#include "textflag.h"

// The many-row bf16 product (bf16gemm.go): VDPBF16PS, which the Go assembler
// does not know, encoded by hand (EVEX.512.F3.0F38.W0 52 /r, register form).
// DPBF16(d, a, b) is Intel's VDPBF16PS zmm_d, zmm_a, zmm_b: for each of the
// 16 lanes, d += a.lo·b.lo + a.hi·b.hi (bf16 pairs, float32 sum).
#define DPBF16(d, a, b) BYTE $0x62; BYTE $(((((31-(d))>>3)&1)<<7) | ((((31-(b))>>4)&1)<<6) | ((((31-(b))>>3)&1)<<5) | ((((31-(d))>>4)&1)<<4) | 2); BYTE $(((((31-(a)))&15)<<3) | 6); BYTE $(0x40 | ((((31-(a))>>4)&1)<<3)); BYTE $0x52; BYTE $(0xC0 | (((d)&7)<<3) | ((b)&7))

// func dpbf16Tile(xp *uint32, w *uint16, ldw int, kp int, out *float32)
// A 32×12 tile of x·Wᵀ: xp is 32 rows of x packed as bf16 pairs, [kp][32]
// uint32 (pair kk of row r at kk*32+r); w points at weight row n0, rows ldw
// bf16 apart; out receives [12][32] float32 (column c, row r at c*32+r).
TEXT ·dpbf16Tile(SB), NOSPLIT, $0-40
	MOVQ xp+0(FP), SI
	MOVQ w+8(FP), R8
	MOVQ ldw+16(FP), BX
	SHLQ $1, BX
	MOVQ kp+24(FP), CX
	MOVQ out+32(FP), DX
	LEAQ (R8)(BX*2), R9
	ADDQ BX, R9        // row 3
	LEAQ (R9)(BX*2), R10
	ADDQ BX, R10       // row 6
	LEAQ (R10)(BX*2), R11
	ADDQ BX, R11       // row 9
	VPXORD Z0, Z0, Z0
	VPXORD Z1, Z1, Z1
	VPXORD Z2, Z2, Z2
	VPXORD Z3, Z3, Z3
	VPXORD Z4, Z4, Z4
	VPXORD Z5, Z5, Z5
	VPXORD Z6, Z6, Z6
	VPXORD Z7, Z7, Z7
	VPXORD Z8, Z8, Z8
	VPXORD Z9, Z9, Z9
	VPXORD Z10, Z10, Z10
	VPXORD Z11, Z11, Z11
	VPXORD Z12, Z12, Z12
	VPXORD Z13, Z13, Z13
	VPXORD Z14, Z14, Z14
	VPXORD Z15, Z15, Z15
	VPXORD Z16, Z16, Z16
	VPXORD Z17, Z17, Z17
	VPXORD Z18, Z18, Z18
	VPXORD Z19, Z19, Z19
	VPXORD Z20, Z20, Z20
	VPXORD Z21, Z21, Z21
	VPXORD Z22, Z22, Z22
	VPXORD Z23, Z23, Z23
	TESTQ CX, CX
	JZ dpdone
dploop:
	VMOVDQU32 (SI), Z24
	VMOVDQU32 64(SI), Z25
	VPBROADCASTD (R8), Z26
	DPBF16(0, 24, 26)
	DPBF16(1, 25, 26)
	VPBROADCASTD (R8)(BX*1), Z27
	DPBF16(2, 24, 27)
	DPBF16(3, 25, 27)
	VPBROADCASTD (R8)(BX*2), Z28
	DPBF16(4, 24, 28)
	DPBF16(5, 25, 28)
	VPBROADCASTD (R9), Z29
	DPBF16(6, 24, 29)
	DPBF16(7, 25, 29)
	VPBROADCASTD (R9)(BX*1), Z30
	DPBF16(8, 24, 30)
	DPBF16(9, 25, 30)
	VPBROADCASTD (R9)(BX*2), Z31
	DPBF16(10, 24, 31)
	DPBF16(11, 25, 31)
	VPBROADCASTD (R10), Z26
	DPBF16(12, 24, 26)
	DPBF16(13, 25, 26)
	VPBROADCASTD (R10)(BX*1), Z27
	DPBF16(14, 24, 27)
	DPBF16(15, 25, 27)
	VPBROADCASTD (R10)(BX*2), Z28
	DPBF16(16, 24, 28)
	DPBF16(17, 25, 28)
	VPBROADCASTD (R11), Z29
	DPBF16(18, 24, 29)
	DPBF16(19, 25, 29)
	VPBROADCASTD (R11)(BX*1), Z30
	DPBF16(20, 24, 30)
	DPBF16(21, 25, 30)
	VPBROADCASTD (R11)(BX*2), Z31
	DPBF16(22, 24, 31)
	DPBF16(23, 25, 31)
	ADDQ $128, SI
	ADDQ $4, R8
	ADDQ $4, R9
	ADDQ $4, R10
	ADDQ $4, R11
	DECQ CX
	JNZ dploop
dpdone:
	VMOVUPS Z0, 0(DX)
	VMOVUPS Z1, 64(DX)
	VMOVUPS Z2, 128(DX)
	VMOVUPS Z3, 192(DX)
	VMOVUPS Z4, 256(DX)
	VMOVUPS Z5, 320(DX)
	VMOVUPS Z6, 384(DX)
	VMOVUPS Z7, 448(DX)
	VMOVUPS Z8, 512(DX)
	VMOVUPS Z9, 576(DX)
	VMOVUPS Z10, 640(DX)
	VMOVUPS Z11, 704(DX)
	VMOVUPS Z12, 768(DX)
	VMOVUPS Z13, 832(DX)
	VMOVUPS Z14, 896(DX)
	VMOVUPS Z15, 960(DX)
	VMOVUPS Z16, 1024(DX)
	VMOVUPS Z17, 1088(DX)
	VMOVUPS Z18, 1152(DX)
	VMOVUPS Z19, 1216(DX)
	VMOVUPS Z20, 1280(DX)
	VMOVUPS Z21, 1344(DX)
	VMOVUPS Z22, 1408(DX)
	VMOVUPS Z23, 1472(DX)
	VZEROUPPER
	RET
