#include "textflag.h"

// AVX-512 kernels of the fused decode-step attention (attention_decode.go).
// Each does its Go reference's float32 operations in the same order, each
// product and sum rounded on its own (no fused multiply-adds), so the
// results are bit-identical to decodeScoresGo and decodeWeightedSumGo. A
// head's last partial chunk of 16 lanes is read with a zeroing lane mask
// (K1 = tail), so no load or store passes the head's hd elements.

// func decodeRowScoresAVX512(q, k *float32, ld, n, heads, hd, tail int, scale float32, p *float32, pld int)
// p[h·pld+j] = decodeDot(q[h·hd:], k[j·ld+h·hd:]) · scale for j < n, h <
// heads (n, heads ≥ 1): slot by slot, so that the keys stream in address
// order; ld and pld in float32s.
TEXT ·decodeRowScoresAVX512(SB), NOSPLIT, $0-80
	MOVQ   q+0(FP), DI
	MOVQ   k+8(FP), SI
	MOVQ   ld+16(FP), R8
	SHLQ   $2, R8
	MOVQ   n+24(FP), CX
	MOVQ   hd+40(FP), DX
	MOVQ   tail+48(FP), AX
	KMOVW  AX, K1
	VMOVSS scale+56(FP), X7
	MOVQ   p+64(FP), BX
	MOVQ   pld+72(FP), R13
	SHLQ   $2, R13
	MOVQ   DX, R14
	SHLQ   $2, R14              // hd in bytes

rjloop:
	MOVQ SI, R12                // this slot's head h keys
	MOVQ DI, R10                // head h's query
	MOVQ BX, R15                // &p[h·pld+j]
	MOVQ heads+32(FP), AX

rhloop:
	VXORPS Z0, Z0, Z0
	MOVQ   R12, R9
	MOVQ   DX, R11

rcloop:
	CMPQ    R11, $16
	JLT     rctail
	VMOVUPS (R9), Z1
	VMULPS  (R10), Z1, Z1
	VADDPS  Z1, Z0, Z0
	ADDQ    $64, R9
	ADDQ    $64, R10
	SUBQ    $16, R11
	JMP     rcloop

rctail:
	TESTQ     R11, R11
	JZ        rreduce
	VMOVUPS.Z (R9), K1, Z1
	VMOVUPS.Z (R10), K1, Z2
	VMULPS    Z2, Z1, Z1
	VADDPS    Z1, Z0, Z0
	LEAQ      (R10)(R11*4), R10 // past the head's query

rreduce:
	VEXTRACTF64X4 $1, Z0, Y1
	VADDPS        Y1, Y0, Y0
	VEXTRACTF128  $1, Y0, X1
	VADDPS        X1, X0, X0
	VPERMILPS     $0x4e, X0, X1
	VADDPS        X1, X0, X0
	VPERMILPS     $0xb1, X0, X1
	VADDSS        X1, X0, X0
	VMULSS        X7, X0, X0
	VMOVSS        X0, (R15)
	ADDQ          R13, R15
	ADDQ          R14, R12
	DECQ          AX
	JNZ           rhloop

	ADDQ $4, BX
	ADDQ R8, SI
	DECQ CX
	JNZ  rjloop
	VZEROUPPER
	RET

// func decodeRowWeightedSumAVX512(p *float32, pld int, v *float32, ld, n, heads, hd, tail int, out *float32)
// out[h·hd+d] += Σ_{j<n} p[h·pld+j]·v[j·ld+h·hd+d] in order of j (n,
// heads ≥ 1), slot by slot so that the values stream in address order;
// out (heads·hd, zero on entry for decodeWeightedSumGo's sums) holds the
// running sums.
TEXT ·decodeRowWeightedSumAVX512(SB), NOSPLIT, $0-72
	MOVQ  p+0(FP), DI
	MOVQ  pld+8(FP), R13
	SHLQ  $2, R13
	MOVQ  v+16(FP), SI
	MOVQ  ld+24(FP), R8
	SHLQ  $2, R8
	MOVQ  n+32(FP), CX
	MOVQ  hd+48(FP), DX
	MOVQ  tail+56(FP), AX
	KMOVW AX, K1

wjloop:
	MOVQ SI, R9                 // this slot's values, head by head
	MOVQ DI, R10                // &p[h·pld+j]
	MOVQ out+64(FP), BX
	MOVQ heads+40(FP), AX

whloop:
	VBROADCASTSS (R10), Z8
	MOVQ         DX, R11

wcloop:
	CMPQ    R11, $16
	JLT     wctail
	VMULPS  (R9), Z8, Z4
	VADDPS  (BX), Z4, Z4
	VMOVUPS Z4, (BX)
	ADDQ    $64, R9
	ADDQ    $64, BX
	SUBQ    $16, R11
	JMP     wcloop

wctail:
	TESTQ     R11, R11
	JZ        wcnext
	VMOVUPS.Z (R9), K1, Z4
	VMOVUPS.Z (BX), K1, Z5
	VMULPS    Z4, Z8, Z4
	VADDPS    Z5, Z4, Z4
	VMOVUPS   Z4, K1, (BX)
	LEAQ      (R9)(R11*4), R9
	LEAQ      (BX)(R11*4), BX

wcnext:
	ADDQ R13, R10
	DECQ AX
	JNZ  whloop

	ADDQ $4, DI
	ADDQ R8, SI
	DECQ CX
	JNZ  wjloop
	VZEROUPPER
	RET
