package layers

import (
	"math/rand"
	"testing"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/gitcap/gitcap/graph"
)

func randomize(ps *graph.Params, rng *rand.Rand) {
	for _, p := range ps.All() {
		d := p.Value.Data().([]float64)
		for i := range d {
			d[i] = 0.5 * rng.NormFloat64()
		}
	}
}

func randT(rng *rand.Rand, shape ...int) *tensor.Dense {
	t := tensor.New(tensor.Of(tensor.Float64), tensor.WithShape(shape...))
	for i, d := 0, t.Data().([]float64); i < len(d); i++ {
		d[i] = rng.NormFloat64()
	}
	return t
}

// TestLayersGradientsMatchFiniteDifferences checks each layer's gradient,
// for its input and every parameter it owns, against central differences.
func TestLayersGradientsMatchFiniteDifferences(t *testing.T) {
	const dim, heads, inter = 6, 2, 5
	causal := tensor.New(tensor.Of(tensor.Float64), tensor.WithShape(2, 3, 3))
	for i, d := 0, causal.Data().([]float64); i < len(d); i++ {
		if i%3 > (i/3)%3 {
			d[i] = -1e9
		}
	}
	cases := []struct {
		name  string
		make  func(ps *graph.Params) func(b *graph.Builder, in []*G.Node) *G.Node
		input []*tensor.Dense
		fixed []int
	}{
		{"Linear", func(ps *graph.Params) func(*graph.Builder, []*G.Node) *G.Node {
			l := NewLinear(ps, "lin", dim, 4, true)
			return func(b *graph.Builder, in []*G.Node) *G.Node { return l.Forward(b, in[0]) }
		}, []*tensor.Dense{randT(rand.New(rand.NewSource(1)), 3, dim)}, nil},
		{"LayerNorm", func(ps *graph.Params) func(*graph.Builder, []*G.Node) *G.Node {
			l := NewLayerNorm(ps, "ln", dim, 1e-12)
			return func(b *graph.Builder, in []*G.Node) *G.Node { return l.Forward(b, in[0]) }
		}, []*tensor.Dense{randT(rand.New(rand.NewSource(2)), 3, dim)}, nil},
		{"Embedding", func(ps *graph.Params) func(*graph.Builder, []*G.Node) *G.Node {
			e := NewEmbedding(ps, "emb.weight", 7, dim)
			return func(b *graph.Builder, in []*G.Node) *G.Node { return e.Forward(b, in[0]) }
		}, []*tensor.Dense{tensor.New(tensor.WithShape(4), tensor.WithBacking([]int{6, 0, 6, 3}))}, nil},
		{"PatchEmbedding", func(ps *graph.Params) func(*graph.Builder, []*G.Node) *G.Node {
			p := NewPatchEmbedding(ps, "patch.weight", 3, 2, dim)
			return func(b *graph.Builder, in []*G.Node) *G.Node { return p.Forward(b, in[0]) }
		}, []*tensor.Dense{randT(rand.New(rand.NewSource(3)), 4, 12)}, nil},
		{"SelfAttentionMasked", func(ps *graph.Params) func(*graph.Builder, []*G.Node) *G.Node {
			a := NewSelfAttention(ps, AttentionNames{"q", "k", "v", "o"}, dim, heads, "attn")
			return func(b *graph.Builder, in []*G.Node) *G.Node {
				out, _, _ := a.Forward(b, in[0], in[1], nil, Seq{Batch: 2, Len: 3})
				return out
			}
		}, []*tensor.Dense{randT(rand.New(rand.NewSource(4)), 6, dim), causal}, []int{1}},
		{"CLIPBlock", func(ps *graph.Params) func(*graph.Builder, []*G.Node) *G.Node {
			l := NewCLIPBlock(ps, "clip", dim, inter, heads, graph.QuickGELU, 1e-5, "attn")
			return func(b *graph.Builder, in []*G.Node) *G.Node { return l.Forward(b, in[0], Seq{Batch: 2, Len: 3}) }
		}, []*tensor.Dense{randT(rand.New(rand.NewSource(5)), 6, dim)}, nil},
		{"BERTBlock", func(ps *graph.Params) func(*graph.Builder, []*G.Node) *G.Node {
			l := NewBERTBlock(ps, "bert", dim, inter, heads, graph.GELU, 1e-12, "hidden", "attn")
			return func(b *graph.Builder, in []*G.Node) *G.Node {
				out, _, _ := l.Forward(b, in[0], in[1], nil, Seq{Batch: 2, Len: 3})
				return out
			}
		}, []*tensor.Dense{randT(rand.New(rand.NewSource(6)), 6, dim), causal}, []int{1}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ps := graph.NewParams(tensor.Float64)
			build := c.make(ps)
			randomize(ps, rand.New(rand.NewSource(7)))
			worst, err := graph.GradCheck(build, c.input, c.fixed, 60, rand.New(rand.NewSource(8)))
			if err != nil {
				t.Fatal(err)
			}
			if worst > 1e-6 {
				t.Errorf("largest gradient error %.3g > 1e-6", worst)
			}
		})
	}
}

// TestPatchifyMatchesConvolutionLayout checks patch extraction order
// against a direct stride-patch convolution.
func TestPatchifyMatchesConvolutionLayout(t *testing.T) {
	const n, c, h, w, p = 2, 3, 4, 6, 2
	rng := rand.New(rand.NewSource(1))
	src := make([]float64, n*c*h*w)
	for i := range src {
		src[i] = rng.NormFloat64()
	}
	kern := make([]float64, c*p*p) // one output channel
	for i := range kern {
		kern[i] = rng.NormFloat64()
	}
	dst := make([]float64, n*(h/p)*(w/p)*c*p*p)
	if err := Patchify(dst, src, n, c, h, w, p); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < n; i++ {
		for py := 0; py < h/p; py++ {
			for px := 0; px < w/p; px++ {
				var conv, mat float64
				for ch := 0; ch < c; ch++ {
					for ky := 0; ky < p; ky++ {
						for kx := 0; kx < p; kx++ {
							conv += kern[(ch*p+ky)*p+kx] * src[((i*c+ch)*h+py*p+ky)*w+px*p+kx]
						}
					}
				}
				row := dst[((i*(h/p)+py)*(w/p)+px)*c*p*p:]
				for j, k := range kern {
					mat += k * row[j]
				}
				if d := conv - mat; d > 1e-12 || d < -1e-12 {
					t.Fatalf("patch (%d,%d,%d): conv %g, patchify·kernel %g", i, py, px, conv, mat)
				}
			}
		}
	}
	if err := Patchify(dst, src, n, c, h, w, 3); err == nil {
		t.Error("want an error for an image that is not a multiple of the patch size")
	}
}

// TestBERTBlockGradientWithDropout checks the training-mode gradient of a
// post-LN block with hidden and attention dropout on (fixed masks): the
// residual branches share gradients with the dropped ones.
func TestBERTBlockGradientWithDropout(t *testing.T) {
	const dim, heads, inter = 6, 2, 5
	ps := graph.NewParams(tensor.Float64)
	l := NewBERTBlock(ps, "bert", dim, inter, heads, graph.GELU, 1e-12, "hidden", "attn")
	randomize(ps, rand.New(rand.NewSource(7)))
	build := func(b *graph.Builder, in []*G.Node) *G.Node {
		out, _, _ := l.Forward(b, in[0], nil, nil, Seq{Batch: 2, Len: 3})
		return out
	}
	worst, err := graph.GradCheckTrain(graph.DropoutRates{"hidden": 0.3, "attn": 0.3}, build, []*tensor.Dense{randT(rand.New(rand.NewSource(9)), 6, dim)}, nil, 60, rand.New(rand.NewSource(8)))
	if err != nil {
		t.Fatal(err)
	}
	if worst > 1e-6 {
		t.Errorf("largest gradient error %.3g > 1e-6", worst)
	}
}
