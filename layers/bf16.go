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

// SelfAttention, CLIPBlock and BERTBlock list theirs in a fixed order in
// layers.go and blocks.go (the order a checkpointed segment binds them in).
