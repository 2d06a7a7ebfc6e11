// Macros for the 32×12 tile kernels (sgemm_amd64.s, bf16gemm_amd64.s): the
// tile's 24 accumulators are Z0-Z23, column c in Z(2c) (rows 0-15) and
// Z(2c+1) (rows 16-31), stored at (c*2 + h)*64 bytes from DX.

// TILE_ROWS sets R9, R10 and R11 to weight rows 3, 6 and 9 from row 0 in
// R8, rows BX bytes apart (rows 1, 2 are (R8)(BX*1), (R8)(BX*2), and so on).
#define TILE_ROWS \
	LEAQ (R8)(BX*2), R9; \
	ADDQ BX, R9; \
	LEAQ (R9)(BX*2), R10; \
	ADDQ BX, R10; \
	LEAQ (R10)(BX*2), R11; \
	ADDQ BX, R11

#define ZERO4(a, b, c, d) VPXORD a, a, a; VPXORD b, b, b; VPXORD c, c, c; VPXORD d, d, d
#define ZERO12 ZERO4(Z0, Z1, Z2, Z3); ZERO4(Z4, Z5, Z6, Z7); ZERO4(Z8, Z9, Z10, Z11)
#define ZERO24 ZERO12; ZERO4(Z12, Z13, Z14, Z15); ZERO4(Z16, Z17, Z18, Z19); ZERO4(Z20, Z21, Z22, Z23)

// STORE4(a, b, c, d, off) stores four accumulators at off, off+64, ... (DX).
#define STORE4(a, b, c, d, off) VMOVUPS a, off(DX); VMOVUPS b, off+64(DX); VMOVUPS c, off+128(DX); VMOVUPS d, off+192(DX)
#define STORE12 STORE4(Z0, Z1, Z2, Z3, 0); STORE4(Z4, Z5, Z6, Z7, 256); STORE4(Z8, Z9, Z10, Z11, 512)
#define STORE24 STORE12; STORE4(Z12, Z13, Z14, Z15, 768); STORE4(Z16, Z17, Z18, Z19, 1024); STORE4(Z20, Z21, Z22, Z23, 1280)
