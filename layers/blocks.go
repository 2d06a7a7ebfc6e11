package layers

import (
	"fmt"

	G "gorgonia.org/gorgonia"

	"github.com/gitcap/gitcap/graph"
)

// CLIPBlock is a pre-LayerNorm transformer encoder layer (CLIP's vision
// tower): x += attn(ln1(x)); x += mlp(ln2(x)).
type CLIPBlock struct {
	LN1, LN2 *LayerNorm
	Attn     *SelfAttention
	MLP      *MLP
}

// NewCLIPBlock registers a CLIP encoder layer under prefix
// (e.g. "git.image_encoder.vision_model.encoder.layers.0").
func NewCLIPBlock(ps *graph.Params, prefix string, dim, inter, heads int, act graph.Activation, eps float64, attnDropout graph.DropoutSite) *CLIPBlock {
	p := func(s string) string { return prefix + "." + s }
	return &CLIPBlock{
		LN1: NewLayerNorm(ps, p("layer_norm1"), dim, eps),
		Attn: NewSelfAttention(ps, AttentionNames{p("self_attn.q_proj"), p("self_attn.k_proj"), p("self_attn.v_proj"), p("self_attn.out_proj")},
			dim, heads, attnDropout),
		LN2: NewLayerNorm(ps, p("layer_norm2"), dim, eps),
		MLP: &MLP{FC1: NewLinear(ps, p("mlp.fc1"), dim, inter, true), FC2: NewLinear(ps, p("mlp.fc2"), inter, dim, true), Act: act},
	}
}

// Forward applies the layer to x (s.Rows(), dim) with full (unmasked)
// attention.
func (l *CLIPBlock) Forward(b *graph.Builder, x *G.Node, s Seq) *G.Node {
	a, _, _ := l.Attn.Forward(b, l.LN1.Forward(b, x), nil, nil, s)
	x = Add(x, a)
	return Add(x, l.MLP.Forward(b, l.LN2.Forward(b, x)))
}

// BERTBlock is a post-LayerNorm transformer layer (BERT, GIT's decoder):
// x = LN(x + drop(attn(x))); x = LN(x + drop(W2·act(W1·x))).
type BERTBlock struct {
	Attn          *SelfAttention
	AttnLN, OutLN *LayerNorm
	Inter, Out    *Linear
	Act           graph.Activation
	Dropout       graph.DropoutSite // the site of the hidden dropout
}

// NewBERTBlock registers a BERT layer under prefix (e.g. "git.encoder.layer.0")
// with hidden and attention dropout at the named sites.
func NewBERTBlock(ps *graph.Params, prefix string, dim, inter, heads int, act graph.Activation, eps float64, hiddenDropout, attnDropout graph.DropoutSite) *BERTBlock {
	p := func(s string) string { return prefix + "." + s }
	return &BERTBlock{
		Attn: NewSelfAttention(ps, AttentionNames{p("attention.self.query"), p("attention.self.key"), p("attention.self.value"), p("attention.output.dense")},
			dim, heads, attnDropout),
		AttnLN:  NewLayerNorm(ps, p("attention.output.LayerNorm"), dim, eps),
		Inter:   NewLinear(ps, p("intermediate.dense"), dim, inter, true),
		Out:     NewLinear(ps, p("output.dense"), inter, dim, true),
		OutLN:   NewLayerNorm(ps, p("output.LayerNorm"), dim, eps),
		Act:     act,
		Dropout: hiddenDropout,
	}
}

// Forward applies the layer to x (s.Rows() rows). mask is additive
// (Batch, Len, Len or cache.Slots); cache is a decode step's KV cache, or
// nil. It returns the output and this call's keys and values.
func (l *BERTBlock) Forward(b *graph.Builder, x, mask *G.Node, cache *KVCache, s Seq) (out, k, v *G.Node) {
	a, k, v := l.Attn.Forward(b, x, mask, cache, s)
	x = l.AttnLN.Forward(b, Add(x, b.Dropout(a, l.Dropout)))
	h := l.Out.Forward(b, graph.Act(l.Inter.Forward(b, x), l.Act))
	return l.OutLN.Forward(b, Add(x, b.Dropout(h, l.Dropout))), k, v
}

// ForwardRows is Forward (no cache) computing the output of rows of x
// only, one per sequence (see SelfAttention.ForwardRows), with mask
// (Batch, 1, Len): (len(rows), dim), and every row's keys and values. The
// rows' MLP is batch-invariant, as their attention is.
func (l *BERTBlock) ForwardRows(b *graph.Builder, x, mask *G.Node, rows []int, s Seq) (out, k, v *G.Node) {
	a, k, v := l.Attn.ForwardRows(b, x, mask, rows, s)
	x = l.AttnLN.Forward(b, Add(graph.Rows(x, rows), b.Dropout(a, l.Dropout)))
	var h *G.Node
	b.BatchInvariant(func() { h = l.Out.Forward(b, graph.Act(l.Inter.Forward(b, x), l.Act)) })
	return l.OutLN.Forward(b, Add(x, b.Dropout(h, l.Dropout))), k, v
}

// PatchEmbedding is CLIP's bias-free convolution with stride = kernel,
// applied as one matrix product to patches cut out in Go (see Patchify).
type PatchEmbedding struct {
	W               *graph.Param // (dim, channels, patch, patch)
	Channels, Patch int
	Dim             int
}

// NewPatchEmbedding registers name (dim, channels, patch, patch). The kernel
// is an embedding (RoleEmbedding: normal initialisation, no weight decay), as
// HF's convention of not decaying "*embedding*" parameters treats it.
func NewPatchEmbedding(ps *graph.Params, name string, channels, patch, dim int) *PatchEmbedding {
	return &PatchEmbedding{W: ps.NewRole(name, graph.RoleEmbedding, dim, channels, patch, patch), Channels: channels, Patch: patch, Dim: dim}
}

// Forward maps patches (N, channels·patch·patch) to (N, dim).
func (p *PatchEmbedding) Forward(b *graph.Builder, patches *G.Node) *G.Node {
	if p.W.IsBF16() {
		return graph.LinearBF16(b, patches, p.W, nil)
	}
	w := b.Param(p.W, p.Dim, p.Channels*p.Patch*p.Patch)
	return b.Linear(patches, w, nil)
}

// Patchify cuts images (n, channels, h, w), row-major, into non-overlapping
// patch×patch squares, writing rows of (channels·patch·patch) in the order
// of the convolution kernel's (c, ky, kx) layout, patches in raster order.
// dst must hold n·(h/patch)·(w/patch)·channels·patch·patch values.
func Patchify[T graph.Float](dst, src []T, n, channels, h, w, patch int) error {
	if h%patch != 0 || w%patch != 0 {
		return fmt.Errorf("image %dx%d is not a multiple of the patch size %d", h, w, patch)
	}
	ph, pw := h/patch, w/patch
	row := channels * patch * patch
	if len(src) != n*channels*h*w || len(dst) != n*ph*pw*row {
		return fmt.Errorf("patchify: %d source values for %d images of %dx%dx%d", len(src), n, channels, h, w)
	}
	for i := 0; i < n; i++ {
		img := src[i*channels*h*w:]
		for py := 0; py < ph; py++ {
			for px := 0; px < pw; px++ {
				out := dst[((i*ph+py)*pw+px)*row:]
				for c := 0; c < channels; c++ {
					for ky := 0; ky < patch; ky++ {
						srow := img[c*h*w+(py*patch+ky)*w+px*patch:]
						copy(out[(c*patch+ky)*patch:(c*patch+ky+1)*patch], srow[:patch])
					}
				}
			}
		}
	}
	return nil
}

// Params lists the layer's parameters in a fixed order (the order a
// checkpointed segment binds them in; see graph.Checkpoint).
func (l *CLIPBlock) Params() []*graph.Param {
	return append(append([]*graph.Param{l.LN1.W, l.LN1.B}, l.Attn.Params()...), l.LN2.W, l.LN2.B, l.MLP.FC1.W, l.MLP.FC1.B, l.MLP.FC2.W, l.MLP.FC2.B)
}

// Params lists the layer's parameters in a fixed order (see
// CLIPBlock.Params).
func (l *BERTBlock) Params() []*graph.Param {
	return append(l.Attn.Params(), l.AttnLN.W, l.AttnLN.B, l.Inter.W, l.Inter.B, l.Out.W, l.Out.B, l.OutLN.W, l.OutLN.B)
}
