package gitmodel

import (
	"context"
	"encoding/json"
	"math"
	"os"
	"reflect"
	"testing"

	"github.com/gitcap/gitcap/data/fixtures"
)

type genRef struct {
	Settings struct {
		MaxLength int   `json:"max_length"`
		PromptIDs []int `json:"prompt_ids"`
	} `json:"settings"`
	PerImage []struct {
		Image  string `json:"image"`
		Greedy struct {
			IDs []int `json:"ids"`
		} `json:"greedy"`
		Beam3 struct {
			IDs   []int   `json:"ids"`
			Score float64 `json:"sequence_score"`
		} `json:"beam3"`
		PromptGreedy struct {
			PromptIDs []int `json:"prompt_ids"`
			IDs       []int `json:"ids"`
		} `json:"prompt_greedy"`
	} `json:"per_image"`
	Batched struct {
		Images []string `json:"images"`
		IDs    [][]int  `json:"ids"`
	} `json:"batched_greedy"`
}

func loadGenRef(t *testing.T) genRef {
	t.Helper()
	b, err := os.ReadFile(fixtures.Path(t, "git-tiny", "reference", "generate.json"))
	if err != nil {
		t.Fatal(err)
	}
	var r genRef
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatal(err)
	}
	if len(r.PerImage) == 0 {
		t.Fatal("generate.json has no per_image cases")
	}
	return r
}

// refPixels returns the HF-preprocessed pixels of a fixture image at 32 px.
func refPixels(t *testing.T, images ...string) []float32 {
	t.Helper()
	f := refFile(t, "git-tiny", "reference", "preprocess.safetensors")
	var out []float32
	for _, im := range images {
		out = append(out, refF32(t, f, "pixel_values_32/"+im)...)
	}
	return out
}

// TestGenerationMatchesHF reproduces HF's greedy, 3-beam and prompted
// greedy results for every fixture image, with and without the KV cache.
func TestGenerationMatchesHF(t *testing.T) {
	ref := loadGenRef(t)
	m := loadTiny(t, "git-tiny")
	g := m.NewGenerator()
	defer g.Close()
	ctx := context.Background()
	for _, noCache := range []bool{false, true} {
		for _, c := range ref.PerImage {
			px := refPixels(t, c.Image)
			opts := GenerateOptions{MaxLength: ref.Settings.MaxLength, NoCache: noCache}
			got, err := g.Generate(ctx, px, 1, []int{101}, opts)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got[0][0].IDs, c.Greedy.IDs) {
				t.Errorf("%s greedy (nocache=%v): got %v, HF %v", c.Image, noCache, got[0][0].IDs, c.Greedy.IDs)
			}
			opts.NumBeams = 3
			got, err = g.Generate(ctx, px, 1, []int{101}, opts)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got[0][0].IDs, c.Beam3.IDs) {
				t.Errorf("%s beam3 (nocache=%v): got %v, HF %v", c.Image, noCache, got[0][0].IDs, c.Beam3.IDs)
			}
			if d := math.Abs(got[0][0].Score - c.Beam3.Score); d > 1e-4 {
				t.Errorf("%s beam3 score %.6f, HF %.6f", c.Image, got[0][0].Score, c.Beam3.Score)
			}
			opts.NumBeams = 1
			got, err = g.Generate(ctx, px, 1, c.PromptGreedy.PromptIDs, opts)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got[0][0].IDs, c.PromptGreedy.IDs) {
				t.Errorf("%s prompt greedy (nocache=%v): got %v, HF %v", c.Image, noCache, got[0][0].IDs, c.PromptGreedy.IDs)
			}
		}
	}
}

// TestBatchedGenerationMatchesHF generates for all twelve images in one
// batch; HF pads finished rows with 0.
func TestBatchedGenerationMatchesHF(t *testing.T) {
	ref := loadGenRef(t)
	m := loadTiny(t, "git-tiny")
	g := m.NewGenerator()
	defer g.Close()
	got, err := g.Generate(context.Background(), refPixels(t, ref.Batched.Images...), len(ref.Batched.Images), []int{101}, GenerateOptions{MaxLength: ref.Settings.MaxLength})
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range ref.Batched.IDs {
		if !reflect.DeepEqual(got[i][0].IDs, want) {
			t.Errorf("%s: got %v, HF %v", ref.Batched.Images[i], got[i][0].IDs, want)
		}
	}
}

// TestBatchedBeamSearchMatchesSingleImages runs 3-beam search on three
// images at once and checks each against HF's single-image result.
func TestBatchedBeamSearchMatchesSingleImages(t *testing.T) {
	ref := loadGenRef(t)
	m := loadTiny(t, "git-tiny")
	g := m.NewGenerator()
	defer g.Close()
	cases := ref.PerImage[:3]
	var names []string
	for _, c := range cases {
		names = append(names, c.Image)
	}
	got, err := g.Generate(context.Background(), refPixels(t, names...), len(names), []int{101}, GenerateOptions{MaxLength: ref.Settings.MaxLength, NumBeams: 3})
	if err != nil {
		t.Fatal(err)
	}
	for i, c := range cases {
		if !reflect.DeepEqual(got[i][0].IDs, c.Beam3.IDs) || math.Abs(got[i][0].Score-c.Beam3.Score) > 1e-4 {
			t.Errorf("%s: got %v (%.6f), HF %v (%.6f)", c.Image, got[i][0].IDs, got[i][0].Score, c.Beam3.IDs, c.Beam3.Score)
		}
	}
}
