package graph

import (
	"math/rand"
	"testing"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// TestCheckpointGradientsMatchFiniteDifferences runs two blocks (attention
// with a mask, LayerNorm, MLP, dropout in both) as checkpointed segments
// with different parameters and checks the gradients of the input and of
// every parameter, with dropout on, against central differences.
func TestCheckpointGradientsMatchFiniteDifferences(t *testing.T) {
	const c, inter = 6, 8
	shape := AttentionShape{B: 2, Tq: 3, Tk: 3, Heads: 2, HeadDim: 3}
	ps := NewParams(tensor.Float64)
	tpl := []*Param{ps.New("q", c, c), ps.New("k", c, c), ps.New("v", c, c), ps.New("g", c), ps.New("bb", c),
		ps.New("w1", inter, c), ps.New("w2", c, inter), ps.New("b2", c)}
	block := func(b *Builder, x *G.Node, extra G.Nodes, p G.Nodes) *G.Node {
		a := Attention(Linear(x, p[0], nil), Linear(x, p[1], nil), Linear(x, p[2], nil), extra[0], shape, b.DropoutRate("attn"), b.Noise)
		h := Add(x, a)
		m := Linear(b.Dropout(Act(Linear(LayerNorm(h, p[3], p[4], 1e-5), p[5], nil), GELU), "hidden"), p[6], p[7])
		return Add(h, m)
	}
	rng := rand.New(rand.NewSource(5))
	inputs := []*tensor.Dense{randDense(rng, 6, c), maskDense(2, 3, 3)}
	for range 2 {
		for _, p := range tpl {
			inputs = append(inputs, randDense(rng, p.Shape()...))
		}
	}
	rates := DropoutRates{"attn": 0.3, "hidden": 0.25}
	build := func(b *Builder, in []*G.Node) *G.Node {
		seg, err := NewSegment(b, "block", tpl, []int{6, c}, [][]int{{2, 3, 3}}, func(sb *Builder, x *G.Node, extra G.Nodes) *G.Node {
			nodes := make(G.Nodes, len(tpl))
			for i, p := range tpl {
				nodes[i] = sb.Param(p)
			}
			return block(sb, x, extra, nodes)
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(seg.Close)
		x := in[0]
		for l := 0; l < 2; l++ {
			x = Checkpoint(b, seg, x, G.Nodes{in[1]}, in[2+l*len(tpl):2+(l+1)*len(tpl)])
		}
		return x
	}
	worst, err := GradCheckTrain(rates, build, inputs, []int{1}, 40, rand.New(rand.NewSource(2)))
	if err != nil {
		t.Fatal(err)
	}
	if worst > 1e-6 {
		t.Errorf("largest gradient error %.3g > 1e-6", worst)
	}
}
