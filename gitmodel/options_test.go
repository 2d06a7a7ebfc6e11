package gitmodel

import (
	"context"
	"errors"
	"math"
	"math/rand"
	"reflect"
	"strings"
	"testing"
)

func TestLogitsProcessorsFollowHF(t *testing.T) {
	negInf := float32(math.Inf(-1))
	cases := []struct {
		name   string
		o      GenerateOptions
		ids    []int
		scores []float32
		want   []float32
	}{
		{"repetition penalty divides positive and multiplies negative scores of seen tokens",
			GenerateOptions{RepetitionPenalty: 2}, []int{0, 1, 1, 3},
			[]float32{4, 4, -4, -4, 5}, []float32{2, 2, -4, -8, 5}},
		{"no_repeat_ngram bans the token completing a seen trigram",
			GenerateOptions{RepetitionPenalty: 1, NoRepeatNgramSize: 3}, []int{1, 2, 3, 1, 2},
			[]float32{0, 0, 0, 0, 0}, []float32{0, 0, 0, negInf, 0}},
		{"min_length bans EOS while the sequence is short",
			GenerateOptions{RepetitionPenalty: 1, MinLength: 4}, []int{101, 1, 2},
			[]float32{1, 1, 1, 1, 1}, []float32{1, 1, 1, 1, negInf}},
		{"min_new_tokens counts tokens after the prompt",
			GenerateOptions{RepetitionPenalty: 1, MinNewTokens: 2}, []int{101, 7, 1},
			[]float32{1, 1, 1, 1, 1}, []float32{1, 1, 1, 1, negInf}},
		{"nothing applies once long enough",
			GenerateOptions{RepetitionPenalty: 1, MinLength: 2, MinNewTokens: 1}, []int{101, 7, 1},
			[]float32{1, 1, 1, 1, 1}, []float32{1, 1, 1, 1, 1}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := search{o: c.o, prompt: []int{101, 7}, eos: 4, vocab: len(c.scores)}
			s := append([]float32(nil), c.scores...)
			r.process(c.ids, s)
			if !reflect.DeepEqual(s, c.want) {
				t.Errorf("got %v, want %v", s, c.want)
			}
		})
	}
}

func TestSamplingRepeatsWithTheSameSeed(t *testing.T) {
	m := loadTiny(t, "git-tiny")
	g := m.NewGenerator()
	defer g.Close()
	px := refPixels(t, "cats.png")
	run := func(seed int64) [][]int {
		got, err := g.Generate(context.Background(), px, 1, []int{101},
			GenerateOptions{DoSample: true, Temperature: 3, TopK: 50, TopP: 0.95, Seed: seed, NumReturnSequences: 3})
		if err != nil {
			t.Fatal(err)
		}
		if len(got[0]) != 3 {
			t.Fatalf("%d sequences, want 3", len(got[0]))
		}
		var ids [][]int
		for _, s := range got[0] {
			ids = append(ids, s.IDs)
		}
		return ids
	}
	a, b, c := run(1), run(1), run(2)
	if !reflect.DeepEqual(a, b) {
		t.Errorf("same seed, different samples: %v vs %v", a, b)
	}
	if reflect.DeepEqual(a, c) {
		t.Errorf("different seeds gave identical samples %v", a)
	}
}

func TestMinNewTokensDelaysEOS(t *testing.T) {
	m := loadTiny(t, "git-tiny")
	g := m.NewGenerator()
	defer g.Close()
	got, err := g.Generate(context.Background(), refPixels(t, "shape_red_square_on_white.png"), 1, []int{101},
		GenerateOptions{MinNewTokens: 10, MaxNewTokens: 12})
	if err != nil {
		t.Fatal(err)
	}
	ids := got[0][0].IDs
	for i, id := range ids[1:] {
		if id == 102 && i < 10 {
			t.Fatalf("[SEP] after %d new tokens despite min_new_tokens 10: %v", i, ids)
		}
	}
	if len(ids) > 13 {
		t.Errorf("%d ids exceed max_new_tokens 12 + prompt", len(ids))
	}
}

func TestGenerateRejectsBadOptions(t *testing.T) {
	m := loadTiny(t, "git-tiny")
	g := m.NewGenerator()
	defer g.Close()
	px := refPixels(t, "cats.png")
	for name, c := range map[string]struct {
		px     []float32
		batch  int
		prompt []int
		o      GenerateOptions
	}{
		"no images":            {nil, 0, []int{101}, GenerateOptions{}},
		"wrong pixel count":    {px[:10], 1, []int{101}, GenerateOptions{}},
		"negative beams":       {px, 1, []int{101}, GenerateOptions{NumBeams: -1}},
		"too many returns":     {px, 1, []int{101}, GenerateOptions{NumBeams: 2, NumReturnSequences: 3}},
		"greedy returns 2":     {px, 1, []int{101}, GenerateOptions{NumReturnSequences: 2}},
		"prompt fills length":  {px, 1, []int{101, 1037, 1038}, GenerateOptions{MaxLength: 3}},
		"empty prompt":         {px, 1, nil, GenerateOptions{}},
		"prompt outside vocab": {px, 1, []int{101, 99999}, GenerateOptions{}},
		"past max positions":   {px, 1, []int{101}, GenerateOptions{MaxLength: 65}},
		"NaN temperature":      {px, 1, []int{101}, GenerateOptions{DoSample: true, Temperature: math.NaN()}},
		"infinite top_p":       {px, 1, []int{101}, GenerateOptions{DoSample: true, TopP: math.Inf(1)}},
		"NaN length penalty":   {px, 1, []int{101}, GenerateOptions{NumBeams: 2, LengthPenalty: math.NaN()}},
		"infinite repetition":  {px, 1, []int{101}, GenerateOptions{RepetitionPenalty: math.Inf(1)}},
	} {
		if _, err := g.Generate(context.Background(), c.px, c.batch, c.prompt, c.o); err == nil {
			t.Errorf("%s: want an error", name)
		}
	}
}

// TestSamplingDoesNotDependOnBatchMates: an image's samples depend on the
// seed and its index in the run, not on the other images in its batch.
func TestSamplingDoesNotDependOnBatchMates(t *testing.T) {
	m := loadTiny(t, "git-tiny")
	g := m.NewGenerator()
	defer g.Close()
	o := GenerateOptions{DoSample: true, Temperature: 3, Seed: 5, NumReturnSequences: 2}
	pair, err := g.Generate(context.Background(), refPixels(t, "cats.png", "sun_q90.jpg"), 2, []int{101}, o)
	if err != nil {
		t.Fatal(err)
	}
	o.SampleOffset = 1
	alone, err := g.Generate(context.Background(), refPixels(t, "sun_q90.jpg"), 1, []int{101}, o)
	if err != nil {
		t.Fatal(err)
	}
	for j := range alone[0] {
		if !reflect.DeepEqual(alone[0][j].IDs, pair[1][j].IDs) {
			t.Errorf("sample %d: alone %v, in a batch %v", j, alone[0][j].IDs, pair[1][j].IDs)
		}
	}
}

// TestTinyTemperatureSamplesTheMostLikelyToken: as the temperature goes
// to zero, sampling tends to the most likely token; a temperature as small
// as the smallest float64 gets that limit, not inf − inf.
func TestTinyTemperatureSamplesTheMostLikelyToken(t *testing.T) {
	scores := []float32{1, 7.5, -3, 7.25, 0}
	probs := make([]float64, len(scores))
	for _, temp := range []float64{1e-3, 1e-300, 5e-324} {
		for seed := range int64(20) {
			got, err := sampleToken(scores, probs, GenerateOptions{Temperature: temp}, rand.New(rand.NewSource(seed)))
			if err != nil || got != 1 {
				t.Fatalf("temperature %g, seed %d: token %d, %v; want 1", temp, seed, got, err)
			}
		}
	}
}

// TestCheckNamesTheOptionOutOfRange: each range rule of GenerateOptions.Check
// reports the option by its HF name, on options that are otherwise HF's
// defaults (as the CLI and the server fill them in); the defaults pass.
func TestCheckNamesTheOptionOutOfRange(t *testing.T) {
	hf := GenerateOptions{MaxLength: 20, NumBeams: 1, LengthPenalty: 1, NumReturnSequences: 1, RepetitionPenalty: 1, Temperature: 1, TopK: 50, TopP: 1}
	if err := hf.Check(); err != nil {
		t.Fatalf("HF's defaults: %v", err)
	}
	for want, set := range map[string]func(*GenerateOptions){
		"num_beams":            func(o *GenerateOptions) { o.NumBeams = 0 },
		"num_return_sequences": func(o *GenerateOptions) { o.NumReturnSequences = 0 },
		"max_length":           func(o *GenerateOptions) { o.MaxLength = 0 },
		"max_new_tokens":       func(o *GenerateOptions) { o.MaxNewTokens = -1 },
		"min_length":           func(o *GenerateOptions) { o.MinLength = -1 },
		"min_new_tokens":       func(o *GenerateOptions) { o.MinNewTokens = -1 },
		"no_repeat_ngram_size": func(o *GenerateOptions) { o.NoRepeatNgramSize = -2 },
		"temperature":          func(o *GenerateOptions) { o.DoSample, o.Temperature = true, 0 },
		"repetition_penalty":   func(o *GenerateOptions) { o.RepetitionPenalty = 0 },
		"top_k":                func(o *GenerateOptions) { o.TopK = -1 },
		"top_p":                func(o *GenerateOptions) { o.TopP = 0 },
		"length_penalty":       func(o *GenerateOptions) { o.LengthPenalty = math.Inf(-1) },
	} {
		o := hf
		set(&o)
		var oe *OptionError
		if err := o.Check(); !errors.As(err, &oe) || oe.Option != want || !strings.HasPrefix(err.Error(), want+" ") {
			t.Errorf("%s out of range: Check gives %v, want an OptionError naming %s", want, err, want)
		}
	}
}
