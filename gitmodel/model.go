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
			v.HiddenSize, v.IntermediateSize, v.NumAttentionHeads, visAct, v.LayerNormEps, v.AttentionDropout))
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
			d, c.IntermediateSize, c.NumAttentionHeads, textAct, c.LayerNormEps, c.HiddenDropoutProb, c.AttentionProbsDropoutProb))
	}
	if c.TieWordEmbeddings {
		m.output = &layers.Linear{W: m.words.W, B: ps.NewRole("output.bias", graph.RoleBias, c.VocabSize)}
	} else {
		m.output = layers.NewLinear(ps, "output", d, c.VocabSize, true)
	}
	return m, nil
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
	return b.Dropout(m.embLN.Forward(b, x), m.Config.HiddenDropoutProb)
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
