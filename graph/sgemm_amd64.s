#include "textflag.h"
#include "tile_amd64.h"

// The float32 many-row product (sgemm.go): 32×12 and 16×12 tiles of x·Wᵀ
// (tile_amd64.h: column c of a 32-row tile in Z(2c) and Z(2c+1); of a
// 16-row tile in Z(c)), and the 16×16 transposes that pack x and unpack
// the tiles.

// STEP(off, woff) is one k of the 32-row tile: the two 16-row halves of xp
// at off(SI), each times the twelve weights of this k broadcast from the
// rows (woff bytes into them), added to the tile with one rounding (FMA).
#define STEP(off, woff) \
	VMOVUPS off(SI), Z24; \
	VMOVUPS off+64(SI), Z25; \
	VBROADCASTSS woff(R8), Z26; \
	VFMADD231PS Z26, Z24, Z0; \
	VFMADD231PS Z26, Z25, Z1; \
	VBROADCASTSS woff(R8)(BX*1), Z27; \
	VFMADD231PS Z27, Z24, Z2; \
	VFMADD231PS Z27, Z25, Z3; \
	VBROADCASTSS woff(R8)(BX*2), Z28; \
	VFMADD231PS Z28, Z24, Z4; \
	VFMADD231PS Z28, Z25, Z5; \
	VBROADCASTSS woff(R9), Z29; \
	VFMADD231PS Z29, Z24, Z6; \
	VFMADD231PS Z29, Z25, Z7; \
	VBROADCASTSS woff(R9)(BX*1), Z30; \
	VFMADD231PS Z30, Z24, Z8; \
	VFMADD231PS Z30, Z25, Z9; \
	VBROADCASTSS woff(R9)(BX*2), Z31; \
	VFMADD231PS Z31, Z24, Z10; \
	VFMADD231PS Z31, Z25, Z11; \
	VBROADCASTSS woff(R10), Z26; \
	VFMADD231PS Z26, Z24, Z12; \
	VFMADD231PS Z26, Z25, Z13; \
	VBROADCASTSS woff(R10)(BX*1), Z27; \
	VFMADD231PS Z27, Z24, Z14; \
	VFMADD231PS Z27, Z25, Z15; \
	VBROADCASTSS woff(R10)(BX*2), Z28; \
	VFMADD231PS Z28, Z24, Z16; \
	VFMADD231PS Z28, Z25, Z17; \
	VBROADCASTSS woff(R11), Z29; \
	VFMADD231PS Z29, Z24, Z18; \
	VFMADD231PS Z29, Z25, Z19; \
	VBROADCASTSS woff(R11)(BX*1), Z30; \
	VFMADD231PS Z30, Z24, Z20; \
	VFMADD231PS Z30, Z25, Z21; \
	VBROADCASTSS woff(R11)(BX*2), Z31; \
	VFMADD231PS Z31, Z24, Z22; \
	VFMADD231PS Z31, Z25, Z23

// STEP16(off, woff) is STEP for the 16-row tile: one register of rows.
#define STEP16(off, woff) \
	VMOVUPS off(SI), Z24; \
	VFMADD231PS.BCST woff(R8), Z24, Z0; \
	VFMADD231PS.BCST woff(R8)(BX*1), Z24, Z1; \
	VFMADD231PS.BCST woff(R8)(BX*2), Z24, Z2; \
	VFMADD231PS.BCST woff(R9), Z24, Z3; \
	VFMADD231PS.BCST woff(R9)(BX*1), Z24, Z4; \
	VFMADD231PS.BCST woff(R9)(BX*2), Z24, Z5; \
	VFMADD231PS.BCST woff(R10), Z24, Z6; \
	VFMADD231PS.BCST woff(R10)(BX*1), Z24, Z7; \
	VFMADD231PS.BCST woff(R10)(BX*2), Z24, Z8; \
	VFMADD231PS.BCST woff(R11), Z24, Z9; \
	VFMADD231PS.BCST woff(R11)(BX*1), Z24, Z10; \
	VFMADD231PS.BCST woff(R11)(BX*2), Z24, Z11

// ADD4(a, b, c, d, off) adds four accumulators to the tile stored at off,
// off+64, ... (DX) and stores the sums there.
#define ADD4(a, b, c, d, off) \
	VADDPS off(DX), a, a; \
	VMOVUPS a, off(DX); \
	VADDPS off+64(DX), b, b; \
	VMOVUPS b, off+64(DX); \
	VADDPS off+128(DX), c, c; \
	VMOVUPS c, off+128(DX); \
	VADDPS off+192(DX), d, d; \
	VMOVUPS d, off+192(DX)
#define ADD12 ADD4(Z0, Z1, Z2, Z3, 0); ADD4(Z4, Z5, Z6, Z7, 256); ADD4(Z8, Z9, Z10, Z11, 512)
#define ADD24 ADD12; ADD4(Z12, Z13, Z14, Z15, 768); ADD4(Z16, Z17, Z18, Z19, 1024); ADD4(Z20, Z21, Z22, Z23, 1280)

// BIAS2(c) adds bias[c] (at DI) to both halves of the 32-row tile's column c;
// BIAS1(z, c) to a 16-row tile's register z.
#define BIAS1(z, c) VADDPS.BCST (4*c)(DI), z, z
#define BIAS2(za, zb, c) BIAS1(za, c); BIAS1(zb, c)

// func sgemmTile(xp *float32, w *float32, ldw int, kc int, out *float32, bias *float32, mode int)
// computes a 32×12 tile of x·Wᵀ over kc values of k into out: xp is 32 rows
// of x packed as [kc][32] float32 (row r of k at k*32+r); w points at weight
// row n0 at the block's first k, rows ldw floats apart; out is [12][32]
// float32 (column c, row r at c*32+r). Each element sums its kc products
// in k order from zero, one FMA each; the sum is then added to bias[c]
// (mode 0), stored as it is (mode 1) or added to out (mode 2), once:
// OpenBLAS's SkylakeX sgemm does the same over the same blocks of k
// (sgemm.go), so the bits are its bits.
TEXT ·sgemmTile(SB), NOSPLIT, $0-56
	MOVQ xp+0(FP), SI
	MOVQ w+8(FP), R8
	MOVQ ldw+16(FP), BX
	SHLQ $2, BX
	MOVQ kc+24(FP), CX
	MOVQ out+32(FP), DX
	TILE_ROWS
	ZERO24
	MOVQ CX, AX
	SHRQ $2, AX        // steps of four k
	JZ sgtail
sgloop4:
	STEP(0, 0)
	STEP(128, 4)
	STEP(256, 8)
	STEP(384, 12)
	ADDQ $512, SI
	ADDQ $16, R8
	ADDQ $16, R9
	ADDQ $16, R10
	ADDQ $16, R11
	DECQ AX
	JNZ sgloop4
sgtail:
	ANDQ $3, CX
	JZ sgdone
sgloop1:
	STEP(0, 0)
	ADDQ $128, SI
	ADDQ $4, R8
	ADDQ $4, R9
	ADDQ $4, R10
	ADDQ $4, R11
	DECQ CX
	JNZ sgloop1
sgdone:
	MOVQ mode+48(FP), AX
	CMPQ AX, $1
	JEQ sgset
	JGT sgadd
	MOVQ bias+40(FP), DI
	BIAS2(Z0, Z1, 0)
	BIAS2(Z2, Z3, 1)
	BIAS2(Z4, Z5, 2)
	BIAS2(Z6, Z7, 3)
	BIAS2(Z8, Z9, 4)
	BIAS2(Z10, Z11, 5)
	BIAS2(Z12, Z13, 6)
	BIAS2(Z14, Z15, 7)
	BIAS2(Z16, Z17, 8)
	BIAS2(Z18, Z19, 9)
	BIAS2(Z20, Z21, 10)
	BIAS2(Z22, Z23, 11)
sgset:
	STORE24
	VZEROUPPER
	RET
sgadd:
	ADD24
	VZEROUPPER
	RET

// func sgemmTile16(xp *float32, w *float32, ldw int, kc int, out *float32, bias *float32, mode int)
// is sgemmTile for 16 rows: xp is [kc][16], out [12][16].
TEXT ·sgemmTile16(SB), NOSPLIT, $0-56
	MOVQ xp+0(FP), SI
	MOVQ w+8(FP), R8
	MOVQ ldw+16(FP), BX
	SHLQ $2, BX
	MOVQ kc+24(FP), CX
	MOVQ out+32(FP), DX
	TILE_ROWS
	ZERO12
	MOVQ CX, AX
	SHRQ $2, AX        // steps of four k
	JZ s16tail
s16loop4:
	STEP16(0, 0)
	STEP16(64, 4)
	STEP16(128, 8)
	STEP16(192, 12)
	ADDQ $256, SI
	ADDQ $16, R8
	ADDQ $16, R9
	ADDQ $16, R10
	ADDQ $16, R11
	DECQ AX
	JNZ s16loop4
s16tail:
	ANDQ $3, CX
	JZ s16done
s16loop1:
	STEP16(0, 0)
	ADDQ $64, SI
	ADDQ $4, R8
	ADDQ $4, R9
	ADDQ $4, R10
	ADDQ $4, R11
	DECQ CX
	JNZ s16loop1
s16done:
	MOVQ mode+48(FP), AX
	CMPQ AX, $1
	JEQ s16set
	JGT s16add
	MOVQ bias+40(FP), DI
	BIAS1(Z0, 0)
	BIAS1(Z1, 1)
	BIAS1(Z2, 2)
	BIAS1(Z3, 3)
	BIAS1(Z4, 4)
	BIAS1(Z5, 5)
	BIAS1(Z6, 6)
	BIAS1(Z7, 7)
	BIAS1(Z8, 8)
	BIAS1(Z9, 9)
	BIAS1(Z10, 10)
	BIAS1(Z11, 11)
s16set:
	STORE12
	VZEROUPPER
	RET
s16add:
	ADD12
	VZEROUPPER
	RET

// func transpose16(src *float32, lds int, dst *float32, ldd int, rows int, mask uint16)
// writes the transpose of the 16×16 block at src (rows lds floats apart)
// to dst (rows ldd floats apart): dst row c, column r is src row r, column
// c. Only dst rows below rows are written, each only in the columns whose
// bit is set in mask. All 16 src rows are read.
TEXT ·transpose16(SB), NOSPLIT, $0-42
	MOVQ src+0(FP), SI
	MOVQ lds+8(FP), BX
	SHLQ $2, BX
	MOVQ dst+16(FP), DI
	MOVQ ldd+24(FP), DX
	SHLQ $2, DX
	MOVQ rows+32(FP), CX
	MOVWLZX mask+40(FP), AX
	KMOVW AX, K1
	VMOVUPS (SI), Z0
	ADDQ BX, SI
	VMOVUPS (SI), Z1
	ADDQ BX, SI
	VMOVUPS (SI), Z2
	ADDQ BX, SI
	VMOVUPS (SI), Z3
	ADDQ BX, SI
	VMOVUPS (SI), Z4
	ADDQ BX, SI
	VMOVUPS (SI), Z5
	ADDQ BX, SI
	VMOVUPS (SI), Z6
	ADDQ BX, SI
	VMOVUPS (SI), Z7
	ADDQ BX, SI
	VMOVUPS (SI), Z8
	ADDQ BX, SI
	VMOVUPS (SI), Z9
	ADDQ BX, SI
	VMOVUPS (SI), Z10
	ADDQ BX, SI
	VMOVUPS (SI), Z11
	ADDQ BX, SI
	VMOVUPS (SI), Z12
	ADDQ BX, SI
	VMOVUPS (SI), Z13
	ADDQ BX, SI
	VMOVUPS (SI), Z14
	ADDQ BX, SI
	VMOVUPS (SI), Z15
	VUNPCKLPS Z1, Z0, Z16
	VUNPCKHPS Z1, Z0, Z17
	VUNPCKLPS Z3, Z2, Z18
	VUNPCKHPS Z3, Z2, Z19
	VUNPCKLPS Z5, Z4, Z20
	VUNPCKHPS Z5, Z4, Z21
	VUNPCKLPS Z7, Z6, Z22
	VUNPCKHPS Z7, Z6, Z23
	VUNPCKLPS Z9, Z8, Z24
	VUNPCKHPS Z9, Z8, Z25
	VUNPCKLPS Z11, Z10, Z26
	VUNPCKHPS Z11, Z10, Z27
	VUNPCKLPS Z13, Z12, Z28
	VUNPCKHPS Z13, Z12, Z29
	VUNPCKLPS Z15, Z14, Z30
	VUNPCKHPS Z15, Z14, Z31
	VSHUFPS $0x44, Z18, Z16, Z0
	VSHUFPS $0xEE, Z18, Z16, Z1
	VSHUFPS $0x44, Z19, Z17, Z2
	VSHUFPS $0xEE, Z19, Z17, Z3
	VSHUFPS $0x44, Z22, Z20, Z4
	VSHUFPS $0xEE, Z22, Z20, Z5
	VSHUFPS $0x44, Z23, Z21, Z6
	VSHUFPS $0xEE, Z23, Z21, Z7
	VSHUFPS $0x44, Z26, Z24, Z8
	VSHUFPS $0xEE, Z26, Z24, Z9
	VSHUFPS $0x44, Z27, Z25, Z10
	VSHUFPS $0xEE, Z27, Z25, Z11
	VSHUFPS $0x44, Z30, Z28, Z12
	VSHUFPS $0xEE, Z30, Z28, Z13
	VSHUFPS $0x44, Z31, Z29, Z14
	VSHUFPS $0xEE, Z31, Z29, Z15
	VSHUFF32X4 $0x88, Z4, Z0, Z16
	VSHUFF32X4 $0xDD, Z4, Z0, Z17
	VSHUFF32X4 $0x88, Z5, Z1, Z18
	VSHUFF32X4 $0xDD, Z5, Z1, Z19
	VSHUFF32X4 $0x88, Z6, Z2, Z20
	VSHUFF32X4 $0xDD, Z6, Z2, Z21
	VSHUFF32X4 $0x88, Z7, Z3, Z22
	VSHUFF32X4 $0xDD, Z7, Z3, Z23
	VSHUFF32X4 $0x88, Z12, Z8, Z24
	VSHUFF32X4 $0xDD, Z12, Z8, Z25
	VSHUFF32X4 $0x88, Z13, Z9, Z26
	VSHUFF32X4 $0xDD, Z13, Z9, Z27
	VSHUFF32X4 $0x88, Z14, Z10, Z28
	VSHUFF32X4 $0xDD, Z14, Z10, Z29
	VSHUFF32X4 $0x88, Z15, Z11, Z30
	VSHUFF32X4 $0xDD, Z15, Z11, Z31
	VSHUFF32X4 $0x88, Z24, Z16, Z0
	VSHUFF32X4 $0xDD, Z24, Z16, Z1
	VSHUFF32X4 $0x88, Z25, Z17, Z2
	VSHUFF32X4 $0xDD, Z25, Z17, Z3
	VSHUFF32X4 $0x88, Z26, Z18, Z4
	VSHUFF32X4 $0xDD, Z26, Z18, Z5
	VSHUFF32X4 $0x88, Z27, Z19, Z6
	VSHUFF32X4 $0xDD, Z27, Z19, Z7
	VSHUFF32X4 $0x88, Z28, Z20, Z8
	VSHUFF32X4 $0xDD, Z28, Z20, Z9
	VSHUFF32X4 $0x88, Z29, Z21, Z10
	VSHUFF32X4 $0xDD, Z29, Z21, Z11
	VSHUFF32X4 $0x88, Z30, Z22, Z12
	VSHUFF32X4 $0xDD, Z30, Z22, Z13
	VSHUFF32X4 $0x88, Z31, Z23, Z14
	VSHUFF32X4 $0xDD, Z31, Z23, Z15
	TESTQ CX, CX
	JLE trdone
	VMOVUPS Z0, K1, (DI)
	DECQ CX
	JZ trdone
	ADDQ DX, DI
	VMOVUPS Z4, K1, (DI)
	DECQ CX
	JZ trdone
	ADDQ DX, DI
	VMOVUPS Z8, K1, (DI)
	DECQ CX
	JZ trdone
	ADDQ DX, DI
	VMOVUPS Z12, K1, (DI)
	DECQ CX
	JZ trdone
	ADDQ DX, DI
	VMOVUPS Z2, K1, (DI)
	DECQ CX
	JZ trdone
	ADDQ DX, DI
	VMOVUPS Z6, K1, (DI)
	DECQ CX
	JZ trdone
	ADDQ DX, DI
	VMOVUPS Z10, K1, (DI)
	DECQ CX
	JZ trdone
	ADDQ DX, DI
	VMOVUPS Z14, K1, (DI)
	DECQ CX
	JZ trdone
	ADDQ DX, DI
	VMOVUPS Z1, K1, (DI)
	DECQ CX
	JZ trdone
	ADDQ DX, DI
	VMOVUPS Z5, K1, (DI)
	DECQ CX
	JZ trdone
	ADDQ DX, DI
	VMOVUPS Z9, K1, (DI)
	DECQ CX
	JZ trdone
	ADDQ DX, DI
	VMOVUPS Z13, K1, (DI)
	DECQ CX
	JZ trdone
	ADDQ DX, DI
	VMOVUPS Z3, K1, (DI)
	DECQ CX
	JZ trdone
	ADDQ DX, DI
	VMOVUPS Z7, K1, (DI)
	DECQ CX
	JZ trdone
	ADDQ DX, DI
	VMOVUPS Z11, K1, (DI)
	DECQ CX
	JZ trdone
	ADDQ DX, DI
	VMOVUPS Z15, K1, (DI)
trdone:
	VZEROUPPER
	RET
