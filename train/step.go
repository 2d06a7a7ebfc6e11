package train

import (
	"context"
	"fmt"

	"github.com/gitcap/gitcap/gitmodel"
	"github.com/gitcap/gitcap/graph"
)

// TrainerOptions configures a Trainer.
type TrainerOptions struct {
	AdamW       AdamWConfig
	MaxGradNorm float64 // clip the global gradient norm to this; <= 0 disables clipping
	Smoothing   float64 // label smoothing of the loss
	Dropout     bool    // dropout on in the training graphs, at the model config's rates
	// GradientCheckpointing recomputes the layers' activations in the
	// backward pass (gitmodel.ForwardOptions.GradientCheckpointing).
	GradientCheckpointing bool
	// Precision is the arithmetic of the training graphs' matrix products
	// (gitmodel.ForwardOptions.Precision): graph.FP32 or graph.BF16
	// (mixed precision; the weights, gradients and AdamW state stay
	// float32). Evaluation graphs (validation loss) stay float32.
	Precision graph.Precision
	// Seed seeds dropout: micro-batch k of step s draws its masks from
	// seedFor(Seed, s, k), so a resumed run draws the masks the
	// uninterrupted run would have.
	Seed int64
	// LR gives the learning rate of step s (steps already taken); nil
	// means a constant 0.
	LR func(step int) float64

	// GradHook, when set, is called once per step after the gradients of
	// all micro-batches have been accumulated (averaged into every
	// optimised Param.G) and before the gradient norm is clipped and AdamW
	// updates the weights. It is the place for a data-parallel all-reduce:
	// it may rewrite each Param.G in place (for example with the mean over
	// ranks) but must not re-slice it. params are the optimised (not
	// frozen) parameters, in a fixed order (sorted by name) that is the same
	// in every process training the same model. An error aborts the step
	// before any weight changes.
	GradHook func(params []*graph.Param) error
}

// NonFiniteStepError stops a step whose loss or gradient norm is NaN or
// infinite; the weights were not changed.
type NonFiniteStepError struct {
	Step  int    // 1-based number of the step
	What  string // "training loss" or "gradient norm"
	Value float64
}

func (e *NonFiniteStepError) Error() string {
	return fmt.Sprintf("step %d: %s is %v", e.Step, e.What, e.Value)
}

// StepResult reports one optimiser step.
type StepResult struct {
	Step     int     // steps taken after this one
	Loss     float64 // mean training loss over the micro-batches
	GradNorm float64 // global gradient norm before clipping
	LR       float64 // learning rate used
	Images   int     // examples in all micro-batches
}

// Trainer is the one training step of the project, shared by the training
// loop, `gitcap bench`, the benchmarks and the parity tests: forward and
// backward over each micro-batch, gradient accumulation, GradHook, clipping
// and AdamW. It owns the compiled training graphs (one per batch shape) and
// the optimiser.
type Trainer struct {
	model  *gitmodel.Model
	opts   TrainerOptions
	params []*graph.Param // optimised: every parameter not Frozen
	opt    *AdamW
	acc    *Accumulator // allocated on the first step with more than one micro-batch
	// reducer, when set (data-parallel training, dataparallel.go), takes
	// over the accumulation of the micro-batch gradients.
	reducer gradReducer
	next    int // steps taken
	// normSums is the gradient norm's scratch: one sum per parameter.
	normSums []float64
	fwd      map[batchShape]*gitmodel.Forward
	eval     map[batchShape]*gitmodel.Forward
}

// batchShape keys the compiled graphs: batch size, text length, text rows
// per image and whether the loss is weighted (SCST, scst.go).
type batchShape struct {
	b, t, perImage int
	weighted       bool
}

func shapeOf(b, t int, in gitmodel.Batch) batchShape {
	return batchShape{b: b, t: t, perImage: max(in.SamplesPerImage, 1), weighted: in.Weights != nil}
}

// gradReducer accumulates a step's gradients across processes in place of
// the Accumulator: add after each of this process's micro-batches (Param.G
// is that micro-batch's gradient), then reduce once per step, even when
// this process ran none of the step's micro-batches, at GradHook's point.
// reduce must leave the mean gradient of all the step's micro-batches in
// every Param.G and turns this process's sums (loss over micro-batches,
// micro-batches, images) into the step's totals.
type gradReducer interface {
	add(params []*graph.Param) error
	reduce(params []*graph.Param, loss float64, micro, images int) (float64, int, int, error)
}

// NewTrainer prepares training of m's parameters that are not Frozen.
func NewTrainer(m *gitmodel.Model, o TrainerOptions) (*Trainer, error) {
	t := &Trainer{model: m, opts: o, fwd: map[batchShape]*gitmodel.Forward{}, eval: map[batchShape]*gitmodel.Forward{}}
	for _, p := range m.Params.All() {
		if !p.Frozen {
			t.params = append(t.params, p)
		}
	}
	opt, err := NewAdamW(t.params, o.AdamW)
	if err != nil {
		return nil, err
	}
	t.opt = opt
	return t, nil
}

// Params returns the optimised parameters.
func (t *Trainer) Params() []*graph.Param { return t.params }

// Optimizer returns the AdamW optimiser (for its state file).
func (t *Trainer) Optimizer() *AdamW { return t.opt }

// Steps returns the number of steps taken (the index of the next step).
func (t *Trainer) Steps() int { return t.next }

// SetSteps sets the number of steps taken, for a resumed run: it decides
// the next step's learning rate and dropout seeds.
func (t *Trainer) SetSteps(n int) { t.next = n }

// Close releases the compiled graphs and stops the optimiser's helper.
func (t *Trainer) Close() {
	for _, f := range t.fwd {
		f.Close()
	}
	for _, f := range t.eval {
		f.Close()
	}
	// The gradients point into the graphs' buffers: let those go too.
	for _, p := range t.params {
		p.G = nil
	}
	t.opt.Close()
}

// Step takes one optimiser step over the micro-batches (at least one): the
// mean of their gradients, then GradHook, clipping and AdamW at the
// learning rate of this step. A non-finite loss or gradient norm is an error
// and leaves the weights untouched. Afterwards every Param.G holds the mean
// gradient before clipping: the clipping factor is applied as AdamW reads
// the gradients (AdamW.StepClipped), not written back.
func (t *Trainer) Step(ctx context.Context, batches ...gitmodel.Batch) (StepResult, error) {
	return t.step(ctx, batches, nil)
}

// step is Step with each micro-batch's index in the step given by ks (nil:
// 0, 1, ...), which seeds its dropout: under MPI a process runs some of a
// step's micro-batches, with the masks the single process would draw.
func (t *Trainer) step(ctx context.Context, batches []gitmodel.Batch, ks []int) (StepResult, error) {
	step := t.next
	r := StepResult{Step: step}
	if len(batches) == 0 && t.reducer == nil {
		return r, fmt.Errorf("step %d: no micro-batches", step+1)
	}
	if err := t.accumulate(step, batches, ks, &r); err != nil {
		return r, err
	}
	if err := t.update(step, &r); err != nil {
		return r, err
	}
	t.next++
	r.Step = t.next
	return r, nil
}

// accumulate runs forward and backward over each micro-batch and leaves the
// mean gradient in every optimised Param.G: "gradients of all micro-batches
// accumulated".
func (t *Trainer) accumulate(step int, batches []gitmodel.Batch, ks []int, r *StepResult) error {
	useAcc := len(batches) > 1 && t.reducer == nil
	if useAcc && t.acc == nil {
		t.acc = NewAccumulator(t.params)
	}
	var loss float64
	for k, in := range batches {
		b, tl, err := t.model.BatchShape(in)
		if err != nil {
			return fmt.Errorf("step %d: %w", step+1, err)
		}
		f, err := t.graph(t.fwd, shapeOf(b, tl, in), true)
		if err != nil {
			return err
		}
		seedK := k
		if ks != nil {
			seedK = ks[k]
		}
		f.Noise().SetSeed(seedFor(t.opts.Seed, int64(step), int64(seedK)))
		if err := f.Run(in); err != nil {
			return fmt.Errorf("step %d: %w", step+1, err)
		}
		l := f.LossValue()
		if !IsFinite(l) {
			return &NonFiniteStepError{Step: step + 1, What: "training loss", Value: l}
		}
		loss += l
		r.Images += b / max(in.SamplesPerImage, 1) // SCST: images, not sampled rows
		if err := f.Grads(func(p *graph.Param, g []float32) {
			p.G = g // the graph's gradient buffer, valid until the next run: no copy
		}); err != nil {
			return err
		}
		switch {
		case t.reducer != nil:
			if err := t.reducer.add(t.params); err != nil {
				return err
			}
		case useAcc:
			if err := t.acc.Add(); err != nil {
				return err
			}
		}
	}
	micro := len(batches)
	switch {
	case t.reducer != nil: // MPI: sum the step's gradients and totals over the ranks
		var err error
		if loss, micro, r.Images, err = t.reducer.reduce(t.params, loss, micro, r.Images); err != nil {
			return fmt.Errorf("step %d: %w", step+1, err)
		}
	case useAcc:
		if err := t.acc.Average(); err != nil {
			return err
		}
	}
	r.Loss = loss / float64(micro)
	return nil
}

// update is GradHook, clipping and the AdamW update.
func (t *Trainer) update(step int, r *StepResult) error {
	if t.opts.GradHook != nil {
		if err := t.opts.GradHook(t.params); err != nil {
			return fmt.Errorf("step %d: gradient hook: %w", step+1, err)
		}
	}
	if t.normSums == nil {
		t.normSums = make([]float64, len(t.params))
	}
	// ClipGradNorm's norm and coefficient; the scaling itself happens in
	// the AdamW pass (StepClipped: the same bits as scaling G first).
	r.GradNorm = gradNorm(t.params, t.normSums)
	if !IsFinite(r.GradNorm) {
		return &NonFiniteStepError{Step: step + 1, What: "gradient norm", Value: r.GradNorm}
	}
	if t.opts.LR != nil {
		r.LR = t.opts.LR(step)
	}
	if c, ok := clipCoef(r.GradNorm, t.opts.MaxGradNorm); ok {
		return t.opt.StepClipped(r.LR, c)
	}
	return t.opt.Step(r.LR)
}

// EvalLoss computes the loss of one batch without dropout or gradients
// (validation), on a graph cached per batch shape.
func (t *Trainer) EvalLoss(in gitmodel.Batch) (float64, error) {
	b, tl, err := t.model.BatchShape(in)
	if err != nil {
		return 0, err
	}
	f, err := t.graph(t.eval, shapeOf(b, tl, in), false)
	if err != nil {
		return 0, err
	}
	if err := f.Run(in); err != nil {
		return 0, err
	}
	return f.LossValue(), nil
}

// graph returns the cached graph for a batch shape, building it on first use.
func (t *Trainer) graph(cache map[batchShape]*gitmodel.Forward, k batchShape, train bool) (*gitmodel.Forward, error) {
	if f := cache[k]; f != nil {
		return f, nil
	}
	opts := gitmodel.ForwardOptions{Loss: true}
	if train {
		opts = gitmodel.ForwardOptions{Train: true, Loss: true, Dropout: t.opts.Dropout, Smoothing: t.opts.Smoothing,
			GradientCheckpointing: t.opts.GradientCheckpointing, Precision: t.opts.Precision}
	}
	opts.Weighted, opts.SamplesPerImage = k.weighted, k.perImage
	if k.weighted {
		opts.Smoothing = 0 // the SCST loss has no label smoothing
	}
	f, err := t.model.NewForward(k.b, k.t, opts)
	if err != nil {
		return nil, fmt.Errorf("building the graph for batch %d x %d tokens: %w", k.b, k.t, err)
	}
	cache[k] = f
	return f, nil
}
