//go:build !amd64

package graph

// addF32 sets y = a + c.
func addF32(a, c, y []float32) { addRef(a, c, y) }
