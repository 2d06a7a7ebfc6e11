//go:build amd64

package graph

import "math"

// expConstsLen is the length of expConsts.
const expConstsLen = 17

// expConsts are exp32's float32 constants (and QuickGELU's 1.702) in the
// order fastmath_amd64.s reads them. It is never written.
var expConsts = [expConstsLen]float32{
	1.44269504088896341, 12582912, 0.693359375, -2.12194440e-4,
	1.9875691500e-4, 1.3981999507e-3, 8.3334519073e-3, 4.1665795894e-2, 1.6666665459e-1, 5.0000001201e-1,
	1, 88.72283, -103.97208, math.Float32frombits(1 << 23), float32(math.Inf(1)),
	1.702, -1.702,
}

//go:noescape
func expSubAVX512(x *float32, n int, sub float32, c *[expConstsLen]float32)

//go:noescape
func quickGELUAVX512(x, y *float32, n int, c *[expConstsLen]float32)

//go:noescape
func quickGELUGradAVX512(x, dy, y *float32, n int, c *[expConstsLen]float32)

// expSub32 sets x[i] = exp32(x[i] - sub), 16 lanes at a time where the CPU
// has AVX-512 (same bits as the scalar exp32).
func expSub32(x []float32, sub float32) {
	if b := len(x) &^ 15; hasAVX512 && b > 0 {
		expSubAVX512(&x[0], b, sub, &expConsts)
		x = x[b:]
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
