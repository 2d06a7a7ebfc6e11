package main

import (
	"context"
	"fmt"
	"io"
	"math/rand"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/gitcap/gitcap/data"
	"github.com/gitcap/gitcap/data/tokenizer"
	"github.com/gitcap/gitcap/gitmodel"
	"github.com/gitcap/gitcap/train"
)

// benchSCST measures one self-critical sequence training step (gitcap bench
// --only scst): batch images × samples sampled captions of at most tl text
// tokens ([CLS] included), their CIDEr-D rewards, and the Trainer step on
// them, split into sampling, rewards, the forward pass alone (the loss
// graph) and the whole step (forward, backward, clipping, AdamW). The
// vocabulary is synthetic (one word per token id, so every sampled token
// decodes to a word) and so are the references: 5 per image, over 1,000
// training images for the document frequencies.
func benchSCST(ctx context.Context, m *gitmodel.Model, pixels []float32, batch, samples, tl, runs int, rng *rand.Rand, stderr io.Writer) ([]benchRow, error) {
	c := m.Config
	words := make([]string, c.VocabSize)
	for i := range words {
		words[i] = fmt.Sprintf("w%d", i)
	}
	dir, err := os.MkdirTemp("", "gitcap-bench-scst-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	if err := tokenizer.WriteFiles(dir, tokenizer.BuildVocab([]string{strings.Join(words, " ")}, 1)); err != nil {
		return nil, err
	}
	tok, err := tokenizer.Load(dir)
	if err != nil {
		return nil, err
	}
	var pairs []data.TrainPair
	for img := 0; img < 1000; img++ {
		for r := 0; r < 5; r++ {
			ws := make([]string, 10)
			for i := range ws {
				ws[i] = words[rng.Intn(200)] // a small working vocabulary, as captions have
			}
			pairs = append(pairs, data.TrainPair{Image: fmt.Sprintf("img%d.jpg", img), Caption: strings.Join(ws, " ")})
		}
	}
	s, err := train.NewSCST(m, tok, pairs, train.SCSTOptions{Samples: samples, MaxLength: tl, PadMultiple: 1})
	if err != nil {
		return nil, err
	}
	defer s.Close()
	tr, err := train.NewTrainer(m, train.TrainerOptions{
		AdamW: train.DefaultAdamWConfig(), MaxGradNorm: 1, Dropout: true, LR: func(int) float64 { return 1e-5 },
	})
	if err != nil {
		return nil, err
	}
	defer tr.Close()
	images := make([]string, batch)
	for i := range images {
		images[i] = fmt.Sprintf("img%d.jpg", i)
	}
	var sampling, rewards, forward, step, total []float64
	fmt.Fprintf(stderr, "SCST step, %d images x %d samples ...\n", batch, samples)
	for run := 0; run <= runs; run++ { // run 0 is the warm-up
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		start := time.Now()
		in, err := s.Batch(ctx, pixels, images, uint64(run))
		if err != nil {
			return nil, err
		}
		t0 := time.Now()
		if _, err := tr.Step(ctx, in); err != nil {
			return nil, err
		}
		t1 := time.Now()
		if _, err := tr.EvalLoss(in); err != nil {
			return nil, err
		}
		t2 := time.Now()
		if run == 0 {
			continue
		}
		sampling = append(sampling, s.Times.Sampling.Seconds())
		rewards = append(rewards, s.Times.Rewards.Seconds())
		step = append(step, t1.Sub(t0).Seconds())
		forward = append(forward, t2.Sub(t1).Seconds())
		total = append(total, t1.Sub(start).Seconds())
	}
	med := func(x []float64) float64 {
		x = append([]float64(nil), x...)
		sort.Float64s(x)
		return x[len(x)/2]
	}
	rows := batch * samples
	name := fmt.Sprintf("SCST step, %d images x %d samples, %d tokens", batch, samples, tl)
	out := []benchRow{
		{Name: name, Seconds: med(total), Throughput: float64(batch) / med(total), Unit: "images/s"},
		{Name: "  sampling (KV-cache sampler)", Seconds: med(sampling), Throughput: float64(rows) / med(sampling), Unit: "captions/s"},
		{Name: "  rewards (CIDEr-D)", Seconds: med(rewards), Throughput: float64(rows) / med(rewards), Unit: "captions/s"},
		{Name: "  forward (loss only)", Seconds: med(forward), Throughput: float64(rows) / med(forward), Unit: "captions/s"},
		{Name: "  forward+backward+AdamW", Seconds: med(step), Throughput: float64(rows) / med(step), Unit: "captions/s"},
	}
	for i := range out {
		out[i].Runs = runs
		out[i].PeakRSSGiB = peakRSSGiB()
	}
	bwd := med(step) - med(forward)
	fmt.Fprintf(stderr, "SCST: sampling + rewards %.3f s, backward (+AdamW) %.3f s: ratio %.2f\n", med(sampling)+med(rewards), bwd, (med(sampling)+med(rewards))/bwd)
	return out, nil
}
