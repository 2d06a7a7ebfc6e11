package gitmodel

import (
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/gitcap/gitcap/data/fixtures"
	"github.com/gitcap/gitcap/data/tensorfile"
	"github.com/gitcap/gitcap/graph"
)

// refFile opens a reference safetensors file from the fixtures.
func refFile(t *testing.T, parts ...string) *tensorfile.File {
	t.Helper()
	f, err := tensorfile.Open(fixtures.Path(t, parts...))
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func refF32(t *testing.T, f *tensorfile.File, name string) []float32 {
	t.Helper()
	v, _, err := f.F32(name)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func refInts(t *testing.T, f *tensorfile.File, name string) []int {
	t.Helper()
	v, _, err := f.Ints(name)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func loadTiny(t testing.TB, name string) *Model {
	t.Helper()
	m, err := Load(fixtures.Path(t, name))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// maxAbsDiff returns the largest |a-b|; lengths must match.
func maxAbsDiff(t *testing.T, what string, got, want []float32) float64 {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d values, reference has %d", what, len(got), len(want))
	}
	worst := 0.0
	for i := range got {
		d := math.Abs(float64(got[i]) - float64(want[i]))
		if d > worst || math.IsNaN(d) {
			worst = d
		}
	}
	return worst
}

// TestForwardMatchesHF runs git-tiny on the reference batch and compares
// every stored activation, the logits and the loss with HF transformers.
func TestForwardMatchesHF(t *testing.T) {
	m := loadTiny(t, "git-tiny")
	ref := refFile(t, "git-tiny", "reference", "forward.safetensors")
	ids := refInts(t, ref, "input_ids")
	f, err := m.NewForward(2, len(ids)/2, ForwardOptions{Loss: true, AllLogits: true})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	err = f.Run(Batch{
		Pixels:        refF32(t, ref, "pixel_values"),
		IDs:           ids,
		AttentionMask: refInts(t, ref, "attention_mask"),
		Labels:        refInts(t, ref, "labels"),
	})
	if err != nil {
		t.Fatal(err)
	}
	const tol = 1e-4
	checks := map[string][]float32{
		"vision_last_hidden_state":  Values(f.Vision[0].Last),
		"visual_projection":         Values(f.Projected),
		"decoder_last_hidden_state": Values(f.Decoder.Last),
		"logits":                    Values(f.Logits),
	}
	for i, h := range f.Vision[0].Hidden {
		checks[fmt.Sprintf("vision_hidden_states.%d", i)] = Values(h)
	}
	for i, h := range f.Decoder.Hidden {
		checks[fmt.Sprintf("decoder_hidden_states.%d", i)] = Values(h)
	}
	for name, got := range checks {
		d := maxAbsDiff(t, name, got, refF32(t, ref, name))
		t.Logf("%-28s max |diff| %.2g", name, d)
		if d > tol {
			t.Errorf("%s: max |diff| %.3g > %g", name, d, tol)
		}
	}
	wantLoss := float64(refF32(t, ref, "loss")[0])
	if d := math.Abs(f.LossValue() - wantLoss); d > 1e-4 {
		t.Errorf("loss %.7f, HF %.7f (|diff| %.2g > 1e-4)", f.LossValue(), wantLoss, d)
	} else {
		t.Logf("loss %.7f, HF %.7f", f.LossValue(), wantLoss)
	}
}

// TestGradientsMatchHF checks d loss / d parameter for all parameters of
// git-tiny on the reference batch (dropout off, as the fixture was made)
// within 2e-3 × max(the tensor's largest |grad|, 1e-3), with the layers'
// activations kept and with them recomputed (gradient checkpointing).
func TestGradientsMatchHF(t *testing.T) {
	for _, ckpt := range []bool{false, true} {
		t.Run(fmt.Sprintf("gradient_checkpointing=%v", ckpt), func(t *testing.T) { testGradientsMatchHF(t, ckpt) })
	}
}

func testGradientsMatchHF(t *testing.T, ckpt bool) {
	m := loadTiny(t, "git-tiny")
	ref := refFile(t, "git-tiny", "reference", "forward.safetensors")
	grads := refFile(t, "git-tiny", "reference", "grads.safetensors")
	ids := refInts(t, ref, "input_ids")
	f, err := m.NewForward(2, len(ids)/2, ForwardOptions{Train: true, Loss: true, GradientCheckpointing: ckpt})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Run(Batch{Pixels: refF32(t, ref, "pixel_values"), IDs: ids,
		AttentionMask: refInts(t, ref, "attention_mask"), Labels: refInts(t, ref, "labels")}); err != nil {
		t.Fatal(err)
	}
	if d := math.Abs(f.LossValue() - float64(refF32(t, ref, "loss")[0])); d > 1e-4 {
		t.Errorf("loss differs from HF by %.2g", d)
	}
	if ckpt && len(f.rc.segs) != 2 {
		t.Errorf("gradient checkpointing compiled %d segments, want 2 (vision and decoder layers)", len(f.rc.segs))
	}
	seen := map[string]bool{}
	worst := 0.0
	// The pure-Go BLAS (GITCAP_OPENBLAS=off, or no OpenBLAS) accumulates float32 products
	// without OpenBLAS's blocking, which costs up to ~1e-3 on the
	// embedding gradients (sums over many rows); the per-tensor check above
	// applies unchanged.
	elemAtol := 4e-4
	if !graph.BLAS().OpenBLAS {
		elemAtol = 2e-3
	}
	err = f.Grads(func(p *graph.Param, g []float32) {
		seen[p.Name] = true
		want := refF32(t, grads, p.Name)
		scale := 1e-3
		for _, w := range want {
			scale = math.Max(scale, math.Abs(float64(w)))
		}
		d := maxAbsDiff(t, p.Name, g, want)
		worst = math.Max(worst, d/scale)
		if d > 2e-3*scale {
			t.Errorf("%s: max |diff| %.3g > 2e-3 × %.3g", p.Name, d, scale)
		}
		// Element by element too, so that small entries of a tensor with a
		// large maximum are checked as well: atol 4e-4 + rtol 1e-3. The
		// absolute part is HF's own float32 error (its float32 gradients
		// differ from float64 by up to 3.5e-4, tolerances_f32_vs_f64.json);
		// the word/position embedding gradients sum many float32 terms.
		// Key biases have a true gradient of zero (softmax ignores them):
		// both sides are float32 noise.
		if strings.HasSuffix(p.Name, "key.bias") || strings.HasSuffix(p.Name, "k_proj.bias") {
			return
		}
		for i, w := range want {
			if e := math.Abs(float64(g[i]) - float64(w)); e > elemAtol+1e-3*math.Abs(float64(w)) {
				t.Errorf("%s[%d]: %g, HF %g", p.Name, i, g[i], w)
				break
			}
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("largest gradient difference relative to its tensor's scale: %.2g", worst)
	for _, name := range grads.Names() {
		if !seen[name] {
			t.Errorf("no gradient computed for %s", name)
		}
	}
}

// TestVideoForwardMatchesHF runs the two-frame git-tiny-video checkpoint
// (temporal embeddings per frame) on the reference batch.
func TestVideoForwardMatchesHF(t *testing.T) {
	m := loadTiny(t, "git-tiny-video")
	if m.Config.Frames() != 2 {
		t.Fatalf("git-tiny-video has %d frames, want 2", m.Config.Frames())
	}
	ref := refFile(t, "git-tiny-video", "reference", "forward.safetensors")
	ids := refInts(t, ref, "input_ids")
	f, err := m.NewForward(2, len(ids)/2, ForwardOptions{AllLogits: true})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Run(Batch{Pixels: refF32(t, ref, "pixel_values"), IDs: ids, AttentionMask: refInts(t, ref, "attention_mask")}); err != nil {
		t.Fatal(err)
	}
	d := maxAbsDiff(t, "logits", Values(f.Logits), refF32(t, ref, "logits"))
	t.Logf("logits max |diff| %.2g", d)
	if d > 1e-4 {
		t.Errorf("logits: max |diff| %.3g > 1e-4", d)
	}
}
