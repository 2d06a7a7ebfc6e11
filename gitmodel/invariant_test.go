package gitmodel

import (
	"math/rand"
	"testing"
)

// invariantConfig is a small model whose decoder matrices are as large as
// the ones gemm's few-row kernel takes anyway (2¹⁶ weights; the fixture
// model's are 32×32) and whose LM head is git-base's.
func invariantConfig() Config {
	c := DefaultConfig()
	c.HiddenSize, c.NumHiddenLayers, c.NumAttentionHeads, c.IntermediateSize = 256, 2, 4, 1024
	c.Vision.HiddenSize, c.Vision.IntermediateSize, c.Vision.NumHiddenLayers, c.Vision.NumAttentionHeads = 64, 128, 1, 2
	c.Vision.ImageSize, c.Vision.PatchSize = 32, 8
	return c
}

// TestDecodeStepRowsDoNotDependOnTheBatch runs one decode step over 36
// rows (12 images with 3 beams: more rows than any few-row kernel's bound)
// and the same rows 3 at a time (one image's beams) and one at a time
// (greedy), over the same caches, tokens and lengths, for the fixture model
// and a model with git-base-sized decoder matrices, at every weight dtype,
// and wants the same logits bit for bit: a sequence's next token and score
// do not depend on what it shares a decode step with (a serving batch, a
// caption call over many images).
func TestDecodeStepRowsDoNotDependOnTheBatch(t *testing.T) {
	big := randomModelOf(t, invariantConfig())
	tiny := loadTiny(t, "git-tiny")
	for _, base := range []struct {
		name string
		m    *Model
	}{{"git-tiny", tiny}, {"256-wide", big}} {
		for _, dt := range []WeightDtype{FP32, BF16, BF16Full} {
			m := base.m
			if dt != FP32 {
				var err error
				if m, err = m.CloneBF16(); err != nil {
					t.Fatal(err)
				}
				m.SetBF16Activations(dt == BF16Full)
			}
			t.Run(base.name+"/"+string(dt), func(t *testing.T) { checkStepRowsAlone(t, m) })
		}
	}
}

func checkStepRowsAlone(t *testing.T, m *Model) {
	c := m.Config
	const rows, group = 36, 3
	nImg, d, tmax := c.ImageTokens(), c.HiddenSize, c.ImageTokens()+8
	rng := rand.New(rand.NewSource(5))
	all, err := m.newDecodeStep(rows, tmax)
	if err != nil {
		t.Fatal(err)
	}
	for l := range all.kc {
		for _, buf := range [][]float32{all.kc[l], all.vc[l]} {
			copy(buf, randomPixels(len(buf), rng))
		}
	}
	for r := range rows {
		all.at[r] = nImg + 1 + r%5 // the prompt and up to 4 tokens so far
		all.pos[r] = all.at[r] - nImg
		all.ids[r] = 1000 + rng.Intn(c.VocabSize-1000)
	}
	want := runStep(t, all)
	vocab := c.VocabSize
	for _, n := range []int{group, 1} {
		s, err := m.newDecodeStep(n, tmax)
		if err != nil {
			t.Fatal(err)
		}
		for r0 := 0; r0 < rows; r0 += n {
			per := tmax * d
			for l := range s.kc {
				copy(s.kc[l], all.kc[l][r0*per:(r0+n)*per])
				copy(s.vc[l], all.vc[l][r0*per:(r0+n)*per])
			}
			copy(s.ids, all.ids[r0:r0+n])
			copy(s.pos, all.pos[r0:r0+n])
			copy(s.at, all.at[r0:r0+n])
			got := runStep(t, s)
			for i, v := range got {
				if w := want[r0*vocab+i]; v != w {
					t.Fatalf("row %d (in a step of %d rows): logit %d is %v, in the step of %d rows %v", r0+i/vocab, n, i%vocab, v, rows, w)
				}
			}
		}
	}
}

func runStep(t *testing.T, s *decodeStep) []float32 {
	t.Helper()
	s.vm.Reset()
	if err := s.vm.RunAll(); err != nil {
		t.Fatal(err)
	}
	return append([]float32(nil), Values(s.logits)...)
}
