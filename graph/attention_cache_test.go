package graph

import (
	"math"
	"math/rand"
	"testing"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// refAttention is softmax(q·kᵀ/√d + mask)·v per example and head, written
// out directly in float64, over keys/values given per example as the cached
// rows followed by the new rows.
func refAttention(q, k, v, kc, vc, mask []float64, s AttentionShape) []float64 {
	c := s.Heads * s.HeadDim
	nk := s.Cached + s.Tk
	out := make([]float64, s.B*s.Tq*c)
	key := func(b, j int) ([]float64, []float64) {
		if j < s.Cached {
			r := (b*s.Cached + j) * c
			return kc[r : r+c], vc[r : r+c]
		}
		r := (b*s.Tk + j - s.Cached) * c
		return k[r : r+c], v[r : r+c]
	}
	for b := 0; b < s.B; b++ {
		for h := 0; h < s.Heads; h++ {
			lo, hi := h*s.HeadDim, (h+1)*s.HeadDim
			for i := 0; i < s.Tq; i++ {
				qi := q[(b*s.Tq+i)*c:][lo:hi]
				scores := make([]float64, nk)
				top := math.Inf(-1)
				for j := range scores {
					kj, _ := key(b, j)
					var dot float64
					for d := range qi {
						dot += qi[d] * kj[lo+d]
					}
					scores[j] = dot / math.Sqrt(float64(s.HeadDim))
					if mask != nil {
						scores[j] += mask[(b*s.Tq+i)*nk+j]
					}
					top = math.Max(top, scores[j])
				}
				var z float64
				for j := range scores {
					scores[j] = math.Exp(scores[j] - top)
					z += scores[j]
				}
				o := out[(b*s.Tq+i)*c:][lo:hi]
				for j, p := range scores {
					_, vj := key(b, j)
					for d := range o {
						o[d] += p / z * vj[lo+d]
					}
				}
			}
		}
	}
	return out
}

// TestAttentionWithCacheMatchesReference runs the attention op as a decode
// step does, with a non-empty KV cache in front of the new keys, a mask
// that hides different cache slots per example, and several new tokens
// (Tq = Tk > 1), against the direct float64 computation.
func TestAttentionWithCacheMatchesReference(t *testing.T) {
	cases := []struct {
		name string
		s    AttentionShape
		mask bool
	}{
		{"one token, masked cache", AttentionShape{B: 3, Tq: 1, Tk: 1, Cached: 5, Heads: 2, HeadDim: 4}, true},
		{"three tokens, masked cache", AttentionShape{B: 2, Tq: 3, Tk: 3, Cached: 4, Heads: 3, HeadDim: 2}, true},
		{"no mask", AttentionShape{B: 2, Tq: 1, Tk: 1, Cached: 3, Heads: 1, HeadDim: 8}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := tc.s
			c := s.Heads * s.HeadDim
			rng := rand.New(rand.NewSource(7))
			dense := []*tensor.Dense{randDense(rng, s.B*s.Tq, c), randDense(rng, s.B*s.Tk, c), randDense(rng, s.B*s.Tk, c),
				randDense(rng, s.B*s.Cached, c), randDense(rng, s.B*s.Cached, c)}
			var maskT *tensor.Dense
			var mask []float64
			if tc.mask {
				// Example b sees the first Cached-b cache slots (the rest
				// are empty or stale) and the new tokens causally.
				nk := s.Cached + s.Tk
				maskT = tensor.New(tensor.Of(tensor.Float64), tensor.WithShape(s.B, s.Tq, nk))
				mask = maskT.Data().([]float64)
				for b := 0; b < s.B; b++ {
					for i := 0; i < s.Tq; i++ {
						for j := 0; j < nk; j++ {
							if (j < s.Cached && j >= s.Cached-b) || (j >= s.Cached && j-s.Cached > i) {
								mask[(b*s.Tq+i)*nk+j] = math.Inf(-1)
							}
						}
					}
				}
			}
			g := G.NewGraph()
			var nodes []*G.Node
			for i, d := range dense {
				nodes = append(nodes, G.NewTensor(g, tensor.Float64, 2, G.WithShape(d.Shape()...), G.WithValue(d), G.WithName(string(rune('a'+i)))))
			}
			var mn *G.Node
			if maskT != nil {
				mn = G.NewTensor(g, tensor.Float64, 3, G.WithShape(maskT.Shape()...), G.WithValue(maskT), G.WithName("mask"))
			}
			out := Attention(nodes[0], nodes[1], nodes[2], nodes[3], nodes[4], mn, s, 0, nil)
			vm := G.NewTapeMachine(g)
			defer vm.Close()
			if err := vm.RunAll(); err != nil {
				t.Fatal(err)
			}
			f := func(i int) []float64 { return dense[i].Data().([]float64) }
			want := refAttention(f(0), f(1), f(2), f(3), f(4), mask, s)
			got := out.Value().Data().([]float64)
			worst := 0.0
			for i := range want {
				worst = math.Max(worst, math.Abs(got[i]-want[i]))
			}
			if worst > 1e-12 {
				t.Errorf("largest difference from the reference %.3g, want <= 1e-12", worst)
			}
		})
	}
}
