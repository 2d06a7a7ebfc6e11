package gitmodel

import (
	"fmt"
	"math"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/gitcap/gitcap/graph"
	"github.com/gitcap/gitcap/layers"
)

// Batch is one batch of model inputs, laid out as HF's forward takes them.
type Batch struct {
	Pixels        []float32 // (B, Frames, C, H, W), normalised as the image processor does
	IDs           []int     // (B, T) token ids
	AttentionMask []int     // (B, T): 1 for tokens, 0 for padding; nil means all ones
	Labels        []int     // (B, T): targets, graph.IgnoreIndex skipped; nil when no loss is wanted
	// Weights (B, T), aligned with Labels, weighs each target's loss
	// (graph.WeightedCrossEntropy; a graph built with
	// ForwardOptions.Weighted needs it); nil otherwise.
	Weights []float32
	// SamplesPerImage is the number of consecutive text rows that share one
	// image: Pixels then holds B/SamplesPerImage images (0 means 1).
	SamplesPerImage int
}

// ForwardOptions selects what a forward graph computes.
type ForwardOptions struct {
	Train      bool    // gradients for every parameter (implies Loss)
	Dropout    bool    // a training-mode graph: dropout at the config's rates (Config.DropoutRates)
	Loss       bool    // the language-modelling loss from Batch.Labels
	AllLogits  bool    // logits at every position, image tokens included, as HF returns them
	Last       bool    // logits at each example's last position only (generation)
	VisionOnly bool    // only the image encoder and projection (no decoder)
	Smoothing  float64 // label smoothing of the loss
	// GradientCheckpointing (training graphs) recomputes each vision and
	// decoder layer's activations in the backward pass instead of keeping
	// them (HF's gradient_checkpointing): less memory, one more forward
	// pass of the layers. The layers' hidden states are still outputs; their
	// keys and values are not.
	GradientCheckpointing bool
	// Weighted makes the loss graph.WeightedCrossEntropy with Batch.Weights
	// (self-critical sequence training); Smoothing must be 0.
	Weighted bool
	// SamplesPerImage is Batch.SamplesPerImage for this graph: the vision
	// tower runs once per image and its tokens feed that many text rows.
	SamplesPerImage int
	// Precision is the arithmetic of the graph's matrix products
	// (graph.WithPrecision): graph.FP32 (the zero value) or graph.BF16,
	// mixed-precision training (bf16 inputs, float32 accumulation, float32
	// weights and gradients).
	Precision graph.Precision
}

// Forward is a compiled full-sequence graph for batches of B examples of T
// text tokens: built once, run many times. Some of its nodes' values are
// readable after Run until the next Run: the nodes in its fields (outputs,
// hidden states, loss) and, in a training graph, the gradients, in an
// inference graph the layers' keys and values (Decoder.K, Decoder.V). Its
// other nodes share memory (graph.ShareBuffers).
type Forward struct {
	m      *Model
	B, T   int
	N      int // decoder positions per example: image tokens + T
	opts   ForwardOptions
	b      *graph.Builder
	vm     G.VM
	learn  G.Nodes // parameter nodes
	grads  G.Nodes // their gradient nodes
	params []*graph.Param
	rc     *recompute // checkpointed segments (GradientCheckpointing)

	// Inputs, bound once; Run writes into their memory.
	patches          [][]float32
	ids, pos, target []int
	keep             []int     // the attention mask (all ones without one)
	weights          []float32 // with opts.Weighted: per-target weights, filled by shiftWeights
	images           int       // images per batch: B / SamplesPerImage

	Vision     []VisionOut // per frame
	Projected  *G.Node     // (B·ImageTokens, hidden)
	Decoder    DecoderOut
	Logits     *G.Node // (B·N, vocab) with AllLogits
	LastLogits *G.Node // (B, vocab) with Last
	Loss       *G.Node // scalar with Loss

	// Shared is what buffer sharing saved (the values of the nodes not
	// named above are not meaningful after Run: see graph.ShareBuffers).
	Shared graph.ShareStats
}

// NewForward builds and compiles a forward graph.
func (m *Model) NewForward(batch, textLen int, opts ForwardOptions) (*Forward, error) {
	c := m.Config
	nImg := c.ImageTokens()
	f := &Forward{m: m, B: batch, T: textLen, N: nImg + textLen, opts: opts}
	if textLen < 1 || batch < 1 {
		return nil, fmt.Errorf("forward graph needs a batch and text length of at least 1, got %d×%d", batch, textLen)
	}
	if opts.VisionOnly && (opts.Train || opts.Loss || opts.Last || opts.AllLogits) {
		return nil, fmt.Errorf("a vision-only graph has no decoder outputs")
	}
	per := max(opts.SamplesPerImage, 1)
	if batch%per != 0 {
		return nil, fmt.Errorf("forward graph: batch %d is not a multiple of %d samples per image", batch, per)
	}
	if opts.Weighted && opts.Smoothing != 0 {
		return nil, fmt.Errorf("forward graph: a weighted loss takes no label smoothing")
	}
	f.images = batch / per
	if textLen > c.MaxPositionEmbeddings {
		return nil, fmt.Errorf("text length %d exceeds max_position_embeddings %d", textLen, c.MaxPositionEmbeddings)
	}
	bo := []graph.BuilderOption{graph.WithPrecision(opts.Precision)}
	if opts.Dropout {
		bo = append(bo, graph.WithDropout(c.DropoutRates()))
	}
	b := graph.NewBuilder(tensor.Float32, append(bo, m.bf16Options()...)...)
	f.b = b
	if opts.GradientCheckpointing {
		if !opts.Train {
			return nil, fmt.Errorf("gradient checkpointing needs a training graph")
		}
		f.rc = &recompute{}
	}
	err := graph.Build(func() {
		v := c.Vision
		patchLen := v.NumChannels * v.PatchSize * v.PatchSize
		var in fullInputs
		for i := 0; i < c.Frames(); i++ {
			buf := make([]float32, f.images*v.Patches()*patchLen)
			f.patches = append(f.patches, buf)
			in.frames = append(in.frames, bind(b, fmt.Sprintf("patches%d", i), buf, f.images*v.Patches(), patchLen))
		}
		f.ids = make([]int, batch*textLen)
		f.pos = repeatRange(batch, textLen)
		f.keep = make([]int, batch*textLen)
		in.ids = b.Const("input_ids", f.ids)
		in.pos = b.Const("position_ids", f.pos)
		in.keep = b.Const("attention_mask", f.keep)
		if !opts.VisionOnly && (opts.Loss || opts.Train) {
			f.target = make([]int, batch*(textLen-1))
			in.targets = b.Const("targets", f.target)
			if opts.Weighted {
				f.weights = make([]float32, batch*(textLen-1))
				in.weights = bind(b, "loss_weights", f.weights, batch*(textLen-1))
			}
		}
		in.perImage = per
		m.forward(b, in, Shape{Batch: batch, Image: nImg, Text: textLen}, opts, f)
		if opts.Train {
			f.learn, f.params = b.Learnables()
			grads, err := G.Grad(f.Loss, f.learn...)
			if err != nil {
				graph.Fail(err)
			}
			f.grads = grads
		}
	})
	if err != nil {
		f.rc.close()
		return nil, fmt.Errorf("building the forward graph: %w", err)
	}
	// What is read after a run keeps its own buffer: the outputs
	// (Forward's fields) and, in a training graph, the gradients, in an
	// inference graph the layers' keys and values (a prefix fills a KV
	// cache with them). Every other op output shares memory with outputs
	// not alive at the same time: activation gradients above all in
	// training; in inference, a layer's intermediate values (projections,
	// the MLP's hidden layer) then reuse the previous layer's memory, which
	// is still in cache, instead of each writing memory of its own.
	keep := append(f.outputs(), f.grads...)
	if !opts.Train {
		keep = append(append(keep, f.Decoder.K...), f.Decoder.V...)
	}
	if f.Shared, err = graph.ShareBuffers(b.G, keep); err != nil {
		f.rc.close()
		return nil, fmt.Errorf("planning the graph's buffers: %w", err)
	}
	// Gradients are read from the gradient nodes themselves (no dual
	// values: they would hold a second copy of every gradient).
	var vmOpts []G.VMOpt
	if opts.Train {
		vmOpts = graph.TapeOptions() // the gradient sums on both cores
	}
	f.vm = G.NewTapeMachine(b.G, vmOpts...)
	return f, nil
}

// bind makes a float32 input node whose value is buf itself.
func bind(b *graph.Builder, name string, buf []float32, shape ...int) *G.Node {
	t := tensor.New(tensor.WithShape(shape...), tensor.WithBacking(buf))
	return G.NewTensor(b.G, tensor.Float32, len(shape), G.WithShape(shape...), G.WithValue(t), G.WithName(name))
}

// outputs are the nodes in f's fields that stay readable after a training
// run (the layers' keys and values are not among them).
func (f *Forward) outputs() G.Nodes {
	ns := G.Nodes{f.Projected, f.Logits, f.LastLogits, f.Loss, f.Decoder.Last}
	ns = append(ns, f.Decoder.Hidden...)
	for _, v := range f.Vision {
		ns = append(append(ns, v.Last), v.Hidden...)
	}
	out := ns[:0]
	for _, n := range ns {
		if n != nil {
			out = append(out, n)
		}
	}
	return out
}

// Close releases the compiled machine.
func (f *Forward) Close() {
	f.vm.Close()
	f.rc.close()
}

// Noise is the dropout noise source of a training graph.
func (f *Forward) Noise() *graph.Noise { return f.b.Noise }

// Run computes the graph on one batch.
func (f *Forward) Run(in Batch) error {
	c := f.m.Config
	v := c.Vision
	frames := c.Frames()
	img := v.NumChannels * v.ImageSize * v.ImageSize
	if max(in.SamplesPerImage, 1) != f.B/f.images {
		return fmt.Errorf("batch has %d samples per image, the graph %d", max(in.SamplesPerImage, 1), f.B/f.images)
	}
	if len(in.Pixels) != f.images*frames*img {
		return fmt.Errorf("pixel values: got %d floats, want %d (%d images × %d frames × %d×%d×%d)",
			len(in.Pixels), f.images*frames*img, f.images, frames, v.NumChannels, v.ImageSize, v.ImageSize)
	}
	if f.weights != nil && len(in.Weights) != f.B*f.T {
		return fmt.Errorf("loss weights: got %d, want %d", len(in.Weights), f.B*f.T)
	}
	if len(in.IDs) != f.B*f.T {
		return fmt.Errorf("input ids: got %d, want %d (batch %d × %d tokens)", len(in.IDs), f.B*f.T, f.B, f.T)
	}
	if in.AttentionMask != nil && len(in.AttentionMask) != f.B*f.T {
		return fmt.Errorf("attention mask: got %d values, want %d", len(in.AttentionMask), f.B*f.T)
	}
	if f.Loss != nil && len(in.Labels) != f.B*f.T {
		return fmt.Errorf("labels: got %d, want %d", len(in.Labels), f.B*f.T)
	}
	for i, id := range in.IDs {
		if id < 0 || id >= c.VocabSize {
			return fmt.Errorf("input id %d at position %d is outside the vocabulary (%d)", id, i, c.VocabSize)
		}
	}
	for fr := 0; fr < frames; fr++ {
		for i := 0; i < f.images; i++ {
			src := in.Pixels[(i*frames+fr)*img : (i*frames+fr+1)*img]
			dst := f.patches[fr][i*v.Patches()*v.NumChannels*v.PatchSize*v.PatchSize:][:v.Patches()*v.NumChannels*v.PatchSize*v.PatchSize]
			if err := layers.Patchify(dst, src, 1, v.NumChannels, v.ImageSize, v.ImageSize, v.PatchSize); err != nil {
				return err
			}
		}
	}
	copy(f.ids, in.IDs)
	if in.AttentionMask != nil {
		copy(f.keep, in.AttentionMask)
	} else {
		for i := range f.keep {
			f.keep[i] = 1
		}
	}
	if f.Loss != nil {
		shiftLabels(f.target, in.Labels, f.B, f.T)
		if f.weights != nil {
			shiftWeights(f.weights, in.Weights, f.B, f.T)
		}
	}
	f.vm.Reset()
	return f.vm.RunAll()
}

// LossValue returns the loss of the last Run.
func (f *Forward) LossValue() float64 {
	switch v := f.Loss.Value().(type) {
	case *G.F32:
		return float64(*v)
	case *G.F64:
		return float64(*v)
	}
	return math.NaN()
}

// Grads calls fn with every parameter and its gradient from the last Run of
// a training graph. The gradient slice is valid until the next Run. A
// parameter used through several views (none today) would be reported once
// per view.
func (f *Forward) Grads(fn func(p *graph.Param, grad []float32)) error {
	if f.grads == nil {
		return fmt.Errorf("not a training graph: no gradients")
	}
	for i, n := range f.grads {
		v := n.Value()
		if v == nil {
			return fmt.Errorf("gradient of %s was not computed", f.params[i].Name)
		}
		fn(f.params[i], v.Data().([]float32))
	}
	return nil
}

// Values returns a node's value as float32s (valid until the next Run),
// without allocating.
func Values(n *G.Node) []float32 {
	if d, ok := n.Value().(*tensor.Dense); ok && d.Dtype() == tensor.Float32 {
		return d.Float32s()
	}
	return n.Value().Data().([]float32)
}

// BatchShape returns the batch size and text length of in: the batch size
// from the pixel values (Frames images of the configured size per example),
// the text length from the ids.
func (m *Model) BatchShape(in Batch) (batch, textLen int, err error) {
	c := m.Config
	v := c.Vision
	img := c.Frames() * v.NumChannels * v.ImageSize * v.ImageSize
	if len(in.Pixels) == 0 || len(in.Pixels)%img != 0 {
		return 0, 0, fmt.Errorf("pixel values: got %d floats, not a whole number of %d-frame %d×%d×%d examples",
			len(in.Pixels), c.Frames(), v.NumChannels, v.ImageSize, v.ImageSize)
	}
	batch = len(in.Pixels) / img * max(in.SamplesPerImage, 1)
	if len(in.IDs) == 0 || len(in.IDs)%batch != 0 {
		return 0, 0, fmt.Errorf("input ids: got %d for a batch of %d", len(in.IDs), batch)
	}
	return batch, len(in.IDs) / batch, nil
}
