package graph

import (
	"fmt"
	"math"
	"math/rand"
	"slices"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// GradCheck compares the symbolic gradient of Σ f(inputs)⊙R (R random,
// fixed) with central finite differences, in float64. build receives one
// node per input (bound to a copy of the given values) and returns f's
// output; parameters the build function uses through b.Param are checked
// too (they must be float64). It returns the largest error over all checked elements, measured
// as |analytic-numeric| / max(1, |numeric|). Integer inputs (tensor.Int)
// and inputs listed in fixed are passed through and not differentiated; at
// most maxElems elements of each differentiated input are perturbed.
func GradCheck(build func(b *Builder, in []*G.Node) *G.Node, inputs []*tensor.Dense, fixed []int, maxElems int, rng *rand.Rand) (float64, error) {
	return gradCheck(nil, build, inputs, fixed, maxElems, rng)
}

// GradCheckTrain is GradCheck on a training graph: dropout is on at the
// given rates, with a fixed noise seed, so every evaluation uses the same
// masks.
func GradCheckTrain(rates DropoutRates, build func(b *Builder, in []*G.Node) *G.Node, inputs []*tensor.Dense, fixed []int, maxElems int, rng *rand.Rand) (float64, error) {
	return gradCheck(rates, build, inputs, fixed, maxElems, rng)
}

func gradCheck(rates DropoutRates, build func(b *Builder, in []*G.Node) *G.Node, inputs []*tensor.Dense, fixed []int, maxElems int, rng *rand.Rand) (float64, error) {
	var opts []BuilderOption
	if rates != nil {
		opts = append(opts, WithDropout(rates))
	}
	b := NewBuilder(tensor.Float64, opts...)
	b.Noise.SetSeed(12345)
	var loss *G.Node
	var nodes []*G.Node
	var wrt []*G.Node
	err := Build(func() {
		for i, v := range inputs {
			v = v.Clone().(*tensor.Dense)
			n := G.NewTensor(b.G, v.Dtype(), v.Dims(), G.WithShape(v.Shape()...), G.WithValue(v), G.WithName(fmt.Sprintf("in%d", i)))
			nodes = append(nodes, n)
			if v.Dtype() == tensor.Float64 && !slices.Contains(fixed, i) {
				wrt = append(wrt, n)
			}
		}
		y := build(b, nodes)
		learn, _ := b.Learnables()
		wrt = append(wrt, learn...)
		var e error
		if y.IsScalar() {
			loss = y
		} else {
			r := tensor.New(tensor.WithShape(y.Shape()...), tensor.Of(tensor.Float64))
			rv := r.Data().([]float64)
			for i := range rv {
				rv[i] = rng.NormFloat64()
			}
			rn := G.NewTensor(b.G, tensor.Float64, y.Dims(), G.WithShape(y.Shape()...), G.WithValue(r), G.WithName("R"))
			if loss, e = G.Sum(G.Must(G.HadamardProd(y, rn))); e != nil {
				panic(buildError{e})
			}
		}
		if _, e = G.Grad(loss, wrt...); e != nil {
			panic(buildError{e})
		}
	})
	if err != nil {
		return 0, err
	}
	m := G.NewTapeMachine(b.G, G.BindDualValues(wrt...))
	defer m.Close()
	eval := func() (float64, error) {
		m.Reset()
		if err := m.RunAll(); err != nil {
			return 0, err
		}
		return scalarOf(loss.Value()), nil
	}
	if _, err := eval(); err != nil {
		return 0, err
	}
	analytic := make([][]float64, len(wrt))
	for i, n := range wrt {
		g, err := n.Grad()
		if err != nil {
			return 0, fmt.Errorf("input %s: %w", n.Name(), err)
		}
		analytic[i] = append([]float64(nil), g.Data().([]float64)...)
	}
	const h = 1e-6
	worst := 0.0
	for i, n := range wrt {
		x := n.Value().Data().([]float64)
		idx := rng.Perm(len(x))
		if len(idx) > maxElems {
			idx = idx[:maxElems]
		}
		for _, j := range idx {
			orig := x[j]
			x[j] = orig + h
			fp, err := eval()
			if err != nil {
				return 0, err
			}
			x[j] = orig - h
			fm, err := eval()
			if err != nil {
				return 0, err
			}
			x[j] = orig
			num := (fp - fm) / (2 * h)
			e := math.Abs(analytic[i][j]-num) / math.Max(1, math.Abs(num))
			if e > worst || math.IsNaN(e) {
				worst = e
			}
		}
	}
	return worst, nil
}
