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
	"time"

	"github.com/cheggaaa/pb/v3"
	"golang.org/x/term"

	"github.com/gitcap/gitcap/data"
	"github.com/gitcap/gitcap/data/fsutil"
	"github.com/gitcap/gitcap/data/imageproc"
	"github.com/gitcap/gitcap/gitmodel"
	"github.com/gitcap/gitcap/gitmodel/caption"
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
	visionGroup    = gitmodel.VisionGroup
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

// runner is one invocation of Run or Resume: the pipeline, the data, the
// Trainer and the run's bookkeeping.
type runner struct {
	cfg       *Config
	out       io.Writer
	resumeDir string          // "" for a new run
	dp        *dataParallel   // MPI: this rank's part (nil for one process)
	badImages map[string]bool // unreadable images reported so far (by error text, which names the file)
	srcDir    string          // tokenizer and preprocessor files
	pipe      *caption.Pipeline
	tr        *Trainer
	train     *data.Loader
	val       *data.Loader
	metrics   *MetricsWriter
	state     TrainerState
	total     int
	best      float64
	hasBest   bool
	lastVal   float64
	lastCIDE  float64
	scst      *SCST            // objective scst (scst.go); nil for cross-entropy
	micro     []gitmodel.Batch // the current step's micro-batches (reused)
	microK    []int            // their indices in the step (reused)
	corrupt0  int              // state.Corrupt before the current step
	win       window
	bar       *pb.ProgressBar
}

// window is the training statistics since the last log line.
type window struct {
	loss          float64
	steps, images int
	start         time.Time
	gradNorm, lr  float64 // of the last step
	reward        float64 // SCST: sum of the micro-batches' mean sample rewards
	rewardN       int     // SCST: micro-batches in reward
}

func (t *runner) close() {
	if t.tr != nil {
		t.tr.Close()
	}
	if t.scst != nil {
		t.scst.Close()
	}
	if t.metrics != nil {
		t.metrics.Close()
	}
}

// loadModel builds the pipeline: a checkpoint (cfg.Model or a resume dir) or
// a preset initialised at random.
func loadModel(ctx context.Context, cfg *Config, resumeDir string, out io.Writer) (*caption.Pipeline, string, error) {
	var p *caption.Pipeline
	var src string
	switch {
	case resumeDir != "":
		pp, err := caption.LoadPipeline(resumeDir)
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
		pp, err := caption.LoadPipeline(dir)
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
		p = &caption.Pipeline{Dir: src, Model: m, Tokenizer: tok, Processor: proc}
	}
	if cfg.Dropout != nil {
		// Rates are read when the training graphs are built (and saved in
		// each checkpoint's config.json): no rebuild of the model.
		p.Model.Config.HiddenDropoutProb, p.Model.Config.AttentionProbsDropoutProb = *cfg.Dropout, *cfg.Dropout
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
	// Under MPI only rank 0 owns it and writes there. The lock is released
	// after t.close (deferred later, so run first) has flushed the metrics.
	if dp.leader() {
		lock, lerr := claimRunDir(cfg, resumeDir, out)
		if lerr != nil {
			return sum, lerr
		}
		defer func() {
			if cerr := lock.Close(); cerr != nil && err == nil {
				err = fmt.Errorf("releasing the lock on %s: %w", cfg.OutDir, cerr)
			}
		}()
		if resumeDir != "" { // under the lock: a live run's swap is not interrupted
			if rerr := recoverCheckpoint(filepath.Clean(resumeDir)); rerr != nil { // a kill between the swap's two renames
				return sum, fmt.Errorf("resume: %w", rerr)
			}
		}
	}
	t := &runner{cfg: cfg, out: out, resumeDir: resumeDir, dp: dp, badImages: map[string]bool{}, lastVal: math.NaN(), lastCIDE: math.NaN(), best: math.NaN()}
	defer t.close()
	if err := t.setup(ctx); err != nil {
		return sum, err
	}
	sum.TotalSteps = t.total
	sum.BestMetric = t.state.BestMetric
	sum.LastDir = filepath.Join(cfg.OutDir, LastCheckpoint)
	defer func() { t.summarise(&sum, start) }()

	fmt.Fprintf(out, "training %d parameters (%d optimised) on %d pairs (%d batches/epoch), %d steps from step %d\n",
		t.pipe.Model.Params.Count(), countParams(t.tr.Params()), t.train.Len(), t.train.BatchesPerEpoch(), t.total, t.state.Step)
	if dp != nil {
		fmt.Fprintf(out, "data-parallel on %d MPI ranks: global batch %d x %d x %d\n", dp.size(), dp.size(), cfg.BatchSize, max(cfg.GradAccum, 1))
	}

	it := dp.iterate(ctx, t.train, t.state.Position) // MPI: this rank's shard
	defer it.Close()
	t.startBar()
	defer t.finishBar()
	t.win.start = time.Now()

	if t.state.EvalPending && t.val != nil && dp.leader() {
		// The evaluation of the step this checkpoint was saved at was
		// interrupted: run it now, as the uninterrupted run did.
		t.state.EvalPending = false
		if err := t.evaluateAndSave(ctx, t.state.Step, true, true); err != nil {
			return t.stopped(ctx, &sum, err)
		}
		t.plotOrWarn()
	}
	for t.state.Step < t.total {
		res, epochEnded, err := t.step(ctx, it)
		var nf *NonFiniteStepError
		switch {
		case errors.As(err, &nf):
			return sum, fmt.Errorf("%w; stopping (the last good checkpoint is %s)", err, sum.LastDir)
		case err != nil && res.Step < 0 && ctx.Err() != nil:
			return t.interrupted(&sum)
		case err != nil:
			return sum, err
		}
		if math.IsNaN(sum.FirstLoss) {
			sum.FirstLoss = res.Loss
		}
		s := t.state.Step
		done := s == t.total
		if err := t.log(res, &sum, done); err != nil {
			return sum, err
		}
		doEval, doSave := t.policy(s, epochEnded, done)
		evalCtx := ctx
		if dp != nil {
			evalCtx = context.WithoutCancel(ctx) // the ranks stop together, after the step (agree)
		}
		if err := t.evaluateAndSave(evalCtx, s, doEval, doSave); err != nil {
			return t.stopped(ctx, &sum, err)
		}
		if (doEval || done) && dp.leader() {
			t.plotOrWarn()
		}
		stop, err := dp.agree(ctx.Err() != nil) // MPI: every rank stops after the same step
		if err != nil {
			return sum, err
		}
		if stop && !done {
			return t.interrupted(&sum)
		}
	}
	if err := dp.checkWeights(t.pipe.Model, t.state.Step); err != nil {
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

// setup loads the model and data, prepares the Trainer and either restores
// a resumed run's state or starts a new run in cfg.OutDir.
func (t *runner) setup(ctx context.Context) error {
	cfg, dp := t.cfg, t.dp
	if _, err := checkPrecision(cfg, graph.CheckPrecision); err != nil {
		return err
	}
	if err := dp.fetchFirst(ctx, cfg, t.resumeDir, t.out); err != nil { // MPI: rank 0 downloads, the others wait
		return err
	}
	p, src, err := loadModel(ctx, cfg, t.resumeDir, t.out)
	if err != nil {
		return err
	}
	t.pipe, t.srcDir = p, src
	if err := checkAgainstModel(cfg, p.Model.Config); err != nil {
		return err
	}
	if dp.leader() { // MPI: only rank 0 writes into out_dir
		if err := os.MkdirAll(cfg.OutDir, 0o755); err != nil {
			return err
		}
	}
	if err := t.setupData(); err != nil {
		return err
	}
	t.total = dp.totalSteps(cfg, t.train.Len())
	if err := t.setupTrainer(); err != nil {
		return err
	}
	t.state = TrainerState{Seed: cfg.Seed, TotalSteps: t.total, DropoutSeed: "fnv64a(seed, step, micro_batch)",
		BatchSize: cfg.BatchSize, GradAccum: cfg.GradAccum, TrainPairs: t.train.Len()}
	if dp != nil {
		t.state.WorldSize = dp.size()
	}
	switch {
	case t.val != nil && cfg.ValCIDEr:
		t.state.BestMetric = "val_cider"
	case t.val != nil:
		t.state.BestMetric = "val_loss"
	}
	if dp.leader() { // after claimRunDir: a live run's temporaries are not stale
		if err := removeStaleTemps(cfg.OutDir, t.out); err != nil {
			return err
		}
	}
	if t.resumeDir != "" {
		if err := t.restore(); err != nil {
			return err
		}
	} else if dp.leader() {
		if err := t.startNew(); err != nil {
			return err
		}
	}
	t.tr.SetSteps(t.state.Step)
	if dp.leader() {
		// metrics.jsonl is append-only: a resume appends a marker that
		// supersedes the steps after the checkpoint's.
		if t.metrics, err = openRunMetrics(filepath.Join(cfg.OutDir, MetricsFile), t.resumeDir, t.state.Step); err != nil {
			return err
		}
	}
	return nil
}

// setupData opens the training and validation loaders.
func (t *runner) setupData() error {
	cfg, p := t.cfg, t.pipe
	pairs, err := loadPairs(cfg.Train)
	if err != nil {
		return fmt.Errorf("train data: %w", err)
	}
	if cfg.Objective == ObjectiveSCST {
		// SCST samples its own captions and rewards them against all of an
		// image's references: the loader yields each image once an epoch.
		if t.scst, err = NewSCST(p.Model, p.Tokenizer, pairs, SCSTOptions{
			Samples: cfg.SCSTSamples, MaxLength: cfg.GenMaxLength, Temperature: cfg.SCSTTemperature,
			TopK: cfg.SCSTTopK, Seed: cfg.Seed, PadMultiple: textPadMult,
		}); err != nil {
			return err
		}
		pairs = onePairPerImage(pairs)
	}
	lo := data.LoaderOptions{
		BatchSize: cfg.BatchSize, Seed: cfg.Seed, MaxTextLen: cfg.MaxTextLen, PadMultiple: textPadMult,
		Bucketing: cfg.Bucketing, RandomResizedCrop: cfg.Augment.RandomResizedCrop, HFlip: cfg.Augment.HFlip,
		Workers: cfg.Workers,
	}
	if t.train, err = data.NewLoader(pairs, p.Tokenizer, p.Processor, lo); err != nil {
		return fmt.Errorf("train data: %w", err)
	}
	if cfg.Val.Path == "" {
		return nil
	}
	vp, err := loadPairs(cfg.Val)
	if err != nil {
		return fmt.Errorf("val data: %w", err)
	}
	vo := lo
	vo.NoShuffle, vo.Bucketing, vo.RandomResizedCrop, vo.HFlip = true, false, false, false
	if t.val, err = data.NewLoader(vp, p.Tokenizer, p.Processor, vo); err != nil {
		return fmt.Errorf("val data: %w", err)
	}
	return nil
}

// setupTrainer freezes what the configuration freezes and makes the Trainer.
func (t *runner) setupTrainer() error {
	cfg := t.cfg
	for _, p := range t.pipe.Model.Params.All() {
		p.Frozen = cfg.FreezeVision && p.Group == visionGroup
	}
	ac := cfg.AdamW(visionGroup)
	if cfg.FreezeVision {
		delete(ac.GroupLR, visionGroup)
	}
	sched := cfg.LRSchedule(t.total)
	prec, err := checkPrecision(cfg, graph.CheckPrecision)
	if err != nil {
		return err
	}
	tr, err := NewTrainer(t.pipe.Model, TrainerOptions{
		AdamW: ac, MaxGradNorm: cfg.MaxGradNorm, Smoothing: cfg.LabelSmoothing, Dropout: true,
		GradientCheckpointing: cfg.GradientCheckpointing, Precision: prec,
		Seed: cfg.Seed, LR: sched.LR,
	})
	if err != nil {
		return err
	}
	t.tr = tr
	if t.dp != nil {
		// MPI: the flat gradient buffer replaces the Trainer's accumulator
		// and is summed over the ranks at GradHook's point.
		t.dp.bind(tr.Params())
		tr.reducer = mpiReducer{t}
	}
	return nil
}

// startNew saves the resolved configuration of a new run (out_dir stored
// relative). claimRunDir has already refused an out_dir that holds another
// run: a new run must not mix its metrics into, or replace the best
// checkpoint of, an earlier run.
func (t *runner) startNew() error {
	return t.cfg.writeRunConfig()
}

// restore reads a resumed run's optimiser state and trainer_state.json
// and checks that the run may continue with this configuration (the same
// seed and MPI rank count; a longer run only with the same data plan).
func (t *runner) restore() error {
	dir, cfg := t.resumeDir, t.cfg
	if err := t.tr.Optimizer().LoadState(filepath.Join(dir, OptimizerFile)); err != nil {
		return fmt.Errorf("resume: %w", err)
	}
	b, err := os.ReadFile(filepath.Join(dir, StateFile))
	if err != nil {
		return fmt.Errorf("resume: %w", err)
	}
	var st TrainerState
	if err := json.Unmarshal(b, &st); err != nil {
		return fmt.Errorf("resume: %s: %w", StateFile, err)
	}
	if err := t.dp.checkResume(st, dir); err != nil {
		return err
	}
	if st.Seed != cfg.Seed {
		return fmt.Errorf("resume: checkpoint was trained with seed %d, configuration says %d", st.Seed, cfg.Seed)
	}
	if err := checkExtension(st, t.total, cfg.BatchSize, cfg.GradAccum, t.train.Len(), dir); err != nil {
		return err
	}
	t.state.Step, t.state.Epoch, t.state.Position, t.state.Corrupt = st.Step, st.Epoch, st.Position, st.Corrupt
	t.state.EvalPending = st.EvalPending
	if st.BestScore != nil && st.BestMetric == t.state.BestMetric {
		t.best, t.hasBest, t.state.BestStep = *st.BestScore, true, st.BestStep
		bs := *st.BestScore
		t.state.BestScore = &bs
	}
	return nil
}

// batchIter yields the training batches: the loader's iterator, or under
// MPI this rank's shard (dataParallel.iterate).
type batchIter interface {
	Next() (*data.LoadedBatch, error)
	Close()
}

// step reads the next step's micro-batches (GradAccum of them, times the
// MPI ranks; fewer at the end of an epoch) and takes the step. Under MPI
// the other ranks' micro-batches come back empty and are skipped; each
// micro-batch keeps its index in the step, which seeds its dropout. A
// failure to read a batch returns res.Step -1 (no step was started).
func (t *runner) step(ctx context.Context, it batchIter) (res StepResult, epochEnded bool, err error) {
	t.micro, t.microK = t.micro[:0], t.microK[:0]
	t.corrupt0 = t.state.Corrupt
	pos := t.state.Position
	for k := 0; k < t.dp.microPerStep(t.cfg); k++ {
		b, err := it.Next()
		if err != nil {
			return StepResult{Step: -1}, false, err
		}
		t.reportCorrupt(b.Corrupt)
		if b.B == 0 { // MPI: another rank's micro-batch, or one without a readable image
			if pos = b.Next; b.Next.Epoch != b.Pos.Epoch {
				break
			}
			continue
		}
		mb := gitmodel.Batch{Pixels: b.Pixels, IDs: b.IDs, AttentionMask: b.AttentionMask, Labels: b.Labels}
		if t.scst != nil { // the sampled captions, rewarded, replace the references (scst.go)
			if mb, err = t.scstBatch(ctx, b, k); err != nil {
				return StepResult{Step: -1}, false, err
			}
		}
		t.micro = append(t.micro, mb)
		t.microK = append(t.microK, k)
		pos = b.Next
		if b.Next.Epoch != b.Pos.Epoch {
			break // the last micro-batches of an epoch make a step of their own
		}
	}
	res, err = t.tr.step(ctx, t.micro, t.microK)
	if err != nil {
		return res, false, err
	}
	epochEnded = pos.Epoch != t.state.Position.Epoch
	t.state.Step = res.Step
	t.state.Position, t.state.Epoch = pos, pos.Epoch
	return res, epochEnded, nil
}

// reportCorrupt reports and counts each unreadable image once (an image
// comes back once per caption and per epoch).
func (t *runner) reportCorrupt(errs []error) {
	for _, e := range errs {
		if msg := e.Error(); !t.badImages[msg] {
			t.badImages[msg] = true
			t.state.Corrupt++
			fmt.Fprintf(t.out, "skipped image: %v\n", e)
		}
	}
}

// log adds a step to the window and, every LogEvery steps and at the end,
// writes a metrics record and a progress line.
func (t *runner) log(res StepResult, sum *Summary, done bool) error {
	w := &t.win
	w.loss += res.Loss
	w.steps++
	w.images += res.Images
	w.gradNorm, w.lr = res.GradNorm, res.LR
	s := t.state.Step
	if (s%max(t.cfg.LogEvery, 1) == 0 || done) && t.dp.leader() { // MPI: rank 0 logs
		el := time.Since(w.start).Seconds()
		r := NewRecord(s)
		r.Epoch = t.epochFrac(t.state.Position)
		r.Loss = w.loss / float64(w.steps)
		r.LR, r.GradNorm = w.lr, w.gradNorm
		if w.rewardN > 0 {
			r.SampleCIDEr = w.reward / float64(w.rewardN)
		}
		if el > 0 {
			r.ImagesPerS = float64(w.images) / el
		}
		sum.LastLoss = r.Loss
		if err := t.metrics.Write(r); err != nil {
			return err
		}
		if t.bar != nil {
			t.bar.Set("info", fmt.Sprintf("loss %.4f lr %.2e %.1f img/s", r.Loss, r.LR, r.ImagesPerS))
		} else {
			extra := ""
			if w.rewardN > 0 {
				extra = fmt.Sprintf(" sample_cider %.4f", r.SampleCIDEr)
			}
			fmt.Fprintf(t.out, "step %d/%d epoch %.2f loss %.4f lr %.3g grad_norm %.3g %.1f img/s%s\n", s, t.total, r.Epoch, r.Loss, r.LR, r.GradNorm, r.ImagesPerS, extra)
		}
		*w = window{start: time.Now()}
	}
	if t.bar != nil {
		t.bar.SetCurrent(int64(s))
	}
	return nil
}

// policy is the checkpoint policy: whether step s (just taken) is evaluated
// and whether a checkpoint is saved (a better evaluation also saves).
func (t *runner) policy(s int, epochEnded, done bool) (doEval, doSave bool) {
	cfg := t.cfg
	if !t.dp.leader() { // MPI: rank 0 alone evaluates and saves
		return false, false
	}
	doEval = t.val != nil && (done || (cfg.EvalEvery > 0 && s%cfg.EvalEvery == 0) || (cfg.EvalEvery == 0 && epochEnded))
	doSave = done || (cfg.SaveEvery > 0 && s%cfg.SaveEvery == 0) || (cfg.SaveEvery == 0 && epochEnded)
	return doEval, doSave
}

// evaluateAndSave evaluates step s when doEval and saves the last
// checkpoint when doSave or the evaluation improved the best score (then the
// best checkpoint too). An interrupted evaluation sets EvalPending, so that
// resuming redoes it first.
func (t *runner) evaluateAndSave(ctx context.Context, s int, doEval, doSave bool) error {
	improved := false
	if doEval {
		var err error
		if improved, err = t.evaluate(ctx, s); err != nil {
			if ctx.Err() != nil {
				t.state.EvalPending = true
			}
			return err
		}
	}
	if doSave || improved {
		return t.save(improved)
	}
	return nil
}

// stopped turns an evaluation error into the run's result: a checkpoint and
// Interrupted when ctx was cancelled, the error otherwise.
func (t *runner) stopped(ctx context.Context, sum *Summary, err error) (Summary, error) {
	if ctx.Err() != nil && t.state.EvalPending {
		return t.interrupted(sum)
	}
	return *sum, err
}

// interrupted saves a checkpoint after ctx was cancelled.
func (t *runner) interrupted(sum *Summary) (Summary, error) {
	t.finishBar()
	fmt.Fprintf(t.out, "interrupted at step %d: saving checkpoint\n", t.state.Step)
	if !t.dp.leader() { // MPI: rank 0 saves
		sum.Interrupted = true
		return *sum, nil
	}
	if err := t.save(false); err != nil {
		return *sum, fmt.Errorf("interrupted; saving the checkpoint failed: %w", err)
	}
	sum.Interrupted = true
	return *sum, nil
}

// summarise fills the summary's final fields.
func (t *runner) summarise(sum *Summary, start time.Time) {
	sum.Steps = t.state.Step
	sum.Epoch = t.epochFrac(t.state.Position)
	sum.ValLoss, sum.ValCIDEr = t.lastVal, t.lastCIDE
	sum.Corrupt = t.state.Corrupt
	sum.Elapsed = time.Since(start)
	if t.hasBest {
		sum.BestScore = t.best
		sum.BestDir = filepath.Join(t.cfg.OutDir, BestCheckpoint)
	}
}

// startBar shows a progress bar when writing to a terminal.
func (t *runner) startBar() {
	f, ok := t.out.(*os.File)
	if !ok || f != os.Stdout || !term.IsTerminal(int(f.Fd())) {
		return
	}
	t.bar = pb.New(t.total)
	t.bar.SetWriter(t.out)
	t.bar.SetTemplateString(barTemplate)
	t.bar.SetCurrent(int64(t.state.Step))
	t.bar.Start()
}

func (t *runner) finishBar() {
	if t.bar != nil {
		t.bar.Finish()
		t.bar = nil
	}
}

// plotOrWarn draws the training curve; it is a convenience, so failing to
// draw it must not end a long run.
func (t *runner) plotOrWarn() {
	if err := t.plot(); err != nil {
		fmt.Fprintf(t.out, "warning: training curve not written: %v\n", err)
	}
}

func countParams(ps []*Param) int {
	n := 0
	for _, p := range ps {
		n += len(p.W)
	}
	return n
}

func (t *runner) epochFrac(pos data.Position) float64 {
	return float64(pos.Epoch) + float64(pos.Batch)/float64(t.train.BatchesPerEpoch())
}

// evaluate computes the validation loss (and CIDEr-D), logs them and reports
// whether the best score improved.
func (t *runner) evaluate(ctx context.Context, step int) (bool, error) {
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
		loss, err := t.tr.EvalLoss(gitmodel.Batch{Pixels: b.Pixels, IDs: b.IDs, AttentionMask: b.AttentionMask, Labels: b.Labels})
		if err != nil {
			return false, err
		}
		// The loss is a mean over the predicted tokens: weight batches by them.
		n := 0
		for r := 0; r < b.B; r++ {
			for c := 1; c < b.T; c++ {
				if b.Labels[r*b.T+c] != data.IgnoreIndex {
					n++
				}
			}
		}
		sumLoss += loss * float64(n)
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
func (t *runner) valCIDEr(ctx context.Context) (float64, error) {
	imgs, gts := caption.GroupByImage(t.val.Pairs())
	caps, err := caption.CaptionImages(ctx, t.pipe, imgs, t.cfg.BatchSize, t.cfg.GenMaxLength)
	if err != nil {
		return 0, err
	}
	c, _, err := caption.CIDErD(imgs, gts, caps)
	return c, err
}

// save writes the last checkpoint (and the best one when best is set).
func (t *runner) save(best bool) error {
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
	return t.afterSave() // checkpoints.go: checkpoint-STEP, save_total_limit, metrics.csv
}

// writeCheckpoint writes a complete HF-layout checkpoint into a temporary
// directory and then swaps it in: the old checkpoint is renamed aside, the
// new one renamed into place, and only then is the old one removed, so that
// a crash at any point leaves a complete checkpoint (under final or
// final.old).
func (t *runner) writeCheckpoint(final string) error {
	if err := recoverCheckpoint(final); err != nil {
		return err
	}
	tmp, err := fsutil.MkdirTemp(t.cfg.OutDir, ".tmp-")
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
	if err := t.tr.Optimizer().SaveState(filepath.Join(tmp, OptimizerFile)); err != nil {
		return err
	}
	for _, name := range tokenizerFiles {
		if err := fsutil.CopyFile(filepath.Join(t.srcDir, name), filepath.Join(tmp, name)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	st, err := json.MarshalIndent(t.state, "", "  ")
	if err != nil {
		return err
	}
	if err := fsutil.WriteFile(filepath.Join(tmp, StateFile), append(st, '\n')); err != nil {
		return err
	}
	if err := fsutil.SyncDir(tmp); err != nil {
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
	if err := fsutil.SyncDir(t.cfg.OutDir); err != nil {
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

func (t *runner) plot() error {
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
