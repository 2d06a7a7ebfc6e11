package graph

import (
	"math/rand"
	"syscall"
	"testing"
	"time"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

func benchCPUTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// opCase is one op call a benchmark times.
type opCase struct {
	name string
	fn   func() (G.Value, error)
}

// benchOps runs each case as a sub-benchmark (one warm-up call first) and
// reports its CPU time per call beside the wall time.
func benchOps(b *testing.B, cases []opCase) {
	for _, cs := range cases {
		b.Run(cs.name, func(b *testing.B) {
			cs.fn()
			b.ResetTimer()
			t0 := benchCPUTime()
			for i := 0; i < b.N; i++ {
				if _, err := cs.fn(); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(benchCPUTime()-t0)/float64(b.N), "cpu-ns/op")
		})
	}
}

func rand32(rng *rand.Rand, shape ...int) *tensor.Dense {
	t := tensor.New(tensor.Of(tensor.Float32), tensor.WithShape(shape...))
	for i, d := 0, t.Float32s(); i < len(d); i++ {
		d[i] = float32(rng.NormFloat64())
	}
	return t
}

// BenchmarkVisionOps times the non-GEMM forward ops of a git-base vision
// layer at batch 1 (197 tokens), wall and CPU time per op.
func BenchmarkVisionOps(b *testing.B) {
	rng := rand.New(rand.NewSource(1))
	const n, c, inter = 197, 768, 3072
	x, x2 := rand32(rng, n, c), rand32(rng, n, c)
	h := rand32(rng, n, inter)
	g, bb := rand32(rng, c), rand32(rng, c)
	w, wb := rand32(rng, c, c), rand32(rng, c)
	w1, w1b := rand32(rng, inter, c), rand32(rng, inter)
	w2 := rand32(rng, c, inter)
	q, k, v := rand32(rng, n, c), rand32(rng, n, c), rand32(rng, n, c)
	ln := layerNormOp{newBase("ln", nil), tensor.Float32, 1e-5, &lnStats{}}
	act := actOp{newBase("act", nil), tensor.Float32, QuickGELU}
	add := addOp{newBase("add", nil), tensor.Float32}
	lin := linearOp{newBase("lin", nil), tensor.Float32, true, nil, nil}
	lin1 := linearOp{newBase("lin1", nil), tensor.Float32, true, nil, nil}
	lin2 := linearOp{newBase("lin2", nil), tensor.Float32, true, nil, nil}
	at := attnOp{newBase("attn", nil), attnArgs{dt: tensor.Float32, s: AttentionShape{1, n, n, 12, 64}, scale: 0.125, scratch: new(attnScratch)}}
	cases := []opCase{
		{"LayerNorm", func() (G.Value, error) { return ln.Do(x, g, bb) }},
		{"QuickGELU", func() (G.Value, error) { return act.Do(h) }},
		{"Add", func() (G.Value, error) { return add.Do(x, x2) }},
		{"Linear768", func() (G.Value, error) { return lin.Do(x, w, wb) }},
		{"Linear768to3072", func() (G.Value, error) { return lin1.Do(x, w1, w1b) }},
		{"Linear3072to768", func() (G.Value, error) { return lin2.Do(h, w2, wb) }},
		{"Attention", func() (G.Value, error) { return at.Do(q, k, v) }},
	}
	benchOps(b, cases)
}
