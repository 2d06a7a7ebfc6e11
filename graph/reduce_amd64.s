#include "textflag.h"

// colSumAVX512(x *float32, rows, stride int, out *float32, w int)
//
// out[j] = x[j] + x[stride+j] + ... + x[(rows-1)*stride+j] for j < w (w a
// multiple of 16, rows >= 1), each column summed from 0 in row order, one
// rounded float32 addition per row: the same bits as colSum's scalar loop.
// 128 columns (eight registers) at a time, then 16.
TEXT ·colSumAVX512(SB), NOSPLIT, $0-40
	MOVQ x+0(FP), SI
	MOVQ rows+8(FP), R8
	MOVQ stride+16(FP), R9
	MOVQ out+24(FP), DI
	MOVQ w+32(FP), R10
	SHLQ $2, R9 // stride in bytes

wide:
	CMPQ   R10, $128
	JLT    narrow
	VXORPS Z0, Z0, Z0
	VXORPS Z1, Z1, Z1
	VXORPS Z2, Z2, Z2
	VXORPS Z3, Z3, Z3
	VXORPS Z4, Z4, Z4
	VXORPS Z5, Z5, Z5
	VXORPS Z6, Z6, Z6
	VXORPS Z7, Z7, Z7
	MOVQ   SI, AX
	MOVQ   R8, CX

wrow:
	VADDPS (AX), Z0, Z0
	VADDPS 64(AX), Z1, Z1
	VADDPS 128(AX), Z2, Z2
	VADDPS 192(AX), Z3, Z3
	VADDPS 256(AX), Z4, Z4
	VADDPS 320(AX), Z5, Z5
	VADDPS 384(AX), Z6, Z6
	VADDPS 448(AX), Z7, Z7
	ADDQ   R9, AX
	DECQ   CX
	JNZ    wrow
	VMOVUPS Z0, (DI)
	VMOVUPS Z1, 64(DI)
	VMOVUPS Z2, 128(DI)
	VMOVUPS Z3, 192(DI)
	VMOVUPS Z4, 256(DI)
	VMOVUPS Z5, 320(DI)
	VMOVUPS Z6, 384(DI)
	VMOVUPS Z7, 448(DI)
	ADDQ    $512, SI
	ADDQ    $512, DI
	SUBQ    $128, R10
	JMP     wide

narrow:
	CMPQ   R10, $16
	JLT    done
	VXORPS Z0, Z0, Z0
	MOVQ   SI, AX
	MOVQ   R8, CX

nrow:
	VADDPS (AX), Z0, Z0
	ADDQ   R9, AX
	DECQ   CX
	JNZ    nrow
	VMOVUPS Z0, (DI)
	ADDQ    $64, SI
	ADDQ    $64, DI
	SUBQ    $16, R10
	JMP     narrow

done:
	VZEROUPPER
	RET

// lnGradGAVX512(x, dy *float32, rows, stride int, mu, rstd *float64, out *float32, w int)
//
// out[j] = float32(Σ_i float64(dy[i,j])·(float64(x[i,j])−mu[i])·rstd[i]) for
// j < w (w a multiple of 8, rows >= 1): each column's float64 sum from 0 in
// row order, every product and sum rounded as layerNormGradG's scalar loop
// rounds it (no fused multiply-adds), so the same bits. 64 columns (eight
// registers of float64) at a time, then 8.
TEXT ·lnGradGAVX512(SB), NOSPLIT, $0-64
	MOVQ x+0(FP), SI
	MOVQ dy+8(FP), DX
	MOVQ rows+16(FP), R8
	MOVQ stride+24(FP), R9
	MOVQ mu+32(FP), R11
	MOVQ rstd+40(FP), R12
	MOVQ out+48(FP), DI
	MOVQ w+56(FP), R10
	SHLQ $2, R9

gwide:
	CMPQ   R10, $64
	JLT    gnarrow
	VXORPD Z0, Z0, Z0
	VXORPD Z1, Z1, Z1
	VXORPD Z2, Z2, Z2
	VXORPD Z3, Z3, Z3
	VXORPD Z4, Z4, Z4
	VXORPD Z5, Z5, Z5
	VXORPD Z6, Z6, Z6
	VXORPD Z7, Z7, Z7
	MOVQ   SI, AX
	MOVQ   DX, BX
	XORQ   CX, CX

#define GCOL(off, acc) \
	VCVTPS2PD    off(AX), Z16 \
	VSUBPD       Z20, Z16, Z16 \
	VCVTPS2PD    off(BX), Z17 \
	VMULPD       Z16, Z17, Z17 \
	VMULPD       Z21, Z17, Z17 \
	VADDPD       Z17, acc, acc

gwrow:
	VBROADCASTSD (R11)(CX*8), Z20
	VBROADCASTSD (R12)(CX*8), Z21
	GCOL(0, Z0)
	GCOL(32, Z1)
	GCOL(64, Z2)
	GCOL(96, Z3)
	GCOL(128, Z4)
	GCOL(160, Z5)
	GCOL(192, Z6)
	GCOL(224, Z7)
	ADDQ R9, AX
	ADDQ R9, BX
	INCQ CX
	CMPQ CX, R8
	JLT  gwrow
	VCVTPD2PS Z0, Y0
	VMOVUPS   Y0, (DI)
	VCVTPD2PS Z1, Y1
	VMOVUPS   Y1, 32(DI)
	VCVTPD2PS Z2, Y2
	VMOVUPS   Y2, 64(DI)
	VCVTPD2PS Z3, Y3
	VMOVUPS   Y3, 96(DI)
	VCVTPD2PS Z4, Y4
	VMOVUPS   Y4, 128(DI)
	VCVTPD2PS Z5, Y5
	VMOVUPS   Y5, 160(DI)
	VCVTPD2PS Z6, Y6
	VMOVUPS   Y6, 192(DI)
	VCVTPD2PS Z7, Y7
	VMOVUPS   Y7, 224(DI)
	ADDQ      $256, SI
	ADDQ      $256, DX
	ADDQ      $256, DI
	SUBQ      $64, R10
	JMP       gwide

gnarrow:
	CMPQ   R10, $8
	JLT    gdone
	VXORPD Z0, Z0, Z0
	MOVQ   SI, AX
	MOVQ   DX, BX
	XORQ   CX, CX

gnrow:
	VBROADCASTSD (R11)(CX*8), Z20
	VBROADCASTSD (R12)(CX*8), Z21
	GCOL(0, Z0)
	ADDQ R9, AX
	ADDQ R9, BX
	INCQ CX
	CMPQ CX, R8
	JLT  gnrow
	VCVTPD2PS Z0, Y0
	VMOVUPS   Y0, (DI)
	ADDQ      $32, SI
	ADDQ      $32, DX
	ADDQ      $32, DI
	SUBQ      $8, R10
	JMP       gnarrow

gdone:
	VZEROUPPER
	RET

// lnGradXAVX512(x, dy, gain *float32, rows, c int, mu, rstd *float64, dx *float32)
//
// layerNormGradX's rows (c a multiple of 8, c >= 8) with its float64
// arithmetic: per row, xh = (x−mu)·rstd and d = dy·g; the sums Σd and
// Σd·xh in eight lanes (element j in lane j mod 8, in order), the lanes
// added as ((l0+l4)+(l2+l6)) + ((l1+l5)+(l3+l7)) and divided by c; then
// dx = float32(rstd·((d − Σd/c) − xh·(Σd·xh/c))). Every operation is rounded
// as the Go reference rounds it (no fused multiply-adds): the same bits.
TEXT ·lnGradXAVX512(SB), NOSPLIT, $0-64
	MOVQ x+0(FP), SI
	MOVQ dy+8(FP), DX
	MOVQ gain+16(FP), R13
	MOVQ rows+24(FP), R8
	MOVQ c+32(FP), R9
	MOVQ mu+40(FP), R11
	MOVQ rstd+48(FP), R12
	MOVQ dx+56(FP), DI
	TESTQ R8, R8
	JZ    xdone
	MOVQ  R9, R10
	SHLQ  $2, R10 // row bytes
	CVTSQ2SD     R9, X3
	VBROADCASTSD X3, Z25 // float64(c)

xrow:
	VBROADCASTSD (R11), Z20 // mu
	VBROADCASTSD (R12), Z21 // rstd
	VXORPD Z0, Z0, Z0 // Σd lanes
	VXORPD Z1, Z1, Z1 // Σd·xh lanes
	XORQ   AX, AX

xsum:
	VCVTPS2PD (SI)(AX*4), Z16
	VSUBPD    Z20, Z16, Z16
	VMULPD    Z21, Z16, Z16 // xh
	VCVTPS2PD (DX)(AX*4), Z17
	VCVTPS2PD (R13)(AX*4), Z18
	VMULPD    Z18, Z17, Z17 // d
	VADDPD    Z17, Z0, Z0
	VMULPD    Z16, Z17, Z17
	VADDPD    Z17, Z1, Z1
	ADDQ      $8, AX
	CMPQ      AX, R9
	JLT       xsum

	// lanes: hi4+lo4 -> (l0+l4, l1+l5, l2+l6, l3+l7); hi2+lo2 ->
	// ((l0+l4)+(l2+l6), (l1+l5)+(l3+l7)); then lane 0 + lane 1.
	VEXTRACTF64X4 $1, Z0, Y2
	VADDPD        Y2, Y0, Y0
	VEXTRACTF128  $1, Y0, X2
	VADDPD        X2, X0, X0
	VPERMILPD     $1, X0, X2
	VADDSD        X2, X0, X0
	VDIVSD        X25, X0, X0
	VBROADCASTSD  X0, Z22 // Σd/c
	VEXTRACTF64X4 $1, Z1, Y2
	VADDPD        Y2, Y1, Y1
	VEXTRACTF128  $1, Y1, X2
	VADDPD        X2, X1, X1
	VPERMILPD     $1, X1, X2
	VADDSD        X2, X1, X1
	VDIVSD        X25, X1, X1
	VBROADCASTSD  X1, Z23 // Σd·xh/c
	XORQ          AX, AX

xout:
	VCVTPS2PD (SI)(AX*4), Z16
	VSUBPD    Z20, Z16, Z16
	VMULPD    Z21, Z16, Z16 // xh
	VCVTPS2PD (DX)(AX*4), Z17
	VCVTPS2PD (R13)(AX*4), Z18
	VMULPD    Z18, Z17, Z17 // d
	VSUBPD    Z22, Z17, Z17 // d − Σd/c
	VMULPD    Z23, Z16, Z16 // xh·(Σd·xh/c)
	VSUBPD    Z16, Z17, Z17
	VMULPD    Z21, Z17, Z17 // ·rstd
	VCVTPD2PS Z17, Y17
	VMOVUPS   Y17, (DI)(AX*4)
	ADDQ      $8, AX
	CMPQ      AX, R9
	JLT       xout

	ADDQ R10, SI
	ADDQ R10, DX
	ADDQ R10, DI
	ADDQ $8, R11
	ADDQ $8, R12
	DECQ R8
	JNZ  xrow

xdone:
	VZEROUPPER
	RET

// softmaxGradAVX512(p, d *float32, rows, cols int)
//
// d = p·(d − float32(Σ p·d)) row by row (cols >= 8): the softmax backward
// of attnBackward. The dot product is summed in float64: the first
// cols&^7 elements in eight lanes (element j in lane j mod 8, in order),
// the lanes added as ((l0+l4)+(l2+l6)) + ((l1+l5)+(l3+l7)), then the
// remaining elements in order; the update is float32 with one rounding per
// operation: the same bits as softmaxGradRow.
TEXT ·softmaxGradAVX512(SB), NOSPLIT, $0-32
	MOVQ  p+0(FP), SI
	MOVQ  d+8(FP), DI
	MOVQ  rows+16(FP), R8
	MOVQ  cols+24(FP), R9
	TESTQ R8, R8
	JZ    sdone
	MOVQ  R9, R10
	SHLQ  $2, R10 // row bytes
	MOVQ  R9, R11
	ANDQ  $-8, R11 // whole blocks of 8

srow:
	VXORPD Z0, Z0, Z0
	XORQ   AX, AX

sdot:
	VCVTPS2PD (SI)(AX*4), Z16
	VCVTPS2PD (DI)(AX*4), Z17
	VMULPD    Z17, Z16, Z16
	VADDPD    Z16, Z0, Z0
	ADDQ      $8, AX
	CMPQ      AX, R11
	JLT       sdot
	VEXTRACTF64X4 $1, Z0, Y2
	VADDPD        Y2, Y0, Y0
	VEXTRACTF128  $1, Y0, X2
	VADDPD        X2, X0, X0
	VPERMILPD     $1, X0, X2
	VADDSD        X2, X0, X0

sdtail:
	CMPQ      AX, R9
	JGE       sdround
	VCVTSS2SD (SI)(AX*4), X4, X4
	VCVTSS2SD (DI)(AX*4), X5, X5
	VMULSD    X5, X4, X4
	VADDSD    X4, X0, X0
	INCQ      AX
	JMP       sdtail

sdround:
	VCVTSD2SS    X0, X0, X0
	VBROADCASTSS X0, Z1 // float32(dot)
	XORQ         AX, AX

supd:
	VMOVUPS (DI)(AX*4), Y3
	VSUBPS  Y1, Y3, Y3
	VMULPS  (SI)(AX*4), Y3, Y3
	VMOVUPS Y3, (DI)(AX*4)
	ADDQ    $8, AX
	CMPQ    AX, R11
	JLT     supd

sutail:
	CMPQ    AX, R9
	JGE     snext
	VMOVSS  (DI)(AX*4), X3
	VSUBSS  X1, X3, X3
	VMULSS  (SI)(AX*4), X3, X3
	VMOVSS  X3, (DI)(AX*4)
	INCQ    AX
	JMP     sutail

snext:
	ADDQ R10, SI
	ADDQ R10, DI
	DECQ R8
	JNZ  srow

sdone:
	VZEROUPPER
	RET
