package graph

import (
	"math"
	"math/rand"
	"testing"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

func floatDense(v ...float64) *tensor.Dense {
	return tensor.New(tensor.WithShape(len(v)), tensor.WithBacking(v))
}

// TestWeightedCrossEntropyGradientMatchesFiniteDifferences checks the
// weighted loss's backward pass (weights fixed, some negative, one row
// ignored) against central differences.
func TestWeightedCrossEntropyGradientMatchesFiniteDifferences(t *testing.T) {
	rng := rand.New(rand.NewSource(4))
	in := []*tensor.Dense{randDense(rng, 5, 7), intDense(3, IgnoreIndex, 6, 0, 2), floatDense(0.7, 2, -1.3, 0, 0.25)}
	worst, err := GradCheck(func(b *Builder, in []*G.Node) *G.Node {
		return WeightedCrossEntropy(in[0], in[1], in[2])
	}, in, []int{2}, 200, rand.New(rand.NewSource(2)))
	if err != nil {
		t.Fatal(err)
	}
	if worst > 1e-6 {
		t.Errorf("largest gradient error %.3g > 1e-6", worst)
	}
}

// TestWeightedCrossEntropyWithUnitWeightsIsCrossEntropy: weights of 1 give
// CrossEntropy's loss and gradient, bit for bit; a common weight a scales
// both by a.
func TestWeightedCrossEntropyWithUnitWeightsIsCrossEntropy(t *testing.T) {
	rng := rand.New(rand.NewSource(5))
	logits := randDense(rng, 4, 6)
	targets := intDense(1, 5, IgnoreIndex, 0)
	run := func(w []float64) (float64, []float64) {
		b := NewBuilder(tensor.Float64)
		var loss, x *G.Node
		if err := Build(func() {
			x = G.NewTensor(b.G, tensor.Float64, 2, G.WithShape(4, 6), G.WithValue(logits.Clone()), G.WithName("x"))
			tg := G.NewTensor(b.G, tensor.Int, 1, G.WithShape(4), G.WithValue(targets.Clone()), G.WithName("t"))
			if w == nil {
				loss = CrossEntropy(x, tg, 0)
			} else {
				wn := G.NewTensor(b.G, tensor.Float64, 1, G.WithShape(4), G.WithValue(floatDense(w...)), G.WithName("w"))
				loss = WeightedCrossEntropy(x, tg, wn)
			}
			if _, err := G.Grad(loss, x); err != nil {
				Fail(err)
			}
		}); err != nil {
			t.Fatal(err)
		}
		vm := G.NewTapeMachine(b.G)
		defer vm.Close()
		if err := vm.RunAll(); err != nil {
			t.Fatal(err)
		}
		g, err := x.Grad()
		if err != nil {
			t.Fatal(err)
		}
		return loss.Value().Data().(float64), append([]float64(nil), g.Data().([]float64)...)
	}
	ceL, ceG := run(nil)
	for _, a := range []float64{1, -0.5, 3} {
		l, g := run([]float64{a, a, a, a})
		if math.Abs(l-a*ceL) > 1e-12*math.Abs(ceL) {
			t.Errorf("weight %g: loss %v, want %v", a, l, a*ceL)
		}
		for i := range g {
			if math.Abs(g[i]-a*ceG[i]) > 1e-12 {
				t.Fatalf("weight %g: gradient[%d] %v, want %v", a, i, g[i], a*ceG[i])
			}
		}
	}
}
