package graph

import (
	"math/rand"
	"testing"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// TestMLPBackwardDoesNotReadForwardActivation checks that in a training
// graph of fc2(act(fc1(x))) only the forward fc2 reads the activation: the
// weight gradient reads a recomputed copy, so ShareBuffers can reuse the
// forward activation's buffer during the backward pass.
func TestMLPBackwardDoesNotReadForwardActivation(t *testing.T) {
	rng := rand.New(rand.NewSource(5))
	b := NewBuilder(tensor.Float64)
	var act *G.Node
	err := Build(func() {
		in := func(name string, d *tensor.Dense) *G.Node {
			return G.NewTensor(b.G, tensor.Float64, d.Dims(), G.WithShape(d.Shape()...), G.WithValue(d), G.WithName(name))
		}
		x, w1, w2 := in("x", randDense(rng, 4, 3)), in("w1", randDense(rng, 6, 3)), in("w2", randDense(rng, 2, 6))
		act = Act(Linear(x, w1, nil), QuickGELU)
		y := Linear(act, w2, nil)
		loss := G.Must(G.Sum(y))
		if _, err := G.Grad(loss, x, w1, w2); err != nil {
			t.Fatal(err)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	var readers, recomputed int
	for _, n := range b.G.AllNodes() {
		if _, ok := n.Op().(actAgainOp); ok {
			recomputed++
		}
		for _, c := range children(b.G, n) {
			if c == act {
				readers++
				if _, ok := n.Op().(linearOp); !ok {
					t.Errorf("the forward activation is read by %v", n.Op())
				}
			}
		}
	}
	if readers != 1 || recomputed != 1 {
		t.Errorf("the forward activation has %d readers and %d recomputations, want 1 and 1", readers, recomputed)
	}
}
