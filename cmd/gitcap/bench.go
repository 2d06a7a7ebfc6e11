package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand"
	"os"
	"runtime"
	"runtime/debug"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/gitcap/gitcap/gitmodel"
	"github.com/gitcap/gitcap/gitmodel/caption"
	"github.com/gitcap/gitcap/graph"
	"github.com/gitcap/gitcap/train"
)

// benchRow is one measured workload.
type benchRow struct {
	Name       string  `json:"name"`
	Seconds    float64 `json:"seconds"` // median over runs
	Throughput float64 `json:"throughput"`
	Unit       string  `json:"unit"`
	GFLOPS     float64 `json:"gflops"`
	PeakShare  float64 `json:"fraction_of_sgemm_peak"`
	PeakRSSGiB float64 `json:"peak_rss_gib"` // process peak during this workload (Linux)
	Runs       int     `json:"runs"`
}

func runBench(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if ok, err := benchAllReduce(ctx, args, stdout, stderr); ok { // --only allreduce under mpirun (bench_mpi.go)
		return err
	}
	fs := newFlagSet("bench", stderr)
	model := fs.String("model", "", "checkpoint directory (default: a git-base-shaped model with random weights)")
	runs := fs.Int("runs", 3, "timed runs per workload (after one warm-up); the median is reported")
	only := fs.String("only", "vision,caption,beam,train", "workloads to run: vision, caption, beam, train, scst, serve")
	asJSON := fs.Bool("json", false, "print JSON instead of a table")
	var sb serveBench // --only serve (bench_serve.go)
	sb.register(fs.FlagSet)
	if err := fs.Parse(args); err != nil {
		return usageErr(err)
	}
	if *runs < 1 {
		return usageError{errors.New("--runs must be at least 1")}
	}
	want := map[string]bool{}
	for _, w := range strings.Split(*only, ",") {
		switch w = strings.TrimSpace(w); w {
		case "vision", "caption", "beam", "train", "scst", "serve":
			want[w] = true
		default:
			return usageError{fmt.Errorf("--only: unknown workload %q", w)}
		}
	}
	var m *gitmodel.Model
	var pipe *caption.Pipeline
	var err error
	if *model != "" {
		p, err := loadPipeline(ctx, *model, stderr)
		if err != nil {
			return err
		}
		m, pipe = p.Model, p
	} else {
		if m, err = gitmodel.New(gitmodel.DefaultConfig()); err != nil {
			return err
		}
		train.Init(m, 0)
	}
	c := m.Config
	fmt.Fprintf(stderr, "model: %d parameters; %s; GOMAXPROCS %d\n", m.Params.Count(), graph.BLAS(), runtime.GOMAXPROCS(0))
	peak := graph.SgemmGFLOPS(1024, 1)
	fmt.Fprintf(stderr, "sgemm peak (1024³): %.1f GFLOP/s\n", peak)

	var rows []benchRow
	measure := func(name string, flops float64, items float64, unit string, fn func() error) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		fmt.Fprintf(stderr, "%s ...\n", name)
		resetPeakRSS()
		if err := fn(); err != nil { // warm-up: builds and compiles graphs
			return fmt.Errorf("%s: %w", name, err)
		}
		times := make([]float64, *runs)
		for i := range times {
			start := time.Now()
			if err := fn(); err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
			times[i] = time.Since(start).Seconds()
		}
		sort.Float64s(times)
		med := times[len(times)/2]
		r := benchRow{Name: name, Seconds: med, Throughput: items / med, Unit: unit, GFLOPS: flops / med / 1e9, Runs: *runs, PeakRSSGiB: peakRSSGiB()}
		r.PeakShare = r.GFLOPS / peak
		rows = append(rows, r)
		return nil
	}
	rng := rand.New(rand.NewSource(1))
	img := c.Frames() * c.Vision.NumChannels * c.Vision.ImageSize * c.Vision.ImageSize
	pixels := make([]float32, 8*img)
	for i := range pixels {
		pixels[i] = float32(rng.NormFloat64())
	}
	if want["vision"] {
		for _, b := range []int{1, 8} {
			f, err := m.NewForward(b, 1, gitmodel.ForwardOptions{VisionOnly: true})
			if err != nil {
				return err
			}
			in := gitmodel.Batch{Pixels: pixels[:b*img], IDs: make([]int, b)}
			err = measure(fmt.Sprintf("vision tower, batch %d", b), float64(b)*c.VisionFLOPs(), float64(b), "images/s", func() error { return f.Run(in) })
			f.Close()
			if err != nil {
				return err
			}
		}
	}
	g := m.NewGenerator()
	defer g.Close()
	const newTokens = 20
	caption := func(b, beams int) func() error {
		o := gitmodel.GenerateOptions{MaxNewTokens: newTokens, MinNewTokens: newTokens, NumBeams: beams}
		return func() error {
			_, err := g.Generate(ctx, pixels[:b*img], b, []int{c.BosTokenID}, o)
			return err
		}
	}
	if want["caption"] {
		for _, b := range []int{1, 8} {
			if err := measure(fmt.Sprintf("greedy caption, %d tokens, batch %d", newTokens, b), c.CaptionFLOPs(b, b, 1, newTokens), float64(b*newTokens), "tokens/s", caption(b, 1)); err != nil {
				return err
			}
		}
	}
	if want["beam"] {
		if err := measure(fmt.Sprintf("4-beam caption, %d tokens, batch 1", newTokens), c.CaptionFLOPs(1, 4, 1, newTokens), newTokens, "tokens/s", caption(1, 4)); err != nil {
			return err
		}
	}
	g.Close()
	if want["train"] {
		const b, t = 8, 20
		if err := benchTrain(ctx, m, b, t, pixels[:b*img], rng, func(step func() error) error {
			return measure(fmt.Sprintf("training step, batch %d, %d tokens", b, t), c.TrainFLOPs(b, t), b, "images/s", step)
		}); err != nil {
			return err
		}
	}
	if want["scst"] {
		// One SCST step on git-base shape: 8 images x 5 samples, 20 tokens.
		resetPeakRSS()
		r, err := benchSCST(ctx, m, pixels[:8*img], 8, 5, 20, *runs, rng, stderr)
		if err != nil {
			return fmt.Errorf("scst: %w", err)
		}
		rows = append(rows, r...)
	}
	var serveRows []serveRow
	if want["serve"] {
		if serveRows, err = benchServe(ctx, m, pipe, &sb, stderr); err != nil {
			return err
		}
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(map[string]any{"sgemm_peak_gflops": peak, "parameters": m.Params.Count(), "blas": graph.BLAS().Name, "version": currentVersion(), "results": rows, "serve": serveRows})
	}
	defer printServeRows(stdout, serveRows)
	fmt.Fprintf(stdout, "%-40s %9s %14s %9s %7s %9s\n", "workload", "median s", "throughput", "GFLOP/s", "of peak", "peak RSS")
	for _, r := range rows {
		fmt.Fprintf(stdout, "%-40s %9.3f %8.2f %-5s %9.1f %6.0f%% %6.2f GiB\n", r.Name, r.Seconds, r.Throughput, strings.TrimSuffix(r.Unit, "/s")+"/s", r.GFLOPS, 100*r.PeakShare, r.PeakRSSGiB)
	}
	fmt.Fprintf(stdout, "sgemm peak %.1f GFLOP/s (1024³, measured in this run); medians of %d runs after a warm-up\n", peak, *runs)
	return nil
}

// benchTrain sets up one training step (forward with dropout, backward,
// gradient clipping, AdamW: train.Trainer's Step) and hands it to measure.
func benchTrain(ctx context.Context, m *gitmodel.Model, b, t int, pixels []float32, rng *rand.Rand, measure func(step func() error) error) error {
	in := gitmodel.Batch{Pixels: pixels, IDs: make([]int, b*t), Labels: make([]int, b*t)}
	for i := range in.IDs {
		in.IDs[i] = rng.Intn(m.Config.VocabSize)
		in.Labels[i] = in.IDs[i]
	}
	tr, err := train.NewTrainer(m, train.TrainerOptions{
		AdamW: train.DefaultAdamWConfig(), MaxGradNorm: 1, Dropout: true, LR: func(int) float64 { return 1e-5 },
	})
	if err != nil {
		return err
	}
	defer tr.Close()
	return measure(func() error {
		_, err := tr.Step(ctx, in)
		return err
	})
}

// resetPeakRSS returns freed memory to the OS and restarts the kernel's
// peak-RSS counter (VmHWM), so the next reading covers one workload (with
// whatever the process still holds from earlier ones). Linux only; a
// no-op elsewhere.
func resetPeakRSS() {
	debug.FreeOSMemory()
	_ = os.WriteFile("/proc/self/clear_refs", []byte("5"), 0)
}

// peakRSSGiB reads the process's peak resident memory (VmHWM) on Linux.
func peakRSSGiB() float64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 64)
			return kb / (1 << 20)
		}
	}
	return 0
}
