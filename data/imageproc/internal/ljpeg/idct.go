// Copyright 2026 The gitcap Authors. The algorithm and its constants are
// those of the Independent JPEG Group's jidctint.c (libjpeg 6b, kept
// unchanged by libjpeg-turbo), so that the output matches libjpeg-turbo's
// default "islow" inverse DCT bit for bit.

package ljpeg

// Fixed-point constants of jidctint.c (CONST_BITS = 13).
const (
	constBits = 13
	pass1Bits = 2

	fix0_298631336 = 2446
	fix0_390180644 = 3196
	fix0_541196100 = 4433
	fix0_765366865 = 6270
	fix0_899976223 = 7373
	fix1_175875602 = 9633
	fix1_501321110 = 12299
	fix1_847759065 = 15137
	fix1_961570560 = 16069
	fix2_053119869 = 16819
	fix2_562915447 = 20995
	fix3_072711026 = 25172
)

// descale is libjpeg's DESCALE: a right shift by n with rounding.
func descale(x int, n uint) int { return (x + 1<<(n-1)) >> n }

// rangeLimit is libjpeg's post-IDCT range-limit table, indexed by
// (value & 1023): it adds CENTERJSAMPLE (128) and clamps to [0, 255] for
// values in [-512, 511] and wraps like the C table beyond that.
func rangeLimit(x int) byte {
	x &= 1023
	switch {
	case x < 128:
		return byte(x + 128)
	case x < 512:
		return 255
	case x < 896:
		return 0
	default:
		return byte(x - 896)
	}
}

// idctIslow is jpeg_idct_islow: it dequantizes the coefficients of b
// (natural order; qt is the quantization table in zig-zag order), computes
// the 2-D inverse DCT and writes the 8x8 range-limited samples to dst.
func idctIslow(b *block, qt *block, dst []byte, stride int) {
	// Coefficients are JCOEF (int16) in libjpeg; the quantization table is
	// indexed in natural order there.
	var coef, quant [blockSize]int
	for zig := 0; zig < blockSize; zig++ {
		n := unzig[zig]
		coef[n] = int(int16(b[n]))
		quant[n] = int(qt[zig])
	}
	var ws [blockSize]int

	// Pass 1: process columns from input, store into work array.
	for c := 0; c < 8; c++ {
		if coef[8+c] == 0 && coef[16+c] == 0 && coef[24+c] == 0 && coef[32+c] == 0 &&
			coef[40+c] == 0 && coef[48+c] == 0 && coef[56+c] == 0 {
			dc := (coef[c] * quant[c]) << pass1Bits
			for r := 0; r < 8; r++ {
				ws[8*r+c] = dc
			}
			continue
		}
		// Even part.
		z2 := coef[16+c] * quant[16+c]
		z3 := coef[48+c] * quant[48+c]
		z1 := (z2 + z3) * fix0_541196100
		tmp2 := z1 + z3*(-fix1_847759065)
		tmp3 := z1 + z2*fix0_765366865
		z2 = coef[c] * quant[c]
		z3 = coef[32+c] * quant[32+c]
		tmp0 := (z2 + z3) << constBits
		tmp1 := (z2 - z3) << constBits
		tmp10 := tmp0 + tmp3
		tmp13 := tmp0 - tmp3
		tmp11 := tmp1 + tmp2
		tmp12 := tmp1 - tmp2

		// Odd part.
		tmp0 = coef[56+c] * quant[56+c]
		tmp1 = coef[40+c] * quant[40+c]
		tmp2 = coef[24+c] * quant[24+c]
		tmp3 = coef[8+c] * quant[8+c]
		tmp0, tmp1, tmp2, tmp3 = oddPart(tmp0, tmp1, tmp2, tmp3)

		const s = constBits - pass1Bits
		ws[8*0+c] = descale(tmp10+tmp3, s)
		ws[8*7+c] = descale(tmp10-tmp3, s)
		ws[8*1+c] = descale(tmp11+tmp2, s)
		ws[8*6+c] = descale(tmp11-tmp2, s)
		ws[8*2+c] = descale(tmp12+tmp1, s)
		ws[8*5+c] = descale(tmp12-tmp1, s)
		ws[8*3+c] = descale(tmp13+tmp0, s)
		ws[8*4+c] = descale(tmp13-tmp0, s)
	}

	// Pass 2: process rows from the work array, store into the output.
	for r := 0; r < 8; r++ {
		w := ws[8*r : 8*r+8 : 8*r+8]
		out := dst[r*stride : r*stride+8 : r*stride+8]
		if w[1] == 0 && w[2] == 0 && w[3] == 0 && w[4] == 0 && w[5] == 0 && w[6] == 0 && w[7] == 0 {
			v := rangeLimit(descale(w[0], pass1Bits+3))
			for i := range out {
				out[i] = v
			}
			continue
		}
		// Even part.
		z2 := w[2]
		z3 := w[6]
		z1 := (z2 + z3) * fix0_541196100
		tmp2 := z1 + z3*(-fix1_847759065)
		tmp3 := z1 + z2*fix0_765366865
		tmp0 := (w[0] + w[4]) << constBits
		tmp1 := (w[0] - w[4]) << constBits
		tmp10 := tmp0 + tmp3
		tmp13 := tmp0 - tmp3
		tmp11 := tmp1 + tmp2
		tmp12 := tmp1 - tmp2

		// Odd part.
		tmp0, tmp1, tmp2, tmp3 = oddPart(w[7], w[5], w[3], w[1])

		const s = constBits + pass1Bits + 3
		out[0] = rangeLimit(descale(tmp10+tmp3, s))
		out[7] = rangeLimit(descale(tmp10-tmp3, s))
		out[1] = rangeLimit(descale(tmp11+tmp2, s))
		out[6] = rangeLimit(descale(tmp11-tmp2, s))
		out[2] = rangeLimit(descale(tmp12+tmp1, s))
		out[5] = rangeLimit(descale(tmp12-tmp1, s))
		out[3] = rangeLimit(descale(tmp13+tmp0, s))
		out[4] = rangeLimit(descale(tmp13-tmp0, s))
	}
}

// oddPart is the odd half of jidctint.c's butterfly; the inputs are the
// (dequantized) coefficients 7, 5, 3 and 1.
func oddPart(tmp0, tmp1, tmp2, tmp3 int) (int, int, int, int) {
	z1 := tmp0 + tmp3
	z2 := tmp1 + tmp2
	z3 := tmp0 + tmp2
	z4 := tmp1 + tmp3
	z5 := (z3 + z4) * fix1_175875602

	tmp0 *= fix0_298631336
	tmp1 *= fix2_053119869
	tmp2 *= fix3_072711026
	tmp3 *= fix1_501321110
	z1 *= -fix0_899976223
	z2 *= -fix2_562915447
	z3 *= -fix1_961570560
	z4 *= -fix0_390180644

	z3 += z5
	z4 += z5

	tmp0 += z1 + z3
	tmp1 += z2 + z4
	tmp2 += z2 + z3
	tmp3 += z1 + z4
	return tmp0, tmp1, tmp2, tmp3
}

// block holds one 8x8 block of DCT coefficients.
type block [blockSize]int32

const blockSize = 8 * 8
