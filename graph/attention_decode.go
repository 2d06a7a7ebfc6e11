package graph

import (
	"math"
	"runtime"

	G "gorgonia.org/gorgonia"
)

// Fused attention of a decode step over a KV cache.
//
// A decode step attends one new token per row (Tq == 1) to the whole KV
// cache (graph.CacheWrite's output), whose slots past the row's length are
// hidden by the additive mask (-Inf, see PrefixCausalMask with the cache
// positions as the query positions). The general path (attnForward) runs
// two small sgemm calls per (row, head) over every slot, empty ones
// included. This path computes, for each (row, head, query), the scores
// over the slots up to the last one the mask leaves open, their softmax and
// Σ p_j·v_j, reading each key and value row once, with no BLAS call.
//
// Skipping the trailing -Inf slots is exact: in the general path their
// scores are -Inf, which never raise the maximum, their exponentials are
// exactly 0 (exp32(-Inf) = 0), adding 0 leaves the float32 sum of the
// exponentials unchanged, and their probabilities 0 contribute 0 to the
// products. Masked slots inside the open range are kept (probability
// exactly 0), as in the general path. Only the dot products' summation
// order differs from sgemm's: see decodeDot.

// decodeMaxTq is the most queries per example the fused path takes: it
// reads the keys and values once per query, which only pays for few.
const decodeMaxTq = 8

// decodeApplies reports whether an attention op runs the fused decode
// path: float32 data, keys and values from a KV cache (CacheWrite), few
// queries, no dropout and sgemm products (a bf16-precision graph keeps
// its bf16 products on the general path).
func decodeApplies(a attnArgs) bool {
	return a.cached && a.drop == 0 && a.mm == nil && a.s.Tq <= decodeMaxTq && a.s.Tk > 0 && a.s.HeadDim > 0
}

// isCacheWrite reports whether n is a CacheWrite op's output.
func isCacheWrite(n *G.Node) bool {
	_, ok := n.Op().(cacheWriteOp)
	return ok
}

// attnDecode is attnForward for a decode step (decodeApplies): y (B·Tq, c)
// is the attention output. Its items are (example, head group) pairs run
// in parallel; an item streams its example's key and value rows once per
// query, in address order, for all heads of its group at once. (A first
// version that read one head's 256-byte slice of each row, 3 KiB apart,
// as the per-head sgemm calls do, measured no faster than them in the
// 16-row step; whole rows did.) Examples fewer than the workers split
// their heads into groups, so that a lone row still uses every core.
func attnDecode(a attnArgs, vals []G.Value, y []float32) {
	s := a.s
	c, hd := s.Heads*s.HeadDim, s.HeadDim
	q, k, v, mask, _ := attnInputs[float32](a, vals, false)
	scale := float32(a.scale)
	groups := 1
	for w := runtime.GOMAXPROCS(0); s.B*groups < w && s.Heads%(2*groups) == 0; {
		groups *= 2
	}
	gh := s.Heads / groups // heads per group
	parallelFor(s.B*groups, 1, func(lo, hi int) {
		pb := scratchGet[float32](a.scratch, gh*s.Tk)
		defer scratchPut(a.scratch, pb)
		p := *pb
		for item := lo; item < hi; item++ {
			b, h0 := item/groups, item%groups*gh*hd
			kv := b*s.Tk*c + h0
			for i := 0; i < s.Tq; i++ {
				r := b*s.Tq + i
				var m []float32
				if mask != nil {
					m = mask[r*s.Tk : (r+1)*s.Tk]
				}
				o := r*c + h0
				decodeQuery(q[o:o+gh*hd], k[kv:], v[kv:], c, hd, m, s.Tk, scale, p, y[o:o+gh*hd])
			}
		}
	})
}

// openSlots is the number of leading slots up to and including the last
// one that mask (nil: none hidden) leaves open (not -Inf).
func openSlots(mask []float32, tk int) int {
	if mask == nil {
		return tk
	}
	negInf := float32(math.Inf(-1))
	n := tk
	for n > 0 && mask[n-1] == negInf {
		n--
	}
	return n
}

// decodeQuery writes into out the attention of one query q over the key
// and value rows k[j·ld:], v[j·ld:] of the first tk slots, for the heads
// of hd elements that q and out hold, over the slots the additive mask
// (tk, nil: none hidden) leaves open; p (heads·tk) is scratch, head h's
// scores at p[h·tk:]. A query that sees no slot gets NaN, as softmax over
// only -Inf scores gives in the general path.
func decodeQuery(q, k, v []float32, ld, hd int, mask []float32, tk int, scale float32, p, out []float32) {
	n := openSlots(mask, tk)
	if n == 0 {
		nan := float32(math.NaN())
		for d := range out {
			out[d] = nan
		}
		return
	}
	decodeRowScores(q, k, ld, n, hd, scale, p, tk)
	for h := 0; h < len(q)/hd; h++ {
		ph := p[h*tk : h*tk+n]
		if mask != nil {
			for j, mj := range mask[:n] {
				ph[j] += mj
			}
		}
		// softmaxRows32 on the open slots (same bits as on the whole
		// row: see the file comment).
		mx := max32(ph)
		expSub32(ph, mx)
		var sum float32
		for _, e := range ph {
			sum += e
		}
		scale32(ph, 1/sum)
	}
	decodeRowWeightedSum(p, tk, v, ld, n, hd, out)
}

// decodeRowScoresGo is the reference of decodeRowScores: head h's score of
// slot j, p[h·pld+j], is decodeDot(q[h·hd:], k[j·ld+h·hd:]) · scale for j <
// n and every head q holds.
func decodeRowScoresGo(q, k []float32, ld, n, hd int, scale float32, p []float32, pld int) {
	for h := 0; h < len(q)/hd; h++ {
		decodeScoresGo(q[h*hd:(h+1)*hd], k[h*hd:], ld, scale, p[h*pld:h*pld+n])
	}
}

// decodeRowWeightedSumGo is the reference of decodeRowWeightedSum: head
// h's columns out[h·hd:] are decodeWeightedSumGo of its probabilities
// p[h·pld:][:n] and values v[h·hd:].
func decodeRowWeightedSumGo(p []float32, pld int, v []float32, ld, n, hd int, out []float32) {
	for h := 0; h < len(out)/hd; h++ {
		decodeWeightedSumGo(p[h*pld:h*pld+n], v[h*hd:], ld, out[h*hd:(h+1)*hd])
	}
}

// decodeScoresGo is the reference of decodeScores: p[j] = decodeDot(q,
// k[j·ld:]) · scale for every j < len(p).
func decodeScoresGo(q, k []float32, ld int, scale float32, p []float32) {
	for j := range p {
		p[j] = decodeDot(q, k[j*ld:][:len(q)]) * scale
	}
}

// decodeDot is q·k (same length) in float32 in the AVX-512 kernel's order:
// q and k are zero-padded to a multiple of 16 and cut into chunks of 16;
// lane l sums its elements' products over the chunks in order, starting
// from 0, each product and sum rounded on its own (no fused multiply-add);
// the 16 lane sums are then added pairwise as a tree (l+8 into l, then
// l+4, l+2, l+1). Its error is at most (⌈n/16⌉+5)·u·Σ|q_i·k_i| to first
// order (u = 2⁻²⁴: one rounding per product, per lane sum and per tree
// level), below sequential summation's (n+1)·u.
func decodeDot(q, k []float32) float32 {
	var t [16]float32
	n := len(q)
	for c := 0; c < n; c += 16 {
		for l := 0; l < 16; l++ {
			var prod float32 // +0 for the padding, as the kernel's masked loads give
			if c+l < n {
				prod = float32(q[c+l] * k[c+l])
			}
			t[l] = t[l] + prod
		}
	}
	for w := 8; w >= 1; w /= 2 {
		for l := 0; l < w; l++ {
			t[l] = t[l] + t[l+w]
		}
	}
	return t[0]
}

// decodeWeightedSumGo is the reference of decodeWeightedSum: out[d] =
// Σ_j p[j]·v[j·ld+d], j in order from 0, each product and sum rounded on
// its own.
func decodeWeightedSumGo(p, v []float32, ld int, out []float32) {
	for d := range out {
		var acc float32
		for j, pj := range p {
			acc = acc + float32(pj*v[j*ld+d])
		}
		out[d] = acc
	}
}
