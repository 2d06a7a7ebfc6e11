package graph

import (
	G "gorgonia.org/gorgonia"
)

// Fused full-sequence attention forward (inference).
//
// The general path (attnForward) runs, per (example, head), an sgemm for
// Q·Kᵀ into a Tq×Tk probability buffer, the softmax over it, and an sgemm
// for P·V on strided head slices; at ViT sizes (197 tokens, head dim 64)
// those small strided products run well below sgemm's peak. This path
// packs one head's keys into 16-key panels (kt: hd×16 floats each,
// d-major), then for each block of 4 query rows computes their scores with
// a register-blocked AVX-512 kernel (4 rows × 48 keys of accumulators),
// adds the mask, takes each row's softmax numerators exp(s − max) and their
// sum in one pass (softmaxNumAVX512, with the general path's exp32), and
// writes Σ_j e_j·v_j / Σ_j e_j straight into the output with a second
// kernel (4 rows × 64 columns of accumulators). The score block (4×Tk) and
// the packed keys (Tk×hd) stay in L1/L2.
//
// Every score and output element is one float32 sum in a fixed order (over
// d, then over j, by fused multiply-adds), independent of the other rows in
// its block, so a row's result does not depend on the batch size, its
// position in the batch or which block it falls in (the last block is
// shifted back to end at Tq, recomputing a few rows with the same bits).
// The bits differ from the sgemm path's (another summation order and no
// normalised probabilities); TestFusedAttentionMatchesFloat64 bounds the
// difference from a float64 reference.

// fusedMaxHD is the widest head the output kernel holds (4 rows × 4
// vectors of accumulators; narrower heads mask the columns past hd).
const fusedMaxHD = 64

// fusedApplies reports whether an attention op's forward pass runs the
// fused path: float32 data on a CPU with AVX-512, no dropout, sgemm
// products (a bf16-precision graph keeps its bf16 products), heads of at
// most 64, at least 4 queries per example (a block of rows), rows narrow
// enough for the key gather's 32-bit offsets. The backward
// pass always recomputes its probabilities on the general path.
func fusedApplies(a attnArgs) bool {
	s := a.s
	return hasAVX512 && a.drop == 0 && a.mm == nil && s.HeadDim > 0 && s.HeadDim <= fusedMaxHD && s.Tq >= 4 && s.Tk > 0 && s.Heads*s.HeadDim < 1<<25
}

// fusedPanels is the number of 16-key panels of the packed keys: enough
// for tk keys and at least the scores kernel's 3 (the ones past tk zero).
func fusedPanels(tk int) int { return max((tk+15)/16, 3) }

// attnFused is attnForward on the fused path (fusedApplies): y (B·Tq, c)
// is the attention output. Its items are (example, head) pairs run in
// parallel, each with its own packed keys and score block from a.scratch.
func attnFused(a attnArgs, vals []G.Value, y []float32) {
	s := a.s
	c, hd := s.Heads*s.HeadDim, s.HeadDim
	q, k, v, mask, _ := attnInputs[float32](a, vals, false)
	np := fusedPanels(s.Tk)
	lds := np * 16
	nkt := np * 16 * hd
	scale := float32(a.scale)
	parallelFor(s.B*s.Heads, 1, func(lo, hi int) {
		buf := fusedScratchGet(a.scratch, nkt+4*lds)
		defer a.scratch.fused.Put(buf)
		kt, sc := (*buf)[:nkt], (*buf)[nkt:]
		var inv [4]float32
		for item := lo; item < hi; item++ {
			b, h := item/s.Heads, item%s.Heads
			ko := b*s.Tk*c + h*hd
			packKeyPanels(k[ko:], c, s.Tk, hd, kt)
			for i0 := 0; i0 < s.Tq; i0 += 4 {
				i := min(i0, s.Tq-4) // the last block ends at Tq
				qo := (b*s.Tq+i)*c + h*hd
				fusedScores4(q[qo:], c, kt, hd, np, scale, sc, lds)
				for r := 0; r < 4; r++ {
					row := sc[r*lds : r*lds+s.Tk]
					if mask != nil {
						m := mask[(b*s.Tq+i+r)*s.Tk:][:s.Tk]
						for j, mj := range m {
							row[j] += mj
						}
					}
					inv[r] = 1 / softmaxNum32(row)
				}
				fusedPV4(sc, lds, v[ko:], c, s.Tk, hd, &inv, y[qo:], c)
			}
		}
	})
}

// fusedScratchGet returns a buffer of n float32s for attnFused (recycled
// or new), from its own pool so that it never displaces the general path's
// probability buffers.
func fusedScratchGet(sc *attnScratch, n int) *[]float32 {
	if b, ok := sc.fused.Get().(*[]float32); ok && len(*b) == n {
		return b
	}
	b := make([]float32, n)
	return &b
}
