package graph

import (
	"math/rand"
	"slices"
	"testing"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// buildBlocks is a small training graph with every kind of lifetime:
// residual sums (gradients gorgonia adds up), attention (a stacked gradient
// read through views), an in-place activation gradient and dropout.
func buildBlocks(t *testing.T, share bool) (grads [][]float64, loss float64, st ShareStats) {
	t.Helper()
	rng := rand.New(rand.NewSource(3))
	b := NewBuilder(tensor.Float64, WithDropout(DropoutRates{"d": 0.2}))
	const n, c, inter = 6, 8, 12
	ps := NewParams(tensor.Float64)
	x0 := b.Const("ids", []int{0, 1, 2, 3, 4, 5})
	emb := ps.New("emb", 10, c)
	var params []*Param
	params = append(params, emb)
	var nodes G.Nodes
	err := Build(func() {
		x := Embed(b.Param(emb), x0)
		for l := 0; l < 2; l++ {
			mk := func(name string, shape ...int) *G.Node {
				p := ps.New(name+string(rune('0'+l)), shape...)
				params = append(params, p)
				return b.Param(p)
			}
			q, k, v := Linear(x, mk("q", c, c), nil), Linear(x, mk("k", c, c), nil), Linear(x, mk("v", c, c), nil)
			a := Attention(q, k, v, nil, AttentionShape{B: 2, Tq: 3, Tk: 3, Heads: 2, HeadDim: 4}, 0.1, b.Noise)
			x = LayerNorm(Add(x, b.Dropout(a, "d")), mk("g", c), mk("bb", c), 1e-5)
			h := Linear(Act(Linear(x, mk("w1", inter, c), mk("b1", inter)), GELU), mk("w2", c, inter), mk("b2", c))
			x = Add(x, h)
		}
		l := CrossEntropy(Linear(x, mk0(ps, &params, b, "out", 10, c), nil), b.Const("tg", []int{1, 2, 3, 4, 5, 6}), 0)
		learn, _ := b.Learnables()
		gs, err := G.Grad(l, learn...)
		if err != nil {
			Fail(err)
		}
		nodes = append(G.Nodes{l}, gs...)
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range ps.All() {
		d := p.Value.Data().([]float64)
		for i := range d {
			d[i] = rng.NormFloat64() * 0.5
		}
	}
	if share {
		if st, err = ShareBuffers(b.G, nodes); err != nil {
			t.Fatal(err)
		}
	}
	vm := G.NewTapeMachine(b.G)
	defer vm.Close()
	b.Noise.SetSeed(7)
	for run := 0; run < 2; run++ { // the second run reuses the buffers
		vm.Reset()
		if err := vm.RunAll(); err != nil {
			t.Fatal(err)
		}
	}
	for _, g := range nodes[1:] {
		grads = append(grads, slices.Clone(g.Value().Data().([]float64)))
	}
	return grads, scalarOf(nodes[0].Value()), st
}

func mk0(ps *Params, params *[]*Param, b *Builder, name string, shape ...int) *G.Node {
	p := ps.New(name, shape...)
	*params = append(*params, p)
	return b.Param(p)
}

func TestShareBuffersKeepsGradientsAndSavesMemory(t *testing.T) {
	want, wantLoss, _ := buildBlocks(t, false)
	got, gotLoss, st := buildBlocks(t, true)
	if gotLoss != wantLoss {
		t.Errorf("loss %v with shared buffers, %v without", gotLoss, wantLoss)
	}
	for i := range want {
		if !slices.Equal(got[i], want[i]) {
			t.Errorf("gradient %d differs with shared buffers", i)
		}
	}
	t.Logf("%v (%d -> %d bytes)", st, st.Before, st.After)
	if st.After >= st.Before || st.Outputs == 0 {
		t.Errorf("no memory saved: %v", st)
	}
}
