//go:build amd64

package graph

//go:noescape
func addF32AVX512(a, c, y *float32, n int)

// addF32 sets y = a + c, 16 lanes at a time where the CPU has AVX-512 (one
// rounded sum per element either way, so the same bits).
func addF32(a, c, y []float32) {
	if nb := len(a) &^ 15; hasAVX512 && nb > 0 {
		_, _ = c[nb-1], y[nb-1]
		addF32AVX512(&a[0], &c[0], &y[0], nb)
		a, c, y = a[nb:], c[nb:], y[nb:]
	}
	addRef(a, c, y)
}
