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
