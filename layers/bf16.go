package layers

// Blocks list their parameters for byte counts (the bytes a decode step
// streams, gitmodel.DecodeStepBytes).

import "github.com/gitcap/gitcap/graph"

// Params returns the layer's weight and bias (if any).
func (l *Linear) Params() []*graph.Param {
	if l.B == nil {
		return []*graph.Param{l.W}
	}
	return []*graph.Param{l.W, l.B}
}

// Params returns the gain and shift.
func (l *LayerNorm) Params() []*graph.Param { return []*graph.Param{l.W, l.B} }

// Params returns the four projections' parameters.
func (a *SelfAttention) Params() []*graph.Param {
	var ps []*graph.Param
	for _, l := range []*Linear{a.Q, a.K, a.V, a.O} {
		ps = append(ps, l.Params()...)
	}
	return ps
}

// Params returns every parameter of the layer.
func (l *BERTBlock) Params() []*graph.Param {
	ps := l.Attn.Params()
	for _, p := range [][]*graph.Param{l.AttnLN.Params(), l.Inter.Params(), l.Out.Params(), l.OutLN.Params()} {
		ps = append(ps, p...)
	}
	return ps
}
