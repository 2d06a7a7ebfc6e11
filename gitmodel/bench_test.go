package gitmodel

import (
	"context"
	"math/rand"
	"path/filepath"
	"reflect"
	"runtime"
	"testing"

	"github.com/gitcap/gitcap/graph"
)

// randomModel builds a model from a configs/ preset with small random
// weights (LayerNorm gains 1), enough for timing and cache-equivalence
// checks.
func randomModel(tb testing.TB, preset string) *Model {
	tb.Helper()
	c, err := LoadConfig(filepath.Join("..", "configs", preset))
	if err != nil {
		tb.Fatal(err)
	}
	return randomModelOf(tb, c)
}

// randomModelOf is randomModel for a parsed configuration.
func randomModelOf(tb testing.TB, c Config) *Model {
	tb.Helper()
	m, err := New(c)
	if err != nil {
		tb.Fatal(err)
	}
	rng := rand.New(rand.NewSource(0))
	for _, p := range m.Params.All() {
		fillParam(p, rng)
	}
	return m
}

func fillParam(p *graph.Param, rng *rand.Rand) {
	d := p.F32()
	for i := range d {
		switch {
		case p.Role.Init() == graph.InitOnes:
			d[i] = 1
		case p.Role.Init() == graph.InitZeros:
			d[i] = 0
		case p.Name == "output.weight":
			// A wide LM head makes the top tokens of a random model
			// clearly apart, so generated ids do not hinge on rounding
			// (the cached-vs-recomputed test compares ids).
			d[i] = float32(rng.NormFloat64())
		default:
			d[i] = float32(rng.NormFloat64() * 0.02)
		}
	}
}

func randomPixels(n int, rng *rand.Rand) []float32 {
	px := make([]float32, n)
	for i := range px {
		px[i] = float32(rng.NormFloat64())
	}
	return px
}

func benchVision(b *testing.B, batch int) {
	benchGitBaseForward(b, batch, ForwardOptions{VisionOnly: true})
}

// benchGitBaseForward times a git-base-shaped forward graph over batch
// random images and a one-token (BOS) prompt, reporting seconds per image
// and CPU time per run.
func benchGitBaseForward(b *testing.B, batch int, opts ForwardOptions) {
	benchForwardOf(b, randomModel(b, "git-base.json"), batch, opts)
}

// benchForwardOf is benchGitBaseForward for the model m.
func benchForwardOf(b *testing.B, m *Model, batch int, opts ForwardOptions) {
	f, err := m.NewForward(batch, 1, opts)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	v := m.Config.Vision
	in := Batch{Pixels: randomPixels(batch*3*v.ImageSize*v.ImageSize, rand.New(rand.NewSource(1))), IDs: make([]int, batch)}
	for i := range in.IDs {
		in.IDs[i] = m.Config.BosTokenID
	}
	if err := f.Run(in); err != nil {
		b.Fatal(err)
	}
	runtime.GC()
	timed(b, func(int) {
		if err := f.Run(in); err != nil {
			b.Fatal(err)
		}
	})
	b.ReportMetric(float64(b.Elapsed().Seconds())/float64(b.N)/float64(batch), "s/image")
}

// BenchmarkGitBaseVisionForward times the image encoder (vision tower and
// projection), as HF's model.git.image_encoder is timed in the baseline.
func BenchmarkGitBaseVisionForward(b *testing.B)  { benchVision(b, 1) }
func BenchmarkGitBaseVisionForward8(b *testing.B) { benchVision(b, 8) }

// BenchmarkGitBaseBF16FullVisionForward8 is BenchmarkGitBaseVisionForward8
// with bf16-full weights (--dtype bf16-full: every product on AMX tiles
// where the CPU has them), the image encoder a serving batch of 8 runs.
func BenchmarkGitBaseBF16FullVisionForward8(b *testing.B) {
	m, err := randomModel(b, "git-base.json").CloneBF16()
	if err != nil {
		b.Fatal(err)
	}
	m.SetBF16Activations(true)
	benchForwardOf(b, m, 8, ForwardOptions{VisionOnly: true})
}

func benchCaption(b *testing.B, batch, beams int, noCache bool) {
	m := randomModel(b, "git-base.json")
	g := m.NewGenerator()
	defer g.Close()
	v := m.Config.Vision
	px := randomPixels(batch*3*v.ImageSize*v.ImageSize, rand.New(rand.NewSource(1)))
	// Exactly 20 new tokens: [SEP] is banned until then.
	opts := GenerateOptions{MaxNewTokens: 20, MinNewTokens: 20, NumBeams: beams, NoCache: noCache}
	if _, err := g.Generate(context.Background(), px, batch, []int{101}, opts); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := g.Generate(context.Background(), px, batch, []int{101}, opts); err != nil {
			b.Fatal(err)
		}
	}
	per := b.Elapsed().Seconds() / float64(b.N)
	b.ReportMetric(per/float64(batch), "s/image")
	b.ReportMetric(per/float64(batch*20), "s/token")
}

// 20-token captions of a git-base-shaped model.
func BenchmarkGitBaseCaptionGreedy(b *testing.B)        { benchCaption(b, 1, 1, false) }
func BenchmarkGitBaseCaptionGreedyBatch8(b *testing.B)  { benchCaption(b, 8, 1, false) }
func BenchmarkGitBaseCaptionBeam4(b *testing.B)         { benchCaption(b, 1, 4, false) }
func BenchmarkGitBaseCaptionGreedyNoCache(b *testing.B) { benchCaption(b, 1, 1, true) }

// TestCachedGenerationMatchesFullRecomputation compares the KV-cache path
// with full-sequence recomputation on a random git-base-shaped model (and
// the fixture model in TestGenerationMatchesHF).
func TestCachedGenerationMatchesFullRecomputation(t *testing.T) {
	if testing.Short() {
		t.Skip("git-base-shaped model: run without -short")
	}
	m := randomModel(t, "git-base.json")
	g := m.NewGenerator()
	defer g.Close()
	v := m.Config.Vision
	px := randomPixels(3*v.ImageSize*v.ImageSize, rand.New(rand.NewSource(2)))
	for _, beams := range []int{1, 2} {
		opts := GenerateOptions{MaxNewTokens: 4, MinNewTokens: 4, NumBeams: beams}
		cached, err := g.Generate(context.Background(), px, 1, []int{101}, opts)
		if err != nil {
			t.Fatal(err)
		}
		opts.NoCache = true
		full, err := g.Generate(context.Background(), px, 1, []int{101}, opts)
		if err != nil {
			t.Fatal(err)
		}
		for i := range cached {
			if a, b := cached[i][0].IDs, full[i][0].IDs; !reflect.DeepEqual(a, b) {
				t.Errorf("beams %d image %d: cached %v, full %v", beams, i, a, b)
			}
		}
	}
}
