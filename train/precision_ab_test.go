package train

import (
	"context"
	"path/filepath"
	"runtime"
	"syscall"
	"testing"
	"time"

	"github.com/gitcap/gitcap/gitmodel"
	"github.com/gitcap/gitcap/graph"
)

// BenchmarkGitBaseTrainStepBF16VsFP32 alternates git-base training steps
// (batch 8, 20 tokens, dropout, AdamW) at fp32 and at bf16 in one process,
// one of each per iteration after a warm-up pair, and reports each
// precision's CPU time per step (user+sys, getrusage: on a shared machine
// wall clock means little) and their ratio:
//
//	go test -run XXX -bench GitBaseTrainStepBF16VsFP32 -benchtime 2x ./train
func BenchmarkGitBaseTrainStepBF16VsFP32(b *testing.B) {
	if err := graph.CheckPrecision(graph.BF16); err != nil {
		b.Skip(err)
	}
	c, err := gitmodel.LoadConfig(filepath.Join("..", "configs", "git-base.json"))
	if err != nil {
		b.Fatal(err)
	}
	in := gitBaseStepBatch()
	precs := []graph.Precision{graph.FP32, graph.BF16}
	trs := map[graph.Precision]*Trainer{}
	for _, p := range precs {
		m, err := gitmodel.New(c)
		if err != nil {
			b.Fatal(err)
		}
		Init(m, 0)
		tr, err := NewTrainer(m, TrainerOptions{AdamW: DefaultAdamWConfig(), MaxGradNorm: 1, Dropout: true, LR: func(int) float64 { return 1e-5 }, Precision: p})
		if err != nil {
			b.Fatal(err)
		}
		defer tr.Close()
		trs[p] = tr
	}
	ctx := context.Background()
	cpu := func() time.Duration {
		var ru syscall.Rusage
		if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
			b.Fatal(err)
		}
		return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	step := func(p graph.Precision) time.Duration {
		runtime.GC()
		c0 := cpu()
		if _, err := trs[p].Step(ctx, in); err != nil {
			b.Fatal(err)
		}
		return cpu() - c0
	}
	for _, p := range precs { // warm-up
		step(p)
	}
	sum := map[graph.Precision]time.Duration{}
	b.ResetTimer()
	for b.Loop() {
		for _, p := range precs {
			sum[p] += step(p)
		}
	}
	n := float64(b.N)
	b.ReportMetric(sum[graph.FP32].Seconds()/n, "fp32-cpu-s/step")
	b.ReportMetric(sum[graph.BF16].Seconds()/n, "bf16-cpu-s/step")
	b.ReportMetric(float64(sum[graph.BF16])/float64(sum[graph.FP32]), "bf16/fp32")
}
