package gitmodel

import (
	"math"
	"math/rand"
	"path/filepath"
	"testing"

	"github.com/gitcap/gitcap/data/fixtures"
	"github.com/gitcap/gitcap/graph"
)

// normalModel is the configs/ preset with HF's initialisation as each layer
// declares it: weights and embeddings normal(0, initializer_range), biases
// and LayerNorm shifts 0, LayerNorm gains 1.
func normalModel(t *testing.T, preset string) *Model {
	t.Helper()
	c, err := LoadConfig(filepath.Join("..", "configs", preset))
	if err != nil {
		t.Fatal(err)
	}
	m, err := New(c)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewSource(4))
	for _, p := range m.Params.All() {
		w := p.F32()
		for i := range w {
			switch p.Role.Init() {
			case graph.InitOnes:
				w[i] = 1
			case graph.InitZeros:
				w[i] = 0
			default:
				w[i] = float32(rng.NormFloat64() * c.InitializerRange)
			}
		}
	}
	return m
}

// TestCachedDecodingLogitsMatchFullRecomputation drives the KV-cache decode
// step and full-sequence recomputation side by side over the same tokens,
// with two images expanded to two rows each and a beam-style reordering of
// the rows half-way, and compares every step's logits (not just the ids)
// to 1e-5.
func TestCachedDecodingLogitsMatchFullRecomputation(t *testing.T) {
	models := map[string]func(t *testing.T) *Model{
		"tiny preset, normal init": func(t *testing.T) *Model { return normalModel(t, "tiny.json") },
		"git-tiny fixture": func(t *testing.T) *Model {
			m, err := Load(fixtures.Path(t, "git-tiny"))
			if err != nil {
				t.Fatal(err)
			}
			return m
		},
	}
	for name, mk := range models {
		t.Run(name, func(t *testing.T) {
			m := mk(t)
			c := m.Config
			const batch, expand, steps = 2, 2, 6
			prompt := []int{c.BosTokenID, 2000}
			g := m.NewGenerator()
			defer g.Close()
			g.maxText = len(prompt) + steps
			img := c.Frames() * c.Vision.NumChannels * c.Vision.ImageSize * c.Vision.ImageSize
			px := randomPixels(batch*img, rand.New(rand.NewSource(5)))
			cached := &cachedStepper{m: m, g: g}
			full := &fullStepper{m: m, g: g}
			rows := batch * expand
			compare := func(step int, a, b []float32) {
				t.Helper()
				worst := 0.0
				for i := range a {
					worst = math.Max(worst, math.Abs(float64(a[i])-float64(b[i])))
				}
				if len(a) != rows*c.VocabSize || len(b) != len(a) {
					t.Fatalf("step %d: %d and %d logits, want %d", step, len(a), len(b), rows*c.VocabSize)
				}
				if worst > 1e-5 {
					t.Errorf("step %d: cached and recomputed logits differ by up to %.3g (allowed 1e-5)", step, worst)
				}
			}
			a, err := cached.start(px, batch, prompt, expand)
			if err != nil {
				t.Fatal(err)
			}
			b, err := full.start(px, batch, prompt, expand)
			if err != nil {
				t.Fatal(err)
			}
			compare(0, a, b)
			rng := rand.New(rand.NewSource(6))
			tokens := make([]int, rows)
			for s := 1; s <= steps; s++ {
				if s == 3 {
					src := []int{1, 1, 3, 2} // rows continue other rows' histories
					cached.reorder(src)
					full.reorder(src)
				}
				for r := range tokens {
					tokens[r] = 1000 + rng.Intn(5000)
				}
				if a, err = cached.step(tokens); err != nil {
					t.Fatal(err)
				}
				if b, err = full.step(tokens); err != nil {
					t.Fatal(err)
				}
				compare(s, a, b)
			}
		})
	}
}
