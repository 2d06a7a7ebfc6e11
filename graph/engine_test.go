package graph

import (
	"math"
	"math/rand"
	"testing"

	"gorgonia.org/tensor"
)

// TestEngineAddMatchesStandardEngine checks Engine.Add against
// tensor.StdEng.Add, bit for bit, in each form the tape machine calls it:
// into a reused tensor, over its first operand (unsafe), into a new tensor,
// and for operands it leaves to the standard engine (float64).
func TestEngineAddMatchesStandardEngine(t *testing.T) {
	rng := rand.New(rand.NewSource(17))
	mk := func(n int) *tensor.Dense {
		d := make([]float32, n)
		for i := range d {
			d[i] = float32(rng.NormFloat64())
		}
		return tensor.New(tensor.WithShape(n/3, 3), tensor.WithBacking(d))
	}
	for _, tc := range []struct {
		name string
		n    int
		opt  func(a *tensor.Dense) []tensor.FuncOpt
	}{
		{"into a reused tensor", 3 * 40000, func(a *tensor.Dense) []tensor.FuncOpt {
			return []tensor.FuncOpt{tensor.WithReuse(tensor.New(tensor.Of(tensor.Float32), tensor.WithShape(a.Shape()...)))}
		}},
		{"over the first operand", 3 * 40001, func(*tensor.Dense) []tensor.FuncOpt { return []tensor.FuncOpt{tensor.UseUnsafe()} }},
		{"into a new tensor", 3 * 7, func(*tensor.Dense) []tensor.FuncOpt { return nil }},
		{"short, over the first operand", 3 * 5, func(*tensor.Dense) []tensor.FuncOpt { return []tensor.FuncOpt{tensor.UseUnsafe()} }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, b := mk(tc.n), mk(tc.n)
			want, err := tensor.StdEng{}.Add(a.Clone().(*tensor.Dense), b)
			if err != nil {
				t.Fatal(err)
			}
			got, err := Engine{}.Add(a, b, tc.opt(a)...)
			if err != nil {
				t.Fatal(err)
			}
			w, g := want.Data().([]float32), got.Data().([]float32)
			for i := range w {
				if math.Float32bits(w[i]) != math.Float32bits(g[i]) {
					t.Fatalf("element %d: got %v, want %v", i, g[i], w[i])
				}
			}
		})
	}
	a := tensor.New(tensor.WithShape(2), tensor.WithBacking([]float64{1, 2}))
	b := tensor.New(tensor.WithShape(2), tensor.WithBacking([]float64{0.5, 0.25}))
	got, err := Engine{}.Add(a, b)
	if err != nil {
		t.Fatal(err)
	}
	if g := got.Data().([]float64); g[0] != 1.5 || g[1] != 2.25 {
		t.Errorf("float64 sum = %v, want [1.5 2.25]", g)
	}
}
