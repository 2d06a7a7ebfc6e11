package graph

import (
	"math"
	"math/rand"
	"strings"
	"testing"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// refCachedAttention is softmax(q·kᵀ/√d)·v per example and head, written
// out directly in float64, where example b's keys and values are its first
// at[b] cache rows followed by its Tq new rows, the new ones seen causally.
func refCachedAttention(q, k, v, kc, vc []float64, at []int, tq, slots, heads, hd int) []float64 {
	c := heads * hd
	out := make([]float64, len(at)*tq*c)
	for b, n := range at {
		key := func(j int) ([]float64, []float64) {
			if j < n {
				r := (b*slots + j) * c
				return kc[r : r+c], vc[r : r+c]
			}
			r := (b*tq + j - n) * c
			return k[r : r+c], v[r : r+c]
		}
		for h := 0; h < heads; h++ {
			lo, hi := h*hd, (h+1)*hd
			for i := 0; i < tq; i++ {
				qi := q[(b*tq+i)*c:][lo:hi]
				scores := make([]float64, n+i+1) // the cache, then new tokens up to i
				top := math.Inf(-1)
				for j := range scores {
					kj, _ := key(j)
					var dot float64
					for d := range qi {
						dot += qi[d] * kj[lo+d]
					}
					scores[j] = dot / math.Sqrt(float64(hd))
					top = math.Max(top, scores[j])
				}
				var z float64
				for j := range scores {
					scores[j] = math.Exp(scores[j] - top)
					z += scores[j]
				}
				o := out[(b*tq+i)*c:][lo:hi]
				for j, p := range scores {
					_, vj := key(j)
					for d := range o {
						o[d] += p / z * vj[lo+d]
					}
				}
			}
		}
	}
	return out
}

// TestAttentionWithCacheMatchesReference runs attention as a decode step
// does, inside the graph: the new keys and values are written into a
// non-empty KV cache at each example's own length (CacheWrite), the mask
// comes from those lengths (PrefixCausalMask), and the queries attend to
// the cache; stale values past each example's length must not count. It
// is compared with the direct float64 computation, for one and for
// several new tokens per example.
func TestAttentionWithCacheMatchesReference(t *testing.T) {
	cases := []struct {
		name                 string
		at                   []int // filled cache slots per example
		tq, slots, heads, hd int
		prefix               int
	}{
		{"one token, lengths differ", []int{5, 3, 6}, 1, 8, 2, 4, 2},
		{"three tokens, lengths differ", []int{4, 2}, 3, 9, 3, 2, 2},
		{"one token, full prefix", []int{3, 3}, 1, 4, 1, 8, 3},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b, c := len(tc.at), tc.heads*tc.hd
			rng := rand.New(rand.NewSource(7))
			q, k, v := randDense(rng, b*tc.tq, c), randDense(rng, b*tc.tq, c), randDense(rng, b*tc.tq, c)
			kc, vc := randDense(rng, b*tc.slots, c), randDense(rng, b*tc.slots, c) // stale past at[b]
			wantCache := func(cache, x []float64) []float64 {
				w := append([]float64(nil), cache...)
				for e, n := range tc.at {
					copy(w[(e*tc.slots+n)*c:], x[e*tc.tq*c:(e+1)*tc.tq*c])
				}
				return w
			}
			f := func(d *tensor.Dense) []float64 { return d.Data().([]float64) }
			want := refCachedAttention(f(q), f(k), f(v), f(kc), f(vc), tc.at, tc.tq, tc.slots, tc.heads, tc.hd)
			wantK, wantV := wantCache(f(kc), f(k)), wantCache(f(vc), f(v))

			g := G.NewGraph()
			node := func(name string, d *tensor.Dense) *G.Node {
				return G.NewTensor(g, d.Dtype(), d.Dims(), G.WithShape(d.Shape()...), G.WithValue(d), G.WithName(name))
			}
			qpos := make([]int, b*tc.tq)
			for e, n := range tc.at {
				for i := 0; i < tc.tq; i++ {
					qpos[e*tc.tq+i] = n + i
				}
			}
			at := node("at", intDense(tc.at...))
			kw := CacheWrite(node("kc", kc), node("k", k), at, tc.slots)
			vw := CacheWrite(node("vc", vc), node("v", v), at, tc.slots)
			mask := PrefixCausalMask(tensor.Float64, node("qpos", intDense(qpos...)), nil, MaskShape{B: b, Tq: tc.tq, Tk: tc.slots, Prefix: tc.prefix})
			out := Attention(node("q", q), kw, vw, mask, AttentionShape{B: b, Tq: tc.tq, Tk: tc.slots, Heads: tc.heads, HeadDim: tc.hd}, 0, nil)
			vm := G.NewTapeMachine(g)
			defer vm.Close()
			if err := vm.RunAll(); err != nil {
				t.Fatal(err)
			}
			worst := func(got, want []float64) float64 {
				w := 0.0
				for i := range want {
					w = math.Max(w, math.Abs(got[i]-want[i]))
				}
				return w
			}
			if d := worst(out.Value().Data().([]float64), want); d > 1e-12 {
				t.Errorf("largest difference from the reference %.3g, want <= 1e-12", d)
			}
			if d := worst(f(kc), wantK) + worst(f(vc), wantV); d != 0 {
				t.Errorf("the cache does not hold the new keys/values at each example's length (difference %g)", d)
			}
		})
	}
}

// TestPrefixCausalMaskIsGITsMask spells GIT's mask out for two examples of
// two image tokens and three text tokens, the second with its last token
// padded: image↔image full, text→image full, text→text causal, padded keys
// hidden. x is visible, . hidden.
func TestPrefixCausalMaskIsGITsMask(t *testing.T) {
	want := [2][]string{{
		"xx...",
		"xx...",
		"xxx..",
		"xxxx.",
		"xxxxx",
	}, {
		"xx...",
		"xx...",
		"xxx..",
		"xxxx.",
		"xxxx.", // its own key is padding
	}}
	g := G.NewGraph()
	qpos := []int{0, 1, 2, 3, 4, 0, 1, 2, 3, 4}
	keep := []int{1, 1, 1, 1, 1, 0}
	in := func(name string, v []int) *G.Node {
		d := intDense(v...)
		return G.NewTensor(g, tensor.Int, 1, G.WithShape(len(v)), G.WithValue(d), G.WithName(name))
	}
	m := PrefixCausalMask(tensor.Float32, in("qpos", qpos), in("keep", keep), MaskShape{B: 2, Tq: 5, Tk: 5, Prefix: 2})
	vm := G.NewTapeMachine(g)
	defer vm.Close()
	if err := vm.RunAll(); err != nil {
		t.Fatal(err)
	}
	got := m.Value().Data().([]float32)
	for b := range want {
		for i, row := range want[b] {
			var s strings.Builder
			for j := 0; j < 5; j++ {
				switch v := got[(b*5+i)*5+j]; {
				case v == 0:
					s.WriteByte('x')
				case math.IsInf(float64(v), -1):
					s.WriteByte('.')
				default:
					s.WriteByte('?')
				}
			}
			if s.String() != row {
				t.Errorf("example %d query %d: %s, want %s", b, i, s.String(), row)
			}
		}
	}
}

// TestCacheWritePastTheEndIsAnError checks that a write beyond the last
// slot fails the run with an error instead of panicking or wrapping into
// the next example's cache.
func TestCacheWritePastTheEndIsAnError(t *testing.T) {
	g := G.NewGraph()
	rng := rand.New(rand.NewSource(1))
	kc, k := randDense(rng, 2*3, 4), randDense(rng, 2, 4)
	node := func(name string, d *tensor.Dense) *G.Node {
		return G.NewTensor(g, d.Dtype(), d.Dims(), G.WithShape(d.Shape()...), G.WithValue(d), G.WithName(name))
	}
	CacheWrite(node("kc", kc), node("k", k), node("at", intDense(1, 3)), 3)
	vm := G.NewTapeMachine(g)
	defer vm.Close()
	if err := vm.RunAll(); err == nil || !strings.Contains(err.Error(), "KV cache") {
		t.Fatalf("got %v, want a KV cache error", err)
	}
}
