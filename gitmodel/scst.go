package gitmodel

import (
	G "gorgonia.org/gorgonia"

	"github.com/gitcap/gitcap/graph"
)

// Support for self-critical sequence training (train/scst.go): several
// sampled captions share one image's tokens, and the loss weighs each
// sampled token by its sequence's advantage.

// shareImages repeats each image's projected tokens (Image rows per image)
// for perImage consecutive text rows, so that the vision tower runs once
// per image; its gradient sums over the rows that shared an image.
func shareImages(img *G.Node, perImage int, s Shape) *G.Node {
	if perImage <= 1 {
		return img
	}
	idx := make([]int, 0, s.Batch*s.Image)
	for r := 0; r < s.Batch; r++ {
		base := (r / perImage) * s.Image
		for j := 0; j < s.Image; j++ {
			idx = append(idx, base+j)
		}
	}
	return graph.Rows(img, idx)
}

// shiftWeights writes weights[:, 1:] of a (batch, t) matrix into dst, the
// order of shiftLabels' targets.
func shiftWeights(dst, w []float32, batch, t int) {
	k := 0
	for i := 0; i < batch; i++ {
		for j := 1; j < t; j++ {
			dst[k] = w[i*t+j]
			k++
		}
	}
}
