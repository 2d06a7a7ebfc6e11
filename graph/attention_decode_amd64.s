#include "textflag.h"

// AVX-512 kernels of the fused decode-step attention (attention_decode.go).
// Each does its Go reference's float32 operations in the same order, each
// product and sum rounded on its own (no fused multiply-adds), so the
// results are bit-identical to decodeScoresGo and decodeWeightedSumGo. A
// head's last partial chunk of 16 lanes is read with a zeroing lane mask
// (K1 = tail), so no load or store passes the head's hd elements.

// func decodeScoresAVX512(q, k *float32, ld, n, hd, tail int, scale float32, p *float32)
// p[j] = decodeDot(q, k[j·ld:]) · scale for j < n (n ≥ 1); ld in float32s.
TEXT ·decodeScoresAVX512(SB), NOSPLIT, $0-64
	MOVQ   q+0(FP), DI
	MOVQ   k+8(FP), SI
	MOVQ   ld+16(FP), R8
	SHLQ   $2, R8
	MOVQ   n+24(FP), CX
	MOVQ   hd+32(FP), DX
	MOVQ   tail+40(FP), AX
	KMOVW  AX, K1
	VMOVSS scale+48(FP), X7
	MOVQ   p+56(FP), BX

sjloop:
	VXORPS Z0, Z0, Z0
	MOVQ   SI, R9
	MOVQ   DI, R10
	MOVQ   DX, R11

scloop:
	CMPQ    R11, $16
	JLT     sctail
	VMOVUPS (R9), Z1
	VMULPS  (R10), Z1, Z1
	VADDPS  Z1, Z0, Z0
	ADDQ    $64, R9
	ADDQ    $64, R10
	SUBQ    $16, R11
	JMP     scloop

sctail:
	TESTQ     R11, R11
	JZ        sreduce
	VMOVUPS.Z (R9), K1, Z1
	VMOVUPS.Z (R10), K1, Z2
	VMULPS    Z2, Z1, Z1
	VADDPS    Z1, Z0, Z0

sreduce:
	VEXTRACTF64X4 $1, Z0, Y1
	VADDPS        Y1, Y0, Y0
	VEXTRACTF128  $1, Y0, X1
	VADDPS        X1, X0, X0
	VPERMILPS     $0x4e, X0, X1
	VADDPS        X1, X0, X0
	VPERMILPS     $0xb1, X0, X1
	VADDSS        X1, X0, X0
	VMULSS        X7, X0, X0
	VMOVSS        X0, (BX)
	ADDQ          $4, BX
	ADDQ          R8, SI
	DECQ          CX
	JNZ           sjloop
	VZEROUPPER
	RET

// func decodeWeightedSumAVX512(p, v *float32, ld, n, hd, tail int, out *float32)
// out[d] = Σ_{j<n} p[j]·v[j·ld+d] in order of j (n ≥ 1); 64 columns at a
// time (four independent sums), then 16, then the masked tail.
TEXT ·decodeWeightedSumAVX512(SB), NOSPLIT, $0-56
	MOVQ  p+0(FP), DI
	MOVQ  v+8(FP), SI
	MOVQ  ld+16(FP), R8
	SHLQ  $2, R8
	MOVQ  n+24(FP), CX
	MOVQ  hd+32(FP), DX
	MOVQ  tail+40(FP), AX
	KMOVW AX, K1
	MOVQ  out+48(FP), BX

wblock4:
	CMPQ   DX, $64
	JLT    wblock1
	VXORPS Z0, Z0, Z0
	VXORPS Z1, Z1, Z1
	VXORPS Z2, Z2, Z2
	VXORPS Z3, Z3, Z3
	MOVQ   SI, R9
	MOVQ   DI, R10
	MOVQ   CX, R11

w4loop:
	VBROADCASTSS (R10), Z8
	VMULPS       (R9), Z8, Z4
	VMULPS       64(R9), Z8, Z5
	VMULPS       128(R9), Z8, Z6
	VMULPS       192(R9), Z8, Z7
	VADDPS       Z4, Z0, Z0
	VADDPS       Z5, Z1, Z1
	VADDPS       Z6, Z2, Z2
	VADDPS       Z7, Z3, Z3
	ADDQ         $4, R10
	ADDQ         R8, R9
	DECQ         R11
	JNZ          w4loop
	VMOVUPS      Z0, (BX)
	VMOVUPS      Z1, 64(BX)
	VMOVUPS      Z2, 128(BX)
	VMOVUPS      Z3, 192(BX)
	ADDQ         $256, BX
	ADDQ         $256, SI
	SUBQ         $64, DX
	JMP          wblock4

wblock1:
	CMPQ   DX, $16
	JLT    wtail
	VXORPS Z0, Z0, Z0
	MOVQ   SI, R9
	MOVQ   DI, R10
	MOVQ   CX, R11

w1loop:
	VBROADCASTSS (R10), Z8
	VMULPS       (R9), Z8, Z4
	VADDPS       Z4, Z0, Z0
	ADDQ         $4, R10
	ADDQ         R8, R9
	DECQ         R11
	JNZ          w1loop
	VMOVUPS      Z0, (BX)
	ADDQ         $64, BX
	ADDQ         $64, SI
	SUBQ         $16, DX
	JMP          wblock1

wtail:
	TESTQ  DX, DX
	JZ     wdone
	VXORPS Z0, Z0, Z0
	MOVQ   SI, R9
	MOVQ   DI, R10
	MOVQ   CX, R11

wtloop:
	VBROADCASTSS (R10), Z8
	VMOVUPS.Z    (R9), K1, Z4
	VMULPS       Z4, Z8, Z4
	VADDPS       Z4, Z0, Z0
	ADDQ         $4, R10
	ADDQ         R8, R9
	DECQ         R11
	JNZ          wtloop
	VMOVUPS      Z0, K1, (BX)

wdone:
	VZEROUPPER
	RET
