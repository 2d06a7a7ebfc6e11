package train

import (
	"context"
	"errors"
	"math/rand"
	"slices"
	"sort"
	"testing"

	"github.com/gitcap/gitcap/gitmodel"
	"github.com/gitcap/gitcap/graph"
)

// tinyBatch is a random batch of b examples of tl tokens for m.
func tinyBatch(m *gitmodel.Model, b, tl int, seed int64) gitmodel.Batch {
	c := m.Config
	rng := rand.New(rand.NewSource(seed))
	in := gitmodel.Batch{Pixels: make([]float32, b*c.Frames()*c.Vision.NumChannels*c.Vision.ImageSize*c.Vision.ImageSize),
		IDs: make([]int, b*tl), Labels: make([]int, b*tl)}
	for i := range in.Pixels {
		in.Pixels[i] = float32(rng.NormFloat64())
	}
	for i := range in.IDs {
		in.IDs[i] = 1 + rng.Intn(1000)
		in.Labels[i] = in.IDs[i]
	}
	return in
}

func tinyModel(t *testing.T) *gitmodel.Model {
	t.Helper()
	m, err := gitmodel.New(tinyModelConfig())
	if err != nil {
		t.Fatal(err)
	}
	Init(m, 3)
	return m
}

func snapshot(m *gitmodel.Model) map[string][]float32 {
	s := map[string][]float32{}
	for _, p := range m.Params.All() {
		s[p.Name] = slices.Clone(p.F32())
	}
	return s
}

// TestGradHookRunsAfterAccumulationBeforeUpdate checks the all-reduce point
// of Trainer.Step: the hook sees the mean gradient of the micro-batches (in
// name order, frozen parameters left out), what it writes is what AdamW
// uses, and an error from it leaves every weight as it was.
func TestGradHookRunsAfterAccumulationBeforeUpdate(t *testing.T) {
	m := tinyModel(t)
	for _, p := range m.Params.All() {
		p.Frozen = p.Group == gitmodel.VisionGroup
	}
	a, b := tinyBatch(m, 2, 5, 1), tinyBatch(m, 2, 5, 2)

	// The mean gradient of a and b, from one-batch steps that the hook
	// stops before any update.
	var grads [2]map[string][]float32
	fail := errors.New("stop")
	for i, in := range []gitmodel.Batch{a, b} {
		tr, err := NewTrainer(m, TrainerOptions{AdamW: AdamWConfig{Beta1: 0.9, Beta2: 0.999, Eps: 1e-8}, GradHook: func(ps []*graph.Param) error {
			grads[i] = map[string][]float32{}
			for _, p := range ps {
				grads[i][p.Name] = slices.Clone(p.G)
			}
			return fail
		}})
		if err != nil {
			t.Fatal(err)
		}
		before := snapshot(m)
		if _, err := tr.Step(context.Background(), in); !errors.Is(err, fail) {
			t.Fatalf("step error %v, want the hook's", err)
		}
		tr.Close()
		for name, w := range before {
			if !slices.Equal(w, m.Params.Get(name).F32()) {
				t.Fatalf("%s changed although the hook failed", name)
			}
		}
	}

	calls := 0
	tr, err := NewTrainer(m, TrainerOptions{AdamW: AdamWConfig{Beta1: 0.9, Beta2: 0.999, Eps: 1e-8}, LR: func(int) float64 { return 1e-3 },
		GradHook: func(ps []*graph.Param) error {
			calls++
			if !sort.SliceIsSorted(ps, func(i, j int) bool { return ps[i].Name < ps[j].Name }) {
				t.Error("hook parameters are not in name order")
			}
			for _, p := range ps {
				if p.Frozen {
					t.Errorf("hook got frozen parameter %s", p.Name)
				}
				ga, gb := grads[0][p.Name], grads[1][p.Name]
				for j, g := range p.G {
					if want := (ga[j] + gb[j]) / 2; g != want {
						t.Fatalf("%s[%d]: hook sees gradient %v, want the micro-batch mean %v", p.Name, j, g, want)
					}
				}
				clear(p.G) // what the hook writes is what AdamW uses
			}
			return nil
		}})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	before := snapshot(m)
	r, err := tr.Step(context.Background(), a, b)
	if err != nil {
		t.Fatal(err)
	}
	if calls != 1 || r.Step != 1 || r.GradNorm != 0 || r.Images != 4 {
		t.Errorf("hook calls %d, result %+v; want 1 call, step 1, grad norm 0 (zeroed by the hook), 4 images", calls, r)
	}
	for name, w := range before {
		if !slices.Equal(w, m.Params.Get(name).F32()) {
			t.Errorf("%s moved although the hook zeroed every gradient (and weight decay is 0)", name)
		}
	}
}

// TestInitFollowsLayerRoles checks the initialisation each layer declares:
// LayerNorm gains 1 and shifts 0, biases 0, the padding row of the word
// embeddings 0, weights and embeddings drawn with initializer_range.
func TestInitFollowsLayerRoles(t *testing.T) {
	m := tinyModel(t)
	all := func(name string, want float32) {
		t.Helper()
		for i, w := range m.Params.Get(name).F32() {
			if w != want {
				t.Fatalf("%s[%d] = %v, want %v", name, i, w, want)
			}
		}
	}
	all("git.encoder.layer.0.output.LayerNorm.weight", 1)
	all("git.encoder.layer.0.output.LayerNorm.bias", 0)
	all("git.image_encoder.vision_model.pre_layrnorm.weight", 1)
	all("git.visual_projection.visual_projection.1.weight", 1)
	all("git.visual_projection.visual_projection.1.bias", 0)
	all("git.encoder.layer.1.attention.self.key.bias", 0)
	all("output.bias", 0)
	words := m.Params.Get("git.embeddings.word_embeddings.weight").F32()
	d, pad := m.Config.HiddenSize, m.Config.PadTokenID
	for i, w := range words[pad*d : (pad+1)*d] {
		if w != 0 {
			t.Fatalf("padding row of the word embeddings [%d] = %v, want 0", i, w)
		}
	}
	for _, name := range []string{"git.embeddings.word_embeddings.weight", "git.encoder.layer.0.attention.self.query.weight",
		"git.image_encoder.vision_model.embeddings.class_embedding", "git.image_encoder.vision_model.embeddings.patch_embedding.weight"} {
		var s, n float64
		for _, w := range m.Params.Get(name).F32() {
			s += float64(w) * float64(w)
			n++
		}
		if std := s / n; std < 0.015*0.015 || std > 0.025*0.025 {
			t.Errorf("%s: mean square %.3g, want about 0.02² (normal init)", name, std)
		}
	}
}
