package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"github.com/gitcap/gitcap/data"
	"github.com/gitcap/gitcap/eval"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gitcap/gitcap/data/fixtures"
)

// scoreFixtureCase is the part of a cider/public.json case the command
// needs: raw COCO captions and the toolkit's scores.
type scoreFixtureCase struct {
	Name         string              `json:"name"`
	ImageIDs     []string            `json:"image_ids"`
	RawGts       map[string][]string `json:"raw_gts"`
	RawRes       map[string][]string `json:"raw_res"`
	CIDErD       float64             `json:"cider_d"`
	CIDErDScores map[string]float64  `json:"cider_d_scores"`
	Bleu         [4]float64          `json:"bleu"`
	RougeL       float64             `json:"rouge_l"`
}

// writeScoreFiles writes a COCO annotation file and results files (one
// per shard, each a list of image ids) for a fixture case.
func writeScoreFiles(t *testing.T, c scoreFixtureCase, shards ...[]string) (ann string, res []string) {
	t.Helper()
	dir := t.TempDir()
	type image struct {
		ID       json.Number `json:"id"`
		FileName string      `json:"file_name"`
	}
	type annotation struct {
		ImageID json.Number `json:"image_id"`
		ID      int         `json:"id"`
		Caption string      `json:"caption"`
	}
	var doc struct {
		Images      []image      `json:"images"`
		Annotations []annotation `json:"annotations"`
	}
	for _, id := range c.ImageIDs {
		doc.Images = append(doc.Images, image{json.Number(id), id + ".jpg"})
		for _, cap := range c.RawGts[id] {
			doc.Annotations = append(doc.Annotations, annotation{json.Number(id), len(doc.Annotations) + 1, cap})
		}
	}
	ann = filepath.Join(dir, "captions.json")
	writeJSON(t, ann, doc)
	for i, shard := range shards {
		type result struct {
			ImageID json.Number `json:"image_id"`
			Caption string      `json:"caption"`
		}
		var rs []result
		for _, id := range shard {
			rs = append(rs, result{json.Number(id), c.RawRes[id][0]})
		}
		p := filepath.Join(dir, "results"+string(rune('0'+i))+".json")
		writeJSON(t, p, rs)
		res = append(res, p)
	}
	return ann, res
}

func writeJSON(t *testing.T, path string, v any) {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func loadScoreFixture(t *testing.T, name string) scoreFixtureCase {
	t.Helper()
	b, err := os.ReadFile(fixtures.Path(t, "cider", "public.json"))
	if err != nil {
		t.Fatal(err)
	}
	var cases []scoreFixtureCase
	if err := json.Unmarshal(b, &cases); err != nil {
		t.Fatal(err)
	}
	for _, c := range cases {
		if c.Name == name {
			return c
		}
	}
	t.Fatalf("public.json has no case %q", name)
	return scoreFixtureCase{}
}

type scoreJSON struct {
	CIDEr    float64 `json:"CIDEr"`
	Bleu1    float64 `json:"Bleu_1"`
	Bleu2    float64 `json:"Bleu_2"`
	Bleu3    float64 `json:"Bleu_3"`
	Bleu4    float64 `json:"Bleu_4"`
	ROUGEL   float64 `json:"ROUGE_L"`
	PerImage map[string]struct {
		CIDEr  float64 `json:"CIDEr"`
		Bleu4  float64 `json:"Bleu_4"`
		ROUGEL float64 `json:"ROUGE_L"`
	} `json:"per_image"`
}

func runScoreJSON(t *testing.T, args ...string) scoreJSON {
	t.Helper()
	var out, errOut bytes.Buffer
	if err := runScore(context.Background(), append(args, "--json"), &out, &errOut); err != nil {
		t.Fatalf("runScore: %v (stderr %s)", err, errOut.String())
	}
	var s scoreJSON
	if err := json.Unmarshal(out.Bytes(), &s); err != nil {
		t.Fatalf("--json output: %v\n%s", err, out.String())
	}
	return s
}

// TestScoreMatchesToolkitOnRawCOCO runs the command on raw COCO captions
// (tokenized by the command) and compares with the toolkit's scores.
func TestScoreMatchesToolkitOnRawCOCO(t *testing.T) {
	for _, name := range []string{"coco_fakecap_20", "coco_human_loo_150"} {
		t.Run(name, func(t *testing.T) {
			c := loadScoreFixture(t, name)
			ann, res := writeScoreFiles(t, c, c.ImageIDs)
			s := runScoreJSON(t, "--annotations", ann, "--results", res[0])
			check := func(what string, got, want float64) {
				if math.Abs(got-want) > 1e-12 {
					t.Errorf("%s = %.17g, want %.17g", what, got, want)
				}
			}
			check("CIDEr", s.CIDEr, c.CIDErD)
			check("Bleu_1", s.Bleu1, c.Bleu[0])
			check("Bleu_2", s.Bleu2, c.Bleu[1])
			check("Bleu_3", s.Bleu3, c.Bleu[2])
			check("Bleu_4", s.Bleu4, c.Bleu[3])
			check("ROUGE_L", s.ROUGEL, c.RougeL)
			if len(s.PerImage) != len(c.ImageIDs) {
				t.Fatalf("%d per-image entries, want %d", len(s.PerImage), len(c.ImageIDs))
			}
			for id, want := range c.CIDErDScores {
				check("CIDEr of "+id, s.PerImage[id].CIDEr, want)
			}
		})
	}
}

// TestScoreMergesShards splits the results over three files: the scores
// are those of the single file.
func TestScoreMergesShards(t *testing.T) {
	c := loadScoreFixture(t, "coco_fakecap_20")
	ids := c.ImageIDs
	ann, res := writeScoreFiles(t, c, ids[:7], ids[7:15], ids[15:])
	s := runScoreJSON(t, "--annotations", ann, "--results", res[0], "--results", res[1], "--results", res[2])
	if math.Abs(s.CIDEr-c.CIDErD) > 1e-12 || math.Abs(s.Bleu4-c.Bleu[3]) > 1e-12 {
		t.Errorf("merged shards: CIDEr %v Bleu_4 %v, want %v %v", s.CIDEr, s.Bleu4, c.CIDErD, c.Bleu[3])
	}
}

// TestScoreOnlyImagesWithResults scores a subset: the annotation images
// without a result are left out, as COCOEvalCap does.
func TestScoreOnlyImagesWithResults(t *testing.T) {
	c := loadScoreFixture(t, "coco_fakecap_20")
	ann, res := writeScoreFiles(t, c, c.ImageIDs[:5])
	s := runScoreJSON(t, "--annotations", ann, "--results", res[0])
	if len(s.PerImage) != 5 {
		t.Fatalf("%d images scored, want 5", len(s.PerImage))
	}
	for _, id := range c.ImageIDs[:5] {
		if _, ok := s.PerImage[id]; !ok {
			t.Errorf("image %s not scored", id)
		}
	}
}

func TestScorePrintsTable(t *testing.T) {
	c := loadScoreFixture(t, "coco_fakecap_20")
	ann, res := writeScoreFiles(t, c, c.ImageIDs)
	var out bytes.Buffer
	if err := runScore(context.Background(), []string{"--annotations", ann, "--results", res[0]}, &out, &out); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"20 images scored", "CIDEr    0.846059", "Bleu_1 ", "Bleu_4 ", "ROUGE_L  0.458098"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
}

func TestScoreErrors(t *testing.T) {
	c := loadScoreFixture(t, "coco_fakecap_20")
	ann, res := writeScoreFiles(t, c, c.ImageIDs[:3], c.ImageIDs[2:4])
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	unknown := write("unknown.json", `[{"image_id": 1, "caption": "a cat"}, {"image_id": `+c.ImageIDs[0]+`, "caption": "a dog"}]`)
	empty := write("empty.json", `[]`)
	dup := write("dup.json", `[{"image_id": `+c.ImageIDs[0]+`, "caption": "a"}, {"image_id": `+c.ImageIDs[0]+`, "caption": "b"}]`)
	noRefs := write("norefs_ann.json", `{"images": [{"id": 1, "file_name": "a.jpg"}], "annotations": []}`)
	oneResult := write("one.json", `[{"image_id": 1, "caption": "a cat"}]`)
	tests := []struct {
		name  string
		args  []string
		usage bool
		want  []string
	}{
		{"no annotations", []string{"--results", res[0]}, true, []string{"--annotations is required"}},
		{"no results", []string{"--annotations", ann}, true, []string{"--results"}},
		{"unknown flag", []string{"--annotations", ann, "--results", res[0], "--bogus"}, true, []string{"bogus"}},
		{"stray argument", []string{"--annotations", ann, "--results", res[0], "extra"}, true, []string{"extra"}},
		{"result id not in annotations", []string{"--annotations", ann, "--results", unknown}, false, []string{unknown, "1 image id(s) not in", ann}},
		{"empty results", []string{"--annotations", ann, "--results", empty}, false, []string{empty, "no results"}},
		{"duplicated id in a file", []string{"--annotations", ann, "--results", dup}, false, []string{dup, "already has a caption"}},
		{"duplicated id across files", []string{"--annotations", ann, "--results", res[0], "--results", res[1]}, false, []string{res[1], "already has a caption in", res[0]}},
		{"image without references", []string{"--annotations", noRefs, "--results", oneResult}, false, []string{oneResult, "without reference captions"}},
		{"results given as annotations", []string{"--annotations", res[0], "--results", res[0]}, false, []string{"is a COCO results file"}},
		{"missing annotations file", []string{"--annotations", filepath.Join(dir, "nope.json"), "--results", res[0]}, false, []string{"nope.json"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			err := runScore(context.Background(), tc.args, &out, &errOut)
			if err == nil {
				t.Fatalf("no error; output %s", out.String())
			}
			var ue usageError
			if got := errors.As(err, &ue); got != tc.usage {
				t.Errorf("usage error = %v, want %v (%v)", got, tc.usage, err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}

func TestScoreHelp(t *testing.T) {
	var out bytes.Buffer
	err := runScore(context.Background(), []string{"-h"}, &out, &out)
	if !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("err = %v, want flag.ErrHelp", err)
	}
	if !strings.Contains(out.String(), "--annotations") {
		t.Errorf("usage lacks the flags:\n%s", out.String())
	}
}

// TestScoreIDFFromCorpus: document frequencies from the scored set's own
// annotation file reproduce the toolkit's score; from a larger corpus
// (the 150-image set) they give CIDErDWithDF's value.
func TestScoreIDFFromCorpus(t *testing.T) {
	c := loadScoreFixture(t, "coco_fakecap_20")
	ann, res := writeScoreFiles(t, c, c.ImageIDs)
	same := runScoreJSON(t, "--annotations", ann, "--results", res[0], "--idf-from", ann)
	if math.Abs(same.CIDEr-c.CIDErD) > 1e-12 {
		t.Errorf("idf from the scored set itself: %.17g, toolkit %.17g", same.CIDEr, c.CIDErD)
	}
	big := loadScoreFixture(t, "coco_human_loo_150")
	corpus, _ := writeScoreFiles(t, big, big.ImageIDs)
	other := runScoreJSON(t, "--annotations", ann, "--results", res[0], "--idf-from", corpus)
	set, err := data.LoadCaptions(corpus, "")
	if err != nil {
		t.Fatal(err)
	}
	var images [][]string
	for _, im := range set.Images {
		images = append(images, eval.PTBTokenizeAll(im.Captions))
	}
	annSet, _ := data.LoadCaptions(ann, "")
	gts := map[string][]string{}
	for _, im := range annSet.Images {
		gts[im.ID] = eval.PTBTokenizeAll(im.Captions)
	}
	resSet, _ := data.LoadCOCOResults(res[0])
	cands := map[string]string{}
	for _, r := range resSet {
		cands[r.ImageID] = eval.PTBTokenize(r.Caption)
	}
	want, _, err := eval.CIDErDWithDF(annSet.IDs(), gts, cands, eval.NewDocFreq(images))
	if err != nil {
		t.Fatal(err)
	}
	if math.Abs(other.CIDEr-want) > 1e-12 || math.Abs(other.CIDEr-c.CIDErD) < 1e-6 {
		t.Errorf("idf from another corpus: %.17g, CIDErDWithDF %.17g (in-set value %.17g)", other.CIDEr, want, c.CIDErD)
	}
}
