package train

import (
	"math/rand"
	"path/filepath"
	"testing"

	"github.com/gitcap/gitcap/gitmodel"
	"github.com/gitcap/gitcap/graph"
)

// BenchmarkGitBaseTrainStep times one training step of a git-base-shaped
// model at batch 8 with 20 text tokens: forward with dropout, backward and
// AdamW, as the PyTorch baseline measures it.
func BenchmarkGitBaseTrainStep(b *testing.B) {
	c, err := gitmodel.LoadConfig(filepath.Join("..", "configs", "git-base.json"))
	if err != nil {
		b.Fatal(err)
	}
	m, err := gitmodel.New(c)
	if err != nil {
		b.Fatal(err)
	}
	Init(m, 0)
	const batch, textLen = 8, 20
	f, err := m.NewForward(batch, textLen, gitmodel.ForwardOptions{Train: true, Dropout: true, Loss: true})
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	rng := rand.New(rand.NewSource(1))
	in := gitmodel.Batch{Pixels: make([]float32, batch*3*224*224), IDs: make([]int, batch*textLen), Labels: make([]int, batch*textLen)}
	for i := range in.Pixels {
		in.Pixels[i] = float32(rng.NormFloat64())
	}
	for i := range in.IDs {
		in.IDs[i] = 1000 + rng.Intn(20000)
		in.Labels[i] = in.IDs[i]
	}
	byName := map[string]*Param{}
	var params []*Param
	for _, p := range m.Params.All() {
		tp := &Param{Name: p.Name, W: p.F32(), Decay: DefaultDecay(p.Name)}
		byName[p.Name] = tp
		params = append(params, tp)
	}
	opt, err := NewAdamW(params, DefaultAdamWConfig())
	if err != nil {
		b.Fatal(err)
	}
	defer opt.Close()
	step := func(i int) {
		f.Noise().SetSeed(uint64(i))
		if err := f.Run(in); err != nil {
			b.Fatal(err)
		}
		if err := f.Grads(func(p *graph.Param, g []float32) { byName[p.Name].G = g }); err != nil {
			b.Fatal(err)
		}
		ClipGradNorm(params, 1)
		if err := opt.Step(1e-5); err != nil {
			b.Fatal(err)
		}
	}
	step(0)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		step(i + 1)
	}
	b.ReportMetric(b.Elapsed().Seconds()/float64(b.N), "s/step")
}
