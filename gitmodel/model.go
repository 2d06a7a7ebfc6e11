package gitmodel

import (
	"fmt"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/gitcap/gitcap/graph"
	"github.com/gitcap/gitcap/layers"
)

// Model is GIT: the CLIP vision tower, the visual projection and the BERT
// decoder with its LM head. Its parameters live in Params under the
// HuggingFace state-dict names; graphs built from it share that memory.
type Model struct {
	Config Config
	Params *graph.Params
	// bf16Act: graphs round many-row products' activations to bf16 (BF16Full, bf16.go).
	bf16Act bool

	// CLIP ViT image encoder (git.image_encoder.vision_model).
	patch     *layers.PatchEmbedding
	class     *graph.Param
	visionPos *layers.Embedding
	preLN     *layers.LayerNorm
	vision    []*layers.CLIPBlock
	postLN    *layers.LayerNorm
	temporal  []*graph.Param // one (1,1,C) embedding per video frame

	// Visual projection: Linear then LayerNorm.
	proj   *layers.Linear
	projLN *layers.LayerNorm

	// Text decoder (git.embeddings, git.encoder) and LM head (output).
	words, positions *layers.Embedding
	embLN            *layers.LayerNorm
	decoder          []*layers.BERTBlock
	output           *layers.Linear
}

// Learning-rate groups of the parameters (graph.Param.Group).
const (
	VisionGroup = "vision" // the CLIP image encoder (git.image_encoder.*)
	TextGroup   = "text"   // everything else
)

// GIT's dropout sites; their rates come from the config (DropoutRates) when a
// training graph is built, so changing a rate does not rebuild the model.
const (
	HiddenDropout          graph.DropoutSite = "hidden"           // hidden_dropout_prob: embeddings and decoder residual branches
	AttentionDropout       graph.DropoutSite = "attention"        // attention_probs_dropout_prob: decoder attention
	VisionAttentionDropout graph.DropoutSite = "vision_attention" // vision_config.attention_dropout: CLIP attention
)

// DropoutRates are the config's dropout probabilities by site.
func (c Config) DropoutRates() graph.DropoutRates {
	return graph.DropoutRates{
		HiddenDropout:          c.HiddenDropoutProb,
		AttentionDropout:       c.AttentionProbsDropoutProb,
		VisionAttentionDropout: c.Vision.AttentionDropout,
	}
}

// New builds a model with zero weights (load or initialise them next).
func New(c Config) (*Model, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	textAct, err := graph.ParseActivation(c.HiddenAct)
	if err != nil {
		return nil, fmt.Errorf("hidden_act: %w", err)
	}
	visAct, err := graph.ParseActivation(c.Vision.HiddenAct)
	if err != nil {
		return nil, fmt.Errorf("vision_config.hidden_act: %w", err)
	}
	ps := graph.NewParams(tensor.Float32).WithGroup(TextGroup)
	v, d := c.Vision, c.HiddenSize
	m := &Model{Config: c, Params: ps}

	// The image encoder's parameters form the "vision" learning-rate group.
	vps := ps.WithGroup(VisionGroup)
	const vp = "git.image_encoder.vision_model."
	m.patch = layers.NewPatchEmbedding(vps, vp+"embeddings.patch_embedding.weight", v.NumChannels, v.PatchSize, v.HiddenSize)
	m.class = vps.NewRole(vp+"embeddings.class_embedding", graph.RoleEmbedding, v.HiddenSize)
	m.visionPos = layers.NewEmbedding(vps, vp+"embeddings.position_embedding.weight", v.Tokens(), v.HiddenSize)
	m.preLN = layers.NewLayerNorm(vps, vp+"pre_layrnorm", v.HiddenSize, v.LayerNormEps) // sic: HF's name
	for i := 0; i < v.NumHiddenLayers; i++ {
		m.vision = append(m.vision, layers.NewCLIPBlock(vps, fmt.Sprintf(vp+"encoder.layers.%d", i),
			v.HiddenSize, v.IntermediateSize, v.NumAttentionHeads, visAct, v.LayerNormEps, VisionAttentionDropout))
	}
	m.postLN = layers.NewLayerNorm(vps, vp+"post_layernorm", v.HiddenSize, v.LayerNormEps)
	if c.Video() {
		for f := 0; f < c.Frames(); f++ {
			m.temporal = append(m.temporal, ps.NewRole(fmt.Sprintf("git.img_temperal_embedding.%d", f), graph.RoleEmbedding, 1, 1, v.HiddenSize))
		}
	}

	m.proj = layers.NewLinear(ps, "git.visual_projection.visual_projection.0", v.HiddenSize, d, true)
	m.projLN = layers.NewLayerNorm(ps, "git.visual_projection.visual_projection.1", d, v.LayerNormEps)

	m.words = layers.NewEmbedding(ps, "git.embeddings.word_embeddings.weight", c.VocabSize, d).SetPadding(c.PadTokenID)
	m.positions = layers.NewEmbedding(ps, "git.embeddings.position_embeddings.weight", c.MaxPositionEmbeddings, d)
	m.embLN = layers.NewLayerNorm(ps, "git.embeddings.LayerNorm", d, c.LayerNormEps)
	for i := 0; i < c.NumHiddenLayers; i++ {
		m.decoder = append(m.decoder, layers.NewBERTBlock(ps, fmt.Sprintf("git.encoder.layer.%d", i),
			d, c.IntermediateSize, c.NumAttentionHeads, textAct, c.LayerNormEps, HiddenDropout, AttentionDropout))
	}
	if c.TieWordEmbeddings {
		m.output = &layers.Linear{W: m.words.W, B: ps.NewRole("output.bias", graph.RoleBias, c.VocabSize)}
	} else {
		m.output = layers.NewLinear(ps, "output", d, c.VocabSize, true)
	}
	return m, nil
}

// Shape is the size of a full-sequence graph's activations: Batch
// examples, each of Image image tokens followed by Text text tokens.
type Shape struct{ Batch, Image, Text int }

// Seq is the decoder's sequence length per example.
func (s Shape) Seq() int { return s.Image + s.Text }

// Decoder is the decoder's layout: Batch sequences of Seq tokens.
func (s Shape) Decoder() layers.Seq { return layers.Seq{Batch: s.Batch, Len: s.Seq()} }

// fullInputs are the bound input nodes of a full-sequence graph.
type fullInputs struct {
	frames   []*G.Node // per frame: patches (Batch·Patches, channels·patch²)
	ids, pos *G.Node   // (Batch·Text) ints
	keep     *G.Node   // (Batch·Text) ints: the attention mask, 0 for padding
	targets  *G.Node   // (Batch·(Text-1)) ints, filled by shiftLabels; nil without a loss
	weights  *G.Node   // (Batch·(Text-1)) per-target loss weights (scst.go); nil: plain cross-entropy
	perImage int       // text rows per image (scst.go); 0 or 1: one
}

// forward is GIT's full-sequence pass, top-down as in the paper's figure:
// image tokens (CLIP tower and projection) followed by the text embedding,
// one decoder over both under GIT's mask, the LM head, and the shifted loss
// (the logit at each text position predicts the next label). opts says
// which outputs to build; they are stored in f.
func (m *Model) forward(b *graph.Builder, in fullInputs, s Shape, opts ForwardOptions, f *Forward) {
	// The samples of one image (SCST) share one pass of the vision tower.
	vs := s
	vs.Batch = s.Batch / max(in.perImage, 1)
	img, vision := m.encodeImages(b, in.frames, vs, f.rc)
	f.Vision, f.Projected = vision, img
	if opts.VisionOnly {
		return
	}
	img = shareImages(img, in.perImage, s)
	text := m.EmbedText(b, in.ids, in.pos)
	x := graph.ConcatSeq(s.Batch, img, text)
	n := s.Seq()
	// The GIT mask: image↔image full, text→image full, text→text causal,
	// padded text hidden. Every query sits at its own position.
	qpos := b.Const("query_positions", repeatRange(s.Batch, n))
	mask := graph.PrefixCausalMask(b.Dtype, qpos, in.keep, graph.MaskShape{B: s.Batch, Tq: n, Tk: n, Prefix: s.Image})
	last := make([]int, s.Batch) // each example's last position
	for i := range last {
		last[i] = i*n + n - 1
	}
	if opts.Last && !opts.AllLogits && in.targets == nil && f.rc == nil {
		// A prefix graph (generation) reads every layer's keys and values
		// but only the last position's output: its last layer computes
		// the output of that row alone (Decoder.Last and the last Hidden
		// are then (Batch, hidden)), under that row of the mask.
		lpos := make([]int, s.Batch)
		for i := range lpos {
			lpos[i] = n - 1
		}
		lmask := graph.PrefixCausalMask(b.Dtype, b.Const("last_positions", lpos), in.keep, graph.MaskShape{B: s.Batch, Tq: 1, Tk: n, Prefix: s.Image})
		f.Decoder = m.decodeLast(b, x, mask, lmask, last, s.Decoder())
		b.BatchInvariant(func() { f.LastLogits = m.Logits(b, f.Decoder.Last) }) // one row per sequence, alone or batched
		return
	}
	f.Decoder = m.decode(b, x, mask, nil, s.Decoder(), f.rc)
	if opts.AllLogits {
		f.Logits = m.Logits(b, f.Decoder.Last)
	}
	if opts.Last {
		b.BatchInvariant(func() { f.LastLogits = m.Logits(b, graph.Rows(f.Decoder.Last, last)) })
	}
	if in.targets != nil {
		rows := lossRows(s)
		var logits *G.Node
		if f.Logits != nil {
			logits = graph.Rows(f.Logits, rows)
		} else {
			logits = m.Logits(b, graph.Rows(f.Decoder.Last, rows))
		}
		if in.weights != nil {
			f.Loss = graph.WeightedCrossEntropy(logits, in.targets, in.weights)
		} else {
			f.Loss = graph.CrossEntropy(logits, in.targets, opts.Smoothing)
		}
	}
}

// lossRows are the decoder rows whose logits enter the loss:
// logits[:, Image:-1] predict labels[:, 1:].
func lossRows(s Shape) []int {
	n := s.Seq()
	rows := make([]int, 0, s.Batch*(s.Text-1))
	for i := 0; i < s.Batch; i++ {
		for j := 0; j < s.Text-1; j++ {
			rows = append(rows, i*n+s.Image+j)
		}
	}
	return rows
}

// shiftLabels writes labels[:, 1:] of a (batch, t) label matrix into dst:
// the targets of lossRows.
func shiftLabels(dst, labels []int, batch, t int) {
	k := 0
	for i := 0; i < batch; i++ {
		for j := 1; j < t; j++ {
			dst[k] = labels[i*t+j]
			k++
		}
	}
}

// stepInputs are the bound inputs of a decode step over Rows independent
// generations, each with a KV cache of Slots positions.
type stepInputs struct {
	ids, pos *G.Node   // (Rows) ints: each row's new token and its text position
	at       *G.Node   // (Rows) ints: each row's length so far, the cache slot of its new token
	k, v     []*G.Node // per decoder layer, the cache (Rows·Slots, hidden)
	rows     int
	slots    int
}

// decodeStep is GIT's one-token pass: each row's token is embedded at its
// own text position, its keys and values are written into its own KV
// cache at its own length, and it attends to its cache under the GIT
// mask's text row: the image prefix, the prompt and its earlier tokens,
// up to and including itself (later slots, empty or stale, are hidden).
// Rows are independent, so rows can join or leave between tokens. It
// returns the next-token logits (Rows, vocab).
func (m *Model) decodeStep(b *graph.Builder, in stepInputs) *G.Node {
	x := m.EmbedText(b, in.ids, in.pos)
	mask := graph.PrefixCausalMask(b.Dtype, in.at, nil, graph.MaskShape{B: in.rows, Tq: 1, Tk: in.slots, Prefix: m.Config.ImageTokens()})
	cache := make([]layers.KVCache, len(in.k))
	for l := range cache {
		cache[l] = layers.KVCache{K: in.k[l], V: in.v[l], At: in.at, Slots: in.slots}
	}
	out := m.Decode(b, x, mask, cache, layers.Seq{Batch: in.rows, Len: 1})
	return m.Logits(b, out.Last)
}

// VisionOut is what the vision tower produces for one frame.
type VisionOut struct {
	Hidden []*G.Node // after the embeddings+pre_layrnorm, then after each layer
	Last   *G.Node   // post_layernorm of every token: (B·Tokens, vision hidden)
}

// EncodeFrame runs the CLIP vision tower on patches (s.Batch·Patches,
// channels·patch²) cut from s.Batch images (see layers.Patchify).
func (m *Model) EncodeFrame(b *graph.Builder, patches *G.Node, s Shape) VisionOut {
	return m.encodeFrame(b, patches, s, nil)
}

// encodeFrame is EncodeFrame, with the layers checkpointed when rc is set.
func (m *Model) encodeFrame(b *graph.Builder, patches *G.Node, s Shape, rc *recompute) VisionOut {
	v := m.Config.Vision
	seq := layers.Seq{Batch: s.Batch, Len: v.Tokens()} // class token + patches
	x := m.patch.Forward(b, patches)
	cls := graph.Embed(b.Param(m.class, 1, v.HiddenSize), b.Const("zeros", make([]int, s.Batch)))
	x = graph.ConcatSeq(s.Batch, cls, x)
	x = layers.Add(x, m.visionPos.Forward(b, b.Const("vision_positions", repeatRange(s.Batch, seq.Len))))
	x = m.preLN.Forward(b, x)
	out := VisionOut{Hidden: []*G.Node{x}}
	for _, l := range m.vision {
		if rc != nil {
			tpl := m.vision[0]
			seg := rc.segment(b, "vision", tpl.Params(), x, nil, func(sb *graph.Builder, x *G.Node, _ G.Nodes) *G.Node {
				return tpl.Forward(sb, x, seq)
			})
			x = graph.Checkpoint(b, seg, x, nil, paramNodes(b, l.Params()))
		} else {
			x = l.Forward(b, x, seq)
		}
		out.Hidden = append(out.Hidden, x)
	}
	out.Last = m.postLN.Forward(b, x)
	return out
}

// EncodeImages runs the vision tower on each frame, adds each frame's
// temporal embedding (video checkpoints), joins the frames along the
// sequence and projects them to the decoder width: (s.Batch·s.Image,
// hidden).
func (m *Model) EncodeImages(b *graph.Builder, frames []*G.Node, s Shape) (img *G.Node, vision []VisionOut) {
	return m.encodeImages(b, frames, s, nil)
}

func (m *Model) encodeImages(b *graph.Builder, frames []*G.Node, s Shape, rc *recompute) (img *G.Node, vision []VisionOut) {
	parts := make([]*G.Node, len(frames))
	for f, patches := range frames {
		vo := m.encodeFrame(b, patches, s, rc)
		vision = append(vision, vo)
		parts[f] = vo.Last
		if m.temporal != nil {
			parts[f] = graph.AddRow(vo.Last, b.Param(m.temporal[f], m.Config.Vision.HiddenSize))
		}
	}
	x := parts[0]
	if len(parts) > 1 {
		x = graph.ConcatSeq(s.Batch, parts...)
	}
	return m.projLN.Forward(b, m.proj.Forward(b, x)), vision
}

// EmbedText embeds token ids at the given positions (both (N) ints):
// word + position embedding, LayerNorm, dropout.
func (m *Model) EmbedText(b *graph.Builder, ids, positions *G.Node) *G.Node {
	x := layers.Add(m.words.Forward(b, ids), m.positions.Forward(b, positions))
	return b.Dropout(m.embLN.Forward(b, x), HiddenDropout)
}

// DecoderOut is what the decoder stack produces.
type DecoderOut struct {
	Hidden []*G.Node // the input sequence, then the output of each layer
	K, V   []*G.Node // each layer's keys and values of this call's tokens (a prefix fills a KV cache with them)
	Last   *G.Node
}

// Decode runs the decoder layers over x (s.Rows() rows) with an additive
// mask (Batch, Len, Len or Slots). With a KV cache (one per layer) it is a
// decode step: each layer writes this call's keys and values into its
// cache and attends to the cache; otherwise cache is nil.
func (m *Model) Decode(b *graph.Builder, x, mask *G.Node, cache []layers.KVCache, s layers.Seq) DecoderOut {
	return m.decode(b, x, mask, cache, s, nil)
}

// decode is Decode, with the layers checkpointed when rc is set (no cache:
// training; the layers' keys and values are then not outputs).
func (m *Model) decode(b *graph.Builder, x, mask *G.Node, cache []layers.KVCache, s layers.Seq, rc *recompute) DecoderOut {
	out := DecoderOut{Hidden: []*G.Node{x}}
	for i, l := range m.decoder {
		if rc != nil && cache == nil {
			tpl := m.decoder[0]
			seg := rc.segment(b, "decoder", tpl.Params(), x, G.Nodes{mask}, func(sb *graph.Builder, x *G.Node, extra G.Nodes) *G.Node {
				y, _, _ := tpl.Forward(sb, x, extra[0], nil, s)
				return y
			})
			x = graph.Checkpoint(b, seg, x, G.Nodes{mask}, paramNodes(b, l.Params()))
			out.Hidden = append(out.Hidden, x)
			continue
		}
		var kv *layers.KVCache
		if cache != nil {
			kv = &cache[i]
		}
		var k, v *G.Node
		x, k, v = l.Forward(b, x, mask, kv, s)
		out.Hidden = append(out.Hidden, x)
		out.K, out.V = append(out.K, k), append(out.V, v)
	}
	out.Last = x
	return out
}

// decodeLast is decode (no cache) whose last layer computes only the rows
// in last (one per sequence) under lmask (Batch, 1, Len): every layer's
// keys and values, and Last (len(last), hidden).
func (m *Model) decodeLast(b *graph.Builder, x, mask, lmask *G.Node, last []int, s layers.Seq) DecoderOut {
	out := DecoderOut{Hidden: []*G.Node{x}}
	for i, l := range m.decoder {
		var k, v *G.Node
		if i == len(m.decoder)-1 {
			x, k, v = l.ForwardRows(b, x, lmask, last, s)
		} else {
			x, k, v = l.Forward(b, x, mask, nil, s)
		}
		out.Hidden = append(out.Hidden, x)
		out.K, out.V = append(out.K, k), append(out.V, v)
	}
	out.Last = x
	return out
}

// Logits applies the LM head to hidden rows (N, hidden): (N, vocab).
func (m *Model) Logits(b *graph.Builder, h *G.Node) *G.Node { return m.output.Forward(b, h) }

// repeatRange returns 0..n-1 repeated b times.
func repeatRange(b, n int) []int {
	out := make([]int, b*n)
	for i := range out {
		out[i] = i % n
	}
	return out
}

// recompute holds a training graph's checkpointed segments (gradient
// checkpointing), one per kind of layer, compiled on first use.
type recompute struct {
	segs map[string]*graph.Segment
}

// segment returns the segment of a kind of layer, compiling it from the
// template layer's forward on first use.
func (r *recompute) segment(b *graph.Builder, kind string, tpl []*graph.Param, x *G.Node, extra G.Nodes, fn func(*graph.Builder, *G.Node, G.Nodes) *G.Node) *graph.Segment {
	if s := r.segs[kind]; s != nil {
		return s
	}
	var shapes [][]int
	for _, e := range extra {
		shapes = append(shapes, e.Shape().Clone())
	}
	s, err := graph.NewSegment(b, kind, tpl, x.Shape().Clone(), shapes, fn)
	if err != nil {
		graph.Fail(err)
	}
	if r.segs == nil {
		r.segs = map[string]*graph.Segment{}
	}
	r.segs[kind] = s
	return s
}

func (r *recompute) close() {
	if r == nil {
		return
	}
	for _, s := range r.segs {
		s.Close()
	}
}

// paramNodes are the parameters' nodes in b.
func paramNodes(b *graph.Builder, ps []*graph.Param) G.Nodes {
	ns := make(G.Nodes, len(ps))
	for i, p := range ps {
		ns[i] = b.Param(p)
	}
	return ns
}
