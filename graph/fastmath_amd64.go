//go:build amd64

package graph

import "math"

// expConstsLen is the length of expConsts.
const expConstsLen = 38

// expConsts are exp32's float32 constants, QuickGELU's 1.702, GELU's and
// erf32's constants, two bit masks and the exp fast path's bound 87, in
// the order (and at the byte offsets) fastmath_amd64.s reads them. It is
// never written.
var expConsts = [expConstsLen]float32{
	1.44269504088896341, 12582912, 0.693359375, -2.12194440e-4,
	1.9875691500e-4, 1.3981999507e-3, 8.3334519073e-3, 4.1665795894e-2, 1.6666665459e-1, 5.0000001201e-1,
	1, 88.72283, -103.97208, math.Float32frombits(1 << 23), float32(math.Inf(1)),
	1.702, -1.702,
	1 / sqrt2, 0.5, invSqrt2Pi, -0.5, 0.927734375,
	-1.72853470e-5, 3.83197126e-4, -3.88396438e-3, 2.42546219e-2, 1.06777877e-1, 6.34846687e-1, 1.28717512e-1,
	-5.96761703e-4, 4.99119423e-3, 2.67681349e-2, 1.12819925e-1, 3.76125336e-1, 1.28379166e-1,
	math.Float32frombits(0x7fffffff), math.Float32frombits(0x80000000),
	87, // the exp fast path's bound (fastmath_amd64.s, IN87)
}

//go:noescape
func expSubAVX512(x *float32, n int, sub float32, c *[expConstsLen]float32)

//go:noescape
func expSubTailAVX512(x *float32, n int, sub float32, c *[expConstsLen]float32)

//go:noescape
func quickGELUAVX512(x, y *float32, n int, c *[expConstsLen]float32)

//go:noescape
func quickGELUGradAVX512(x, dy, y *float32, n int, c *[expConstsLen]float32)

//go:noescape
func geluAVX512(x, y *float32, n int, c *[expConstsLen]float32)

//go:noescape
func geluGradAVX512(x, dy, y *float32, n int, c *[expConstsLen]float32)

//go:noescape
func maxAVX512(x *float32, n int) float32

//go:noescape
func scaleF32AVX512(x *float32, n int, s float32)

// max32 is the largest element of x (len(x) > 0), 16 lanes at a time where
// the CPU has AVX-512. Without NaNs it is the scalar maximum; a row holding
// NaN gives a NaN softmax either way.
func max32(x []float32) float32 {
	mx := x[0]
	if b := len(x) &^ 15; hasAVX512 && b > 0 {
		mx = maxAVX512(&x[0], b)
		x = x[b:]
	}
	for _, v := range x {
		if v > mx {
			mx = v
		}
	}
	return mx
}

// scale32 multiplies x by s in place (one rounded product per element).
func scale32(x []float32, s float32) {
	if b := len(x) &^ 15; hasAVX512 && b > 0 {
		scaleF32AVX512(&x[0], b, s)
		x = x[b:]
	}
	for i := range x {
		x[i] *= s
	}
}

// expSub32 sets x[i] = exp32(x[i] - sub), 16 lanes at a time where the CPU
// has AVX-512, the last len(x) mod 16 in one masked vector (same bits as
// the scalar exp32).
func expSub32(x []float32, sub float32) {
	if hasAVX512 {
		if b := len(x) &^ 15; b > 0 {
			expSubAVX512(&x[0], b, sub, &expConsts)
			x = x[b:]
		}
		if len(x) > 0 {
			expSubTailAVX512(&x[0], len(x), sub, &expConsts)
		}
		return
	}
	for i, v := range x {
		x[i] = exp32(v - sub)
	}
}

// quickGELUBlock is QuickGELU (grad false: y = x·σ(1.702x)) or its
// gradient (grad true: y = dy·f'(x)) over whole 16-element blocks with
// AVX-512; it returns how many leading elements it did (0 without
// AVX-512), leaving the rest to the scalar loop.
func quickGELUBlock(grad bool, x, dy, y []float32) int {
	b := len(x) &^ 15
	if !hasAVX512 || b == 0 {
		return 0
	}
	if grad {
		quickGELUGradAVX512(&x[0], &dy[0], &y[0], b, &expConsts)
	} else {
		quickGELUAVX512(&x[0], &y[0], b, &expConsts)
	}
	return b
}

// geluBlock is quickGELUBlock for the exact GELU (gelu32).
func geluBlock(grad bool, x, dy, y []float32) int {
	b := len(x) &^ 15
	if !hasAVX512 || b == 0 {
		return 0
	}
	if grad {
		geluGradAVX512(&x[0], &dy[0], &y[0], b, &expConsts)
	} else {
		geluAVX512(&x[0], &y[0], b, &expConsts)
	}
	return b
}
