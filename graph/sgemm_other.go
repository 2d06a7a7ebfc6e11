//go:build !amd64

package graph

const hasSgemmTile = false

func sgemmTile(xp, w *float32, ldw, kc int, out, bias *float32, mode int) {
	panic("sgemmTile: amd64 only")
}
func sgemmTile16(xp, w *float32, ldw, kc int, out, bias *float32, mode int) {
	panic("sgemmTile16: amd64 only")
}
func transpose16(src *float32, lds int, dst *float32, ldd int, rows int, mask uint16) {
	panic("transpose16: amd64 only")
}
