package train

import (
	"context"
	"errors"
	"math"
	"math/rand"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/gitcap/gitcap/data"
	"github.com/gitcap/gitcap/data/fixtures"
	"github.com/gitcap/gitcap/eval"
	"github.com/gitcap/gitcap/gitmodel"
	"github.com/gitcap/gitcap/gitmodel/caption"
	"github.com/gitcap/gitcap/graph"
)

// scstFixture is the git-tiny checkpoint with an SCST over a few images,
// and a batch of 2 images × 3 sampled sequences of different lengths (one
// cut off at max_length, without [SEP]) with advantages of both signs.
func scstFixture(t *testing.T) (*caption.Pipeline, *SCST, gitmodel.Batch) {
	t.Helper()
	p, err := caption.LoadPipeline(fixtures.Path(t, "git-tiny"))
	if err != nil {
		t.Fatal(err)
	}
	pairs := []data.TrainPair{{Image: "a", Caption: "a red square on white"}, {Image: "a", Caption: "a red box"},
		{Image: "b", Caption: "a blue circle on white"}}
	s, err := NewSCST(p.Model, p.Tokenizer, pairs, SCSTOptions{Samples: 3, MaxLength: 10, PadMultiple: 8})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	caps := [][]string{{"a red square", "a square on white", "red red red red red red red red red"},
		{"a blue circle", "white", "a circle on white"}}
	seqs := make([][]gitmodel.Sequence, len(caps))
	for i, cs := range caps {
		for _, c := range cs {
			ids := p.Tokenizer.Encode(c) // [CLS] ... [SEP]
			if len(ids) > 10 {
				ids = ids[:10] // cut off at max_length: no [SEP]
			}
			ids = append(ids, 0, 0) // what the sampler appends after a row's [SEP]
			seqs[i] = append(seqs[i], gitmodel.Sequence{IDs: ids})
		}
	}
	cfg := p.Model.Config
	px := make([]float32, 2*cfg.Vision.NumChannels*cfg.Vision.ImageSize*cfg.Vision.ImageSize)
	rng := rand.New(rand.NewSource(1))
	for i := range px {
		px[i] = float32(rng.NormFloat64())
	}
	adv := []float64{0.9, -0.4, -0.5, 1.2, -2, 0.8}
	return p, s, s.build(px, seqs, adv, 1)
}

// TestSCSTBatchLaysOutSampledTokens: the batch holds the sampled ids up to
// and including [SEP] (or max_length), labels on every sampled token but not
// the prompt, each row's advantage as the weight of its tokens, and the
// pixels of each image once.
func TestSCSTBatchLaysOutSampledTokens(t *testing.T) {
	p, _, b := scstFixture(t)
	const tl = 16 // the longest row (10 tokens) padded to a multiple of 8
	if b.SamplesPerImage != 3 || len(b.IDs) != 6*tl {
		t.Fatalf("samples per image %d, %d ids; want 3 and 6 rows × %d", b.SamplesPerImage, len(b.IDs), tl)
	}
	sep := p.Tokenizer.SEP()
	row := b.IDs[0:tl]
	want := append(p.Tokenizer.Encode("a red square"), make([]int, tl-5)...)
	if !slices.Equal(row, want) {
		t.Errorf("row 0 ids %v, want %v", row, want)
	}
	if b.Labels[0] != data.IgnoreIndex || b.Labels[1] != row[1] || b.Labels[4] != sep || b.Labels[5] != data.IgnoreIndex {
		t.Errorf("row 0 labels %v", b.Labels[0:tl])
	}
	if b.Weights[1] != 0.9 || b.AttentionMask[5] != 0 || b.AttentionMask[4] != 1 {
		t.Errorf("row 0 weights %v, mask %v", b.Weights[0:tl], b.AttentionMask[0:tl])
	}
	cut := b.IDs[2*tl : 3*tl] // the caption cut off at 10 tokens without [SEP]
	if slices.Contains(cut, sep) {
		t.Errorf("truncated row has [SEP]: %v", cut)
	}
}

// TestSCSTLossGradientMatchesFiniteDifferences checks the gradient of the
// SCST loss (the training graph with weighted loss and shared image tokens)
// on the tiny model against central finite differences of the loss, on the
// largest-gradient elements of tensors in the LM head, the decoder, the
// text embedding and the vision tower (whose gradient sums over the rows
// that share an image).
func TestSCSTLossGradientMatchesFiniteDifferences(t *testing.T) {
	p, _, b := scstFixture(t)
	m := p.Model
	bs, tl, err := m.BatchShape(b)
	if err != nil {
		t.Fatal(err)
	}
	f, err := m.NewForward(bs, tl, gitmodel.ForwardOptions{Train: true, Loss: true, Weighted: true, SamplesPerImage: 3})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Run(b); err != nil {
		t.Fatal(err)
	}
	grads := map[string][]float32{}
	if err := f.Grads(func(p *graph.Param, g []float32) { grads[p.Name] = slices.Clone(g) }); err != nil {
		t.Fatal(err)
	}
	ev, err := m.NewForward(bs, tl, gitmodel.ForwardOptions{Loss: true, Weighted: true, SamplesPerImage: 3})
	if err != nil {
		t.Fatal(err)
	}
	defer ev.Close()
	loss := func() float64 {
		if err := ev.Run(b); err != nil {
			t.Fatal(err)
		}
		return ev.LossValue()
	}
	if l := loss(); l != f.LossValue() {
		t.Fatalf("loss %v without gradients, %v with", l, f.LossValue())
	}
	worst := 0.0
	checked := 0
	for _, name := range []string{"output.bias", "output.weight", "git.encoder.layer.1.output.dense.weight",
		"git.embeddings.word_embeddings.weight", "git.visual_projection.visual_projection.0.weight",
		"git.image_encoder.vision_model.encoder.layers.1.mlp.fc2.weight"} {
		p := m.Params.Get(name)
		if p == nil {
			t.Fatalf("no parameter %s", name)
		}
		g := grads[name]
		idx := make([]int, len(g))
		for i := range idx {
			idx[i] = i
		}
		slices.SortFunc(idx, func(a, b int) int { return cmpAbs(g[b], g[a]) })
		for _, i := range idx[:3] {
			// Central differences at h and h/2, Richardson-extrapolated
			// (error O(h⁴)).
			w := p.W[i]
			central := func(h float32) float64 {
				p.W[i] = w + h
				up := loss()
				p.W[i] = w - h
				down := loss()
				p.W[i] = w
				return (up - down) / float64(2*h)
			}
			fd := (4*central(5e-3) - central(1e-2)) / 3
			d := math.Abs(fd - float64(g[i]))
			worst = math.Max(worst, d/math.Max(1, math.Abs(fd)))
			if d > 1e-3+1e-2*math.Abs(fd) {
				t.Errorf("%s[%d]: gradient %.6g, finite difference %.6g", name, i, g[i], fd)
			}
			checked++
		}
	}
	if checked == 0 {
		t.Fatal("nothing checked")
	}
	t.Logf("%d elements, largest error %.3g (relative to max(1, |fd|))", checked, worst)
}

func cmpAbs(a, b float32) int {
	x, y := math.Abs(float64(a)), math.Abs(float64(b))
	switch {
	case x < y:
		return -1
	case x > y:
		return 1
	}
	return 0
}

// TestSCSTWithUnitAdvantagesIsCrossEntropyOnSampledTokens: through
// Trainer.Step, the SCST batch with every advantage 1 has the loss and the
// gradient of plain cross-entropy training on the sampled tokens (each
// image's pixels repeated for its samples).
func TestSCSTWithUnitAdvantagesIsCrossEntropyOnSampledTokens(t *testing.T) {
	p, _, b := scstFixture(t)
	m := p.Model
	for i := range b.Weights {
		b.Weights[i] = 1
	}
	per := len(b.Pixels) / 2
	ce := gitmodel.Batch{IDs: b.IDs, AttentionMask: b.AttentionMask, Labels: b.Labels}
	for i := 0; i < 6; i++ {
		ce.Pixels = append(ce.Pixels, b.Pixels[(i/3)*per:(i/3+1)*per]...)
	}
	stop := errors.New("stop")
	run := func(in gitmodel.Batch) (float64, map[string][]float32) {
		grads := map[string][]float32{}
		tr, err := NewTrainer(m, TrainerOptions{AdamW: AdamWConfig{Beta1: 0.9, Beta2: 0.999, Eps: 1e-8}, GradHook: func(ps []*graph.Param) error {
			for _, p := range ps {
				grads[p.Name] = slices.Clone(p.G)
			}
			return stop
		}})
		if err != nil {
			t.Fatal(err)
		}
		defer tr.Close()
		r, err := tr.Step(context.Background(), in)
		if !errors.Is(err, stop) {
			t.Fatalf("step: %v", err)
		}
		return r.Loss, grads
	}
	lw, gw := run(b)
	lc, gc := run(ce)
	if math.Abs(lw-lc) > 1e-6*math.Abs(lc) {
		t.Errorf("loss %v with unit advantages, cross-entropy %v", lw, lc)
	}
	for name, want := range gc {
		got := gw[name]
		var scale float64
		for _, v := range want {
			scale = math.Max(scale, math.Abs(float64(v)))
		}
		for i := range want {
			if d := math.Abs(float64(got[i] - want[i])); d > 1e-5*scale+1e-7 { // the floor: attention key biases, whose true gradient is 0
				t.Fatalf("%s[%d]: %g with unit advantages, cross-entropy %g (scale %g)", name, i, got[i], want[i], scale)
			}
		}
	}
}

// TestSCSTRewardsAreCIDErDWithTrainingDF: the reward of each sampled
// sequence is eval.CIDErDWithDF of its caption against its image's
// references, with document frequencies over the training references, the
// end of the caption ([SEP]) and of every reference counted as the word
// EOSWord; a caption cut off at max_length has no end word.
func TestSCSTRewardsAreCIDErDWithTrainingDF(t *testing.T) {
	p, err := caption.LoadPipeline(fixtures.Path(t, "git-tiny"))
	if err != nil {
		t.Fatal(err)
	}
	pairs := []data.TrainPair{
		{Image: "x.png", Caption: "A red square on white."}, {Image: "x.png", Caption: "a red box on a white background"},
		{Image: "y.png", Caption: "a blue circle on white"}, {Image: "y.png", Caption: "blue disc, white background"},
		{Image: "z.png", Caption: "a green triangle on black"},
	}
	s, err := NewSCST(p.Model, p.Tokenizer, pairs, SCSTOptions{Samples: 2, MaxLength: 8})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	images := []string{"y.png", "x.png"}
	caps := [][]string{{"a blue circle on white", "a circle circle circle circle circle circle"}, {"a red square", "Red box on white!"}}
	seqs := make([][]gitmodel.Sequence, len(caps))
	for i, cs := range caps {
		for _, c := range cs {
			ids := p.Tokenizer.Encode(c)
			if len(ids) > 8 {
				ids = ids[:8]
			}
			seqs[i] = append(seqs[i], gitmodel.Sequence{IDs: ids})
		}
	}
	got, err := s.Rewards(images, seqs, 1)
	if err != nil {
		t.Fatal(err)
	}

	// Expected: the coco-caption CIDEr-D of the same captions.
	var corpus [][]string
	gts := map[string][]string{}
	for _, im := range []string{"x.png", "y.png", "z.png"} {
		var refs []string
		for _, pr := range pairs {
			if pr.Image == im {
				refs = append(refs, eval.PTBTokenize(pr.Caption)+" "+EOSWord)
			}
		}
		gts[im] = refs
		corpus = append(corpus, refs)
	}
	df := eval.NewDocFreq(corpus)
	var ids []string
	res := map[string]string{}
	cgts := map[string][]string{}
	want := map[string]bool{"a circle circle circle circle circle circle": false} // cut off at 8 tokens
	for i, cs := range caps {
		for j, c := range cs {
			key := images[i] + "#" + c
			ids = append(ids, key)
			cgts[key] = gts[images[i]]
			text := p.Tokenizer.Decode(seqs[i][j].IDs[1:], true)
			if _, cut := want[c]; cut {
				res[key] = eval.PTBTokenize(text)
			} else {
				res[key] = eval.PTBTokenize(text) + " " + EOSWord
			}
		}
	}
	_, per, err := eval.CIDErDWithDF(ids, cgts, res, df)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(per) {
		t.Fatalf("%d rewards, want %d", len(got), len(per))
	}
	for i := range per {
		if got[i] != per[i] {
			t.Errorf("reward %d (%s): %v, CIDEr-D %v", i, ids[i], got[i], per[i])
		}
	}
	if !(got[0] > got[1]) {
		t.Errorf("the matching caption scored %v, the cut-off one %v", got[0], got[1])
	}
	if df.NumImages() != s.DocFreq().NumImages() || df.Len() != s.DocFreq().Len() {
		t.Errorf("document frequencies over %d images / %d n-grams, want %d / %d", s.DocFreq().NumImages(), s.DocFreq().Len(), df.NumImages(), df.Len())
	}
}

func TestAdvantagesUseTheOtherSamplesMean(t *testing.T) {
	got := Advantages([]float64{1, 2, 3, 0.5, 0.5, 2}, 3)
	want := []float64{1 - 2.5, 2 - 2, 3 - 1.5, 0.5 - 1.25, 0.5 - 1.25, 2 - 0.5}
	for i := range want {
		if math.Abs(got[i]-want[i]) > 1e-15 {
			t.Errorf("advantage %d: %v, want %v", i, got[i], want[i])
		}
	}
}

// TestSCSTRunResumesExactly: an SCST run from the tiny checkpoint,
// interrupted and resumed, ends with the weights of the uninterrupted run
// (the samples are seeded by step and micro-batch), with gradient
// accumulation.
func TestSCSTRunResumesExactly(t *testing.T) {
	const total = 6
	setup := func(dir string) *Config {
		cfg := tinyConfig(t, dir, total)
		cfg.Objective, cfg.SCSTSamples, cfg.GenMaxLength = ObjectiveSCST, 3, 8
		cfg.BatchSize, cfg.GradAccum = 2, 2
		cfg.LR, cfg.LogEvery = 1e-4, 1
		return cfg
	}
	full := t.TempDir()
	var log strings.Builder
	if _, err := Run(context.Background(), setup(full), &log); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(log.String(), "sample_cider") {
		t.Errorf("no sample reward in the log:\n%s", log.String())
	}
	part := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	sum, err := Run(ctx, setup(part), &cancelAfter{n: 3, cancel: cancel})
	cancel()
	if err != nil {
		t.Fatal(err)
	}
	if !sum.Interrupted || sum.Steps >= total {
		t.Fatalf("the first run was not interrupted: %+v", sum)
	}
	if sum, err = Resume(context.Background(), setup(part), filepath.Join(part, LastCheckpoint), nil); err != nil || sum.Steps != total {
		t.Fatalf("resume: %v, %d steps", err, sum.Steps)
	}
	a, b := weights(t, filepath.Join(full, LastCheckpoint)), weights(t, filepath.Join(part, LastCheckpoint))
	moved := false
	before := weights(t, fixtures.Path(t, "git-tiny"))
	for name, wa := range a {
		for i := range wa {
			if wa[i] != b[name][i] {
				t.Fatalf("%s[%d]: uninterrupted %g, resumed %g", name, i, wa[i], b[name][i])
			}
			moved = moved || wa[i] != before[name][i]
		}
	}
	if !moved {
		t.Error("SCST did not change any weight")
	}
}
