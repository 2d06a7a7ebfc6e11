package gitmodel

import (
	"fmt"
	"math"

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

// fullInputs are the bound input nodes of a full-sequence graph.
type fullInputs struct {
	frames   []*G.Node // per frame: patches (Batch·Patches, channels·patch²)
	ids, pos *G.Node   // (Batch·Text) ints
	mask     *G.Node   // (Batch, Seq, Seq) additive, filled by FillMask
	targets  *G.Node   // (Batch·(Text-1)) ints, filled by shiftLabels; nil without a loss
	weights  *G.Node   // (Batch·(Text-1)) per-target loss weights (scst.go); nil: plain cross-entropy
	perImage int       // text rows per image (scst.go); 0 or 1: one
}

// forward is GIT's full-sequence pass, top-down as in the paper's figure:
// image tokens (CLIP tower and projection) followed by the text embedding,
// one decoder over both under GIT's mask (FillMask: image↔image full,
// text→image full, text→text causal, padding hidden), the LM head, and the
// shifted loss (the logit at each text position predicts the next label).
// opts says which outputs to build; they are stored in f.
func (m *Model) forward(b *graph.Builder, in fullInputs, s Shape, opts ForwardOptions, f *Forward) {
	img, vision := m.EncodeImages(b, in.frames, s.Batch/max(in.perImage, 1))
	f.Vision, f.Projected = vision, img
	if opts.VisionOnly {
		return
	}
	img = shareImages(img, in.perImage, s)
	text := m.EmbedText(b, in.ids, in.pos)
	x := graph.ConcatSeq(s.Batch, img, text)
	n := s.Seq()
	f.Decoder = m.Decode(b, x, in.mask, nil, graph.AttentionShape{B: s.Batch, Tq: n, Tk: n})
	if opts.AllLogits {
		f.Logits = m.Logits(b, f.Decoder.Last)
	}
	if opts.Last {
		last := make([]int, s.Batch)
		for i := range last {
			last[i] = i*n + n - 1
		}
		f.LastLogits = m.Logits(b, graph.Rows(f.Decoder.Last, last))
	}
	if in.targets != nil {
		rows := lossRows(s.Batch, s.Image, s.Text)
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
// logits[:, nImg:-1] predict labels[:, 1:] (rows of a (batch, nImg+t)
// sequence).
func lossRows(batch, nImg, t int) []int {
	n := nImg + t
	rows := make([]int, 0, batch*(t-1))
	for i := 0; i < batch; i++ {
		for j := 0; j < t-1; j++ {
			rows = append(rows, i*n+nImg+j)
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

// FillMask writes GIT's attention mask (the GIT mask of the paper) as an
// additive mask (B, N, N), N = nImg + T:
// image queries see every image key and no text key; text queries see every
// image key and the text keys up to their own position, minus padded keys
// (attention 0). attn (B,T) may be nil (no padding).
func FillMask(dst []float32, batch, nImg, t int, attn []int) {
	n := nImg + t
	negInf := float32(math.Inf(-1)) // exp() of it is 0
	for b := 0; b < batch; b++ {
		for q := 0; q < n; q++ {
			row := dst[(b*n+q)*n : (b*n+q+1)*n]
			for k := range row {
				switch {
				case k < nImg:
					row[k] = 0
				case q < nImg || k > q:
					row[k] = negInf
				case attn != nil && attn[b*t+k-nImg] == 0:
					row[k] = negInf
				default:
					row[k] = 0
				}
			}
		}
	}
}

// fillStepMask writes one decode-step row's additive mask over its Tmax
// cache slots and the new token: the first length slots (image prefix,
// prompt and earlier tokens of this row) and the token itself are visible,
// later slots (empty or stale) are not. Rows are independent: each has its
// own length, so rows can join or leave between tokens.
func fillStepMask(row []float32, length int) {
	tmax := len(row) - 1
	negInf := float32(math.Inf(-1))
	for j := 0; j < tmax; j++ {
		if j < length {
			row[j] = 0
		} else {
			row[j] = negInf
		}
	}
	row[tmax] = 0 // the token itself
}

// decodeStep is GIT's one-token pass over rows independent generations:
// each row's token is embedded at its own text position, attends to its
// own KV cache (masked by fillStepMask) and yields its next-token logits
// and this token's keys and values (written back by writeKV).
func (m *Model) decodeStep(b *graph.Builder, ids, pos, mask *G.Node, cache []layers.KV, rows, tmax int) (logits *G.Node, k, v []*G.Node) {
	x := m.EmbedText(b, ids, pos)
	out := m.Decode(b, x, mask, cache, graph.AttentionShape{B: rows, Tq: 1, Tk: 1, Cached: tmax})
	return m.Logits(b, out.Last), out.K, out.V
}

// writeKV stores a decode step's keys or values (one d-wide row per
// generation row) into each row's cache slot length[r] (caches of tmax
// slots per row).
func writeKV(cache, kv []float32, length []int, tmax, d int) {
	for r, n := range length {
		at := (r*tmax + n) * d
		copy(cache[at:at+d], kv[r*d:(r+1)*d])
	}
}

// VisionOut is what the vision tower produces for one frame.
type VisionOut struct {
	Hidden []*G.Node // after the embeddings+pre_layrnorm, then after each layer
	Last   *G.Node   // post_layernorm of every token: (B·Tokens, vision hidden)
}

// EncodeFrame runs the CLIP vision tower on patches (B·Patches,
// channels·patch²) cut from B images (see layers.Patchify).
func (m *Model) EncodeFrame(b *graph.Builder, patches *G.Node, batch int) VisionOut {
	v := m.Config.Vision
	x := m.patch.Forward(b, patches)
	cls := graph.Embed(b.Param(m.class, 1, v.HiddenSize), b.Const("zeros", make([]int, batch)))
	x = graph.ConcatSeq(batch, cls, x)
	x = layers.Add(x, m.visionPos.Forward(b, b.Const("vision_positions", repeatRange(batch, v.Tokens()))))
	x = m.preLN.Forward(b, x)
	out := VisionOut{Hidden: []*G.Node{x}}
	for _, l := range m.vision {
		x = l.Forward(b, x, batch, v.Tokens())
		out.Hidden = append(out.Hidden, x)
	}
	out.Last = m.postLN.Forward(b, x)
	return out
}

// EncodeImages runs the vision tower on each frame, adds each frame's
// temporal embedding (video checkpoints), joins the frames along the
// sequence and projects them to the decoder width: (B·ImageTokens, hidden).
func (m *Model) EncodeImages(b *graph.Builder, frames []*G.Node, batch int) (img *G.Node, vision []VisionOut) {
	parts := make([]*G.Node, len(frames))
	for f, patches := range frames {
		vo := m.EncodeFrame(b, patches, batch)
		vision = append(vision, vo)
		parts[f] = vo.Last
		if m.temporal != nil {
			parts[f] = graph.AddRow(vo.Last, b.Param(m.temporal[f], m.Config.Vision.HiddenSize))
		}
	}
	x := parts[0]
	if len(parts) > 1 {
		x = graph.ConcatSeq(batch, parts...)
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
	K, V   []*G.Node // each layer's keys and values of this call's tokens
	Last   *G.Node
}

// Decode runs the decoder layers over x (B·T rows) with an additive mask
// (B,T,Cached+T). With a KV cache (one per layer, Cached rows per example)
// it is a decode step; otherwise cache is nil and Cached is 0.
func (m *Model) Decode(b *graph.Builder, x, mask *G.Node, cache []layers.KV, shape graph.AttentionShape) DecoderOut {
	out := DecoderOut{Hidden: []*G.Node{x}}
	for i, l := range m.decoder {
		var kv *layers.KV
		if cache != nil {
			kv = &cache[i]
		}
		var k, v *G.Node
		x, k, v = l.Forward(b, x, mask, kv, shape)
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
