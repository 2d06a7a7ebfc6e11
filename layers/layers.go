// Package layers holds the reusable building blocks of GIT: each layer owns
// its parameters under their HuggingFace state-dict names and has a Forward
// that adds its computation to a graph.Builder. All activations are 2-D
// (rows, features): a batch of B sequences of T tokens is B·T rows.
package layers

import (
	G "gorgonia.org/gorgonia"

	"github.com/gitcap/gitcap/graph"
)

// Linear is y = x·Wᵀ + b with W stored (out,in) as in PyTorch.
type Linear struct {
	W, B *graph.Param // B is nil for a bias-free layer
}

// NewLinear registers name.weight (out,in) and, with bias, name.bias (out).
func NewLinear(ps *graph.Params, name string, in, out int, bias bool) *Linear {
	l := &Linear{W: ps.New(name+".weight", out, in)}
	if bias {
		l.B = ps.NewRole(name+".bias", graph.RoleBias, out)
	}
	return l
}

// Forward applies the layer to x (N,in); a weight narrowed to bf16
// (graph.Param.ToBF16) runs graph.LinearBF16.
func (l *Linear) Forward(b *graph.Builder, x *G.Node) *G.Node {
	var bias *G.Node
	if l.B != nil {
		bias = b.Param(l.B)
	}
	if l.W.IsBF16() {
		return graph.LinearBF16(b, x, l.W, bias)
	}
	return b.Linear(x, b.Param(l.W), bias)
}

// LayerNorm normalises each row and applies a gain and bias.
type LayerNorm struct {
	W, B *graph.Param
	Eps  float64
}

// NewLayerNorm registers name.weight and name.bias, both (dim).
func NewLayerNorm(ps *graph.Params, name string, dim int, eps float64) *LayerNorm {
	return &LayerNorm{W: ps.NewRole(name+".weight", graph.RoleNormGain, dim), B: ps.NewRole(name+".bias", graph.RoleNormBias, dim), Eps: eps}
}

// Forward applies the layer to x (N,dim).
func (l *LayerNorm) Forward(b *graph.Builder, x *G.Node) *G.Node {
	return graph.LayerNorm(x, b.Param(l.W), b.Param(l.B), l.Eps)
}

// Embedding is a lookup table (V,C).
type Embedding struct{ W *graph.Param }

// NewEmbedding registers name (V,C) as an embedding; name is the full
// tensor name, since HF spells these both "x.weight" and bare.
func NewEmbedding(ps *graph.Params, name string, v, c int) *Embedding {
	return &Embedding{W: ps.NewRole(name, graph.RoleEmbedding, v, c)}
}

// SetPadding marks row idx as the padding row (torch's padding_idx):
// initialisation leaves it at zero. An idx outside the table is ignored.
func (e *Embedding) SetPadding(idx int) *Embedding {
	if sh := e.W.Shape(); idx >= 0 && idx < sh[0] {
		e.W.ZeroRows = []int{idx}
	}
	return e
}

// Forward looks up ids (N, tensor.Int): (N,C); a bf16 table
// (graph.Param.ToBF16) runs graph.EmbedBF16.
func (e *Embedding) Forward(b *graph.Builder, ids *G.Node) *G.Node {
	if e.W.IsBF16() {
		return graph.EmbedBF16(e.W, ids)
	}
	return graph.Embed(b.Param(e.W), ids)
}

// MLP is fc2(act(fc1(x))).
type MLP struct {
	FC1, FC2 *Linear
	Act      graph.Activation
}

// Forward applies the MLP to x (N,C).
func (m *MLP) Forward(b *graph.Builder, x *G.Node) *G.Node {
	return m.FC2.Forward(b, graph.Act(m.FC1.Forward(b, x), m.Act))
}

// SelfAttention is multi-head self-attention with q/k/v/out projections.
type SelfAttention struct {
	Q, K, V, O *Linear
	Heads      int
	Dropout    graph.DropoutSite // the site of the dropout on attention probabilities
}

// AttentionNames gives the state-dict names of the four projections.
type AttentionNames struct{ Q, K, V, O string }

// NewSelfAttention registers the four dim×dim projections with biases;
// dropout names the site of its attention-probability dropout (its rate is
// the graph's, see graph.WithDropout).
func NewSelfAttention(ps *graph.Params, n AttentionNames, dim, heads int, dropout graph.DropoutSite) *SelfAttention {
	return &SelfAttention{
		Q: NewLinear(ps, n.Q, dim, dim, true), K: NewLinear(ps, n.K, dim, dim, true),
		V: NewLinear(ps, n.V, dim, dim, true), O: NewLinear(ps, n.O, dim, dim, true),
		Heads: heads, Dropout: dropout,
	}
}

// Seq is the layout of a layer's 2-D activations: Batch sequences of Len
// rows each, B·Len rows in all, each sequence's rows adjacent.
type Seq struct{ Batch, Len int }

// Rows is the number of activation rows, Batch·Len.
func (s Seq) Rows() int { return s.Batch * s.Len }

// KVCache is one attention layer's KV cache in a decode step: K and V are
// (Batch·Slots, dim) inputs, At (Batch ints) says where each sequence's new
// keys and values go (its length so far). The layer writes them there in
// the graph (graph.CacheWrite) and attends to the whole cache, so the
// mask must hide each sequence's slots past its new tokens.
type KVCache struct {
	K, V, At *G.Node
	Slots    int
}

// Forward attends x (s.Rows() rows) to itself, or, with a cache, writes
// this call's keys and values into the cache and attends to the cache.
// mask is additive, (Batch, Len, Len or Slots), or nil. It returns the
// output projection and this call's keys and values (for filling a KV
// cache from a full-sequence pass).
func (a *SelfAttention) Forward(b *graph.Builder, x, mask *G.Node, cache *KVCache, s Seq) (out, k, v *G.Node) {
	q := a.Q.Forward(b, x)
	k = a.K.Forward(b, x)
	v = a.V.Forward(b, x)
	shape := graph.AttentionShape{B: s.Batch, Tq: s.Len, Tk: s.Len, Heads: a.Heads, HeadDim: x.Shape()[1] / a.Heads}
	keys, values := k, v
	if cache != nil {
		keys = graph.CacheWrite(cache.K, k, cache.At, cache.Slots)
		values = graph.CacheWrite(cache.V, v, cache.At, cache.Slots)
		shape.Tk = cache.Slots
	}
	ctx := b.Attention(q, keys, values, mask, shape, b.DropoutRate(a.Dropout))
	return a.O.Forward(b, ctx), k, v
}

// ForwardRows is Forward without a cache for the queries at rows of x
// only, one per sequence (rows[i] in sequence i): every row's keys and
// values, but the attention and output projection of those rows alone.
// mask is (Batch, 1, Len). A prefix graph needs every position's keys and
// values for the cache but only the last position's output, so its last
// layer spares the other rows' queries, attention and output. Those rows'
// products are batch-invariant (graph.Builder.BatchInvariant): one row per
// sequence alone, one per sequence in any batch, with the same bits.
func (a *SelfAttention) ForwardRows(b *graph.Builder, x, mask *G.Node, rows []int, s Seq) (out, k, v *G.Node) {
	var q *G.Node
	b.BatchInvariant(func() { q = a.Q.Forward(b, graph.Rows(x, rows)) })
	k = a.K.Forward(b, x)
	v = a.V.Forward(b, x)
	shape := graph.AttentionShape{B: s.Batch, Tq: 1, Tk: s.Len, Heads: a.Heads, HeadDim: x.Shape()[1] / a.Heads}
	ctx := graph.Attention(q, k, v, mask, shape, b.DropoutRate(a.Dropout), b.Noise)
	b.BatchInvariant(func() { out = a.O.Forward(b, ctx) })
	return out, k, v
}

// Add is the residual sum of two same-shaped nodes.
func Add(a, c *G.Node) *G.Node { return graph.Add(a, c) }

// Params lists the four projections' weights and biases.
func (a *SelfAttention) Params() []*graph.Param {
	var ps []*graph.Param
	for _, l := range []*Linear{a.Q, a.K, a.V, a.O} {
		ps = append(ps, l.W, l.B)
	}
	return ps
}
