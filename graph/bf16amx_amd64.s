#include "textflag.h"

// AMX bf16 kernels (bf16amx.go). The Go assembler has no AMX (or
// AVX512_BF16 conversion) mnemonics, so each instruction is spelled out in
// BYTEs, taken from GNU as 2.40 (`as --64`, `objdump -d`) assembling the same
// instruction with the same fixed registers (AT&T syntax in each comment).

// LDTILECFG (SP)                    ldtilecfg (%rsp)
#define LDTILECFG_SP BYTE $0xc4; BYTE $0xe2; BYTE $0x78; BYTE $0x49; BYTE $0x04; BYTE $0x24
// TILERELEASE                       tilerelease
#define TILERELEASE BYTE $0xc4; BYTE $0xe2; BYTE $0x78; BYTE $0x49; BYTE $0xc0
// TILEZERO tmm0..tmm3               tilezero %tmmN
#define TILEZERO_C BYTE $0xc4; BYTE $0xe2; BYTE $0x7b; BYTE $0x49; BYTE $0xc0; BYTE $0xc4; BYTE $0xe2; BYTE $0x7b; BYTE $0x49; BYTE $0xc8; BYTE $0xc4; BYTE $0xe2; BYTE $0x7b; BYTE $0x49; BYTE $0xd0; BYTE $0xc4; BYTE $0xe2; BYTE $0x7b; BYTE $0x49; BYTE $0xd8
// tileloadd (%r11,%r12,1),%tmm0; tileloadd 0x40(%r11,%r12,1),%tmm1;
// tileloadd 0x0(%r13,%r12,1),%tmm2; tileloadd 0x40(%r13,%r12,1),%tmm3
#define TILELOAD_C BYTE $0xc4; BYTE $0x82; BYTE $0x7b; BYTE $0x4b; BYTE $0x04; BYTE $0x23; BYTE $0xc4; BYTE $0x82; BYTE $0x7b; BYTE $0x4b; BYTE $0x4c; BYTE $0x23; BYTE $0x40; BYTE $0xc4; BYTE $0x82; BYTE $0x7b; BYTE $0x4b; BYTE $0x54; BYTE $0x25; BYTE $0x00; BYTE $0xc4; BYTE $0x82; BYTE $0x7b; BYTE $0x4b; BYTE $0x5c; BYTE $0x25; BYTE $0x40
// tileloadd (%rsi,%r8,1),%tmm4      (A rows 0-15)
#define TILELOAD_A0 BYTE $0xc4; BYTE $0xa2; BYTE $0x7b; BYTE $0x4b; BYTE $0x24; BYTE $0x06
// tileloadd (%rbx,%r8,1),%tmm5      (A rows 16-31)
#define TILELOAD_A1 BYTE $0xc4; BYTE $0xa2; BYTE $0x7b; BYTE $0x4b; BYTE $0x2c; BYTE $0x03
// tileloadd (%rdi,%r9,1),%tmm6      (B columns 0-15)
#define TILELOAD_B0 BYTE $0xc4; BYTE $0xa2; BYTE $0x7b; BYTE $0x4b; BYTE $0x34; BYTE $0x0f
// tileloadd 0x400(%rdi,%r9,1),%tmm7 (B columns 16-31)
#define TILELOAD_B1 BYTE $0xc4; BYTE $0xa2; BYTE $0x7b; BYTE $0x4b; BYTE $0xbc; BYTE $0x0f; BYTE $0x00; BYTE $0x04; BYTE $0x00; BYTE $0x00
// tdpbf16ps %tmm6,%tmm4,%tmm0; tdpbf16ps %tmm7,%tmm4,%tmm1;
// tdpbf16ps %tmm6,%tmm5,%tmm2; tdpbf16ps %tmm7,%tmm5,%tmm3
#define TDPBF16PS_4 BYTE $0xc4; BYTE $0xe2; BYTE $0x4a; BYTE $0x5c; BYTE $0xc4; BYTE $0xc4; BYTE $0xe2; BYTE $0x42; BYTE $0x5c; BYTE $0xcc; BYTE $0xc4; BYTE $0xe2; BYTE $0x4a; BYTE $0x5c; BYTE $0xd5; BYTE $0xc4; BYTE $0xe2; BYTE $0x42; BYTE $0x5c; BYTE $0xdd
// tilestored %tmm0,(%rdx,%r10,1); tilestored %tmm1,0x40(%rdx,%r10,1);
// tilestored %tmm2,(%rcx,%r10,1); tilestored %tmm3,0x40(%rcx,%r10,1)
#define TILESTORE_C BYTE $0xc4; BYTE $0xa2; BYTE $0x7a; BYTE $0x4b; BYTE $0x04; BYTE $0x12; BYTE $0xc4; BYTE $0xa2; BYTE $0x7a; BYTE $0x4b; BYTE $0x4c; BYTE $0x12; BYTE $0x40; BYTE $0xc4; BYTE $0xa2; BYTE $0x7a; BYTE $0x4b; BYTE $0x14; BYTE $0x11; BYTE $0xc4; BYTE $0xa2; BYTE $0x7a; BYTE $0x4b; BYTE $0x5c; BYTE $0x11; BYTE $0x40
// tileloadd 0x800(%rsi,%r8,1),%tmm5 (A rows 0-15, the next k step)
#define TILELOAD_A0_NEXT BYTE $0xc4; BYTE $0xa2; BYTE $0x7b; BYTE $0x4b; BYTE $0xac; BYTE $0x06; BYTE $0x00; BYTE $0x08; BYTE $0x00; BYTE $0x00
// tileloadd 0x800(%rdi,%r9,1),%tmm2; tileloadd 0xc00(%rdi,%r9,1),%tmm3 (B, the next k step)
#define TILELOAD_B_NEXT BYTE $0xc4; BYTE $0xa2; BYTE $0x7b; BYTE $0x4b; BYTE $0x94; BYTE $0x0f; BYTE $0x00; BYTE $0x08; BYTE $0x00; BYTE $0x00; BYTE $0xc4; BYTE $0xa2; BYTE $0x7b; BYTE $0x4b; BYTE $0x9c; BYTE $0x0f; BYTE $0x00; BYTE $0x0c; BYTE $0x00; BYTE $0x00
// tdpbf16ps %tmm6,%tmm4,%tmm0; tdpbf16ps %tmm7,%tmm4,%tmm1
#define TDPBF16PS_2 BYTE $0xc4; BYTE $0xe2; BYTE $0x4a; BYTE $0x5c; BYTE $0xc4; BYTE $0xc4; BYTE $0xe2; BYTE $0x42; BYTE $0x5c; BYTE $0xcc
// tdpbf16ps %tmm2,%tmm5,%tmm0; tdpbf16ps %tmm3,%tmm5,%tmm1
#define TDPBF16PS_2_NEXT BYTE $0xc4; BYTE $0xe2; BYTE $0x6a; BYTE $0x5c; BYTE $0xc5; BYTE $0xc4; BYTE $0xe2; BYTE $0x62; BYTE $0x5c; BYTE $0xcd
// tileloadd (%r11,%r12,1),%tmm0; tileloadd 0x40(%r11,%r12,1),%tmm1
#define TILELOAD_C2 BYTE $0xc4; BYTE $0x82; BYTE $0x7b; BYTE $0x4b; BYTE $0x04; BYTE $0x23; BYTE $0xc4; BYTE $0x82; BYTE $0x7b; BYTE $0x4b; BYTE $0x4c; BYTE $0x23; BYTE $0x40
// tilezero %tmm0; tilezero %tmm1
#define TILEZERO_C2 BYTE $0xc4; BYTE $0xe2; BYTE $0x7b; BYTE $0x49; BYTE $0xc0; BYTE $0xc4; BYTE $0xe2; BYTE $0x7b; BYTE $0x49; BYTE $0xc8
// tilestored %tmm0,(%rdx,%r10,1); tilestored %tmm1,0x40(%rdx,%r10,1)
#define TILESTORE_C2 BYTE $0xc4; BYTE $0xa2; BYTE $0x7a; BYTE $0x4b; BYTE $0x04; BYTE $0x12; BYTE $0xc4; BYTE $0xa2; BYTE $0x7a; BYTE $0x4b; BYTE $0x4c; BYTE $0x12; BYTE $0x40
// vcvtne2ps2bf16 %zmm1,%zmm0,%zmm2: zmm2 = bf16(zmm1) in its low half,
// bf16(zmm0) in its high half (round to nearest even)
#define CVT2BF16_Z2 BYTE $0x62; BYTE $0xf2; BYTE $0x7f; BYTE $0x48; BYTE $0x72; BYTE $0xd1

// func amxPanel(a *uint16, ablk int, mb int, b *uint16, kb int, c *float32, ldc int, cinit *float32, cs int)
// One 32-column panel of C = init + A·B, 32 rows at a time for mb row blocks.
// a: bf16 in tiles, per block of 32 rows (ablk elements apart) per k step
// [2 halves][16 rows][32 k] (each tile 1 KB, rows 64 bytes apart); b: the
// panel in VNNI tiles, [kb][2][16 pairs][16 columns][2] bf16; c: float32,
// ldc elements apart. init is zero when cinit is nil (cs must then be 0),
// else C's tiles start from cinit's rows, cs elements apart (cs 0: one
// bias row for every row). Tiles: tmm0-3 accumulate C (rows 0-15/16-31 ×
// columns 0-15/16-31), tmm4-5 hold A's two 16-row halves of a 32-wide k
// step, tmm6-7 B's two 16-column halves. The tile configuration lives in
// this frame; the function loads it first and releases the tiles last, so
// all tile state lives inside this one call.
TEXT ·amxPanel(SB), NOSPLIT, $64-72
	// tile configuration: palette 1, tmm0-7 each 16 rows × 64 bytes
	MOVQ $1, AX
	MOVQ AX, 0(SP)
	MOVQ $0, 8(SP)
	MOVQ $0x0040004000400040, AX
	MOVQ AX, 16(SP)
	MOVQ AX, 24(SP)
	MOVQ $0, 32(SP)
	MOVQ $0, 40(SP)
	MOVQ $0x1010101010101010, AX
	MOVQ AX, 48(SP)
	MOVQ $0, 56(SP)
	LDTILECFG_SP

	MOVQ a+0(FP), R14
	MOVQ $64, R8         // A tile row stride, bytes
	MOVQ mb+16(FP), R15
	MOVQ $64, R9         // B tile row stride, bytes
	MOVQ c+40(FP), DX
	MOVQ ldc+48(FP), R10
	SHLQ $2, R10         // C row stride, bytes
	MOVQ R10, CX
	SHLQ $4, CX
	ADDQ DX, CX          // C row 16
	MOVQ cinit+56(FP), R11
	MOVQ cs+64(FP), R12
	SHLQ $2, R12
	MOVQ R12, R13
	SHLQ $4, R13
	ADDQ R11, R13        // init row 16

amxrow:
	TESTQ R11, R11
	JZ amxzero
	TILELOAD_C
	JMP amxk
amxzero:
	TILEZERO_C
amxk:
	MOVQ R14, SI
	LEAQ 1024(R14), BX   // A rows 16-31
	MOVQ b+24(FP), DI
	MOVQ kb+32(FP), AX
amxkloop:
	TILELOAD_A0
	TILELOAD_A1
	TILELOAD_B0
	TILELOAD_B1
	TDPBF16PS_4
	ADDQ $2048, SI
	ADDQ $2048, BX
	ADDQ $2048, DI
	DECQ AX
	JNZ amxkloop
	TILESTORE_C
	MOVQ ablk+8(FP), AX
	SHLQ $1, AX
	ADDQ AX, R14         // next row block of A
	MOVQ R10, AX
	SHLQ $5, AX
	ADDQ AX, DX
	ADDQ AX, CX
	MOVQ R12, AX
	SHLQ $5, AX
	ADDQ AX, R11
	ADDQ AX, R13
	DECQ R15
	JNZ amxrow
	TILERELEASE
	RET

// Software prefetch distance of amxPanels16's B stream, bytes ahead: the
// weights stream from memory once per product (6 steps of k ahead; 8-16 KB
// measured alike, 2-4 KB and none slower on a 1-row git-base decode step).
#define AMX16_PF 12288

// func amxPanels16(a *uint16, b *uint16, kb int, panels int, c *float32, ldc int, cinit *float32, cs int, rows int)
// panels consecutive 32-column panels of C = init + A·B for rows (1-16)
// rows of one block of A: amxPanel's sums for rows 0-15, in the same order
// (k step by k step into one float32 accumulator per element), on half the
// tiles. a: a packed row block ([kb][2 halves][16 rows][32 k], only the
// first half read); b: the panels in VNNI tiles, consecutive ([kb][2][16
// pairs][16 columns][2] bf16 each); c: float32, ldc elements apart, panel p
// at column 32p. init as for amxPanel (cinit advances 32 floats a panel as
// c does). Tiles: tmm0-1 accumulate C (rows × columns 0-15/16-31), k steps
// alternate between A in tmm4 / B in tmm6-7 and A in tmm5 / B in tmm2-3,
// so that one step's loads need not wait for the other's products; the A
// and C tiles are configured with rows rows, so nothing past them is read
// or written. One LDTILECFG for all the panels.
TEXT ·amxPanels16(SB), NOSPLIT, $64-72
	// tile configuration: palette 1, tmm0-7 64 bytes wide; rows: tmm0,1,4,5
	// (C, A) rows, tmm2,3,6,7 (B) 16.
	MOVQ $1, AX
	MOVQ AX, 0(SP)
	MOVQ $0, 8(SP)
	MOVQ $0x0040004000400040, AX
	MOVQ AX, 16(SP)
	MOVQ AX, 24(SP)
	MOVQ $0, 32(SP)
	MOVQ $0, 40(SP)
	MOVQ rows+64(FP), AX
	MOVQ $0x0000010100000101, BX
	IMULQ BX, AX
	MOVQ $0x1010000010100000, BX
	ORQ BX, AX
	MOVQ AX, 48(SP)
	MOVQ $0, 56(SP)
	LDTILECFG_SP

	MOVQ $64, R8         // A tile row stride, bytes
	MOVQ $64, R9         // B tile row stride, bytes
	MOVQ b+8(FP), DI
	MOVQ panels+24(FP), R15
	MOVQ c+32(FP), DX
	MOVQ ldc+40(FP), R10
	SHLQ $2, R10         // C row stride, bytes
	MOVQ cinit+48(FP), R11
	MOVQ cs+56(FP), R12
	SHLQ $2, R12
	TESTQ R15, R15
	JZ a16done

a16panel:
	TESTQ R11, R11
	JZ a16zero
	TILELOAD_C2
	ADDQ $128, R11
	JMP a16k
a16zero:
	TILEZERO_C2
a16k:
	MOVQ a+0(FP), SI
	MOVQ kb+16(FP), AX
	SHRQ $1, AX
	JZ a16tail
a16kloop:
	TILELOAD_A0
	TILELOAD_B0
	TILELOAD_B1
	TILELOAD_A0_NEXT
	TILELOAD_B_NEXT
	PREFETCHT0 (AMX16_PF+0)(DI)
	PREFETCHT0 (AMX16_PF+64)(DI)
	PREFETCHT0 (AMX16_PF+128)(DI)
	PREFETCHT0 (AMX16_PF+192)(DI)
	PREFETCHT0 (AMX16_PF+256)(DI)
	PREFETCHT0 (AMX16_PF+320)(DI)
	PREFETCHT0 (AMX16_PF+384)(DI)
	PREFETCHT0 (AMX16_PF+448)(DI)
	PREFETCHT0 (AMX16_PF+512)(DI)
	PREFETCHT0 (AMX16_PF+576)(DI)
	PREFETCHT0 (AMX16_PF+640)(DI)
	PREFETCHT0 (AMX16_PF+704)(DI)
	PREFETCHT0 (AMX16_PF+768)(DI)
	PREFETCHT0 (AMX16_PF+832)(DI)
	PREFETCHT0 (AMX16_PF+896)(DI)
	PREFETCHT0 (AMX16_PF+960)(DI)
	TDPBF16PS_2
	PREFETCHT0 (AMX16_PF+1024)(DI)
	PREFETCHT0 (AMX16_PF+1088)(DI)
	PREFETCHT0 (AMX16_PF+1152)(DI)
	PREFETCHT0 (AMX16_PF+1216)(DI)
	PREFETCHT0 (AMX16_PF+1280)(DI)
	PREFETCHT0 (AMX16_PF+1344)(DI)
	PREFETCHT0 (AMX16_PF+1408)(DI)
	PREFETCHT0 (AMX16_PF+1472)(DI)
	PREFETCHT0 (AMX16_PF+1536)(DI)
	PREFETCHT0 (AMX16_PF+1600)(DI)
	PREFETCHT0 (AMX16_PF+1664)(DI)
	PREFETCHT0 (AMX16_PF+1728)(DI)
	PREFETCHT0 (AMX16_PF+1792)(DI)
	PREFETCHT0 (AMX16_PF+1856)(DI)
	PREFETCHT0 (AMX16_PF+1920)(DI)
	PREFETCHT0 (AMX16_PF+1984)(DI)
	TDPBF16PS_2_NEXT
	ADDQ $4096, SI
	ADDQ $4096, DI
	DECQ AX
	JNZ a16kloop
a16tail:
	MOVQ kb+16(FP), AX
	TESTQ $1, AX
	JZ a16store
	TILELOAD_A0
	TILELOAD_B0
	TILELOAD_B1
	TDPBF16PS_2
	ADDQ $2048, DI
a16store:
	TILESTORE_C2
	ADDQ $128, DX
	DECQ R15
	JNZ a16panel
a16done:
	TILERELEASE
	RET

// func cvtBF16AVX512(dst *uint16, src *float32, n int)
// dst[i] = bf16(src[i]) for n a multiple of 32 (VCVTNE2PS2BF16: round to
// nearest even, like BF16FromF32 except that float32 denormals become zero
// and NaN payloads may differ).
TEXT ·cvtBF16AVX512(SB), NOSPLIT, $0-24
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ n+16(FP), CX
	SHRQ $5, CX
	JZ cvtdone
cvtloop:
	VMOVUPS (SI), Z1
	VMOVUPS 64(SI), Z0
	CVT2BF16_Z2
	VMOVDQU32 Z2, (DI)
	ADDQ $128, SI
	ADDQ $64, DI
	DECQ CX
	JNZ cvtloop
cvtdone:
	VZEROUPPER
	RET

// func cpuidex(leaf, sub uint32) (a, b, c, d uint32)
TEXT ·cpuidex(SB), NOSPLIT, $0-24
	MOVL leaf+0(FP), AX
	MOVL sub+4(FP), CX
	CPUID
	MOVL AX, a+8(FP)
	MOVL BX, b+12(FP)
	MOVL CX, c+16(FP)
	MOVL DX, d+20(FP)
	RET

// func xgetbv0() (lo, hi uint32): XCR0, the state components the OS enables.
TEXT ·xgetbv0(SB), NOSPLIT, $0-8
	MOVL $0, CX
	XGETBV
	MOVL AX, lo+0(FP)
	MOVL DX, hi+4(FP)
	RET

// func packPairsBF16(dst *uint32, lo, hi *float32, panels, pstride int)
// For each of panels panels (pstride bytes apart in dst), rounds 32 floats
// of row lo and of row hi (the two k of a pair, 128 bytes further per
// panel) to bf16 (VCVTNE2PS2BF16) and stores the pairs lo[c] | hi[c]<<16
// for columns c 0-15 at dst and 16-31 at dst+1024 bytes: one k pair of a
// packBVNNI panel.
TEXT ·packPairsBF16(SB), NOSPLIT, $0-40
	MOVQ dst+0(FP), DI
	MOVQ lo+8(FP), SI
	MOVQ hi+16(FP), DX
	MOVQ panels+24(FP), CX
	MOVQ pstride+32(FP), R8
	TESTQ CX, CX
	JZ ppdone
pploop:
	VMOVUPS (SI), Z1
	VMOVUPS 64(SI), Z0
	CVT2BF16_Z2
	VMOVDQA64 Z2, Z3
	VMOVUPS (DX), Z1
	VMOVUPS 64(DX), Z0
	CVT2BF16_Z2
	VPMOVZXWD Y3, Z4
	VPMOVZXWD Y2, Z5
	VPSLLD $16, Z5, Z5
	VPORD Z5, Z4, Z4
	VMOVDQU32 Z4, (DI)
	VEXTRACTI64X4 $1, Z3, Y3
	VEXTRACTI64X4 $1, Z2, Y2
	VPMOVZXWD Y3, Z4
	VPMOVZXWD Y2, Z5
	VPSLLD $16, Z5, Z5
	VPORD Z5, Z4, Z4
	VMOVDQU32 Z4, 1024(DI)
	ADDQ $128, SI
	ADDQ $128, DX
	ADDQ R8, DI
	DECQ CX
	JNZ pploop
ppdone:
	VZEROUPPER
	RET

// Dword offsets 0, 16, …, 240: sixteen dwords 64 bytes apart (one tile row
// apart in a packed A block, one k pair apart in a B panel).
DATA scatter64<>+0(SB)/4, $0
DATA scatter64<>+4(SB)/4, $16
DATA scatter64<>+8(SB)/4, $32
DATA scatter64<>+12(SB)/4, $48
DATA scatter64<>+16(SB)/4, $64
DATA scatter64<>+20(SB)/4, $80
DATA scatter64<>+24(SB)/4, $96
DATA scatter64<>+28(SB)/4, $112
DATA scatter64<>+32(SB)/4, $128
DATA scatter64<>+36(SB)/4, $144
DATA scatter64<>+40(SB)/4, $160
DATA scatter64<>+44(SB)/4, $176
DATA scatter64<>+48(SB)/4, $192
DATA scatter64<>+52(SB)/4, $208
DATA scatter64<>+56(SB)/4, $224
DATA scatter64<>+60(SB)/4, $240
GLOBL scatter64<>(SB), RODATA|NOPTR, $64

// func packColPairsBF16(dst *uint16, lo, hi *float32, blocks, bstride int)
// For each of blocks blocks of 32 columns (bstride bytes apart in dst),
// rounds 32 floats of row lo and of row hi (two consecutive k of the
// transposed A) to bf16 and stores the pair lo[i] | hi[i]<<16 of column i
// 64 bytes apart (one packed tile row each): columns 0-15 from dst, 16-31
// from dst+1024 bytes (VPSCATTERDD).
TEXT ·packColPairsBF16(SB), NOSPLIT, $0-40
	MOVQ dst+0(FP), DI
	MOVQ lo+8(FP), SI
	MOVQ hi+16(FP), DX
	MOVQ blocks+24(FP), CX
	MOVQ bstride+32(FP), R8
	TESTQ CX, CX
	JZ pcdone
	VMOVDQU32 scatter64<>(SB), Z6
pcloop:
	VMOVUPS (SI), Z1
	VMOVUPS (DX), Z0
	CVT2BF16_Z2
	VPMOVZXWD Y2, Z4
	VEXTRACTI64X4 $1, Z2, Y5
	VPMOVZXWD Y5, Z5
	VPSLLD $16, Z5, Z5
	VPORD Z5, Z4, Z4
	KXNORW K1, K1, K1
	VPSCATTERDD Z4, K1, (DI)(Z6*4)
	VMOVUPS 64(SI), Z1
	VMOVUPS 64(DX), Z0
	CVT2BF16_Z2
	VPMOVZXWD Y2, Z4
	VEXTRACTI64X4 $1, Z2, Y5
	VPMOVZXWD Y5, Z5
	VPSLLD $16, Z5, Z5
	VPORD Z5, Z4, Z4
	KXNORW K1, K1, K1
	VPSCATTERDD Z4, K1, 1024(DI)(Z6*4)
	ADDQ $128, SI
	ADDQ $128, DX
	ADDQ R8, DI
	DECQ CX
	JNZ pcloop
pcdone:
	VZEROUPPER
	RET

// func packRowStepsBF16(dst *uint32, src *float32, steps int)
// Rounds steps·32 floats of src (one column of op(B), along k) to bf16 and
// stores each step's 16 k pairs 64 bytes apart from dst, the next step
// 2048 bytes further (a B panel's layout, VPSCATTERDD).
TEXT ·packRowStepsBF16(SB), NOSPLIT, $0-24
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ steps+16(FP), CX
	TESTQ CX, CX
	JZ prdone
	VMOVDQU32 scatter64<>(SB), Z6
prloop:
	VMOVUPS (SI), Z1
	VMOVUPS 64(SI), Z0
	CVT2BF16_Z2
	KXNORW K1, K1, K1
	VPSCATTERDD Z2, K1, (DI)(Z6*4)
	ADDQ $128, SI
	ADDQ $2048, DI
	DECQ CX
	JNZ prloop
prdone:
	VZEROUPPER
	RET

// func cvtStepsBF16(dst *uint16, src *float32, steps int)
// Rounds steps·32 floats of src to bf16 (VCVTNE2PS2BF16), each 32 stored
// 2048 bytes after the last (one k step of a packed A row).
TEXT ·cvtStepsBF16(SB), NOSPLIT, $0-24
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ steps+16(FP), CX
	TESTQ CX, CX
	JZ csdone
csloop:
	VMOVUPS (SI), Z1
	VMOVUPS 64(SI), Z0
	CVT2BF16_Z2
	VMOVDQU32 Z2, (DI)
	ADDQ $128, SI
	ADDQ $2048, DI
	DECQ CX
	JNZ csloop
csdone:
	VZEROUPPER
	RET
