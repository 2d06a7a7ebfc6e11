package train

import (
	"context"
	"math/rand"
	"path/filepath"
	"testing"

	"github.com/gitcap/gitcap/gitmodel"
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
	in := gitBaseStepBatch()
	tr, err := NewTrainer(m, TrainerOptions{AdamW: DefaultAdamWConfig(), MaxGradNorm: 1, Dropout: true, LR: func(int) float64 { return 1e-5 }})
	if err != nil {
		b.Fatal(err)
	}
	defer tr.Close()
	ctx := context.Background()
	step := func() {
		if _, err := tr.Step(ctx, in); err != nil {
			b.Fatal(err)
		}
	}
	step()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		step()
	}
	b.ReportMetric(b.Elapsed().Seconds()/float64(b.N), "s/step")
}

// gitBaseStepBatch is the benchmarks' git-base training batch: 8 random
// 224×224 images with 20 random text tokens each (ids as labels).
func gitBaseStepBatch() gitmodel.Batch {
	const batch, textLen = 8, 20
	rng := rand.New(rand.NewSource(1))
	in := gitmodel.Batch{Pixels: make([]float32, batch*3*224*224), IDs: make([]int, batch*textLen), Labels: make([]int, batch*textLen)}
	for i := range in.Pixels {
		in.Pixels[i] = float32(rng.NormFloat64())
	}
	for i := range in.IDs {
		in.IDs[i] = 1000 + rng.Intn(20000)
		in.Labels[i] = in.IDs[i]
	}
	return in
}
