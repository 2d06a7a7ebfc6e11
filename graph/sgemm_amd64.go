//go:build amd64

package graph

//go:noescape
func sgemmTile(xp, w *float32, ldw, kc int, out, bias *float32, mode int)

const hasSgemmTile = true

//go:noescape
func sgemmTile16(xp, w *float32, ldw, kc int, out, bias *float32, mode int)

//go:noescape
func transpose16(src *float32, lds int, dst *float32, ldd int, rows int, mask uint16)
