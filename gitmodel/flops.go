package gitmodel

// FLOP counts (multiply-adds count 2) of the model's matrix products, the
// work that dominates every pass; element-wise work is left out. They turn
// timings into GFLOP/s comparable with the machine's sgemm peak.

// VisionFLOPs is the image encoder's forward cost for one sample (all its
// frames), including the visual projection.
func (c Config) VisionFLOPs() float64 {
	v := c.Vision
	t := float64(v.Tokens())
	d, inter := float64(v.HiddenSize), float64(v.IntermediateSize)
	patch := 2 * float64(v.Patches()) * float64(v.NumChannels*v.PatchSize*v.PatchSize) * d
	layer := 2*t*4*d*d + 2*t*2*d*inter + 2*2*t*t*d
	proj := 2 * t * d * float64(c.HiddenSize)
	return float64(c.Frames()) * (patch + float64(v.NumHiddenLayers)*layer + proj)
}

// DecoderFLOPs is the text decoder's forward cost for `tokens` positions
// that each attend to `context` keys, without the LM head.
func (c Config) DecoderFLOPs(tokens, context int) float64 {
	d, inter := float64(c.HiddenSize), float64(c.IntermediateSize)
	n := float64(tokens)
	layer := 2*n*4*d*d + 2*n*2*d*inter + 2*2*n*float64(context)*d
	return float64(c.NumHiddenLayers) * layer
}

// HeadFLOPs is the LM head's cost for `rows` positions.
func (c Config) HeadFLOPs(rows int) float64 {
	return 2 * float64(rows) * float64(c.HiddenSize) * float64(c.VocabSize)
}

// CaptionFLOPs is the cost of generating newTokens tokens after a prompt of
// promptLen tokens for `rows` sequences (batch × beams) from `images`
// images, with the KV cache: the image is encoded once, the prefix runs
// once, then each token runs one decode step.
func (c Config) CaptionFLOPs(images, rows, promptLen, newTokens int) float64 {
	nImg := c.ImageTokens()
	n0 := nImg + promptLen
	f := float64(images) * (c.VisionFLOPs() + c.DecoderFLOPs(n0, n0) + c.HeadFLOPs(1))
	for t := 1; t < newTokens; t++ {
		f += float64(rows) * (c.DecoderFLOPs(1, n0+t) + c.HeadFLOPs(1))
	}
	return f
}

// TrainFLOPs is one training step's cost (forward and backward, the
// backward pass counted as twice the forward) for batch samples of textLen
// tokens, with the LM head on the textLen-1 predicting positions.
func (c Config) TrainFLOPs(batch, textLen int) float64 {
	n := c.ImageTokens() + textLen
	fwd := float64(batch) * (c.VisionFLOPs() + c.DecoderFLOPs(n, n) + c.HeadFLOPs(textLen-1))
	return 3 * fwd
}
