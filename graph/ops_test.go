package graph

import (
	"math/rand"
	"testing"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

func randDense(rng *rand.Rand, shape ...int) *tensor.Dense {
	t := tensor.New(tensor.Of(tensor.Float64), tensor.WithShape(shape...))
	for i, d := 0, t.Data().([]float64); i < len(d); i++ {
		d[i] = rng.NormFloat64()
	}
	return t
}

func intDense(v ...int) *tensor.Dense {
	return tensor.New(tensor.WithShape(len(v)), tensor.WithBacking(v))
}

// maskDense builds an additive (B,Tq,Tk) mask with a causal pattern and
// -1e9 for blocked positions.
func maskDense(b, tq, tk int) *tensor.Dense {
	m := tensor.New(tensor.Of(tensor.Float64), tensor.WithShape(b, tq, tk))
	d := m.Data().([]float64)
	for bi := 0; bi < b; bi++ {
		for i := 0; i < tq; i++ {
			for j := 0; j < tk; j++ {
				if j > i+bi { // a different pattern per example
					d[(bi*tq+i)*tk+j] = -1e9
				}
			}
		}
	}
	return m
}

// TestOpsGradientsMatchFiniteDifferences checks every custom op's backward
// pass against central differences in float64.
func TestOpsGradientsMatchFiniteDifferences(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	attn := AttentionShape{B: 2, Tq: 3, Tk: 3, Heads: 2, HeadDim: 3}
	cases := []struct {
		name   string
		inputs []*tensor.Dense
		build  func(b *Builder, in []*G.Node) *G.Node
	}{
		{"Linear", []*tensor.Dense{randDense(rng, 4, 3), randDense(rng, 5, 3), randDense(rng, 5)},
			func(b *Builder, in []*G.Node) *G.Node { return Linear(in[0], in[1], in[2]) }},
		{"LinearNoBias", []*tensor.Dense{randDense(rng, 4, 3), randDense(rng, 5, 3)},
			func(b *Builder, in []*G.Node) *G.Node { return Linear(in[0], in[1], nil) }},
		{"MatMulTransposes", []*tensor.Dense{randDense(rng, 3, 4), randDense(rng, 5, 3)},
			func(b *Builder, in []*G.Node) *G.Node {
				return MatMul(MatMul(in[0], in[1], true, true), in[1], false, false) // (4,5)·(5,3)
			}},
		{"LayerNorm", []*tensor.Dense{randDense(rng, 4, 6), randDense(rng, 6), randDense(rng, 6)},
			func(b *Builder, in []*G.Node) *G.Node { return LayerNorm(in[0], in[1], in[2], 1e-5) }},
		{"GELU", []*tensor.Dense{randDense(rng, 3, 5)},
			func(b *Builder, in []*G.Node) *G.Node { return Act(in[0], GELU) }},
		{"QuickGELU", []*tensor.Dense{randDense(rng, 3, 5)},
			func(b *Builder, in []*G.Node) *G.Node { return Act(in[0], QuickGELU) }},
		{"LinearOfActivation", []*tensor.Dense{randDense(rng, 4, 3), randDense(rng, 6, 3), randDense(rng, 6), randDense(rng, 2, 6)},
			func(b *Builder, in []*G.Node) *G.Node { // an MLP: its weight gradient recomputes the activation
				return Linear(Act(Linear(in[0], in[1], in[2]), GELU), in[3], nil)
			}},
		{"GELUTanh", []*tensor.Dense{randDense(rng, 3, 5)},
			func(b *Builder, in []*G.Node) *G.Node { return Act(in[0], GELUTanh) }},
		{"Attention", []*tensor.Dense{randDense(rng, 6, 6), randDense(rng, 6, 6), randDense(rng, 6, 6), maskDense(2, 3, 3)},
			func(b *Builder, in []*G.Node) *G.Node {
				return Attention(in[0], in[1], in[2], in[3], attn, 0, nil)
			}},
		{"AttentionPrefixCausalMask", []*tensor.Dense{randDense(rng, 6, 6), randDense(rng, 6, 6), randDense(rng, 6, 6), intDense(0, 1, 2, 0, 1, 2), intDense(1, 1, 1, 0)},
			func(b *Builder, in []*G.Node) *G.Node {
				mask := PrefixCausalMask(tensor.Float64, in[3], in[4], MaskShape{B: 2, Tq: 3, Tk: 3, Prefix: 1})
				return Attention(in[0], in[1], in[2], mask, attn, 0, nil)
			}},
		{"AttentionNoMask", []*tensor.Dense{randDense(rng, 6, 6), randDense(rng, 6, 6), randDense(rng, 6, 6)},
			func(b *Builder, in []*G.Node) *G.Node {
				return Attention(in[0], in[1], in[2], nil, attn, 0, nil)
			}},
		{"AttentionDropout", []*tensor.Dense{randDense(rng, 6, 6), randDense(rng, 6, 6), randDense(rng, 6, 6)},
			func(b *Builder, in []*G.Node) *G.Node {
				b.Noise.SetSeed(7)
				return Attention(in[0], in[1], in[2], nil, attn, 0.3, b.Noise)
			}},
		{"Dropout", []*tensor.Dense{randDense(rng, 4, 5)},
			func(b *Builder, in []*G.Node) *G.Node { b.Noise.SetSeed(3); return Dropout(in[0], 0.4, b.Noise) }},
		{"Embed", []*tensor.Dense{randDense(rng, 5, 3), intDense(4, 0, 4, 2)},
			func(b *Builder, in []*G.Node) *G.Node { return Embed(in[0], in[1]) }},
		{"ConcatSeq", []*tensor.Dense{randDense(rng, 2, 3), randDense(rng, 6, 3)},
			func(b *Builder, in []*G.Node) *G.Node { return ConcatSeq(2, in[0], in[1]) }},
		{"Rows", []*tensor.Dense{randDense(rng, 5, 3)},
			func(b *Builder, in []*G.Node) *G.Node { return Rows(in[0], []int{4, 1, 1}) }},
		{"AddRow", []*tensor.Dense{randDense(rng, 4, 3), randDense(rng, 3)},
			func(b *Builder, in []*G.Node) *G.Node { return AddRow(in[0], in[1]) }},
		{"CrossEntropy", []*tensor.Dense{randDense(rng, 4, 7), intDense(3, IgnoreIndex, 6, 0)},
			func(b *Builder, in []*G.Node) *G.Node { return CrossEntropy(in[0], in[1], 0) }},
		{"CrossEntropySmoothed", []*tensor.Dense{randDense(rng, 4, 7), intDense(3, IgnoreIndex, 6, 0)},
			func(b *Builder, in []*G.Node) *G.Node { return CrossEntropy(in[0], in[1], 0.1) }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			worst, err := GradCheck(c.build, c.inputs, []int{3}, 200, rand.New(rand.NewSource(2)))
			if err != nil {
				t.Fatal(err)
			}
			if worst > 1e-6 {
				t.Errorf("largest gradient error %.3g > 1e-6", worst)
			}
		})
	}
}

func TestAddGradient(t *testing.T) {
	rng := rand.New(rand.NewSource(3))
	worst, err := GradCheck(func(b *Builder, in []*G.Node) *G.Node { return Add(in[0], in[1]) },
		[]*tensor.Dense{randDense(rng, 3, 4), randDense(rng, 3, 4)}, nil, 50, rng)
	if err != nil {
		t.Fatal(err)
	}
	if worst > 1e-6 {
		t.Errorf("largest gradient error %.3g > 1e-6", worst)
	}
}
