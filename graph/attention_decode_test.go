package graph

import (
	"fmt"
	"math"
	"math/rand"
	"testing"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// TestDecodeKernelsMatchGoReference checks that the AVX-512 score and
// weighted-sum kernels give exactly the bits of their Go references, for
// head widths that are and are not multiples of 16 (the masked tail), one
// or several heads, and row strides wider than the heads. The kernels read
// and write only the heads' elements: a NaN just past every row must not
// reach the results, and the output's neighbours stay untouched.
func TestDecodeKernelsMatchGoReference(t *testing.T) {
	if !hasAVX512 {
		t.Skip("no AVX-512: decodeRowScores and decodeRowWeightedSum are their Go references")
	}
	for _, heads := range []int{1, 3, 12} {
		for _, hd := range []int{1, 8, 16, 24, 64, 72, 144} {
			for _, n := range []int{1, 3, 17, 240} {
				t.Run(fmt.Sprintf("heads%d/hd%d/n%d", heads, hd, n), func(t *testing.T) {
					rng := rand.New(rand.NewSource(int64(heads*100000 + hd*1000 + n)))
					w := heads * hd
					ld, pld := w+5, n+2
					q := randF32(rng, w)
					k, v := randF32(rng, n*ld), randF32(rng, n*ld)
					for j := 0; j < n; j++ {
						for d := w; d < ld; d++ {
							k[j*ld+d], v[j*ld+d] = float32(math.NaN()), float32(math.NaN())
						}
					}
					k, v = k[:(n-1)*ld+w], v[:(n-1)*ld+w]
					got, want := make([]float32, heads*pld), make([]float32, heads*pld)
					decodeRowScores(q, k, ld, n, hd, 0.125, got, pld)
					decodeRowScoresGo(q, k, ld, n, hd, 0.125, want, pld)
					for j := range want {
						if math.Float32bits(got[j]) != math.Float32bits(want[j]) {
							t.Fatalf("score %d: kernel %v, Go %v", j, got[j], want[j])
						}
					}
					p := randF32(rng, heads*pld)
					gotO, wantO := make([]float32, w+1), make([]float32, w+1)
					gotO[w] = 42 // the kernel writes the heads' columns only
					for d := range gotO[:w] {
						gotO[d] = float32(math.NaN()) // overwritten, not added to
					}
					decodeRowWeightedSum(p, pld, v, ld, n, hd, gotO[:w])
					decodeRowWeightedSumGo(p, pld, v, ld, n, hd, wantO[:w])
					for d := 0; d < w; d++ {
						if math.Float32bits(gotO[d]) != math.Float32bits(wantO[d]) {
							t.Fatalf("column %d: kernel %v, Go %v", d, gotO[d], wantO[d])
						}
					}
					if gotO[w] != 42 {
						t.Fatalf("the kernel wrote past its %d columns", w)
					}
				})
			}
		}
	}
}

// decodeCase is a decode-step attention: B examples with at[b] filled
// cache slots each, Tq new tokens each, over a cache of slots rows.
type decodeCase struct {
	name                 string
	at                   []int
	tq, slots, heads, hd int
	prefix               int
}

var decodeCases = []decodeCase{
	{"one token, lengths differ", []int{5, 3, 6}, 1, 8, 2, 4, 2},
	{"three tokens, lengths differ", []int{4, 2}, 3, 9, 3, 2, 2},
	{"one token, full cache", []int{3, 7}, 1, 8, 1, 8, 3},
	{"git-base shape, one token", []int{197, 210, 230, 199}, 1, 240, 12, 64, 197},
	{"git-base shape, two tokens", []int{200, 237}, 2, 240, 12, 64, 197},
}

// decodeGraph builds the decode step's attention over float32 inputs as
// layers.SelfAttention.Forward does with a cache: CacheWrite of the new
// keys and values at each example's length, PrefixCausalMask from the
// lengths, Attention over the cache. Cache slots past each example's new
// tokens hold NaN, which the fused path never reads.
func decodeGraph(tc decodeCase, rng *rand.Rand) (g *G.ExprGraph, out *G.Node, ins G.Nodes, q, k, v, kc, vc []float32) {
	b, c := len(tc.at), tc.heads*tc.hd
	q, k, v = randF32(rng, b*tc.tq*c), randF32(rng, b*tc.tq*c), randF32(rng, b*tc.tq*c)
	kc, vc = randF32(rng, b*tc.slots*c), randF32(rng, b*tc.slots*c)
	for e, n := range tc.at {
		for j := n + tc.tq; j < tc.slots; j++ {
			for d := 0; d < c; d++ {
				kc[(e*tc.slots+j)*c+d], vc[(e*tc.slots+j)*c+d] = float32(math.NaN()), float32(math.NaN())
			}
		}
	}
	g = G.NewGraph()
	node := func(name string, x []float32, shape ...int) *G.Node {
		d := tensor.New(tensor.WithShape(shape...), tensor.WithBacking(x))
		return G.NewTensor(g, tensor.Float32, len(shape), G.WithShape(shape...), G.WithValue(d), G.WithName(name))
	}
	ints := func(name string, x []int) *G.Node {
		return G.NewTensor(g, tensor.Int, 1, G.WithShape(len(x)), G.WithValue(intDense(x...)), G.WithName(name))
	}
	qpos := make([]int, b*tc.tq)
	for e, n := range tc.at {
		for i := 0; i < tc.tq; i++ {
			qpos[e*tc.tq+i] = n + i
		}
	}
	at := ints("at", tc.at)
	kw := CacheWrite(node("kc", kc, b*tc.slots, c), node("k", k, b*tc.tq, c), at, tc.slots)
	vw := CacheWrite(node("vc", vc, b*tc.slots, c), node("v", v, b*tc.tq, c), at, tc.slots)
	mask := PrefixCausalMask(tensor.Float32, ints("qpos", qpos), nil, MaskShape{B: b, Tq: tc.tq, Tk: tc.slots, Prefix: tc.prefix})
	ins = G.Nodes{node("q", q, b*tc.tq, c), kw, vw, mask}
	out = Attention(ins[0], kw, vw, mask, AttentionShape{B: b, Tq: tc.tq, Tk: tc.slots, Heads: tc.heads, HeadDim: tc.hd}, 0, nil)
	return g, out, ins, q, k, v, kc, vc
}

// TestDecodeAttentionMatchesFloat64Reference runs a decode step's
// attention in a float32 graph (it must take the fused path) and compares
// each output element with the float64 computation within its float32
// error bound: each score is off by at most Δ = scale·(⌈hd/16⌉+6)·u·Σ|q·k|
// (the kernel's lane sums and tree, the scaling and the mask), which moves
// each probability by a factor within 1 ± 2Δ; exp32 (2 ulp), the sum of n
// exponentials and the division add (n+6)·u, and the n-term weighted sum
// (n+1)·u, all relative to Σ_j p_j·|v_j|. The test allows twice that first
// order bound (u = 2⁻²⁴). The NaN in the cache past each example's tokens
// must not reach the output.
func TestDecodeAttentionMatchesFloat64Reference(t *testing.T) {
	const u = 1.0 / (1 << 24)
	for _, tc := range decodeCases {
		t.Run(tc.name, func(t *testing.T) {
			rng := rand.New(rand.NewSource(3))
			g, out, _, q, k, v, kc, vc := decodeGraph(tc, rng)
			op, ok := out.Op().(attnOp)
			if !ok || !decodeApplies(op.attnArgs) {
				t.Fatalf("the attention over a KV cache does not take the fused decode path")
			}
			f64 := func(x []float32) []float64 {
				y := make([]float64, len(x))
				for i, e := range x {
					y[i] = float64(e)
				}
				return y
			}
			// The reference reads the float32 inputs (the cache before the write).
			want := refCachedAttention(f64(q), f64(k), f64(v), f64(kc), f64(vc), tc.at, tc.tq, tc.slots, tc.heads, tc.hd)
			vm := G.NewTapeMachine(g)
			defer vm.Close()
			if err := vm.RunAll(); err != nil {
				t.Fatal(err)
			}
			got := out.Value().Data().([]float32)
			c := tc.heads * tc.hd
			scale := 1 / math.Sqrt(float64(tc.hd))
			chunks := float64((tc.hd + 15) / 16)
			// After the run the cache holds the new rows at each example's length.
			kcw, vcw := f64(kc), f64(vc)
			var worst float64
			for e, at := range tc.at {
				for i := 0; i < tc.tq; i++ {
					r := e*tc.tq + i
					n := at + i + 1
					for h := 0; h < tc.heads; h++ {
						lo := h * tc.hd
						qi := f64(q[r*c+lo : r*c+lo+tc.hd])
						var delta float64
						p := make([]float64, n)
						top := math.Inf(-1)
						for j := 0; j < n; j++ {
							kj := kcw[(e*tc.slots+j)*c+lo:][:tc.hd]
							var dot, abs float64
							for d := range qi {
								dot += qi[d] * kj[d]
								abs += math.Abs(qi[d] * kj[d])
							}
							p[j] = dot * scale
							top = math.Max(top, p[j])
							delta = math.Max(delta, scale*(chunks+6)*u*abs)
						}
						var z float64
						for j := range p {
							p[j] = math.Exp(p[j] - top)
							z += p[j]
						}
						for d := 0; d < tc.hd; d++ {
							var mag float64
							for j := range p {
								mag += p[j] / z * math.Abs(vcw[(e*tc.slots+j)*c+lo+d])
							}
							bound := 2 * (2*delta + float64(2*n+13)*u) * mag
							idx := r*c + lo + d
							diff := math.Abs(float64(got[idx]) - want[idx])
							if !(diff <= bound) {
								t.Fatalf("example %d query %d head %d column %d: %v, want %v (difference %.3g > bound %.3g)", e, i, h, d, got[idx], want[idx], diff, bound)
							}
							worst = math.Max(worst, diff/bound)
						}
					}
				}
			}
			t.Logf("largest difference %.3g of its bound", worst)
		})
	}
}

// TestDecodeAttentionWithoutAVX512IsTheSame checks that the Go path a CPU
// without AVX-512 takes gives the kernels' bits for a whole decode-step
// query over all heads (the kernel test covers the pieces; this covers
// the softmax between them and the dispatch).
func TestDecodeAttentionWithoutAVX512IsTheSame(t *testing.T) {
	const heads, hd, tk, open = 12, 64, 240, 200
	rng := rand.New(rand.NewSource(5))
	c := heads * hd
	q, k, v := randF32(rng, c), randF32(rng, tk*c), randF32(rng, tk*c)
	mask := make([]float32, tk)
	for j := open; j < tk; j++ {
		mask[j] = float32(math.Inf(-1))
	}
	scale := float32(1 / math.Sqrt(float64(hd)))
	got := make([]float32, c)
	decodeQuery(q, k, v, c, hd, mask, tk, scale, make([]float32, heads*tk), got)
	// The Go path, spelt out: the references and the scalar softmax.
	p := make([]float32, heads*tk)
	decodeRowScoresGo(q, k, c, open, hd, scale, p, tk)
	for h := 0; h < heads; h++ {
		s := p[h*tk : h*tk+open]
		for j := range s {
			s[j] += mask[j]
		}
		softmaxRowsExp(s, 1, open, exp32)
	}
	want := make([]float32, c)
	decodeRowWeightedSumGo(p, tk, v, c, open, hd, want)
	for d := range want {
		if math.Float32bits(got[d]) != math.Float32bits(want[d]) {
			t.Fatalf("column %d: %v, Go path %v", d, got[d], want[d])
		}
	}
}

// TestDecodeAttentionOfAFullyHiddenQueryIsNaN checks the one case where
// skipping hidden slots could differ from the general path: a query that
// sees no slot gets NaN there (softmax of only -Inf), and here too.
func TestDecodeAttentionOfAFullyHiddenQueryIsNaN(t *testing.T) {
	hd, tk := 16, 5
	rng := rand.New(rand.NewSource(1))
	mask := make([]float32, tk)
	for j := range mask {
		mask[j] = float32(math.Inf(-1))
	}
	out := make([]float32, 2*hd)
	decodeQuery(randF32(rng, 2*hd), randF32(rng, tk*2*hd), randF32(rng, tk*2*hd), 2*hd, hd, mask, tk, 0.25, make([]float32, 2*tk), out)
	for d, o := range out {
		if !math.IsNaN(float64(o)) {
			t.Fatalf("column %d: %v, want NaN", d, o)
		}
	}
}

// BenchmarkDecodeAttention times git-base decode-step attentions (1 or
// 16 rows, 12 heads of 64, 240 slots of which 200 to 230 filled) on the
// general path (sgemm per row and head over every slot) and the fused
// path, in one process, A B B A: compare cpu-ns/op. Each op is one of 6
// layers' attentions over their own caches, run in turn as in a decode
// step, so the caches are not all resident in the CPU's caches.
func BenchmarkDecodeAttention(b *testing.B) {
	const layers = 6
	for _, rows := range []int{1, 16} {
		at := make([]int, rows)
		for i := range at {
			at[i] = 200 + 2*i
		}
		tc := decodeCase{"bench", at, 1, 240, 12, 64, 197}
		rng := rand.New(rand.NewSource(1))
		var ops [layers]attnArgs
		var vals [layers][]G.Value
		for l := range ops {
			g, out, ins, _, _, _, _, _ := decodeGraph(tc, rng)
			vm := G.NewTapeMachine(g)
			if err := vm.RunAll(); err != nil {
				b.Fatal(err)
			}
			vm.Close()
			ops[l] = out.Op().(attnOp).attnArgs
			for _, n := range ins {
				vals[l] = append(vals[l], n.Value())
			}
		}
		y := make([]float32, rows*tc.heads*tc.hd)
		for _, fused := range []bool{false, true, true, false} {
			b.Run(fmt.Sprintf("rows%d/fused=%v", rows, fused), func(b *testing.B) {
				b.ReportAllocs()
				t0 := cpuSeconds()
				for i := 0; i < b.N; i++ {
					for l := range ops {
						a := ops[l]
						a.cached = fused
						attnForward(a, vals[l], y)
					}
				}
				b.ReportMetric((cpuSeconds()-t0)*1e9/float64(b.N), "cpu-ns/op")
			})
		}
	}
}

// TestDecodeAttentionIgnoresSlotsHiddenInsideTheOpenRange checks that a
// slot the mask hides (-Inf) before the last open one contributes nothing:
// replacing its keys and values with other finite values leaves every
// output bit as it was.
func TestDecodeAttentionIgnoresSlotsHiddenInsideTheOpenRange(t *testing.T) {
	const heads, hd, tk, open = 4, 24, 40, 33
	hidden := []int{0, 7, 19, 32}
	rng := rand.New(rand.NewSource(9))
	c := heads * hd
	q, k, v := randF32(rng, c), randF32(rng, tk*c), randF32(rng, tk*c)
	mask := make([]float32, tk)
	for j := open; j < tk; j++ {
		mask[j] = float32(math.Inf(-1))
	}
	for _, j := range hidden {
		mask[j] = float32(math.Inf(-1))
	}
	scale := float32(1 / math.Sqrt(float64(hd)))
	want := make([]float32, c)
	decodeQuery(q, k, v, c, hd, mask, tk, scale, make([]float32, heads*tk), want)
	for _, j := range hidden {
		for d := 0; d < c; d++ {
			k[j*c+d], v[j*c+d] = 1e4*float32(d%7-3), -1e4*float32(d%5-2)
		}
	}
	got := make([]float32, c)
	decodeQuery(q, k, v, c, hd, mask, tk, scale, make([]float32, heads*tk), got)
	for d := range want {
		if math.IsNaN(float64(want[d])) || math.Float32bits(got[d]) != math.Float32bits(want[d]) {
			t.Fatalf("column %d: %v with other hidden keys and values, %v before", d, got[d], want[d])
		}
	}
}
