#include "textflag.h"

// AVX-512 kernels of the fused full-sequence attention forward
// (attention_fused.go). Each output is a float32 sum over its terms in
// order, one fused multiply-add per term, so a row's result depends only on
// its own query and the keys and values, never on which rows share its
// block.

// func fusedScores4AVX512(q *float32, ldq int, kt *float32, hd, n3 int, scale float32, s *float32, lds int)
// For 4 query rows q[r·ldq:][:hd] (r < 4) and n3 groups of 3 key panels
// (kt: panels of 16 keys, hd×16 each, d-major, consecutive), s[r·lds+j] =
// (Σ_d q[r·ldq+d]·kt[panel(j)][d][j mod 16]) · scale, the sum over d in
// order from 0 by fused multiply-adds. ldq and lds in float32s; hd, n3 ≥ 1.
TEXT ·fusedScores4AVX512(SB), NOSPLIT, $0-64
	MOVQ         q+0(FP), DI
	MOVQ         ldq+8(FP), R8
	SHLQ         $2, R8         // row stride of q in bytes
	LEAQ         (R8)(R8*2), R9 // 3 rows
	MOVQ         kt+16(FP), SI
	MOVQ         hd+24(FP), DX
	MOVQ         DX, R10
	SHLQ         $6, R10        // panel stride in bytes (hd·16·4)
	MOVQ         n3+32(FP), R14
	VBROADCASTSS scale+40(FP), Z16
	MOVQ         s+48(FP), R11
	MOVQ         lds+56(FP), R12
	SHLQ         $2, R12
	LEAQ         (R12)(R12*2), R13

tloop:
	VXORPS Z0, Z0, Z0
	VXORPS Z1, Z1, Z1
	VXORPS Z2, Z2, Z2
	VXORPS Z3, Z3, Z3
	VXORPS Z4, Z4, Z4
	VXORPS Z5, Z5, Z5
	VXORPS Z6, Z6, Z6
	VXORPS Z7, Z7, Z7
	VXORPS Z8, Z8, Z8
	VXORPS Z9, Z9, Z9
	VXORPS Z10, Z10, Z10
	VXORPS Z11, Z11, Z11
	MOVQ   DI, AX
	MOVQ   SI, BX
	MOVQ   DX, CX

dloop:
	VMOVUPS      (BX), Z12
	VMOVUPS      (BX)(R10*1), Z13
	VMOVUPS      (BX)(R10*2), Z14
	VBROADCASTSS (AX), Z15
	VFMADD231PS  Z12, Z15, Z0
	VFMADD231PS  Z13, Z15, Z1
	VFMADD231PS  Z14, Z15, Z2
	VBROADCASTSS (AX)(R8*1), Z17
	VFMADD231PS  Z12, Z17, Z3
	VFMADD231PS  Z13, Z17, Z4
	VFMADD231PS  Z14, Z17, Z5
	VBROADCASTSS (AX)(R8*2), Z18
	VFMADD231PS  Z12, Z18, Z6
	VFMADD231PS  Z13, Z18, Z7
	VFMADD231PS  Z14, Z18, Z8
	VBROADCASTSS (AX)(R9*1), Z19
	VFMADD231PS  Z12, Z19, Z9
	VFMADD231PS  Z13, Z19, Z10
	VFMADD231PS  Z14, Z19, Z11
	ADDQ         $4, AX
	ADDQ         $64, BX
	DECQ         CX
	JNZ          dloop

	VMULPS  Z16, Z0, Z0
	VMULPS  Z16, Z1, Z1
	VMULPS  Z16, Z2, Z2
	VMULPS  Z16, Z3, Z3
	VMULPS  Z16, Z4, Z4
	VMULPS  Z16, Z5, Z5
	VMULPS  Z16, Z6, Z6
	VMULPS  Z16, Z7, Z7
	VMULPS  Z16, Z8, Z8
	VMULPS  Z16, Z9, Z9
	VMULPS  Z16, Z10, Z10
	VMULPS  Z16, Z11, Z11
	VMOVUPS Z0, (R11)
	VMOVUPS Z1, 64(R11)
	VMOVUPS Z2, 128(R11)
	VMOVUPS Z3, (R11)(R12*1)
	VMOVUPS Z4, 64(R11)(R12*1)
	VMOVUPS Z5, 128(R11)(R12*1)
	VMOVUPS Z6, (R11)(R12*2)
	VMOVUPS Z7, 64(R11)(R12*2)
	VMOVUPS Z8, 128(R11)(R12*2)
	VMOVUPS Z9, (R11)(R13*1)
	VMOVUPS Z10, 64(R11)(R13*1)
	VMOVUPS Z11, 128(R11)(R13*1)

	LEAQ (SI)(R10*2), SI
	ADDQ R10, SI         // next 3 panels
	ADDQ $192, R11       // next 48 scores
	DECQ R14
	JNZ  tloop
	VZEROUPPER
	RET

// func fusedPV4AVX512(p *float32, lds int, v *float32, ldv, n int, inv *float32, out *float32, ldo int, cols *[4]uint16)
// For 4 rows r < 4 and the columns d < hd ≤ 64: out[r·ldo+d] = (Σ_{j<n}
// p[r·lds+j]·v[j·ldv+d]) · inv[r], the sum over j in order from 0 by fused
// multiply-adds. cols[c] is the lane mask of columns 16c..16c+15 (K1-K4:
// the lanes past hd are neither read nor written). lds, ldv and ldo in
// float32s; n ≥ 1.
TEXT ·fusedPV4AVX512(SB), NOSPLIT, $0-72
	MOVQ  cols+64(FP), AX
	KMOVW (AX), K1
	KMOVW 2(AX), K2
	KMOVW 4(AX), K3
	KMOVW 6(AX), K4
	MOVQ p+0(FP), AX
	MOVQ lds+8(FP), R8
	SHLQ $2, R8
	LEAQ (R8)(R8*2), R9
	MOVQ v+16(FP), BX
	MOVQ ldv+24(FP), R10
	SHLQ $2, R10
	MOVQ n+32(FP), CX

	VXORPS Z0, Z0, Z0
	VXORPS Z1, Z1, Z1
	VXORPS Z2, Z2, Z2
	VXORPS Z3, Z3, Z3
	VXORPS Z4, Z4, Z4
	VXORPS Z5, Z5, Z5
	VXORPS Z6, Z6, Z6
	VXORPS Z7, Z7, Z7
	VXORPS Z8, Z8, Z8
	VXORPS Z9, Z9, Z9
	VXORPS Z10, Z10, Z10
	VXORPS Z11, Z11, Z11
	VXORPS Z12, Z12, Z12
	VXORPS Z13, Z13, Z13
	VXORPS Z14, Z14, Z14
	VXORPS Z15, Z15, Z15

jloop:
	VMOVUPS.Z    (BX), K1, Z16
	VMOVUPS.Z    64(BX), K2, Z17
	VMOVUPS.Z    128(BX), K3, Z18
	VMOVUPS.Z    192(BX), K4, Z19
	VBROADCASTSS (AX), Z20
	VFMADD231PS  Z16, Z20, Z0
	VFMADD231PS  Z17, Z20, Z1
	VFMADD231PS  Z18, Z20, Z2
	VFMADD231PS  Z19, Z20, Z3
	VBROADCASTSS (AX)(R8*1), Z21
	VFMADD231PS  Z16, Z21, Z4
	VFMADD231PS  Z17, Z21, Z5
	VFMADD231PS  Z18, Z21, Z6
	VFMADD231PS  Z19, Z21, Z7
	VBROADCASTSS (AX)(R8*2), Z22
	VFMADD231PS  Z16, Z22, Z8
	VFMADD231PS  Z17, Z22, Z9
	VFMADD231PS  Z18, Z22, Z10
	VFMADD231PS  Z19, Z22, Z11
	VBROADCASTSS (AX)(R9*1), Z23
	VFMADD231PS  Z16, Z23, Z12
	VFMADD231PS  Z17, Z23, Z13
	VFMADD231PS  Z18, Z23, Z14
	VFMADD231PS  Z19, Z23, Z15
	ADDQ         $4, AX
	ADDQ         R10, BX
	DECQ         CX
	JNZ          jloop

	MOVQ         inv+40(FP), AX
	MOVQ         out+48(FP), DI
	MOVQ         ldo+56(FP), R8
	SHLQ         $2, R8
	VBROADCASTSS (AX), Z20
	VBROADCASTSS 4(AX), Z21
	VBROADCASTSS 8(AX), Z22
	VBROADCASTSS 12(AX), Z23
	VMULPS       Z20, Z0, Z0
	VMULPS       Z20, Z1, Z1
	VMULPS       Z20, Z2, Z2
	VMULPS       Z20, Z3, Z3
	VMULPS       Z21, Z4, Z4
	VMULPS       Z21, Z5, Z5
	VMULPS       Z21, Z6, Z6
	VMULPS       Z21, Z7, Z7
	VMULPS       Z22, Z8, Z8
	VMULPS       Z22, Z9, Z9
	VMULPS       Z22, Z10, Z10
	VMULPS       Z22, Z11, Z11
	VMULPS       Z23, Z12, Z12
	VMULPS       Z23, Z13, Z13
	VMULPS       Z23, Z14, Z14
	VMULPS       Z23, Z15, Z15
	VMOVUPS      Z0, K1, (DI)
	VMOVUPS      Z1, K2, 64(DI)
	VMOVUPS      Z2, K3, 128(DI)
	VMOVUPS      Z3, K4, 192(DI)
	ADDQ         R8, DI
	VMOVUPS      Z4, K1, (DI)
	VMOVUPS      Z5, K2, 64(DI)
	VMOVUPS      Z6, K3, 128(DI)
	VMOVUPS      Z7, K4, 192(DI)
	ADDQ         R8, DI
	VMOVUPS      Z8, K1, (DI)
	VMOVUPS      Z9, K2, 64(DI)
	VMOVUPS      Z10, K3, 128(DI)
	VMOVUPS      Z11, K4, 192(DI)
	ADDQ         R8, DI
	VMOVUPS      Z12, K1, (DI)
	VMOVUPS      Z13, K2, 64(DI)
	VMOVUPS      Z14, K3, 128(DI)
	VMOVUPS      Z15, K4, 192(DI)
	VZEROUPPER
	RET

// func packKeysAVX512(k *float32, idx *[16]int32, tk, hd int, kt *float32)
// kt[(j/16)·16·hd + d·16 + j%16] = k[j·ld+d] for j < tk, d < hd, the
// padding lanes of the last panel 0: one 16-lane gather per (panel, d),
// idx[l] = l·ld·4 the byte offsets of a panel's 16 key rows.
TEXT ·packKeysAVX512(SB), NOSPLIT, $0-40
	MOVQ    k+0(FP), SI
	MOVQ    idx+8(FP), AX
	VMOVDQU32 (AX), Z7
	MOVQ    tk+16(FP), CX
	MOVQ    hd+24(FP), DX
	MOVQ    kt+32(FP), DI
	VPEXTRD $1, X7, R9           // idx[1] = ld·4
	SHLQ    $4, R9               // a panel's 16 rows in bytes

pkpanel:
	MOVL  $0xFFFF, AX
	CMPQ  CX, $16
	JGE   pkfull
	MOVL  $1, AX
	SHLL  CX, AX
	DECL  AX

pkfull:
	KMOVW AX, K2
	MOVQ  SI, BX
	MOVQ  DX, R8

pkd:
	KMOVW      K2, K1
	VXORPS     Z0, Z0, Z0
	VGATHERDPS (BX)(Z7*1), K1, Z0
	VMOVUPS    Z0, (DI)
	ADDQ       $4, BX
	ADDQ       $64, DI
	DECQ       R8
	JNZ        pkd

	ADDQ R9, SI
	SUBQ $16, CX
	JG   pkpanel
	VZEROUPPER
	RET
