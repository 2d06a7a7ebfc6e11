package train

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/cheggaaa/pb/v3"
	"golang.org/x/term"

	"github.com/gitcap/gitcap/data"
	"github.com/gitcap/gitcap/data/imageproc"
	"github.com/gitcap/gitcap/data/tensorfile"
	"github.com/gitcap/gitcap/eval"
	"github.com/gitcap/gitcap/gitmodel"
	"github.com/gitcap/gitcap/gitmodel/hub"
	"github.com/gitcap/gitcap/graph"
)

// Checkpoint directory names inside Config.OutDir.
const (
	LastCheckpoint = "checkpoint-last"
	BestCheckpoint = "checkpoint-best"
	MetricsFile    = "metrics.jsonl"
	PlotFile       = "training_curve.png"
	ConfigFile     = "config.yaml"
	StateFile      = "trainer_state.json"
	OptimizerFile  = "optimizer.safetensors"
	visionPrefix   = "git.image_encoder."
	visionGroup    = "vision"
	textPadMult    = 8
)

// tokenizerFiles are copied from the source checkpoint into every checkpoint.
var tokenizerFiles = []string{"vocab.txt", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "preprocessor_config.json", "generation_config.json"}

// Summary describes a finished (or interrupted) run.
type Summary struct {
	Steps       int           // optimiser steps taken in total
	TotalSteps  int           // steps the run was configured for
	Epoch       float64       // fractional epochs done
	FirstLoss   float64       // training loss of the first step of this invocation
	LastLoss    float64       // mean training loss of the last logged window
	ValLoss     float64       // last validation loss (NaN if none)
	ValCIDEr    float64       // last validation CIDEr-D (NaN if none)
	BestMetric  string        // "val_cider", "val_loss" or "" (no validation)
	BestScore   float64       // best value of BestMetric
	LastDir     string        // the last checkpoint
	BestDir     string        // the best checkpoint ("" if none)
	Corrupt     int           // images skipped because they could not be read
	Interrupted bool          // ctx was cancelled; a checkpoint was saved
	Elapsed     time.Duration // wall time of this invocation
}

// TrainerState is trainer_state.json.
type TrainerState struct {
	Step       int           `json:"step"`
	Epoch      int           `json:"epoch"`
	Position   data.Position `json:"position"`
	Seed       int64         `json:"seed"`
	TotalSteps int           `json:"total_steps"`
	BestMetric string        `json:"best_metric,omitempty"`
	BestScore  *float64      `json:"best_score,omitempty"`
	BestStep   int           `json:"best_step,omitempty"`
	Corrupt    int           `json:"corrupt_images"`
	// EvalPending marks a checkpoint saved while its step's evaluation was
	// interrupted; resuming runs that evaluation first.
	EvalPending bool `json:"eval_pending,omitempty"`
	// DropoutSeed documents how dropout seeds are derived.
	DropoutSeed string `json:"dropout_seed"`
	// WorldSize is the number of MPI ranks of a data-parallel run (omitted
	// for one process); resuming needs the same number.
	WorldSize int `json:"world_size,omitempty"`
	// BatchSize, GradAccum and TrainPairs are the plan's data settings: a
	// resume may extend the run only if they are unchanged.
	BatchSize  int `json:"batch_size,omitempty"`
	GradAccum  int `json:"grad_accum,omitempty"`
	TrainPairs int `json:"train_pairs,omitempty"`
}

// Run trains a model as cfg says, writing progress to out, and returns a
// summary. Cancelling ctx saves a checkpoint and returns without error
// (Summary.Interrupted); a non-finite loss or gradient stops the run with an
// error and keeps the last good checkpoint.
func Run(ctx context.Context, cfg *Config, out io.Writer) (Summary, error) {
	return run(ctx, cfg, "", out)
}

// Resume continues the run whose checkpoint is dir (normally
// OUT/checkpoint-last) exactly as the uninterrupted run would have gone on:
// the same data order, optimiser state, schedule and dropout seeds. cfg nil
// means the resolved configuration saved beside the checkpoint
// (dir/../config.yaml). The run continues in dir's run directory (dir/..),
// whatever out_dir says, so a copied run resumes into the copy.
func Resume(ctx context.Context, cfg *Config, dir string, out io.Writer) (Summary, error) {
	if err := recoverCheckpoint(filepath.Clean(dir)); err != nil { // a kill between the swap's two renames
		return Summary{}, fmt.Errorf("resume: %w", err)
	}
	if cfg == nil {
		c, err := LoadConfig(filepath.Join(filepath.Dir(filepath.Clean(dir)), ConfigFile))
		if err != nil {
			return Summary{}, fmt.Errorf("resume: %w", err)
		}
		cfg = c
	}
	return run(ctx, resumeInto(cfg, dir), dir, out)
}

// seedFor derives a seed from integers (the run seed, the step, ...).
func seedFor(xs ...int64) uint64 {
	h := fnv.New64a()
	var b [8]byte
	for _, x := range xs {
		binary.LittleEndian.PutUint64(b[:], uint64(x))
		h.Write(b[:])
	}
	return h.Sum64()
}

type shape struct{ b, t int }

type trainer struct {
	cfg       *Config
	out       io.Writer
	badImages map[string]bool // unreadable images reported so far (by error text, which names the file)
	srcDir    string          // tokenizer and preprocessor files
	pipe      *gitmodel.Pipeline
	params    []*Param // optimised
	byName    map[string]*Param
	opt       *AdamW
	acc       *Accumulator
	train     *data.Loader
	val       *data.Loader
	fwd       map[shape]*gitmodel.Forward
	evalFwd   map[shape]*gitmodel.Forward
	metrics   *MetricsWriter
	state     TrainerState
	best      float64
	hasBest   bool
	lastVal   float64
	lastCIDE  float64
}

func (t *trainer) close() {
	for _, f := range t.fwd {
		f.Close()
	}
	for _, f := range t.evalFwd {
		f.Close()
	}
	if t.opt != nil {
		t.opt.Close()
	}
	if t.metrics != nil {
		t.metrics.Close()
	}
}

// loadModel builds the pipeline: a checkpoint (cfg.Model or a resume dir) or
// a preset initialised at random.
func loadModel(ctx context.Context, cfg *Config, resumeDir string, out io.Writer) (*gitmodel.Pipeline, string, error) {
	var p *gitmodel.Pipeline
	var src string
	switch {
	case resumeDir != "":
		pp, err := gitmodel.LoadPipeline(resumeDir)
		if err != nil {
			return nil, "", fmt.Errorf("resume: %w", err)
		}
		p, src = pp, resumeDir
	case cfg.Model != "":
		// A checkpoint directory, or a HF model id fetched into the HF cache.
		opts := hub.OptionsFromEnv()
		opts.Progress = out
		dir, err := hub.Resolve(ctx, cfg.Model, opts)
		if err != nil {
			return nil, "", err
		}
		pp, err := gitmodel.LoadPipeline(dir)
		if err != nil {
			return nil, "", err
		}
		p, src = pp, dir
	default:
		mc, tok, err := LoadPreset(cfg.ModelConfig)
		if err != nil {
			return nil, "", err
		}
		src = filepath.Dir(cfg.ModelConfig)
		pc, err := imageproc.LoadConfig(filepath.Join(src, "preprocessor_config.json"))
		if err != nil {
			return nil, "", fmt.Errorf("model_config %s: training from scratch needs preprocessor_config.json beside the preset: %w", cfg.ModelConfig, err)
		}
		proc, err := imageproc.New(pc)
		if err != nil {
			return nil, "", err
		}
		m, err := gitmodel.New(mc)
		if err != nil {
			return nil, "", err
		}
		Init(m, cfg.Seed)
		p = &gitmodel.Pipeline{Dir: src, Model: m, Tokenizer: tok, Processor: proc}
	}
	if cfg.Dropout != nil {
		c := p.Model.Config
		c.HiddenDropoutProb, c.AttentionProbsDropoutProb = *cfg.Dropout, *cfg.Dropout
		if c.HiddenDropoutProb != p.Model.Config.HiddenDropoutProb || c.AttentionProbsDropoutProb != p.Model.Config.AttentionProbsDropoutProb {
			m, err := gitmodel.New(c)
			if err != nil {
				return nil, "", err
			}
			for _, q := range m.Params.All() {
				old := p.Model.Params.Get(q.Name)
				if old == nil {
					return nil, "", fmt.Errorf("dropout override: parameter %s missing", q.Name)
				}
				copy(q.F32(), old.F32())
			}
			p.Model = m
		}
	}
	return p, src, nil
}

func loadPairs(dc DataConfig) ([]data.TrainPair, error) {
	return data.LoadPairs(dc.Path, data.CaptionFormat(dc.Format), dc.Split, dc.Images)
}

func run(ctx context.Context, cfg *Config, resumeDir string, out io.Writer) (sum Summary, err error) {
	start := time.Now()
	sum.ValLoss, sum.ValCIDEr, sum.FirstLoss, sum.LastLoss = math.NaN(), math.NaN(), math.NaN(), math.NaN()
	if err := cfg.Validate(); err != nil {
		return sum, err
	}
	dp := newDataParallel(ctx, cfg) // MPI (dataparallel.go): nil for one process
	if out == nil || !dp.leader() {
		out = io.Discard
	}
	if err := dp.checkConfig(cfg); err != nil {
		return sum, err
	}
	// Own out_dir before anything in it is created or written (lock.go).
	// Under MPI only rank 0 owns it and writes there.
	if dp.leader() {
		lock, err := claimRunDir(cfg, resumeDir, out)
		if err != nil {
			return sum, err
		}
		defer lock.Close()
	}
	t := &trainer{cfg: cfg, out: out, badImages: map[string]bool{}, fwd: map[shape]*gitmodel.Forward{}, evalFwd: map[shape]*gitmodel.Forward{}, lastVal: math.NaN(), lastCIDE: math.NaN()}
	defer t.close()

	if err := dp.fetchFirst(ctx, cfg, resumeDir, out); err != nil { // MPI: rank 0 downloads, the others wait
		return sum, err
	}
	p, src, err := loadModel(ctx, cfg, resumeDir, out)
	if err != nil {
		return sum, err
	}
	t.pipe, t.srcDir = p, src
	if err := checkAgainstModel(cfg, p.Model.Config); err != nil {
		return sum, err
	}
	if dp.leader() { // MPI: only rank 0 writes into out_dir
		if err := os.MkdirAll(cfg.OutDir, 0o755); err != nil {
			return sum, err
		}
	}

	pairs, err := loadPairs(cfg.Train)
	if err != nil {
		return sum, fmt.Errorf("train data: %w", err)
	}
	workers := cfg.Workers
	lo := data.LoaderOptions{
		BatchSize: cfg.BatchSize, Seed: cfg.Seed, MaxTextLen: cfg.MaxTextLen, PadMultiple: textPadMult,
		Bucketing: cfg.Bucketing, RandomResizedCrop: cfg.Augment.RandomResizedCrop, HFlip: cfg.Augment.HFlip,
		Workers: workers,
	}
	if t.train, err = data.NewLoader(pairs, p.Tokenizer, p.Processor, lo); err != nil {
		return sum, fmt.Errorf("train data: %w", err)
	}
	if cfg.Val.Path != "" {
		vp, err := loadPairs(cfg.Val)
		if err != nil {
			return sum, fmt.Errorf("val data: %w", err)
		}
		vo := lo
		vo.NoShuffle, vo.Bucketing, vo.RandomResizedCrop, vo.HFlip = true, false, false, false
		if t.val, err = data.NewLoader(vp, p.Tokenizer, p.Processor, vo); err != nil {
			return sum, fmt.Errorf("val data: %w", err)
		}
	}

	// Parameters and optimiser.
	t.byName = map[string]*Param{}
	var all []*Param
	for _, gp := range p.Model.Params.All() {
		tp := &Param{Name: gp.Name, W: gp.F32(), Group: "text"}
		if strings.HasPrefix(gp.Name, visionPrefix) {
			tp.Group = visionGroup
		}
		all = append(all, tp)
		t.byName[gp.Name] = tp
	}
	SetDecay(all, cfg.DecayAll)
	for _, tp := range all {
		if cfg.FreezeVision && tp.Group == visionGroup {
			continue
		}
		t.params = append(t.params, tp)
	}
	ac := cfg.AdamW(visionGroup)
	if cfg.FreezeVision {
		delete(ac.GroupLR, visionGroup)
	}
	if t.opt, err = NewAdamW(t.params, ac); err != nil {
		return sum, err
	}
	if cfg.GradAccum > 1 && dp == nil {
		t.acc = NewAccumulator(t.params)
	}
	dp.bind(t.params) // MPI: the flat gradient buffer replaces the accumulator

	total := dp.totalSteps(cfg, t.train.Len())
	sched := cfg.LRSchedule(total)
	t.state = TrainerState{Seed: cfg.Seed, TotalSteps: total, DropoutSeed: "fnv64a(seed, step, micro_batch)",
		BatchSize: cfg.BatchSize, GradAccum: cfg.GradAccum, TrainPairs: t.train.Len()}
	if dp != nil {
		t.state.WorldSize = dp.size()
	}
	t.best = math.NaN()
	switch {
	case t.val != nil && cfg.ValCIDEr:
		t.state.BestMetric = "val_cider"
	case t.val != nil:
		t.state.BestMetric = "val_loss"
	}

	metricsPath := filepath.Join(cfg.OutDir, MetricsFile)
	if dp.leader() { // after claimRunDir: a live run's temporaries are not stale
		if err := removeStaleTemps(cfg.OutDir, out); err != nil {
			return sum, err
		}
	}
	if resumeDir != "" {
		if err := t.opt.LoadState(filepath.Join(resumeDir, OptimizerFile)); err != nil {
			return sum, fmt.Errorf("resume: %w", err)
		}
		b, err := os.ReadFile(filepath.Join(resumeDir, StateFile))
		if err != nil {
			return sum, fmt.Errorf("resume: %w", err)
		}
		var st TrainerState
		if err := json.Unmarshal(b, &st); err != nil {
			return sum, fmt.Errorf("resume: %s: %w", StateFile, err)
		}
		if err := dp.checkResume(st, resumeDir); err != nil {
			return sum, err
		}
		if st.Seed != cfg.Seed {
			return sum, fmt.Errorf("resume: checkpoint was trained with seed %d, configuration says %d", st.Seed, cfg.Seed)
		}
		if err := checkExtension(st, total, cfg.BatchSize, cfg.GradAccum, t.train.Len(), resumeDir); err != nil {
			return sum, err
		}
		t.state.Step, t.state.Epoch, t.state.Position, t.state.Corrupt = st.Step, st.Epoch, st.Position, st.Corrupt
		t.state.EvalPending = st.EvalPending
		if st.BestScore != nil && st.BestMetric == t.state.BestMetric {
			t.best, t.hasBest, t.state.BestStep = *st.BestScore, true, st.BestStep
			bs := *st.BestScore
			t.state.BestScore = &bs
		}
	} else if dp.leader() {
		if err := cfg.writeRunConfig(); err != nil {
			return sum, err
		}
	}
	if dp.leader() {
		if t.metrics, err = openRunMetrics(metricsPath, resumeDir, t.state.Step); err != nil {
			return sum, err
		}
	}

	sum.TotalSteps = total
	sum.BestMetric = t.state.BestMetric
	sum.LastDir = filepath.Join(cfg.OutDir, LastCheckpoint)
	defer func() {
		sum.Steps = t.state.Step
		sum.Epoch = t.epochFrac(t.state.Position)
		sum.ValLoss, sum.ValCIDEr = t.lastVal, t.lastCIDE
		sum.Corrupt = t.state.Corrupt
		sum.Elapsed = time.Since(start)
		if t.hasBest {
			sum.BestScore = t.best
			sum.BestDir = filepath.Join(cfg.OutDir, BestCheckpoint)
		}
	}()

	fmt.Fprintf(out, "training %d parameters (%d optimised) on %d pairs (%d batches/epoch), %d steps from step %d\n",
		p.Model.Params.Count(), countParams(t.params), t.train.Len(), t.train.BatchesPerEpoch(), total, t.state.Step)

	if dp != nil {
		fmt.Fprintf(out, "data-parallel on %d MPI ranks: global batch %d x %d x %d\n", dp.size(), dp.size(), cfg.BatchSize, max(cfg.GradAccum, 1))
	}
	it := dp.iterate(ctx, t.train, t.state.Position) // MPI: this rank's shard
	defer it.Close()

	var bar *pb.ProgressBar
	if f, ok := out.(*os.File); ok && f == os.Stdout && term.IsTerminal(int(f.Fd())) {
		bar = pb.New(total)
		bar.SetWriter(out)
		bar.SetTemplateString(barTemplate)
		bar.SetCurrent(int64(t.state.Step))
		bar.Start()
		defer bar.Finish()
	}

	logEvery := max(cfg.LogEvery, 1)
	var winLoss float64
	var winN, winImages int
	winStart := time.Now()
	var lastGN, lastLR float64
	first := true

	interrupted := func() (Summary, error) {
		if bar != nil {
			bar.Finish()
		}
		fmt.Fprintf(out, "interrupted at step %d: saving checkpoint\n", t.state.Step)
		if !dp.leader() {
			sum.Interrupted = true
			return sum, nil
		}
		if err := t.save(false); err != nil {
			return sum, fmt.Errorf("interrupted; saving the checkpoint failed: %w", err)
		}
		sum.Interrupted = true
		return sum, nil
	}

	if t.state.EvalPending && t.val != nil && dp.leader() {
		// The evaluation of the step this checkpoint was saved at was
		// interrupted: run it now, as the uninterrupted run did.
		t.state.EvalPending = false
		improved, err := t.evaluate(ctx, t.state.Step)
		if err != nil {
			if ctx.Err() != nil {
				t.state.EvalPending = true
				return interrupted()
			}
			return sum, err
		}
		if err := t.save(improved); err != nil {
			return sum, err
		}
		if err := t.plot(); err != nil {
			fmt.Fprintf(out, "warning: training curve not written: %v\n", err)
		}
	}
	for t.state.Step < total {
		step := t.state.Step
		var loss float64
		var micro, images int
		pos := t.state.Position
		corrupt0 := t.state.Corrupt
		for k := 0; k < dp.microPerStep(cfg); k++ {
			b, err := it.Next()
			if err != nil {
				if ctx.Err() != nil {
					return interrupted()
				}
				return sum, err
			}
			for _, e := range b.Corrupt {
				// An image comes back once per caption and per epoch:
				// report and count each one once.
				if msg := e.Error(); !t.badImages[msg] {
					t.badImages[msg] = true
					t.state.Corrupt++
					fmt.Fprintf(out, "skipped image: %v\n", e)
				}
			}
			if b.B == 0 { // MPI: another rank's micro-batch, or one without a readable image
				if pos = b.Next; b.Next.Epoch != b.Pos.Epoch {
					break
				}
				continue
			}
			f, err := t.forward(t.fwd, b.B, b.T, true)
			if err != nil {
				return sum, err
			}
			f.Noise().SetSeed(seedFor(cfg.Seed, int64(step), int64(k)))
			if err := f.Run(gitmodel.Batch{Pixels: b.Pixels, IDs: b.IDs, AttentionMask: b.AttentionMask, Labels: b.Labels}); err != nil {
				return sum, fmt.Errorf("step %d: %w", step+1, err)
			}
			l := f.LossValue()
			if !IsFinite(l) {
				return sum, fmt.Errorf("step %d: training loss is %v; stopping (the last good checkpoint is %s)", step+1, l, sum.LastDir)
			}
			loss += l
			micro++
			images += b.B
			if err := f.Grads(func(gp *graph.Param, g []float32) {
				if tp := t.byName[gp.Name]; tp != nil {
					tp.G = g // the graph's gradient buffer, valid until the next run: no copy
				}
			}); err != nil {
				return sum, err
			}
			if t.acc != nil {
				if err := t.acc.Add(); err != nil {
					return sum, err
				}
			}
			if dp != nil {
				if err := dp.add(t.params); err != nil {
					return sum, err
				}
			}
			pos = b.Next
			if b.Next.Epoch != b.Pos.Epoch {
				break // the last micro-batches of an epoch make a step of their own
			}
		}
		if t.acc != nil {
			if err := t.acc.Average(); err != nil {
				return sum, err
			}
		}
		if dp != nil { // MPI: sum the step's gradients and totals over the ranks
			tot, err := dp.reduce(t.params, stepTotals{loss, micro, images, t.state.Corrupt - corrupt0})
			if err != nil {
				return sum, fmt.Errorf("step %d: %w", step+1, err)
			}
			loss, micro, images, t.state.Corrupt = tot.loss, tot.micro, tot.images, corrupt0+tot.corrupt
		}
		loss /= float64(micro)
		gn := ClipGradNorm(t.params, cfg.MaxGradNorm)
		if !IsFinite(gn) {
			return sum, fmt.Errorf("step %d: gradient norm is %v; stopping (the last good checkpoint is %s)", step+1, gn, sum.LastDir)
		}
		lr := sched.LR(step)
		if err := t.opt.Step(lr); err != nil {
			return sum, err
		}
		epochEnded := pos.Epoch != t.state.Position.Epoch
		t.state.Step++
		t.state.Position, t.state.Epoch = pos, pos.Epoch
		if first {
			sum.FirstLoss, first = loss, false
		}
		winLoss += loss
		winN++
		winImages += images
		lastGN, lastLR = gn, lr
		s := t.state.Step
		done := s == total

		if (s%logEvery == 0 || done) && dp.leader() {
			el := time.Since(winStart).Seconds()
			r := NewRecord(s)
			r.Epoch = t.epochFrac(pos)
			r.Loss = winLoss / float64(winN)
			r.LR, r.GradNorm = lastLR, lastGN
			if el > 0 {
				r.ImagesPerS = float64(winImages) / el
			}
			sum.LastLoss = r.Loss
			if err := t.metrics.Write(r); err != nil {
				return sum, err
			}
			if bar != nil {
				bar.Set("info", fmt.Sprintf("loss %.4f lr %.2e %.1f img/s", r.Loss, r.LR, r.ImagesPerS))
			} else {
				fmt.Fprintf(out, "step %d/%d epoch %.2f loss %.4f lr %.3g grad_norm %.3g %.1f img/s\n", s, total, r.Epoch, r.Loss, r.LR, r.GradNorm, r.ImagesPerS)
			}
			winLoss, winN, winImages, winStart = 0, 0, 0, time.Now()
		}
		if bar != nil {
			bar.SetCurrent(int64(s))
		}

		doEval := t.val != nil && dp.leader() && (done || (cfg.EvalEvery > 0 && s%cfg.EvalEvery == 0) || (cfg.EvalEvery == 0 && epochEnded))
		improved := false
		if doEval {
			evalCtx := ctx
			if dp != nil {
				evalCtx = context.WithoutCancel(ctx) // the ranks stop together, after the step (agree)
			}
			if improved, err = t.evaluate(evalCtx, s); err != nil {
				if ctx.Err() != nil {
					t.state.EvalPending = true // redone first on resume
					return interrupted()
				}
				return sum, err
			}
		}
		doSave := dp.leader() && (done || improved || (cfg.SaveEvery > 0 && s%cfg.SaveEvery == 0) || (cfg.SaveEvery == 0 && epochEnded))
		if doSave {
			if err := t.save(improved); err != nil {
				return sum, err
			}
		}
		if (doEval || done) && dp.leader() {
			// The plot is a convenience: failing to draw it must not end a
			// long run.
			if err := t.plot(); err != nil {
				fmt.Fprintf(out, "warning: training curve not written: %v\n", err)
			}
		}
		stop, err := dp.agree(ctx.Err() != nil) // MPI: every rank stops after the same step
		if err != nil {
			return sum, err
		}
		if stop && !done {
			return interrupted()
		}
	}
	if err := dp.checkWeights(p.Model, t.state.Step); err != nil {
		return sum, err
	}
	if !dp.leader() {
		return sum, nil
	}
	if err := t.metrics.Sync(); err != nil {
		return sum, err
	}
	return sum, nil
}

func countParams(ps []*Param) int {
	n := 0
	for _, p := range ps {
		n += len(p.W)
	}
	return n
}

func (t *trainer) epochFrac(pos data.Position) float64 {
	return float64(pos.Epoch) + float64(pos.Batch)/float64(t.train.BatchesPerEpoch())
}

// forward returns the cached graph for a batch shape, building it on first use.
func (t *trainer) forward(cache map[shape]*gitmodel.Forward, b, tl int, train bool) (*gitmodel.Forward, error) {
	k := shape{b, tl}
	if f := cache[k]; f != nil {
		return f, nil
	}
	opts := gitmodel.ForwardOptions{Loss: true}
	if train {
		opts = gitmodel.ForwardOptions{Train: true, Loss: true, Dropout: true, Smoothing: t.cfg.LabelSmoothing}
	}
	f, err := t.pipe.Model.NewForward(b, tl, opts)
	if err != nil {
		return nil, fmt.Errorf("building the graph for batch %d x %d tokens: %w", b, tl, err)
	}
	cache[k] = f
	return f, nil
}

// evaluate computes the validation loss (and CIDEr-D), logs them and reports
// whether the best score improved.
func (t *trainer) evaluate(ctx context.Context, step int) (bool, error) {
	var sumLoss float64
	var tokens int
	for _, idx := range t.val.Batches(0) {
		if err := ctx.Err(); err != nil {
			return false, err
		}
		b := t.val.Build(idx)
		if b.B == 0 {
			continue
		}
		f, err := t.forward(t.evalFwd, b.B, b.T, false)
		if err != nil {
			return false, err
		}
		if err := f.Run(gitmodel.Batch{Pixels: b.Pixels, IDs: b.IDs, AttentionMask: b.AttentionMask, Labels: b.Labels}); err != nil {
			return false, err
		}
		// The loss is a mean over the predicted tokens: weight batches by them.
		n := 0
		for r := 0; r < b.B; r++ {
			for c := 1; c < b.T; c++ {
				if b.Labels[r*b.T+c] != graph.IgnoreIndex {
					n++
				}
			}
		}
		sumLoss += f.LossValue() * float64(n)
		tokens += n
	}
	r := NewRecord(step)
	r.Epoch = t.epochFrac(t.state.Position)
	if tokens > 0 {
		r.ValLoss = sumLoss / float64(tokens)
	}
	t.lastVal = r.ValLoss
	msg := fmt.Sprintf("eval step %d: val_loss %.4f", step, r.ValLoss)
	if t.cfg.ValCIDEr {
		c, err := t.valCIDEr(ctx)
		if err != nil {
			return false, err
		}
		r.ValCIDEr = c
		t.lastCIDE = c
		msg += fmt.Sprintf(" val_cider %.4f", c)
	}
	if err := t.metrics.Write(r); err != nil {
		return false, err
	}
	score := r.ValLoss
	better := func(a, b float64) bool { return a < b }
	if t.state.BestMetric == "val_cider" {
		score = r.ValCIDEr
		better = func(a, b float64) bool { return a > b }
	}
	improved := IsFinite(score) && (!t.hasBest || better(score, t.best))
	if improved {
		t.best, t.hasBest, t.state.BestStep = score, true, step
		s := score
		t.state.BestScore = &s
		msg += " (best)"
	}
	fmt.Fprintln(t.out, msg)
	return improved, nil
}

// valCIDEr captions the validation images greedily and scores them.
func (t *trainer) valCIDEr(ctx context.Context) (float64, error) {
	imgs, gts := GroupByImage(t.val.Pairs())
	caps, err := CaptionImages(ctx, t.pipe, imgs, t.cfg.BatchSize, t.cfg.GenMaxLength)
	if err != nil {
		return 0, err
	}
	c, _, err := CIDErD(imgs, gts, caps)
	return c, err
}

// GroupByImage returns the distinct images of pairs in first-seen order and
// each image's captions.
func GroupByImage(pairs []data.TrainPair) ([]string, map[string][]string) {
	var imgs []string
	gts := map[string][]string{}
	for _, p := range pairs {
		if _, ok := gts[p.Image]; !ok {
			imgs = append(imgs, p.Image)
		}
		gts[p.Image] = append(gts[p.Image], p.Caption)
	}
	return imgs, gts
}

// CaptionImages captions image files with greedy decoding (maxLength is HF's
// max_length; 0 means 50). An image that cannot be read gets "".
func CaptionImages(ctx context.Context, p *gitmodel.Pipeline, imgs []string, batch, maxLength int) (map[string]string, error) {
	if maxLength <= 0 {
		maxLength = 50
	}
	g := p.Model.NewGenerator()
	defer g.Close()
	samples := make([]gitmodel.Sample, len(imgs))
	for i, im := range imgs {
		samples[i] = gitmodel.Sample{Name: im, Frames: []string{im}}
	}
	caps, err := p.Caption(ctx, g, samples, "", max(batch, 1), gitmodel.GenerateOptions{MaxLength: maxLength, NumBeams: 1}, nil)
	if err != nil {
		return nil, err
	}
	res := make(map[string]string, len(imgs))
	for i, c := range caps {
		res[imgs[i]] = c.Text
	}
	return res, nil
}

// CIDErD PTB-tokenizes references and candidates and scores them with
// CIDEr-D (as coco-caption does), over ids in order.
func CIDErD(ids []string, gts map[string][]string, res map[string]string) (float64, []float64, error) {
	tg := make(map[string][]string, len(ids))
	tr := make(map[string]string, len(ids))
	for _, id := range ids {
		tg[id] = eval.PTBTokenizeAll(gts[id])
		tr[id] = eval.PTBTokenize(res[id])
	}
	return eval.CIDErD(ids, tg, tr)
}

// save writes the last checkpoint (and the best one when best is set).
func (t *trainer) save(best bool) error {
	// The metrics up to this step must survive whatever happens next, or a
	// resume from this checkpoint would leave a gap in the log.
	if t.metrics != nil {
		if err := t.metrics.Sync(); err != nil {
			return err
		}
	}
	dir := filepath.Join(t.cfg.OutDir, LastCheckpoint)
	if err := t.writeCheckpoint(dir); err != nil {
		return err
	}
	if best {
		if err := t.writeCheckpoint(filepath.Join(t.cfg.OutDir, BestCheckpoint)); err != nil {
			return err
		}
	}
	return t.afterSave()
}

// writeCheckpoint writes a complete HF-layout checkpoint into a temporary
// directory and then swaps it in: the old checkpoint is renamed aside, the
// new one renamed into place, and only then is the old one removed, so that
// a crash at any point leaves a complete checkpoint (under final or
// final.old).
func (t *trainer) writeCheckpoint(final string) error {
	if err := recoverCheckpoint(final); err != nil {
		return err
	}
	tmp, err := tensorfile.MkdirTemp(t.cfg.OutDir, ".tmp-")
	if err != nil {
		return err
	}
	ok := false
	defer func() {
		if !ok {
			os.RemoveAll(tmp)
		}
	}()
	m := t.pipe.Model
	if err := m.Config.Save(filepath.Join(tmp, "config.json")); err != nil {
		return err
	}
	if err := m.SaveWeights(filepath.Join(tmp, "model.safetensors")); err != nil {
		return err
	}
	if err := t.opt.SaveState(filepath.Join(tmp, OptimizerFile)); err != nil {
		return err
	}
	for _, name := range tokenizerFiles {
		if err := copyFile(filepath.Join(t.srcDir, name), filepath.Join(tmp, name)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	st, err := json.MarshalIndent(t.state, "", "  ")
	if err != nil {
		return err
	}
	if err := writeFileSync(filepath.Join(tmp, StateFile), append(st, '\n')); err != nil {
		return err
	}
	if err := syncDir(tmp); err != nil {
		return err
	}
	old := final + ".old"
	if err := os.RemoveAll(old); err != nil {
		return err
	}
	if _, err := os.Stat(final); err == nil {
		if err := os.Rename(final, old); err != nil {
			return err
		}
	}
	if err := os.Rename(tmp, final); err != nil {
		return err
	}
	ok = true
	if err := syncDir(t.cfg.OutDir); err != nil {
		return err
	}
	return os.RemoveAll(old)
}

// recoverCheckpoint undoes a swap that a crash interrupted: if final is
// missing but final.old (the previous complete checkpoint) exists, it is
// moved back, so the only good copy is never deleted.
func recoverCheckpoint(final string) error {
	if _, err := os.Stat(final); err == nil {
		return nil
	}
	if _, err := os.Stat(final + ".old"); err == nil {
		return os.Rename(final+".old", final)
	}
	return nil
}

// writeFileSync writes a file and flushes it to disk.
func writeFileSync(path string, b []byte) error {
	return tensorfile.WriteAtomic(path, func(f *os.File) error {
		_, err := f.Write(b)
		return err
	})
}

// syncDir flushes a directory's entries (renames) to disk.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

func copyFile(src, dst string) error {
	b, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	return writeFileSync(dst, b)
}

func (t *trainer) plot() error {
	if err := t.metrics.Sync(); err != nil {
		return err
	}
	recs, err := ReadMetrics(filepath.Join(t.cfg.OutDir, MetricsFile))
	if err != nil {
		return err
	}
	sort.SliceStable(recs, func(i, j int) bool { return recs[i].Step < recs[j].Step })
	return WritePlot(filepath.Join(t.cfg.OutDir, PlotFile), recs, PlotOptions{Title: "gitcap training"})
}
