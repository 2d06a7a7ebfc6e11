package train

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/gitcap/gitcap/data"
	"github.com/gitcap/gitcap/data/tokenizer"
	"github.com/gitcap/gitcap/eval"
	"github.com/gitcap/gitcap/gitmodel"
)

// Self-critical sequence training (objective: scst; Rennie et al. 2017, with
// the "new SCST" baseline of Luo 2020): for each image of a micro-batch,
// sample K captions with the KV-cache sampler, reward each with CIDEr-D
// against the image's references (document frequencies from the training
// references), take as each sample's baseline the mean reward of the image's
// other K-1 samples, and minimise
//
//	-Σ_samples (reward - baseline) · Σ_tokens log p(token) / (sampled tokens)
//
// with the log-probabilities from the training graph on the sampled
// sequences (image prefix + sampled tokens, teacher-forced): a
// graph.WeightedCrossEntropy whose weight is each sequence's advantage. The
// batch it builds goes through Trainer.Step like any other, so accumulation,
// clipping, the schedule, checkpoints, resume and MPI are the training loop's.
//
// The end of a caption: [SEP] is part of each sampled sequence (its
// log-probability is trained like every other token's), and for the reward
// both the candidate and every reference end in the word EOSWord — the
// references because the tokenizer ends each training caption with [SEP],
// the candidate only if the sampler emitted [SEP] before max_length. A
// caption cut off at max_length therefore lacks the n-grams that end in
// EOSWord and scores lower, so SCST does not learn to stop mid-phrase ("a
// man riding a"), which CIDEr-D without the end token rewards.

// EOSWord is the word that stands for [SEP] at the end of a caption in the
// SCST reward; PTB tokenization never produces it.
const EOSWord = "<eos>"

// SCSTOptions configures the sampling of an SCST step.
type SCSTOptions struct {
	Samples     int     // captions sampled per image (K ≥ 2)
	MaxLength   int     // generation max_length (text tokens incl. [CLS])
	Temperature float64 // sampling temperature (0: 1)
	TopK        int     // sample among the k most likely tokens; 0: the whole distribution
	Seed        int64   // the run seed; step s, micro-batch k sample with seedFor(Seed, s, k)
	PadMultiple int     // round the text length up to a multiple of this (fewer graph shapes)
}

// SCSTTimes splits the time of preparing an SCST batch.
type SCSTTimes struct {
	Sampling, Rewards time.Duration
}

// SCST samples captions, rewards them and builds the weighted training
// batches of self-critical sequence training. It owns a Generator over the
// model's parameters (the sampler sees the weights the last step left) and
// is not safe for concurrent use.
type SCST struct {
	m    *gitmodel.Model
	tok  *tokenizer.Tokenizer
	gen  *gitmodel.Generator
	opts SCSTOptions
	df   *eval.DocFreq
	refs map[string][]string // image -> PTB-tokenized references, each ending in EOSWord
	// Times is the split of the last Batch call.
	Times SCSTTimes
	// MeanReward is the mean reward of the last Batch call's samples.
	MeanReward float64
}

// NewSCST prepares SCST on the training pairs: the references of every
// image (PTB-tokenized, ending in EOSWord) and their document frequencies.
func NewSCST(m *gitmodel.Model, tok *tokenizer.Tokenizer, pairs []data.TrainPair, o SCSTOptions) (*SCST, error) {
	if o.Samples < 2 {
		return nil, fmt.Errorf("scst_samples: the baseline needs at least 2 samples per image, got %d", o.Samples)
	}
	if len(pairs) == 0 {
		return nil, fmt.Errorf("scst: no training references")
	}
	if o.Temperature == 0 {
		o.Temperature = 1
	}
	if o.PadMultiple < 1 {
		o.PadMultiple = 1
	}
	s := &SCST{m: m, tok: tok, gen: m.NewGenerator(), opts: o, refs: map[string][]string{}}
	var order []string
	raw := map[string][]string{}
	for _, p := range pairs {
		if _, ok := raw[p.Image]; !ok {
			order = append(order, p.Image)
		}
		raw[p.Image] = append(raw[p.Image], p.Caption)
	}
	corpus := make([][]string, len(order))
	for i, im := range order {
		refs := eval.PTBTokenizeAll(raw[im])
		for j := range refs {
			refs[j] = withEOS(refs[j])
		}
		s.refs[im] = refs
		corpus[i] = refs
	}
	s.df = eval.NewDocFreq(corpus)
	return s, nil
}

// DocFreq returns the document frequencies the rewards use.
func (s *SCST) DocFreq() *eval.DocFreq { return s.df }

// Close releases the sampler's graphs.
func (s *SCST) Close() { s.gen.Close() }

// withEOS appends the end word to a tokenized caption.
func withEOS(c string) string {
	if c == "" {
		return EOSWord
	}
	return c + " " + EOSWord
}

// CandidateText is the tokenized caption a sampled sequence is rewarded as:
// the generated ids (after the prompt) decoded without special tokens, as
// evaluation decodes them, PTB-tokenized, and followed by EOSWord if the
// sequence ended with [SEP].
func (s *SCST) CandidateText(ids []int, promptLen int) string {
	gen, ended := s.generated(ids, promptLen)
	c := eval.PTBTokenize(s.tok.Decode(gen, true))
	if ended {
		return withEOS(c)
	}
	return c
}

// generated returns a sequence's generated ids up to and including the first
// [SEP], and whether there was one.
func (s *SCST) generated(ids []int, promptLen int) ([]int, bool) {
	eos := s.m.Config.EosTokenID
	for i := promptLen; i < len(ids); i++ {
		if ids[i] == eos {
			return ids[promptLen : i+1], true
		}
	}
	return ids[promptLen:], false
}

// Rewards scores K sampled sequences per image (seqs[i] are image i's) with
// CIDEr-D against the image's references, with the training corpus's
// document frequencies; the result is flat, image-major.
func (s *SCST) Rewards(images []string, seqs [][]gitmodel.Sequence, promptLen int) ([]float64, error) {
	var ids []string
	gts := map[string][]string{}
	res := map[string]string{}
	for i, im := range images {
		refs, ok := s.refs[im]
		if !ok {
			return nil, fmt.Errorf("scst: image %s has no training references", im)
		}
		for j, q := range seqs[i] {
			key := strconv.Itoa(i) + "/" + strconv.Itoa(j)
			ids = append(ids, key)
			gts[key] = refs
			res[key] = s.CandidateText(q.IDs, promptLen)
		}
	}
	_, per, err := eval.CIDErDWithDF(ids, gts, res, s.df)
	return per, err
}

// Advantages returns reward - baseline for K samples per image, the baseline
// of a sample being the mean reward of the image's other samples.
func Advantages(rewards []float64, k int) []float64 {
	adv := make([]float64, len(rewards))
	for i := 0; i+k <= len(rewards); i += k {
		var sum float64
		for _, r := range rewards[i : i+k] {
			sum += r
		}
		for j := i; j < i+k; j++ {
			adv[j] = rewards[j] - (sum-rewards[j])/float64(k-1)
		}
	}
	return adv
}

// Batch samples K captions for each of the images (pixels as the loader
// gives them, image i's references under images[i]), rewards them and
// returns the training batch: K text rows per image (sharing the image's
// tokens), the sampled ids as inputs and labels, and each row's advantage
// as the weight of its tokens. seed decides the samples.
func (s *SCST) Batch(ctx context.Context, pixels []float32, images []string, seed uint64) (gitmodel.Batch, error) {
	k := s.opts.Samples
	prompt := []int{s.tok.CLS()}
	t0 := time.Now()
	seqs, err := s.gen.Generate(ctx, pixels, len(images), prompt, gitmodel.GenerateOptions{
		MaxLength: s.opts.MaxLength, DoSample: true, NumReturnSequences: k,
		Temperature: s.opts.Temperature, TopK: s.opts.TopK, Seed: int64(seed),
	})
	if err != nil {
		return gitmodel.Batch{}, fmt.Errorf("scst sampling: %w", err)
	}
	t1 := time.Now()
	rewards, err := s.Rewards(images, seqs, len(prompt))
	if err != nil {
		return gitmodel.Batch{}, err
	}
	adv := Advantages(rewards, k)
	s.Times = SCSTTimes{Sampling: t1.Sub(t0), Rewards: time.Since(t1)}
	var mean float64
	for _, r := range rewards {
		mean += r
	}
	s.MeanReward = mean / float64(len(rewards))
	return s.build(pixels, seqs, adv, len(prompt)), nil
}

// build lays out the sampled sequences as a weighted training batch.
func (s *SCST) build(pixels []float32, seqs [][]gitmodel.Sequence, adv []float64, promptLen int) gitmodel.Batch {
	k := s.opts.Samples
	rows := make([][]int, 0, len(seqs)*k)
	t := 0
	for _, per := range seqs {
		for _, q := range per {
			gen, _ := s.generated(q.IDs, promptLen)
			r := q.IDs[:promptLen+len(gen)]
			rows = append(rows, r)
			t = max(t, len(r))
		}
	}
	m := s.opts.PadMultiple
	t = max(min((t+m-1)/m*m, s.m.Config.MaxPositionEmbeddings), t)
	b := gitmodel.Batch{Pixels: pixels, SamplesPerImage: k,
		IDs: make([]int, len(rows)*t), AttentionMask: make([]int, len(rows)*t),
		Labels: make([]int, len(rows)*t), Weights: make([]float32, len(rows)*t)}
	pad := s.tok.PAD()
	for i, r := range rows {
		for c := 0; c < t; c++ {
			at := i*t + c
			if c < len(r) {
				b.IDs[at], b.AttentionMask[at], b.Labels[at], b.Weights[at] = r[c], 1, r[c], float32(adv[i])
				if c < promptLen {
					b.Labels[at] = data.IgnoreIndex // the prompt is given, not sampled
				}
			} else {
				b.IDs[at], b.Labels[at] = pad, data.IgnoreIndex
			}
		}
	}
	return b
}

// scstSeedTag separates the sampling seeds from the dropout seeds, which
// are seedFor(seed, step, micro-batch).
const scstSeedTag = 0x5c57

// scstBatch samples and rewards the captions of loaded micro-batch k of
// the next step: the seed depends on the run seed, the step and k only, so
// a resumed run (and each MPI rank) samples what the uninterrupted single
// process would.
func (t *runner) scstBatch(ctx context.Context, b *data.LoadedBatch, k int) (gitmodel.Batch, error) {
	pairs := t.train.Pairs()
	images := make([]string, b.B)
	for i, idx := range b.Pairs {
		images[i] = pairs[idx].Image
	}
	seed := seedFor(t.cfg.Seed, int64(t.state.Step), int64(k), scstSeedTag)
	mb, err := t.scst.Batch(ctx, b.Pixels, images, seed)
	if err != nil {
		return mb, fmt.Errorf("step %d: %w", t.state.Step+1, err)
	}
	t.win.reward += t.scst.MeanReward
	t.win.rewardN++
	return mb, nil
}

// onePairPerImage keeps the first pair of each image, in order.
func onePairPerImage(pairs []data.TrainPair) []data.TrainPair {
	seen := map[string]bool{}
	var out []data.TrainPair
	for _, p := range pairs {
		if !seen[p.Image] {
			seen[p.Image] = true
			out = append(out, p)
		}
	}
	return out
}
