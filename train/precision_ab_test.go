package train

import (
	"context"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/gitcap/gitcap/gitmodel"
	"github.com/gitcap/gitcap/graph"
)

// TestGitBaseStepCPUTimeBF16VsFP32 is a measurement, not a check: with
// GITCAP_STEP_AB=N set it runs N alternating git-base training steps
// (batch 8, 20 tokens, dropout, AdamW) at fp32 and at bf16 in one process
// and logs each step's CPU time (user+sys, getrusage: the machine is shared,
// so wall clock means little) and the ratio bf16/fp32;
// GITCAP_STEP_AB_ONLY=fp32 or bf16 runs one precision (for its peak
// memory, e.g. under /usr/bin/time -v). Skipped otherwise (minutes and
// ~9 GiB).
func TestGitBaseStepCPUTimeBF16VsFP32(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("GITCAP_STEP_AB"))
	if n <= 0 {
		t.Skip("set GITCAP_STEP_AB=steps to measure")
	}
	c, err := gitmodel.LoadConfig(filepath.Join("..", "configs", "git-base.json"))
	if err != nil {
		t.Fatal(err)
	}
	in := gitBaseStepBatch()
	precs := []graph.Precision{graph.FP32, graph.BF16}
	if only := os.Getenv("GITCAP_STEP_AB_ONLY"); only != "" { // one precision (its peak memory alone)
		p, err := graph.ParsePrecision(only)
		if err != nil {
			t.Fatal(err)
		}
		precs = []graph.Precision{p}
	}
	trs := map[graph.Precision]*Trainer{}
	for _, p := range precs {
		m, err := gitmodel.New(c)
		if err != nil {
			t.Fatal(err)
		}
		Init(m, 0)
		tr, err := NewTrainer(m, TrainerOptions{AdamW: DefaultAdamWConfig(), MaxGradNorm: 1, Dropout: true, LR: func(int) float64 { return 1e-5 }, Precision: p})
		if err != nil {
			t.Fatal(err)
		}
		defer tr.Close()
		trs[p] = tr
	}
	ctx := context.Background()
	cpu := func() time.Duration {
		var ru syscall.Rusage
		if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
			t.Fatal(err)
		}
		return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	sum := map[graph.Precision]time.Duration{}
	for i := -1; i < n; i++ { // step -1 warms up
		for _, p := range precs {
			runtime.GC()
			debug.FreeOSMemory()
			c0, w0 := cpu(), time.Now()
			if _, err := trs[p].Step(ctx, in); err != nil {
				t.Fatal(err)
			}
			dc, dw := cpu()-c0, time.Since(w0)
			t.Logf("step %d %v: cpu %.2fs wall %.2fs", i, p, dc.Seconds(), dw.Seconds())
			if i >= 0 {
				sum[p] += dc
			}
		}
	}
	if len(precs) == 2 {
		t.Logf("cpu per step: fp32 %.2fs bf16 %.2fs: bf16/fp32 %.3f", sum[graph.FP32].Seconds()/float64(n), sum[graph.BF16].Seconds()/float64(n), float64(sum[graph.BF16])/float64(sum[graph.FP32]))
	}
}
