//go:build !amd64

package graph

// expSub32 sets x[i] = exp32(x[i] - sub).
func expSub32(x []float32, sub float32) {
	for i, v := range x {
		x[i] = exp32(v - sub)
	}
}

// quickGELUBlock does nothing off amd64: the scalar loop does every element.
func quickGELUBlock(grad bool, x, dy, y []float32) int { return 0 }

// geluBlock does nothing off amd64: the scalar loop does every element.
func geluBlock(grad bool, x, dy, y []float32) int { return 0 }

// max32 is the largest element of x (len(x) > 0).
func max32(x []float32) float32 {
	mx := x[0]
	for _, v := range x[1:] {
		if v > mx {
			mx = v
		}
	}
	return mx
}

// scale32 multiplies x by s in place.
func scale32(x []float32, s float32) {
	for i := range x {
		x[i] *= s
	}
}
