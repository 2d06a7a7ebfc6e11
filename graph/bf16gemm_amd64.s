#include "textflag.h"
#include "tile_amd64.h"

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
	TILE_ROWS
	ZERO24
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
	STORE24
	VZEROUPPER
	RET

// func dpPanelN(a *uint16, ablk int, mb int, b *uint16, kb int, c *float32, ldc int, cinit *float32, cs int, groups int)
// amxPanel's product on VDPBF16PS, from the same packed operands: mb row
// blocks of 32 (ablk uint16 apart) of A packed for the tiles times kb
// steps of 32 k of one 32-column VNNI panel of B, into C (ldc floats a
// row) from cinit (nil: zero; cs floats a row, 0: the same row for all).
// A block is 4 groups of 8 rows (group g at g·512 bytes, row r of it 64
// bytes further: the tiles' rows); each group holds 8 rows × 32 columns in
// Z0-Z15 (row r: Z2r columns 0-15, Z2r+1 columns 16-31) while k runs, a
// pair at a time: the pair's two B rows (columns 0-15 at DI, 16-31 at
// DI+1024) against each row's pair broadcast. Every element sums its pairs
// in k order. groups (1-4) is how many of a block's groups it computes: a
// last block of fewer rows (a decode step's) stops after its rows' groups.
TEXT ·dpPanelN(SB), NOSPLIT, $0-80
	MOVQ a+0(FP), R14
	MOVQ mb+16(FP), R15
	MOVQ c+40(FP), DX
	MOVQ ldc+48(FP), R10
	SHLQ $2, R10         // C row stride, bytes
	MOVQ cinit+56(FP), R11
	MOVQ cs+64(FP), R12
	SHLQ $2, R12         // init row stride, bytes
dpblock:
	XORQ R13, R13       // group
dpgroup:
	MOVQ R13, SI
	SHLQ $9, SI
	ADDQ R14, SI        // the group's rows of A
	MOVQ R13, R8
	SHLQ $3, R8
	IMULQ R10, R8
	ADDQ DX, R8         // its rows of C
	TESTQ R11, R11
	JZ dpzero
	MOVQ R13, CX
	SHLQ $3, CX
	IMULQ R12, CX
	ADDQ R11, CX        // its init rows
	VMOVUPS (CX), Z0
	VMOVUPS 64(CX), Z1
	ADDQ R12, CX
	VMOVUPS (CX), Z2
	VMOVUPS 64(CX), Z3
	ADDQ R12, CX
	VMOVUPS (CX), Z4
	VMOVUPS 64(CX), Z5
	ADDQ R12, CX
	VMOVUPS (CX), Z6
	VMOVUPS 64(CX), Z7
	ADDQ R12, CX
	VMOVUPS (CX), Z8
	VMOVUPS 64(CX), Z9
	ADDQ R12, CX
	VMOVUPS (CX), Z10
	VMOVUPS 64(CX), Z11
	ADDQ R12, CX
	VMOVUPS (CX), Z12
	VMOVUPS 64(CX), Z13
	ADDQ R12, CX
	VMOVUPS (CX), Z14
	VMOVUPS 64(CX), Z15
	JMP dpk
dpzero:
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
dpk:
	MOVQ b+24(FP), DI
	MOVQ kb+32(FP), AX
dpstep:
	MOVQ $16, BX
dppair:
	VMOVDQU32 (DI), Z16
	VMOVDQU32 1024(DI), Z17
	VPBROADCASTD 0(SI), Z18
	DPBF16(0, 16, 18)
	DPBF16(1, 17, 18)
	VPBROADCASTD 64(SI), Z19
	DPBF16(2, 16, 19)
	DPBF16(3, 17, 19)
	VPBROADCASTD 128(SI), Z20
	DPBF16(4, 16, 20)
	DPBF16(5, 17, 20)
	VPBROADCASTD 192(SI), Z21
	DPBF16(6, 16, 21)
	DPBF16(7, 17, 21)
	VPBROADCASTD 256(SI), Z22
	DPBF16(8, 16, 22)
	DPBF16(9, 17, 22)
	VPBROADCASTD 320(SI), Z23
	DPBF16(10, 16, 23)
	DPBF16(11, 17, 23)
	VPBROADCASTD 384(SI), Z24
	DPBF16(12, 16, 24)
	DPBF16(13, 17, 24)
	VPBROADCASTD 448(SI), Z25
	DPBF16(14, 16, 25)
	DPBF16(15, 17, 25)
	ADDQ $4, SI
	ADDQ $64, DI
	DECQ BX
	JNZ dppair
	ADDQ $1984, SI      // the next step of A (2048 bytes on)
	ADDQ $1024, DI      // and of B
	DECQ AX
	JNZ dpstep
	MOVQ R8, CX
	VMOVUPS Z0, (CX)
	VMOVUPS Z1, 64(CX)
	ADDQ R10, CX
	VMOVUPS Z2, (CX)
	VMOVUPS Z3, 64(CX)
	ADDQ R10, CX
	VMOVUPS Z4, (CX)
	VMOVUPS Z5, 64(CX)
	ADDQ R10, CX
	VMOVUPS Z6, (CX)
	VMOVUPS Z7, 64(CX)
	ADDQ R10, CX
	VMOVUPS Z8, (CX)
	VMOVUPS Z9, 64(CX)
	ADDQ R10, CX
	VMOVUPS Z10, (CX)
	VMOVUPS Z11, 64(CX)
	ADDQ R10, CX
	VMOVUPS Z12, (CX)
	VMOVUPS Z13, 64(CX)
	ADDQ R10, CX
	VMOVUPS Z14, (CX)
	VMOVUPS Z15, 64(CX)
	INCQ R13
	CMPQ R13, groups+72(FP)
	JLT dpgroup
	MOVQ ablk+8(FP), AX
	SHLQ $1, AX
	ADDQ AX, R14        // next row block of A
	MOVQ R10, AX
	SHLQ $5, AX
	ADDQ AX, DX
	MOVQ R12, AX
	SHLQ $5, AX
	ADDQ AX, R11
	DECQ R15
	JNZ dpblock
	VZEROUPPER
	RET
