package main

import (
	"bytes"
	"context"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/gitcap/gitcap/data"
	"github.com/gitcap/gitcap/data/fixtures"
	"github.com/gitcap/gitcap/eval"
)

// TestEvalCommandCaptionsAndScores runs gitcap eval with the tiny fixture
// model on a COCO-style set made from the fixture images. The expected
// results are HF's own greedy captions (generate.json), scored with the
// toolkit-exact scorer: independent of our generation code.
func TestEvalCommandCaptionsAndScores(t *testing.T) {
	var pre struct {
		Captions map[string]string `json:"captions"`
	}
	var gen struct {
		PerImage []struct {
			Image  string `json:"image"`
			Greedy struct {
				Text string `json:"text"`
			} `json:"greedy"`
		} `json:"per_image"`
	}
	for path, v := range map[string]any{
		fixtures.Path(t, "git-tiny", "reference", "pretrain_captions.json"): &pre,
		fixtures.Path(t, "git-tiny", "reference", "generate.json"):          &gen,
	} {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(b, v); err != nil {
			t.Fatal(err)
		}
	}
	set := &data.CaptionSet{}
	hf := map[string]string{}
	var ids []string
	for i, c := range gen.PerImage {
		id := strconv.Itoa(i + 1)
		ids = append(ids, id)
		set.Images = append(set.Images, data.CaptionImage{ID: id, File: c.Image,
			Captions: []string{pre.Captions[c.Image], "an image of " + pre.Captions[c.Image]}})
		hf[id] = c.Greedy.Text
	}
	dir := t.TempDir()
	ann := filepath.Join(dir, "captions.json")
	if err := data.WriteCOCOAnnotations(ann, set); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "results.json")
	var so, se bytes.Buffer
	err := runEval(context.Background(), []string{"--model", fixtures.Path(t, "git-tiny"), "--annotations", ann,
		"--images", fixtures.Path(t, "images"), "--out", out, "--json", "--batch-size", "5"}, &so, &se)
	if err != nil {
		t.Fatal(err, se.String())
	}
	res, err := data.LoadCOCOResults(out)
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != len(ids) {
		t.Fatalf("%d results, want %d", len(res), len(ids))
	}
	for _, r := range res {
		if r.Caption != hf[r.ImageID] {
			t.Errorf("image %s: caption %q, HF %q", r.ImageID, r.Caption, hf[r.ImageID])
		}
	}
	want, err := eval.Score(ids, set.CaptionsByID(), hf, eval.ScoreOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		CIDEr  float64 `json:"CIDEr"`
		Bleu4  float64 `json:"Bleu_4"`
		ROUGEL float64 `json:"ROUGE_L"`
	}
	if err := json.Unmarshal(so.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	if math.Abs(got.CIDEr-want.CIDEr) > 1e-12 || math.Abs(got.Bleu4-want.Bleu[3]) > 1e-12 || math.Abs(got.ROUGEL-want.ROUGEL) > 1e-12 {
		t.Errorf("scores %+v, want CIDEr %g Bleu_4 %g ROUGE_L %g", got, want.CIDEr, want.Bleu[3], want.ROUGEL)
	}
	if want.CIDEr < 1 {
		t.Errorf("CIDEr-D %g: the tiny model should reproduce its training captions", want.CIDEr)
	}

	// Shards: two halves merged by gitcap score give the same scores.
	var parts []string
	for k := 0; k < 2; k++ {
		p := filepath.Join(dir, "shard"+strconv.Itoa(k)+".json")
		parts = append(parts, "--results", p)
		if err := runEval(context.Background(), []string{"--model", fixtures.Path(t, "git-tiny"), "--annotations", ann,
			"--images", fixtures.Path(t, "images"), "--out", p, "--shard", strconv.Itoa(k) + "/2"}, &bytes.Buffer{}, &bytes.Buffer{}); err != nil {
			t.Fatal(err)
		}
	}
	so.Reset()
	if err := runScore(context.Background(), append([]string{"--annotations", ann, "--json"}, parts...), &so, &se); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(so.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	if math.Abs(got.CIDEr-want.CIDEr) > 1e-12 {
		t.Errorf("merged shards CIDEr %g, want %g", got.CIDEr, want.CIDEr)
	}
}

func TestEvalCommandRejectsBadInput(t *testing.T) {
	model := fixtures.Path(t, "git-tiny")
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.json")
	os.WriteFile(bad, []byte("{not json"), 0o644)
	for _, c := range []struct {
		name string
		args []string
	}{
		{"malformed annotations", []string{"--model", model, "--annotations", bad}},
		{"bad shard", []string{"--model", model, "--annotations", bad, "--shard", "2/2"}},
		{"no model", []string{"--annotations", bad}},
	} {
		t.Run(c.name, func(t *testing.T) {
			if err := runEval(context.Background(), c.args, &bytes.Buffer{}, &bytes.Buffer{}); err == nil {
				t.Error("want an error")
			}
		})
	}
}
