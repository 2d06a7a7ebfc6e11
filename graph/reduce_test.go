package graph

import (
	"math"
	"math/rand"
	"testing"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// colSumScalar is the reference: each column summed from 0 in row order.
func colSumScalar(x []float32, n, c int, out []float32) {
	clear(out)
	for i := 0; i < n; i++ {
		for j, v := range x[i*c : (i+1)*c] {
			out[j] += v
		}
	}
}

func TestColSumKernelIsBitIdenticalToScalarSums(t *testing.T) {
	rng := rand.New(rand.NewSource(7))
	cases := []struct {
		name string
		n, c int
	}{
		{"one row", 1, 768},
		{"narrower than a vector", 5, 9},
		{"one vector", 3, 16},
		{"vector and tail", 17, 37},
		{"wide block and narrow blocks", 33, 128 + 48 + 5},
		{"bias of a git-base MLP", 1576, 3072},
		{"odd width split between workers", 40, 777},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			x := make([]float32, tc.n*tc.c)
			for i := range x {
				x[i] = float32(rng.NormFloat64()) * float32(math.Pow(10, float64(rng.Intn(7)-3)))
			}
			want := make([]float32, tc.c)
			colSumScalar(x, tc.n, tc.c, want)
			got := make([]float32, tc.c)
			for i := range got {
				got[i] = float32(math.NaN()) // overwritten, never read
			}
			colSum(x, tc.n, tc.c, got)
			for j := range want {
				if math.Float32bits(got[j]) != math.Float32bits(want[j]) {
					t.Fatalf("column %d: got %v, want %v (bits differ)", j, got[j], want[j])
				}
			}
			if o := make([]float32, tc.c); colSumBlock32(x, tc.n, tc.c, o) > 0 {
				for j := 0; j < tc.c&^15; j++ {
					if math.Float32bits(o[j]) != math.Float32bits(want[j]) {
						t.Fatalf("kernel column %d: got %v, want %v", j, o[j], want[j])
					}
				}
			}
		})
	}
}

// lnCase is x (n×c) with its row statistics, a gain and an output gradient.
func lnCase(rng *rand.Rand, n, c int) (x, g, dy []float32, st *lnStats) {
	x, g, dy = make([]float32, n*c), make([]float32, c), make([]float32, n*c)
	for i := range x {
		x[i] = float32(rng.NormFloat64()*3 + 0.5)
		dy[i] = float32(rng.NormFloat64())
	}
	for j := range g {
		g[j] = float32(1 + 0.1*rng.NormFloat64())
	}
	st = &lnStats{}
	st.resize(n)
	for i := 0; i < n; i++ {
		st.mu[i], st.rstd[i] = rowStats(x[i*c:(i+1)*c], 1e-5)
	}
	return x, g, dy, st
}

func TestLayerNormGradKernelsAreBitIdenticalToGoReference(t *testing.T) {
	if !hasAVX512 {
		t.Skip("no AVX-512: the LayerNorm gradient kernels are their Go references")
	}
	rng := rand.New(rand.NewSource(11))
	for _, tc := range []struct {
		name string
		n, c int
	}{
		{"one row of 8", 1, 8},
		{"tail columns", 9, 13},
		{"wide and narrow column blocks", 21, 64 + 24 + 3},
		{"git-base width", 40, 768},
		{"rows split between workers", 70, 96},
	} {
		t.Run(tc.name, func(t *testing.T) {
			x, g, dy, st := lnCase(rng, tc.n, tc.c)
			// dg: the scalar float64 column sums in row order.
			wantG := make([]float32, tc.c)
			for j := 0; j < tc.c; j++ {
				var a float64
				for i := 0; i < tc.n; i++ {
					a += float64(float64(dy[i*tc.c+j]) * (float64(x[i*tc.c+j]) - st.mu[i]) * st.rstd[i])
				}
				wantG[j] = float32(a)
			}
			gotG := make([]float32, tc.c)
			layerNormGradG[float32](layerNormGradGOp{stats: st}, []G.Value{tensor.New(tensor.WithBacking(x)), tensor.New(tensor.WithBacking(dy))}, gotG, tc.n, tc.c)
			// dx: the Go row reference.
			wantX := make([]float32, tc.n*tc.c)
			for i := 0; i < tc.n; i++ {
				r := x[i*tc.c : (i+1)*tc.c]
				layerNormGradXRow(r, dy[i*tc.c:(i+1)*tc.c], g, st.mu[i], st.rstd[i], wantX[i*tc.c:(i+1)*tc.c])
			}
			gotX := make([]float32, tc.n*tc.c)
			layerNormGradX[float32](layerNormGradXOp{stats: st}, []G.Value{tensor.New(tensor.WithBacking(x)), tensor.New(tensor.WithBacking(g)), tensor.New(tensor.WithBacking(dy))}, gotX, tc.n, tc.c)
			for j := range wantG {
				if math.Float32bits(gotG[j]) != math.Float32bits(wantG[j]) {
					t.Fatalf("dg[%d] = %v, want %v", j, gotG[j], wantG[j])
				}
			}
			for i := range wantX {
				if math.Float32bits(gotX[i]) != math.Float32bits(wantX[i]) {
					t.Fatalf("dx[%d] = %v, want %v", i, gotX[i], wantX[i])
				}
			}
		})
	}
}

func TestSoftmaxGradKernelIsBitIdenticalToGoReference(t *testing.T) {
	rng := rand.New(rand.NewSource(13))
	for _, tc := range []struct {
		name       string
		rows, cols int
	}{
		{"one vector", 2, 8},
		{"vector and tail", 3, 13},
		{"vision tokens", 197, 197},
		{"decoder tokens", 20, 217},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, d := make([]float32, tc.rows*tc.cols), make([]float32, tc.rows*tc.cols)
			for i := range p {
				p[i] = float32(rng.Float64())
				d[i] = float32(rng.NormFloat64())
			}
			softmaxRows(p, tc.rows, tc.cols)
			want := append([]float32(nil), d...)
			for r := 0; r < tc.rows; r++ {
				softmaxGradRow(p[r*tc.cols:(r+1)*tc.cols], want[r*tc.cols:(r+1)*tc.cols])
			}
			if !softmaxGradRows32(p, d, tc.rows, tc.cols) {
				t.Skip("no AVX-512 softmax-gradient kernel on this CPU: nothing to compare")
			}
			for i := range want {
				if math.Float32bits(d[i]) != math.Float32bits(want[i]) {
					t.Fatalf("element %d: got %v, want %v", i, d[i], want[i])
				}
			}
		})
	}
}
