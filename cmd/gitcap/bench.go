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
	"slices"
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
	// PeakGFLOPS is the sgemm peak this row is compared with: the mean of
	// two measurements (1024³, half a second each) taken just before and
	// just after the row's timed runs, so that the share follows the
	// machine's speed at the time (a VM's speed drifted by ±10% within a
	// run; the run-start figure alone made the shares swing as much).
	PeakGFLOPS float64 `json:"sgemm_peak_gflops"`
	PeakShare  float64 `json:"fraction_of_sgemm_peak"` // GFLOPS ÷ PeakGFLOPS
	PeakRSSGiB float64 `json:"peak_rss_gib"`           // process peak during this workload (Linux)
	Runs       int     `json:"runs"`
	// Decode workloads: the bytes one decode step reads at least (decoder
	// and LM-head weights, KV cache; gitmodel.DecodeStepBytes, averaged over
	// the steps), the measured time per step ((t(N tokens) − t(1 token)) /
	// (N−1)) and the bandwidth limit's share of it: (bytes ÷ read
	// bandwidth) ÷ time per step.
	BytesPerStep   float64 `json:"bytes_per_step,omitempty"`
	SecondsPerStep float64 `json:"seconds_per_step,omitempty"`
	BandwidthShare float64 `json:"fraction_of_bandwidth_limit,omitempty"`
	// RatioToFP32 is a bf16 workload's median over the float32 one of the
	// same name measured in this run.
	RatioToFP32 float64 `json:"ratio_to_fp32,omitempty"`
	// StepRatioToFP32 is the same for the time per decode step.
	StepRatioToFP32 float64 `json:"step_ratio_to_fp32,omitempty"`
}

func runBench(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if ok, err := benchAllReduce(ctx, args, stdout, stderr); ok { // --only allreduce under mpirun (bench_mpi.go)
		return err
	}
	fs := newFlagSet("bench", stderr)
	model := fs.String("model", "", "checkpoint directory (default: a git-base-shaped model with random weights)")
	runs := fs.Int("runs", 3, "timed runs per workload (after one warm-up); the median is reported")
	only := fs.String("only", "vision,caption,beam,train,bf16", "workloads to run: vision, caption, beam, train, bf16 (vision tower and batch-1 greedy/beam caption with bf16 weights, alternating with fp32), scst (one self-critical step: 8 images x 5 samples), serve")
	asJSON := fs.Bool("json", false, "print JSON instead of a table")
	var sb serveBench // --only serve (bench_serve.go)
	sb.register(fs.FlagSet)
	sb.dtype = gitmodel.FP32
	fs.Var((*dtypeValue)(&sb.dtype), "dtype", "serve workload: the served weights' `dtype`: fp32, bf16 or bf16-full (a bf16 copy of the model; the other workloads have their own bf16 rows)")
	if err := fs.Parse(args); err != nil {
		return usageErr(err)
	}
	if *runs < 1 {
		return usageError{errors.New("--runs must be at least 1")}
	}
	if _, err := sb.overlapModes(); err != nil {
		return err
	}
	want := map[string]bool{}
	for _, w := range strings.Split(*only, ",") {
		switch w = strings.TrimSpace(w); w {
		case "vision", "caption", "beam", "train", "bf16", "scst", "serve":
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
	if graph.OwnLinearKernel() {
		fmt.Fprintf(stderr, "float32 Linear of 9-1024 rows: gitcap's kernel, without packing the weight (the BLAS's bits, checked at start)\n")
	}
	peak := graph.SgemmGFLOPS(1024, 1)
	fmt.Fprintf(stderr, "sgemm peak (1024³): %.1f GFLOP/s\n", peak)
	bw := graph.ReadBandwidthGBs(256<<20, 0.5)
	fmt.Fprintf(stderr, "memory read bandwidth (256 MiB, %d threads): %.1f GB/s\n", runtime.GOMAXPROCS(0), bw)

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
		p0 := rowPeak()
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
		r.setPeak(p0, rowPeak())
		rows = append(rows, r)
		return nil
	}
	// decode adds the bandwidth figures to the row just measured: fn1 is the
	// same caption with one token (vision tower and prefix, no decode step).
	decode := func(rowsPerStep int, fn1 func() error) error {
		r := &rows[len(rows)-1]
		med1, err := median(ctx, *runs, fn1)
		if err != nil {
			return fmt.Errorf("%s (1 token): %w", r.Name, err)
		}
		n0 := c.ImageTokens() + 1 // the prompt is [CLS]
		for t := 1; t < newTokens; t++ {
			r.BytesPerStep += m.DecodeStepBytes(rowsPerStep, n0+t) / (newTokens - 1)
		}
		r.SecondsPerStep = (r.Seconds - med1) / (newTokens - 1)
		if r.SecondsPerStep > 0 {
			r.BandwidthShare = r.BytesPerStep / (bw * 1e9) / r.SecondsPerStep
		}
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
	caption := func(b, beams int, tokens ...int) func() error {
		n := newTokens
		if len(tokens) > 0 {
			n = tokens[0]
		}
		o := gitmodel.GenerateOptions{MaxNewTokens: n, MinNewTokens: n, NumBeams: beams}
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
			if err := decode(b, caption(b, 1, 1)); err != nil {
				return err
			}
		}
	}
	if want["beam"] {
		if err := measure(fmt.Sprintf("4-beam caption, %d tokens, batch 1", newTokens), c.CaptionFLOPs(1, 4, 1, newTokens), newTokens, "tokens/s", caption(1, 4)); err != nil {
			return err
		}
		if err := decode(4, caption(1, 4, 1)); err != nil {
			return err
		}
	}
	g.Close()
	if want["train"] {
		const b, t = 8, 20
		for _, ckpt := range []bool{false, true} {
			name := fmt.Sprintf("training step, batch %d, %d tokens", b, t)
			if ckpt {
				name += ", checkpointed" // gradient_checkpointing: its extra forward pass is not counted
			}
			if err := benchTrain(ctx, m, b, t, ckpt, graph.FP32, pixels[:b*img], rng, func(step func() error) error {
				return measure(name, c.TrainFLOPs(b, t), b, "images/s", step)
			}); err != nil {
				return err
			}
		}
		// Mixed precision (precision: bf16) on the same workload, after
		// the float32 rows of this run; its ratio is over the plain step's.
		if err := graph.CheckPrecision(graph.BF16); err != nil {
			fmt.Fprintf(stderr, "skipping the bf16 training step: %v\n", err)
		} else {
			fp := len(rows) - 2 // the plain float32 step
			if err := benchTrain(ctx, m, b, t, false, graph.BF16, pixels[:b*img], rng, func(step func() error) error {
				return measure(fmt.Sprintf("training step, batch %d, %d tokens, bf16", b, t), c.TrainFLOPs(b, t), b, "images/s", step)
			}); err != nil {
				return err
			}
			rows[len(rows)-1].RatioToFP32 = rows[len(rows)-1].Seconds / rows[fp].Seconds
		}
	}
	var bf16 *bf16Summary
	if want["bf16"] {
		var bfRows []benchRow
		if bfRows, bf16, err = benchBF16(ctx, m, pixels[:img], *runs, bw, stderr); err != nil {
			return err
		}
		rows = append(rows, bfRows...)
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
	var parts *serveParts
	if want["serve"] {
		if serveRows, parts, err = benchServe(ctx, m, pipe, &sb, stderr); err != nil {
			return err
		}
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(map[string]any{"sgemm_peak_gflops": peak, "read_bandwidth_gbs": bw, "bf16": bf16, "parameters": m.Params.Count(), "blas": graph.BLAS().Name, "version": currentVersion(), "results": rows, "serve": serveRows, "serve_parts": parts, "serve_dtype": sb.dtype})
	}
	defer printServeRows(stdout, serveRows, parts, sb.dtype)
	fmt.Fprintf(stdout, "%-45s %9s %14s %9s %7s %6s %9s %9s %9s %8s\n", "workload", "median s", "throughput", "GFLOP/s", "of peak", "(peak)", "peak RSS", "MB/step", "ms/step", "of BW")
	for _, r := range rows {
		fmt.Fprintf(stdout, "%-45s %9.3f %8.2f %-5s %9.1f %6.0f%% %6.0f %6.2f GiB", r.Name, r.Seconds, r.Throughput, strings.TrimSuffix(r.Unit, "/s")+"/s", r.GFLOPS, 100*r.PeakShare, r.PeakGFLOPS, r.PeakRSSGiB)
		switch {
		case r.BytesPerStep > 0 && r.SecondsPerStep > 0:
			fmt.Fprintf(stdout, " %9.1f %9.2f %7.0f%%", r.BytesPerStep/1e6, 1e3*r.SecondsPerStep, 100*r.BandwidthShare)
		case r.BytesPerStep > 0: // the 1-token run took longer than the 20-token one: a load spike
			fmt.Fprintf(stdout, " %9.1f %9s %8s", r.BytesPerStep/1e6, "n/a", "n/a")
		}
		if r.RatioToFP32 > 0 {
			fmt.Fprintf(stdout, "  %.2f× fp32", r.RatioToFP32)
		}
		if r.StepRatioToFP32 > 0 {
			fmt.Fprintf(stdout, " (per step %.2f×)", r.StepRatioToFP32)
		}
		fmt.Fprintln(stdout)
	}
	fmt.Fprintf(stdout, "sgemm peak %.1f GFLOP/s (1024³) at the start, memory read bandwidth %.1f GB/s (%d threads), both measured in this run; medians of %d runs after a warm-up\n", peak, bw, runtime.GOMAXPROCS(0), *runs)
	fmt.Fprintln(stdout, "of peak: GFLOP/s as a share of (peak), the mean of two sgemm peak measurements (1024³) just before and just after the workload's timed runs")
	fmt.Fprintln(stdout, "decode rows: MB/step = bytes a decode step reads at least (weights + KV cache), ms/step = (t(20 tokens) − t(1 token))/19, of BW = the bandwidth limit (MB/step ÷ bandwidth) as a share of ms/step")
	if bf16 != nil {
		fmt.Fprintf(stdout, "bf16 weights: %.0f MB resident vs %.0f MB fp32 (%.3f×); kernels: %s\n", bf16.ResidentBytes/1e6, bf16.FP32ResidentBytes/1e6, bf16.ResidentBytes/bf16.FP32ResidentBytes, bf16.Kernels)
	}
	return nil
}

// rowPeak measures the sgemm peak for one side of a row's bracket
// (benchRow.PeakGFLOPS).
func rowPeak() float64 { return graph.SgemmGFLOPS(1024, 0.5) }

// setPeak sets the row's peak to the mean of the measurements before and
// after its timed runs, and its share of it.
func (r *benchRow) setPeak(before, after float64) {
	r.PeakGFLOPS = (before + after) / 2
	r.PeakShare = r.GFLOPS / r.PeakGFLOPS
}

// newTokens is the length of the benchmark captions.
const newTokens = 20

// median runs fn once (warm-up) and then runs times, returning the median
// seconds.
func median(ctx context.Context, runs int, fn func() error) (float64, error) {
	if err := fn(); err != nil {
		return 0, err
	}
	times := make([]float64, runs)
	for i := range times {
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		start := time.Now()
		if err := fn(); err != nil {
			return 0, err
		}
		times[i] = time.Since(start).Seconds()
	}
	sort.Float64s(times)
	return times[len(times)/2], nil
}

// bf16Summary is what the bf16 workloads report besides their rows.
type bf16Summary struct {
	ResidentBytes     float64 `json:"resident_bytes"`
	FP32ResidentBytes float64 `json:"fp32_resident_bytes"`
	Kernels           string  `json:"kernels"`
}

// benchBF16 measures the vision tower and the batch-1 greedy and 4-beam
// captions with bf16 weights (a narrowed copy of the model) against the
// float32 model, alternating the two run by run so that a change in the
// machine's load falls on both: each bf16 row's RatioToFP32 is the median,
// over the rounds, of the bf16 run's time over the float32 run's beside it,
// and the per-step figures are taken within a round the same way.
func benchBF16(ctx context.Context, m *gitmodel.Model, pixels []float32, runs int, bw float64, stderr io.Writer) ([]benchRow, *bf16Summary, error) {
	bf, err := m.CloneBF16()
	if err != nil {
		return nil, nil, err
	}
	bf.SetBF16Activations(true) // --dtype bf16-full: the AMX (or VDPBF16PS) GEMM for many rows
	sum := &bf16Summary{ResidentBytes: float64(bf.Params.ResidentBytes()), FP32ResidentBytes: float64(m.Params.ResidentBytes()), Kernels: graph.BF16Kernels()}
	c := m.Config
	var rows []benchRow
	// pair measures fp and b16 (and the extra functions) in turn, run by
	// run, adds the bf16 row and returns every run's seconds (times[f][i]:
	// function f in round i).
	pair := func(name string, flops, items float64, unit string, fp, b16 func() error, extra ...func() error) (*benchRow, [][]float64, error) {
		fmt.Fprintf(stderr, "bf16 %s (alternating with fp32) ...\n", name)
		resetPeakRSS()
		p0 := rowPeak()
		t, err := interleavedRuns(ctx, runs, append([]func() error{fp, b16}, extra...)...)
		if err != nil {
			return nil, nil, fmt.Errorf("bf16 %s: %w", name, err)
		}
		tb := medianOf(t[1])
		r := benchRow{Name: "bf16-full " + name, Seconds: tb, Throughput: items / tb, Unit: unit, GFLOPS: flops / tb / 1e9, Runs: runs,
			RatioToFP32: medianOf(perRound(t[1], t[0], ratio)),
			PeakRSSGiB:  peakRSSGiB()} // both models' graphs run in this window
		r.setPeak(p0, rowPeak())
		rows = append(rows, r)
		return &rows[len(rows)-1], t, nil
	}
	vision := func(m *gitmodel.Model) (func() error, func(), error) {
		f, err := m.NewForward(1, 1, gitmodel.ForwardOptions{VisionOnly: true})
		if err != nil {
			return nil, nil, err
		}
		in := gitmodel.Batch{Pixels: pixels, IDs: make([]int, 1)}
		return func() error { return f.Run(in) }, f.Close, nil
	}
	vf, closeF, err := vision(m)
	if err != nil {
		return nil, nil, err
	}
	defer closeF()
	vb, closeB, err := vision(bf)
	if err != nil {
		return nil, nil, err
	}
	defer closeB()
	if _, _, err := pair("vision tower, batch 1", c.VisionFLOPs(), 1, "images/s", vf, vb); err != nil {
		return nil, nil, err
	}
	gf, gb := m.NewGenerator(), bf.NewGenerator()
	defer gf.Close()
	defer gb.Close()
	caption := func(g *gitmodel.Generator, beams, tokens int) func() error {
		o := gitmodel.GenerateOptions{MaxNewTokens: tokens, MinNewTokens: tokens, NumBeams: beams}
		return func() error {
			_, err := g.Generate(ctx, pixels, 1, []int{c.BosTokenID}, o)
			return err
		}
	}
	for _, beams := range []int{1, 4} {
		name := fmt.Sprintf("greedy caption, %d tokens, batch 1", newTokens)
		if beams > 1 {
			name = fmt.Sprintf("%d-beam caption, %d tokens, batch 1", beams, newTokens)
		}
		r, times, err := pair(name, c.CaptionFLOPs(1, beams, 1, newTokens), newTokens, "tokens/s",
			caption(gf, beams, newTokens), caption(gb, beams, newTokens), caption(gf, beams, 1), caption(gb, beams, 1))
		if err != nil {
			return nil, nil, err
		}
		n0 := c.ImageTokens() + 1
		for t := 1; t < newTokens; t++ {
			r.BytesPerStep += bf.DecodeStepBytes(beams, n0+t) / (newTokens - 1)
		}
		step := func(n, one float64) float64 { return (n - one) / (newTokens - 1) }
		fpSteps, bfSteps := perRound(times[0], times[2], step), perRound(times[1], times[3], step)
		if r.SecondsPerStep = medianOf(bfSteps); r.SecondsPerStep > 0 {
			r.BandwidthShare = r.BytesPerStep / (bw * 1e9) / r.SecondsPerStep
			if slices.Min(fpSteps) > 0 {
				r.StepRatioToFP32 = medianOf(perRound(bfSteps, fpSteps, ratio))
			}
		}
	}
	return rows, sum, nil
}

// interleavedRuns runs each function once (warm-up), then all of them in
// turn, runs times, and returns their seconds: times[f][i] is function f in
// round i.
func interleavedRuns(ctx context.Context, runs int, fns ...func() error) ([][]float64, error) {
	for _, fn := range fns {
		if err := fn(); err != nil {
			return nil, err
		}
	}
	times := make([][]float64, len(fns))
	for i := 0; i < runs; i++ {
		for f, fn := range fns {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			start := time.Now()
			if err := fn(); err != nil {
				return nil, err
			}
			times[f] = append(times[f], time.Since(start).Seconds())
		}
	}
	return times, nil
}

// ratio is a/b, for perRound.
func ratio(a, b float64) float64 { return a / b }

// perRound applies op to the two series round by round.
func perRound(a, b []float64, op func(a, b float64) float64) []float64 {
	out := make([]float64, len(a))
	for i := range a {
		out[i] = op(a[i], b[i])
	}
	return out
}

// medianOf is the median of xs (the upper one of an even count), xs unchanged.
func medianOf(xs []float64) float64 {
	s := slices.Clone(xs)
	sort.Float64s(s)
	return s[len(s)/2]
}

// benchTrain sets up one training step (forward with dropout, backward,
// gradient clipping, AdamW: train.Trainer's Step) at precision prec and
// hands it to measure.
func benchTrain(ctx context.Context, m *gitmodel.Model, b, t int, ckpt bool, prec graph.Precision, pixels []float32, rng *rand.Rand, measure func(step func() error) error) error {
	in := gitmodel.Batch{Pixels: pixels, IDs: make([]int, b*t), Labels: make([]int, b*t)}
	for i := range in.IDs {
		in.IDs[i] = rng.Intn(m.Config.VocabSize)
		in.Labels[i] = in.IDs[i]
	}
	tr, err := train.NewTrainer(m, train.TrainerOptions{
		AdamW: train.DefaultAdamWConfig(), MaxGradNorm: 1, Dropout: true, LR: func(int) float64 { return 1e-5 },
		GradientCheckpointing: ckpt, Precision: prec,
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
