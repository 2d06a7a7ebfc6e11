package data

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/gitcap/gitcap/data/fixtures"
)

// fixtureCaptions returns real COCO captions from the CIDEr fixtures (the
// first case's raw references), ids in evaluation order.
func fixtureCaptions(f *testing.F) ([]string, map[string][]string) {
	b, err := os.ReadFile(fixtures.Path(f, "cider", "public.json"))
	if err != nil {
		f.Fatal(err)
	}
	var cases []struct {
		ImageIDs []string            `json:"image_ids"`
		RawGts   map[string][]string `json:"raw_gts"`
	}
	if err := json.Unmarshal(b, &cases); err != nil {
		f.Fatal(err)
	}
	for _, c := range cases {
		if len(c.RawGts) > 0 {
			ids := c.ImageIDs
			if len(ids) > 6 {
				ids = ids[:6] // small seeds mutate faster
			}
			return ids, c.RawGts
		}
	}
	f.Fatal("no case with raw captions in cider/public.json")
	return nil, nil
}

// seedSet renders the fixture captions in every caption-file format.
func seedSet(f *testing.F) map[CaptionFormat][]byte {
	ids, gts := fixtureCaptions(f)
	out := map[CaptionFormat][]byte{}

	type img struct {
		ID       json.RawMessage `json:"id"`
		FileName string          `json:"file_name"`
	}
	type ann struct {
		ImageID json.RawMessage `json:"image_id"`
		ID      int             `json:"id"`
		Caption string          `json:"caption"`
	}
	var coco struct {
		Images      []img `json:"images"`
		Annotations []ann `json:"annotations"`
	}
	type sent struct {
		Raw    string   `json:"raw"`
		Tokens []string `json:"tokens"`
	}
	type kimg struct {
		Filename  string `json:"filename"`
		Filepath  string `json:"filepath"`
		Split     string `json:"split"`
		COCOID    int    `json:"cocoid"`
		Sentences []sent `json:"sentences"`
	}
	var karpathy struct {
		Images []kimg `json:"images"`
	}
	var jsonl, results bytes.Buffer
	var csvBuf bytes.Buffer
	cw := csv.NewWriter(&csvBuf)
	cw.Write([]string{"file_name", "text"})
	var res []map[string]any
	for i, id := range ids {
		file := fmt.Sprintf("COCO_val2014_%012s.jpg", id)
		coco.Images = append(coco.Images, img{json.RawMessage(id), file})
		var n int
		fmt.Sscan(id, &n)
		k := kimg{Filename: file, Filepath: "val2014", Split: []string{"train", "val", "test", "restval"}[i%4], COCOID: n}
		for _, c := range gts[id] {
			coco.Annotations = append(coco.Annotations, ann{json.RawMessage(id), len(coco.Annotations) + 1, c})
			k.Sentences = append(k.Sentences, sent{c, strings.Fields(strings.ToLower(c))})
			line, _ := json.Marshal(map[string]string{"file_name": file, "text": c})
			jsonl.Write(append(line, '\n'))
			cw.Write([]string{file, c})
		}
		karpathy.Images = append(karpathy.Images, k)
		res = append(res, map[string]any{"image_id": n, "caption": gts[id][0]})
	}
	cw.Flush()
	out[CaptionFormatCOCO], _ = json.Marshal(coco)
	out[CaptionFormatKarpathy], _ = json.Marshal(karpathy)
	out[CaptionFormatJSONL] = jsonl.Bytes()
	out[CaptionFormatCSV] = csvBuf.Bytes()
	b, _ := json.Marshal(res)
	results.Write(b)
	out[CaptionFormatCOCOResults] = results.Bytes()
	return out
}

// checkSet asserts what every parsed caption set must satisfy.
func checkSet(t *testing.T, set *CaptionSet) {
	t.Helper()
	if len(set.Images) == 0 {
		t.Fatal("parsed an empty caption set without an error")
	}
	seen := map[string]bool{}
	for _, im := range set.Images {
		if im.ID == "" {
			t.Fatalf("image with an empty id: %+v", im)
		}
		if seen[im.ID] {
			t.Fatalf("image id %q appears twice", im.ID)
		}
		seen[im.ID] = true
	}
}

// roundTripCOCO writes set as a COCO annotation file and reads it back:
// the ids and captions must survive.
func roundTripCOCO(t *testing.T, set *CaptionSet) {
	t.Helper()
	for _, im := range set.Images {
		if len(im.Captions) == 0 {
			return // COCO files cannot hold an image without captions in a way that round-trips its absence
		}
	}
	path := filepath.Join(fixtures.ScratchDir(t), "a.json")
	if err := WriteCOCOAnnotations(path, set); err != nil {
		t.Fatalf("writing a parsed set: %v", err)
	}
	back, err := LoadCaptions(path, "")
	if err != nil {
		t.Fatalf("reading back what WriteCOCOAnnotations wrote: %v", err)
	}
	if len(back.Images) != len(set.Images) {
		t.Fatalf("round trip: %d images, want %d", len(back.Images), len(set.Images))
	}
	for i, im := range set.Images {
		b := back.Images[i]
		if b.ID != im.ID || !slices.Equal(b.Captions, im.Captions) {
			t.Fatalf("round trip changed image %d: %+v -> %+v", i, im, b)
		}
	}
}

func fuzzCaptions(f *testing.F, format CaptionFormat, name string, parse func([]byte) (*CaptionSet, error)) {
	seeds := seedSet(f)
	f.Add(seeds[format])
	f.Add(seeds[format][:len(seeds[format])/2]) // truncated
	for k, v := range seeds {
		if k != format {
			f.Add(v) // another format's file
		}
	}
	f.Add([]byte{})
	f.Add([]byte("\xef\xbb\xbf"))
	f.Fuzz(func(t *testing.T, b []byte) {
		set, err := parse(b)
		if err != nil {
			if !strings.Contains(err.Error(), name) {
				t.Fatalf("error does not name the file %s: %v", name, err)
			}
			return
		}
		checkSet(t, set)
		roundTripCOCO(t, set)
	})
}

func FuzzParseCOCOAnnotations(f *testing.F) {
	fuzzCaptions(f, CaptionFormatCOCO, "ann.json", func(b []byte) (*CaptionSet, error) { return ParseCOCOAnnotations("ann.json", b) })
}

func FuzzParseKarpathy(f *testing.F) {
	fuzzCaptions(f, CaptionFormatKarpathy, "dataset_coco.json", func(b []byte) (*CaptionSet, error) {
		return ParseKarpathy("dataset_coco.json", b, "")
	})
}

func FuzzParseCaptionsJSONL(f *testing.F) {
	fuzzCaptions(f, CaptionFormatJSONL, "metadata.jsonl", func(b []byte) (*CaptionSet, error) {
		return ParseCaptionsJSONL("metadata.jsonl", bytes.NewReader(b))
	})
}

func FuzzParseCaptionsCSV(f *testing.F) {
	fuzzCaptions(f, CaptionFormatCSV, "captions.csv", func(b []byte) (*CaptionSet, error) {
		return ParseCaptionsCSV("captions.csv", bytes.NewReader(b))
	})
}

// FuzzParseCaptions drives the format detection of LoadCaptions.
func FuzzParseCaptions(f *testing.F) {
	fuzzCaptions(f, CaptionFormatCOCO, "any.json", func(b []byte) (*CaptionSet, error) { return ParseCaptions("any.json", b, "") })
}

// FuzzParseCOCOResults checks the results-file parser: no panic, errors
// name the file, and a parsed file survives WriteCOCOResults unchanged.
func FuzzParseCOCOResults(f *testing.F) {
	seeds := seedSet(f)
	f.Add(seeds[CaptionFormatCOCOResults])
	f.Add(seeds[CaptionFormatCOCOResults][:20])
	f.Add(seeds[CaptionFormatCOCO])
	f.Add([]byte(`[{"image_id": "abc", "caption": "a \u2028 cat"}, {"image_id": 1e3, "caption": ""}]`))
	f.Fuzz(func(t *testing.T, b []byte) {
		res, err := ParseCOCOResults("res.json", b)
		if err != nil {
			if !strings.Contains(err.Error(), "res.json") {
				t.Fatalf("error does not name the file: %v", err)
			}
			return
		}
		path := filepath.Join(fixtures.ScratchDir(t), "res.json")
		if err := WriteCOCOResults(path, res); err != nil {
			t.Fatalf("writing parsed results: %v", err)
		}
		back, err := LoadCOCOResults(path)
		if err != nil {
			t.Fatalf("reading back what WriteCOCOResults wrote: %v", err)
		}
		if !slices.Equal(back, res) {
			t.Fatalf("round trip changed the results:\n%+v\n%+v", res, back)
		}
	})
}
