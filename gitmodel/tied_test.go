package gitmodel

import (
	"path/filepath"
	"slices"
	"testing"

	"github.com/gitcap/gitcap/data"
	"github.com/gitcap/gitcap/data/tensorfile"
	"github.com/gitcap/gitcap/graph"
)

// TestTiedWordEmbeddingsLoadSaveForward checks tie_word_embeddings: a tied
// model has no output.weight of its own, skips one in a checkpoint, saves
// none (as HF does), and computes the logits of an untied model whose
// output.weight is a copy of the word embeddings; changing the word
// embeddings changes the LM head with them.
func TestTiedWordEmbeddingsLoadSaveForward(t *testing.T) {
	untied := loadTiny(t, "git-tiny")
	copy(untied.Params.Get("output.weight").F32(), untied.Params.Get("git.embeddings.word_embeddings.weight").F32())
	dir := t.TempDir()
	src := filepath.Join(dir, "untied.safetensors")
	if err := untied.SaveWeights(src); err != nil {
		t.Fatal(err)
	}
	c := untied.Config
	c.TieWordEmbeddings = true
	tied, err := New(c)
	if err != nil {
		t.Fatal(err)
	}
	if tied.Params.Get("output.weight") != nil {
		t.Fatal("a tied model registers its own output.weight")
	}
	if err := tied.LoadWeights(src); err != nil {
		t.Fatalf("loading a checkpoint that has output.weight into a tied model: %v", err)
	}
	dst := filepath.Join(dir, "tied.safetensors")
	if err := tied.SaveWeights(dst); err != nil {
		t.Fatal(err)
	}
	f, err := tensorfile.Open(dst)
	if err != nil {
		t.Fatal(err)
	}
	if slices.Contains(f.Names(), "output.weight") {
		t.Error("a tied model saved output.weight")
	}
	again, err := New(c)
	if err != nil {
		t.Fatal(err)
	}
	if err := again.LoadWeights(dst); err != nil {
		t.Fatalf("reloading the tied checkpoint: %v", err)
	}
	for _, p := range tied.Params.All() {
		if !slices.Equal(p.F32(), again.Params.Get(p.Name).F32()) {
			t.Errorf("%s changed in a save/load round trip", p.Name)
		}
	}

	ref := refFile(t, "git-tiny", "reference", "forward.safetensors")
	ids := refInts(t, ref, "input_ids")
	in := Batch{Pixels: refF32(t, ref, "pixel_values"), IDs: ids, AttentionMask: refInts(t, ref, "attention_mask")}
	logits := func(m *Model) []float32 {
		f, err := m.NewForward(2, len(ids)/2, ForwardOptions{AllLogits: true})
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if err := f.Run(in); err != nil {
			t.Fatal(err)
		}
		return slices.Clone(Values(f.Logits))
	}
	want, got := logits(untied), logits(again)
	if d := maxAbsDiff(t, "logits", got, want); d != 0 {
		t.Errorf("tied logits differ from the untied model with copied embeddings by %.3g, want identical", d)
	}
	words := again.Params.Get("git.embeddings.word_embeddings.weight").F32()
	for i := range words {
		words[i] *= 2
	}
	if d := maxAbsDiff(t, "logits", logits(again), got); d == 0 {
		t.Error("scaling the word embeddings left the tied logits unchanged: the LM head is not tied")
	}
}

// TestIgnoreIndexAgrees: the data loader's padding label is the value the
// loss skips.
func TestIgnoreIndexAgrees(t *testing.T) {
	if data.IgnoreIndex != graph.IgnoreIndex {
		t.Fatalf("data.IgnoreIndex %d, graph.IgnoreIndex %d", data.IgnoreIndex, graph.IgnoreIndex)
	}
}
