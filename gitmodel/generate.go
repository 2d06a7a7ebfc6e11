package gitmodel

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand"
	"sort"
)

// GenerateOptions are HF generate()'s arguments that gitcap supports, with
// the same meanings. The zero value of a field means HF's default where HF
// has one (noted per field); the gitcap CLI passes HF's defaults explicitly.
type GenerateOptions struct {
	MaxLength          int     // total text tokens including the prompt (0: 20)
	MaxNewTokens       int     // if > 0, overrides MaxLength: prompt length + MaxNewTokens
	MinLength          int     // EOS is banned while the sequence (prompt included) is shorter
	MinNewTokens       int     // EOS is banned until this many tokens were generated
	NumBeams           int     // 1 = greedy or sampling (0: 1)
	LengthPenalty      float64 // exponent of the beam scores' length normalisation (0: 1; for HF's length_penalty=0, no normalisation, pass any tiny positive value: L^1e-300 is exactly 1)
	EarlyStopping      bool    // beam search stops a batch row once NumBeams hypotheses are finished
	NumReturnSequences int     // sequences returned per image (≤ NumBeams; or samples) (0: 1)
	RepetitionPenalty  float64 // > 1 discourages tokens already present (CTRL-style) (0: 1, off)
	NoRepeatNgramSize  int     // bans tokens that would repeat an n-gram
	DoSample           bool    // sample (greedy when false); beam sampling is not supported
	Temperature        float64 // sampling temperature, > 0 (0: 1)
	TopK               int     // sample among the k most likely tokens; 0 = off (HF's GenerationConfig default is 50, which the CLI uses)
	TopP               float64 // nucleus mass; 0 or 1 = off
	Seed               int64   // sampling seed: the same seed, image and position give the same samples
	SampleOffset       int     // index of the batch's first image in a longer run, so each image's random stream depends on it alone
	NoCache            bool    // recompute the full sequence every token (reference path)
}

func (o GenerateOptions) withDefaults() GenerateOptions {
	if o.MaxLength == 0 {
		o.MaxLength = 20
	}
	if o.NumBeams == 0 {
		o.NumBeams = 1
	}
	if o.LengthPenalty == 0 {
		o.LengthPenalty = 1
	}
	if o.NumReturnSequences == 0 {
		o.NumReturnSequences = 1
	}
	if o.Temperature == 0 {
		o.Temperature = 1
	}
	if o.RepetitionPenalty == 0 {
		o.RepetitionPenalty = 1
	}
	if o.TopP == 0 {
		o.TopP = 1 // off either way
	}
	return o
}

// OptionError is a generation option out of its range, named as HF's
// generate() names it.
type OptionError struct {
	Option  string // e.g. "num_beams"
	Problem string // e.g. "must be at least 1, got 0"
}

func (e *OptionError) Error() string { return e.Option + " " + e.Problem }

// Check reports the first option out of its range, as an *OptionError. It
// takes o as given: a zero is not a default here (Generate applies its
// defaults before it checks), so a caller that fills in HF's defaults
// first (the CLI, the server) gets an error for an explicit 0 where HF
// refuses one, such as num_beams 0 or top_p 0. The options' relations to
// each other and to the model (num_return_sequences against num_beams,
// max_length against the prompt and the model's positions) are Generate's
// to check.
func (o GenerateOptions) Check() error {
	bad := func(option, format string, args ...any) error {
		return &OptionError{option, fmt.Sprintf(format, args...)}
	}
	for _, f := range []struct {
		name string
		v    float64
	}{{"length_penalty", o.LengthPenalty}, {"repetition_penalty", o.RepetitionPenalty}, {"temperature", o.Temperature}, {"top_p", o.TopP}} {
		if !finite(f.v) {
			return bad(f.name, "must be a finite number, got %v", f.v)
		}
	}
	for _, f := range []struct {
		name string
		v    int
	}{{"max_new_tokens", o.MaxNewTokens}, {"min_length", o.MinLength}, {"min_new_tokens", o.MinNewTokens}, {"no_repeat_ngram_size", o.NoRepeatNgramSize}} {
		if f.v < 0 {
			return bad(f.name, "must not be negative, got %d", f.v)
		}
	}
	switch {
	case o.NumBeams < 1:
		return bad("num_beams", "must be at least 1, got %d", o.NumBeams)
	case o.NumReturnSequences < 1:
		return bad("num_return_sequences", "must be at least 1, got %d", o.NumReturnSequences)
	case o.MaxLength < 1:
		return bad("max_length", "must be at least 1, got %d", o.MaxLength)
	case o.DoSample && o.Temperature <= 0:
		return bad("temperature", "must be positive when sampling, got %g", o.Temperature)
	case o.Temperature < 0:
		return bad("temperature", "must not be negative, got %g", o.Temperature)
	case o.RepetitionPenalty <= 0:
		return bad("repetition_penalty", "must be positive, got %g", o.RepetitionPenalty)
	case o.TopK < 0:
		return bad("top_k", "must be 0 (off) or positive, got %d", o.TopK)
	case !(o.TopP > 0 && o.TopP <= 1):
		return bad("top_p", "must be in (0, 1] (1 = off), got %g", o.TopP)
	}
	return nil
}

// Sequence is one generated sequence: the full ids as HF's generate returns
// them (prompt first, [CLS] included), and for beam search its score.
type Sequence struct {
	IDs   []int
	Score float64 // beam search: sum of log-probs / length^penalty; else 0
}

// Generator generates captions. It keeps compiled graphs (per batch shape)
// and reuses them across calls; it is not safe for concurrent use.
type Generator struct {
	m        *Model
	maxText  int
	prefixes map[[2]int]*Forward
	steps    map[[2]int]*decodeStep
}

// NewGenerator returns a generator for the model.
func (m *Model) NewGenerator() *Generator {
	return &Generator{m: m, prefixes: map[[2]int]*Forward{}, steps: map[[2]int]*decodeStep{}}
}

// Close releases the compiled graphs; the generator can be used again
// afterwards (it recompiles) and closing twice is harmless.
func (g *Generator) Close() {
	for _, f := range g.prefixes {
		f.Close()
	}
	for _, s := range g.steps {
		s.vm.Close()
	}
	clear(g.prefixes)
	clear(g.steps)
}

func (g *Generator) prefix(batch, t int) (*Forward, error) {
	key := [2]int{batch, t}
	if f, ok := g.prefixes[key]; ok {
		return f, nil
	}
	f, err := g.m.NewForward(batch, t, ForwardOptions{Last: true})
	if err != nil {
		return nil, err
	}
	g.prefixes[key] = f
	return f, nil
}

func (g *Generator) decodeStep(rows, tmax int) (*decodeStep, error) {
	key := [2]int{rows, tmax}
	if s, ok := g.steps[key]; ok {
		return s, nil
	}
	s, err := g.m.newDecodeStep(rows, tmax)
	if err != nil {
		return nil, err
	}
	g.steps[key] = s
	return s, nil
}

// Generate continues prompt (token ids, [CLS] first, no [SEP]) for each of
// the batch images in pixels ((B, Frames, C, H, W), preprocessed) and
// returns NumReturnSequences sequences per image. Every row's result is the
// same as generating for that image alone.
func (g *Generator) Generate(ctx context.Context, pixels []float32, batch int, prompt []int, opts GenerateOptions) ([][]Sequence, error) {
	run, err := g.m.newSearch(pixels, batch, prompt, opts)
	if err != nil {
		return nil, err
	}
	g.maxText = run.maxLen
	if run.o.NoCache {
		run.s = &fullStepper{m: g.m, g: g}
	} else {
		run.s = &cachedStepper{m: g.m, g: g}
	}
	return run.run(ctx, pixels, batch)
}

// newSearch checks a generate call's arguments and returns its search,
// without a stepper yet (Generate and the Batcher supply their own).
func (m *Model) newSearch(pixels []float32, batch int, prompt []int, opts GenerateOptions) (*search, error) {
	o := opts.withDefaults()
	c := m.Config
	img := c.Frames() * c.Vision.NumChannels * c.Vision.ImageSize * c.Vision.ImageSize
	switch {
	case batch < 1:
		return nil, errors.New("generate: no images")
	case len(pixels) != batch*img:
		return nil, fmt.Errorf("generate: %d pixel values for %d samples of %d frames of %dx%dx%d", len(pixels), batch, c.Frames(), c.Vision.NumChannels, c.Vision.ImageSize, c.Vision.ImageSize)
	case len(prompt) == 0:
		return nil, errors.New("generate: empty prompt (it starts with [CLS])")
	}
	if err := o.Check(); err != nil {
		return nil, fmt.Errorf("generate: %w", err)
	}
	switch {
	case o.NumBeams > 1 && o.NumReturnSequences > o.NumBeams:
		return nil, fmt.Errorf("generate: num_return_sequences (%d) cannot exceed num_beams (%d)", o.NumReturnSequences, o.NumBeams)
	case o.NumBeams == 1 && !o.DoSample && o.NumReturnSequences > 1:
		return nil, errors.New("generate: greedy search returns one sequence; use beams or sampling for num_return_sequences > 1")
	case o.DoSample && o.NumBeams > 1:
		return nil, errors.New("generate: beam sampling (do_sample with num_beams > 1) is not supported")
	}
	for _, id := range prompt {
		if id < 0 || id >= c.VocabSize {
			return nil, fmt.Errorf("generate: prompt token %d is outside the vocabulary", id)
		}
	}
	maxLen := o.MaxLength
	if o.MaxNewTokens > 0 {
		maxLen = len(prompt) + o.MaxNewTokens
	}
	if len(prompt) >= maxLen {
		return nil, fmt.Errorf("generate: the prompt (%d tokens) leaves no room under max_length %d", len(prompt), maxLen)
	}
	if maxLen > c.MaxPositionEmbeddings {
		return nil, fmt.Errorf("generate: max_length %d exceeds the model's max_position_embeddings %d", maxLen, c.MaxPositionEmbeddings)
	}
	return &search{o: o, maxLen: maxLen, prompt: prompt, vocab: c.VocabSize, eos: c.EosTokenID, pad: c.PadTokenID}, nil
}

// run generates with the search's stepper and closes it.
func (r *search) run(ctx context.Context, pixels []float32, batch int) ([][]Sequence, error) {
	defer r.s.close()
	if r.o.NumBeams > 1 {
		return r.beam(ctx, pixels, batch)
	}
	return r.sample(ctx, pixels, batch)
}

// search holds one generate call's state.
type search struct {
	s        stepper
	o        GenerateOptions
	maxLen   int
	prompt   []int
	vocab    int
	eos, pad int
}

// process applies the logits processors HF enables for these options, in
// HF's order, to one row's scores given that row's ids so far.
func (r *search) process(ids []int, scores []float32) {
	o := r.o
	negInf := float32(math.Inf(-1))
	if o.RepetitionPenalty != 1 {
		p := float32(o.RepetitionPenalty)
		seen := map[int]bool{}
		for _, id := range ids {
			if seen[id] {
				continue
			}
			seen[id] = true
			if scores[id] < 0 {
				scores[id] *= p
			} else {
				scores[id] /= p
			}
		}
	}
	if n := o.NoRepeatNgramSize; n > 0 && len(ids)+1 >= n {
		prefix := ids[len(ids)-n+1:]
		for i := 0; i+n <= len(ids); i++ {
			match := true
			for j := 0; j < n-1; j++ {
				if ids[i+j] != prefix[j] {
					match = false
					break
				}
			}
			if match {
				scores[ids[i+n-1]] = negInf
			}
		}
	}
	if len(ids) < o.MinLength || len(ids)-len(r.prompt) < o.MinNewTokens {
		scores[r.eos] = negInf
	}
}

// sample runs greedy search, or sampling with DoSample.
func (r *search) sample(ctx context.Context, pixels []float32, batch int) ([][]Sequence, error) {
	o := r.o
	expand := 1
	if o.DoSample {
		expand = o.NumReturnSequences
	}
	rows := batch * expand
	logits, err := r.s.start(pixels, batch, r.prompt, expand)
	if err != nil {
		return nil, err
	}
	seqs := make([][]int, rows)
	for i := range seqs {
		seqs[i] = append(make([]int, 0, r.maxLen), r.prompt...)
	}
	done := make([]bool, rows)
	next := make([]int, rows)
	// One random stream per image and return sequence, seeded from (seed,
	// image index, sequence): a sample does not depend on which other
	// images share its batch.
	rngs := make([]*rand.Rand, rows)
	if o.DoSample {
		for i := range rngs {
			img, seq := o.SampleOffset+i/expand, i%expand
			rngs[i] = rand.New(rand.NewSource(int64(mix(uint64(o.Seed), uint64(img), uint64(seq)))))
		}
	}
	probs := make([]float64, r.vocab)
	for cur := len(r.prompt); cur < r.maxLen; cur++ {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		all := true
		for i := 0; i < rows; i++ {
			if done[i] {
				next[i] = r.pad
				continue
			}
			scores := logits[i*r.vocab : (i+1)*r.vocab]
			r.process(seqs[i], scores)
			if o.DoSample {
				tok, err := sampleToken(scores, probs, o, rngs[i])
				if err != nil {
					return nil, err
				}
				next[i] = tok
			} else {
				next[i] = argmax(scores)
			}
			if next[i] == r.eos {
				done[i] = true
			} else {
				all = false
			}
		}
		for i := range seqs {
			seqs[i] = append(seqs[i], next[i])
		}
		if all || cur+1 >= r.maxLen {
			break
		}
		if logits, err = r.s.step(next); err != nil {
			return nil, err
		}
	}
	out := make([][]Sequence, batch)
	for i := range out {
		for j := 0; j < expand; j++ {
			out[i] = append(out[i], Sequence{IDs: seqs[i*expand+j]})
		}
	}
	return out, nil
}

// finite reports whether every x is a finite number.
func finite(xs ...float64) bool {
	for _, x := range xs {
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return false
		}
	}
	return true
}

func argmax(s []float32) int {
	best := 0
	for i, v := range s {
		if v > s[best] {
			best = i
		}
	}
	return best
}

// sampleToken applies temperature, top-k and top-p (HF's warpers, in that
// order) and draws a token.
//
// The scores are divided by the temperature after the largest is taken
// from them, so that a tiny temperature (as small as the smallest
// float64) gives the largest score probability 1, its limit, and never
// overflows to inf − inf.
func sampleToken(scores []float32, probs []float64, o GenerateOptions, rng *rand.Rand) (int, error) {
	top := math.Inf(-1)
	for _, s := range scores {
		top = math.Max(top, float64(s))
	}
	for i, s := range scores {
		probs[i] = (float64(s) - top) / o.Temperature
	}
	negInf := math.Inf(-1)
	if o.TopK > 0 && o.TopK < len(probs) {
		kth := kthLargest(probs, o.TopK)
		for i, p := range probs {
			if p < kth {
				probs[i] = negInf
			}
		}
	}
	mx := negInf
	for _, p := range probs {
		mx = math.Max(mx, p)
	}
	var sum float64
	for i, p := range probs {
		probs[i] = math.Exp(p - mx)
		sum += probs[i]
	}
	for i := range probs {
		probs[i] /= sum
	}
	if o.TopP > 0 && o.TopP < 1 {
		// Keep the smallest set of most likely tokens whose mass reaches
		// top_p (HF removes tokens whose cumulative mass from the least
		// likely side is <= 1-top_p; at least one token survives).
		idx := make([]int, len(probs))
		for i := range idx {
			idx[i] = i
		}
		sort.Slice(idx, func(a, b int) bool { return probs[idx[a]] > probs[idx[b]] })
		var cum float64
		cut := len(idx)
		for k, i := range idx {
			cum += probs[i]
			if cum >= o.TopP {
				cut = k + 1
				break
			}
		}
		var kept float64
		for k, i := range idx {
			if k >= cut {
				probs[i] = 0
			} else {
				kept += probs[i]
			}
		}
		for i := range probs {
			probs[i] /= kept
		}
	}
	if math.IsNaN(sum) || sum == 0 || math.IsInf(mx, -1) {
		return 0, errors.New("generate: every token is banned (probabilities are all zero), nothing to sample")
	}
	u := rng.Float64()
	for i, p := range probs {
		u -= p
		if u < 0 {
			return i, nil
		}
	}
	return argmaxF64(probs), nil
}

// mix hashes sampling seeds (splitmix64 steps).
func mix(xs ...uint64) uint64 {
	var h uint64 = 0x9e3779b97f4a7c15
	for _, x := range xs {
		h ^= x + 0x9e3779b97f4a7c15 + h<<6 + h>>2
		h ^= h >> 30
		h *= 0xbf58476d1ce4e5b9
		h ^= h >> 27
		h *= 0x94d049bb133111eb
		h ^= h >> 31
	}
	return h
}

func argmaxF64(s []float64) int {
	best := 0
	for i, v := range s {
		if v > s[best] {
			best = i
		}
	}
	return best
}

func kthLargest(v []float64, k int) float64 {
	c := append([]float64(nil), v...)
	sort.Float64s(c)
	return c[len(c)-k]
}
