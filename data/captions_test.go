package data

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// writeTemp writes content to a file called name in a fresh directory.
func writeTemp(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

const cocoAnnotations = `{
 "info": {}, "images": [
  {"id": 391895, "file_name": "COCO_val2014_000000391895.jpg"},
  {"id": 522418, "file_name": "COCO_val2014_000000522418.jpg"},
  {"id": 7, "file_name": "seven.jpg"}
 ],
 "annotations": [
  {"image_id": 391895, "id": 1, "caption": "A man with a red helmet on a small moped."},
  {"image_id": 522418, "id": 2, "caption": "A woman wearing a net on her head cutting a cake."},
  {"image_id": 391895, "id": 3, "caption": "Man riding a motor bike on a dirt road."}
 ]
}`

const karpathy = `{"images": [
 {"filepath": "val2014", "sentids": [1, 2], "filename": "COCO_val2014_000000391895.jpg", "imgid": 0, "split": "test",
  "sentences": [{"tokens": ["a", "man"], "raw": "A man.", "imgid": 0, "sentid": 1}, {"tokens": ["man", "riding"], "raw": "Man riding.", "imgid": 0, "sentid": 2}],
  "cocoid": 391895},
 {"filepath": "train2014", "filename": "COCO_train2014_000000000009.jpg", "imgid": 1, "split": "train",
  "sentences": [{"tokens": ["a", "plate"], "raw": "A plate."}], "cocoid": 9},
 {"filepath": "val2014", "filename": "COCO_val2014_000000000042.jpg", "imgid": 2, "split": "restval",
  "sentences": [{"tokens": ["two", "dogs"]}], "cocoid": 42},
 {"filepath": "val2014", "filename": "COCO_val2014_000000000073.jpg", "imgid": 3, "split": "val",
  "sentences": [{"tokens": ["a", "cat"], "raw": "A cat."}], "cocoid": 73}
], "dataset": "coco"}`

func TestLoadCaptionsFormats(t *testing.T) {
	tests := []struct {
		name, file, content, split string
		want                       *CaptionSet
	}{
		{
			name: "coco annotations keep image and caption order", file: "captions_val2014.json", content: cocoAnnotations,
			want: &CaptionSet{Format: CaptionFormatCOCO, Images: []CaptionImage{
				{ID: "391895", File: "COCO_val2014_000000391895.jpg", Captions: []string{"A man with a red helmet on a small moped.", "Man riding a motor bike on a dirt road."}},
				{ID: "522418", File: "COCO_val2014_000000522418.jpg", Captions: []string{"A woman wearing a net on her head cutting a cake."}},
				{ID: "7", File: "seven.jpg"},
			}},
		},
		{
			name: "coco annotations with string ids", file: "ann.json",
			content: `{"images": [{"id": "a1", "file_name": "a.jpg"}], "annotations": [{"image_id": "a1", "caption": "x"}]}`,
			want:    &CaptionSet{Format: CaptionFormatCOCO, Images: []CaptionImage{{ID: "a1", File: "a.jpg", Captions: []string{"x"}}}},
		},
		{
			name: "coco results", file: "res.json",
			content: `[{"image_id": 391895, "caption": "a man on a bike"}, {"image_id": 7, "caption": "a dog", "score": 0.5}]`,
			want: &CaptionSet{Format: CaptionFormatCOCOResults, Images: []CaptionImage{
				{ID: "391895", Captions: []string{"a man on a bike"}}, {ID: "7", Captions: []string{"a dog"}},
			}},
		},
		{
			name: "karpathy all splits", file: "dataset_coco.json", content: karpathy,
			want: &CaptionSet{Format: CaptionFormatKarpathy, Images: []CaptionImage{
				{ID: "391895", File: "val2014/COCO_val2014_000000391895.jpg", Captions: []string{"A man.", "Man riding."}, Split: "test"},
				{ID: "9", File: "train2014/COCO_train2014_000000000009.jpg", Captions: []string{"A plate."}, Split: "train"},
				{ID: "42", File: "val2014/COCO_val2014_000000000042.jpg", Captions: []string{"two dogs"}, Split: "restval"},
				{ID: "73", File: "val2014/COCO_val2014_000000000073.jpg", Captions: []string{"A cat."}, Split: "val"},
			}},
		},
		{
			name: "karpathy one split", file: "dataset_coco.json", content: karpathy, split: "test",
			want: &CaptionSet{Format: CaptionFormatKarpathy, Images: []CaptionImage{
				{ID: "391895", File: "val2014/COCO_val2014_000000391895.jpg", Captions: []string{"A man.", "Man riding."}, Split: "test"},
			}},
		},
		{
			name: "karpathy train+restval", file: "dataset_coco.json", content: karpathy, split: "train+restval",
			want: &CaptionSet{Format: CaptionFormatKarpathy, Images: []CaptionImage{
				{ID: "9", File: "train2014/COCO_train2014_000000000009.jpg", Captions: []string{"A plate."}, Split: "train"},
				{ID: "42", File: "val2014/COCO_val2014_000000000042.jpg", Captions: []string{"two dogs"}, Split: "restval"},
			}},
		},
		{
			name: "karpathy flickr without cocoid uses the file name", file: "dataset_flickr8k.json",
			content: `{"images": [{"filename": "1000.jpg", "split": "val", "sentences": [{"raw": "A child."}]}]}`,
			want:    &CaptionSet{Format: CaptionFormatKarpathy, Images: []CaptionImage{{ID: "1000.jpg", File: "1000.jpg", Captions: []string{"A child."}, Split: "val"}}},
		},
		{
			name: "metadata.jsonl groups lines by file_name", file: "metadata.jsonl",
			content: "\ufeff{\"file_name\": \"a.jpg\", \"text\": \"a cat\"}\n\n{\"file_name\": \"b.jpg\", \"text\": \"a dog\", \"extra\": 1}\n{\"file_name\": \"a.jpg\", \"text\": [\"cat two\", \"cat three\"]}\n",
			want: &CaptionSet{Format: CaptionFormatJSONL, Images: []CaptionImage{
				{ID: "a.jpg", File: "a.jpg", Captions: []string{"a cat", "cat two", "cat three"}},
				{ID: "b.jpg", File: "b.jpg", Captions: []string{"a dog"}},
			}},
		},
		{
			name: "csv with quoted fields and extra columns", file: "captions.csv",
			content: "id,text,file_name\n1,\"a cat, sitting\",a.jpg\n2,\"a \"\"big\"\" dog\",b.jpg\n3,\"two\nlines\",a.jpg\n",
			want: &CaptionSet{Format: CaptionFormatCSV, Images: []CaptionImage{
				{ID: "a.jpg", File: "a.jpg", Captions: []string{"a cat, sitting", "two\nlines"}},
				{ID: "b.jpg", File: "b.jpg", Captions: []string{"a \"big\" dog"}},
			}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := LoadCaptions(writeTemp(t, tc.file, tc.content), tc.split)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got\n%#v\nwant\n%#v", got, tc.want)
			}
		})
	}
}

func TestLoadCaptionsErrors(t *testing.T) {
	tests := []struct {
		name, file, content, split string
		// want lists substrings of the error besides the file name.
		want []string
	}{
		{"empty json file", "a.json", "  \n", "", []string{"empty file"}},
		{"json scalar", "a.json", "42", "", []string{"not a caption file"}},
		{"json object of unknown shape", "a.json", `{"foo": 1}`, "", []string{"not a caption file"}},
		{"malformed json gives line and column", "a.json", "{\"images\": [\n  {\"id\": 1,}\n]}", "", []string{":2:", "malformed JSON"}},
		{"truncated json", "a.json", `{"images": [{"id": 1}`, "", []string{"unexpected end"}},
		{"coco images not an array", "a.json", `{"images": 3, "annotations": []}`, "", []string{"images is a JSON number, want an array"}},
		{"coco without images", "a.json", `{"annotations": []}`, "", []string{`no "images" array`}},
		{"coco image without id", "a.json", `{"images": [{"file_name": "x.jpg"}], "annotations": []}`, "", []string{"images[0]", `missing "id"`}},
		{"coco fractional id", "a.json", `{"images": [{"id": 1.5}], "annotations": []}`, "", []string{"images[0]", "want an integer or a string"}},
		{"coco duplicate image id", "a.json", `{"images": [{"id": 1}, {"id": 1}], "annotations": []}`, "", []string{"images[1]", "already used by images[0]"}},
		{"coco annotation without caption", "a.json", `{"images": [{"id": 1}], "annotations": [{"image_id": 1}]}`, "", []string{"annotations[0]", `missing "caption"`}},
		{"coco annotation without image_id", "a.json", `{"images": [{"id": 1}], "annotations": [{"caption": "x"}]}`, "", []string{"annotations[0]", `missing "image_id"`}},
		{"coco caption not a string", "a.json", `{"images": [{"id": 1}], "annotations": [{"image_id": 1, "caption": 5}]}`, "", []string{"annotations[0]", `"caption" is 5, want a string`}},
		{"coco annotation for unknown image", "a.json", `{"images": [{"id": 1}], "annotations": [{"image_id": 2, "caption": "x"}]}`, "", []string{"annotations[0]", "image_id 2 is not in"}},
		{"coco with a split", "a.json", cocoAnnotations, "test", []string{"no splits"}},
		{"results empty array", "r.json", `[]`, "", []string{"no results"}},
		{"results duplicated id", "r.json", `[{"image_id": 1, "caption": "a"}, {"image_id": 1, "caption": "b"}]`, "", []string{"results[1]", "already has a caption at results[0]"}},
		{"results missing caption", "r.json", `[{"image_id": 1}]`, "", []string{"results[0]", `missing "caption"`}},
		{"results missing image_id", "r.json", `[{"caption": "a"}]`, "", []string{"results[0]", `missing "image_id"`}},
		{"results null id", "r.json", `[{"image_id": null, "caption": "a"}]`, "", []string{"results[0]", "is null"}},
		{"results element not an object", "r.json", `[1]`, "", []string{"results[0] is 1, want an object"}},
		{"results malformed", "r.json", `[{"image_id": 1, "caption": "a"},]`, "", []string{":1:", "malformed JSON"}},
		{"karpathy unknown split", "k.json", karpathy, "testing", []string{`no images in split "testing"`, "restval, test, train, val"}},
		{"karpathy empty split name", "k.json", karpathy, "train+", []string{"bad split"}},
		{"karpathy image without split", "k.json", `{"images": [{"filename": "a.jpg", "sentences": [{"raw": "x"}]}]}`, "", []string{"images[0]", `missing "split"`}},
		{"karpathy image without filename", "k.json", `{"images": [{"split": "val", "sentences": [{"raw": "x"}]}]}`, "", []string{"images[0]", `missing "filename"`}},
		{"karpathy sentence without text", "k.json", `{"images": [{"filename": "a.jpg", "split": "val", "sentences": [{"sentid": 1}]}]}`, "", []string{"sentences[0]", `neither "raw" nor "tokens"`}},
		{"karpathy duplicate cocoid", "k.json", `{"images": [{"filename": "a.jpg", "split": "val", "cocoid": 1, "sentences": [{"raw": "x"}]}, {"filename": "b.jpg", "split": "val", "cocoid": 1, "sentences": [{"raw": "y"}]}]}`, "", []string{"images[1]", "already used"}},
		{"karpathy image without sentences", "k.json", `{"images": [{"filename": "a.jpg", "split": "val", "sentences": []}]}`, "", []string{"images[0]", "no \"sentences\""}},
		{"jsonl empty", "metadata.jsonl", "\n\n", "", []string{"no captions"}},
		{"jsonl malformed line", "metadata.jsonl", "{\"file_name\": \"a.jpg\", \"text\": \"x\"}\n{\"file_name\": \"b.jpg\", \"text\": \n", "", []string{"metadata.jsonl:2:", "malformed JSON"}},
		{"jsonl not an object", "metadata.jsonl", "[1, 2]\n", "", []string{"metadata.jsonl:1:", "want a JSON object"}},
		{"jsonl missing text", "metadata.jsonl", "{\"file_name\": \"a.jpg\"}\n", "", []string{"metadata.jsonl:1:", `missing "text"`}},
		{"jsonl missing file_name", "metadata.jsonl", "{\"text\": \"x\"}\n", "", []string{"metadata.jsonl:1:", `missing "file_name"`}},
		{"jsonl empty file_name", "metadata.jsonl", "{\"file_name\": \"\", \"text\": \"x\"}\n", "", []string{"metadata.jsonl:1:", "empty"}},
		{"jsonl text of wrong type", "metadata.jsonl", "{\"file_name\": \"a.jpg\", \"text\": 3}\n", "", []string{"metadata.jsonl:1:", `"text" is 3, want a string`}},
		{"jsonl text array of numbers", "metadata.jsonl", "{\"file_name\": \"a.jpg\", \"text\": [3]}\n", "", []string{"metadata.jsonl:1:", "array of strings"}},
		{"jsonl with a split", "metadata.jsonl", "{\"file_name\": \"a.jpg\", \"text\": \"x\"}\n", "train", []string{"no splits"}},
		{"csv empty", "c.csv", "", "", []string{"empty file"}},
		{"csv header only", "c.csv", "file_name,text\n", "", []string{"only a header"}},
		{"csv without header", "c.csv", "a.jpg,a cat\n", "", []string{"c.csv:1:", "lacks the file_name and text columns"}},
		{"csv without text column", "c.csv", "file_name,caption\na.jpg,x\n", "", []string{"c.csv:1:", "lacks the text column"}},
		{"csv wrong field count", "c.csv", "file_name,text\na.jpg,x\nb.jpg\n", "", []string{"c.csv:3:", "wrong number of fields"}},
		{"csv bad quote", "c.csv", "file_name,text\na.jpg,\"x\ny\n", "", []string{"c.csv:", "malformed CSV"}},
		{"csv empty file_name", "c.csv", "file_name,text\n,x\n", "", []string{"c.csv:2:", "empty file_name"}},
		{"csv with a split", "c.csv", "file_name,text\na.jpg,x\n", "val", []string{"no splits"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := writeTemp(t, tc.file, tc.content)
			_, err := LoadCaptions(path, tc.split)
			if err == nil {
				t.Fatal("no error")
			}
			msg := err.Error()
			if !strings.Contains(msg, path) {
				t.Errorf("error %q does not name the file", msg)
			}
			for _, w := range tc.want {
				if !strings.Contains(msg, w) {
					t.Errorf("error %q does not contain %q", msg, w)
				}
			}
		})
	}
}

func TestLoadCaptionsMissingFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "nope.json")
	if _, err := LoadCaptions(p, ""); err == nil || !strings.Contains(err.Error(), p) {
		t.Fatalf("err = %v, want one naming %s", err, p)
	}
}

func TestWriteCOCOResultsRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "res.json")
	in := []Result{{"391895", "a man on a <bike> & more"}, {"img_7", "a \"dog\""}, {"0012", "leading zeros stay a string"}}
	if err := WriteCOCOResults(path, in); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"image_id":391895`, `"image_id":"img_7"`, `"image_id":"0012"`, `<bike> & more`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("file lacks %s:\n%s", want, b)
		}
	}
	out, err := LoadCOCOResults(path)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(out, in) {
		t.Errorf("read back %v, want %v", out, in)
	}
	entries, _ := os.ReadDir(filepath.Dir(path))
	if len(entries) != 1 {
		t.Errorf("temporary files left behind: %v", entries)
	}
}

func TestWriteCOCOResultsRejectsBadIDs(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name string
		in   []Result
		want string
	}{
		{"duplicate", []Result{{"1", "a"}, {"1", "b"}}, "more than one result"},
		{"empty id", []Result{{"", "a"}}, "empty image id"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, tc.name+".json")
			err := WriteCOCOResults(path, tc.in)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
			if _, err := os.Stat(path); !os.IsNotExist(err) {
				t.Errorf("file written despite the error")
			}
		})
	}
}

func TestWriteCOCOAnnotationsRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ann.json")
	in := &CaptionSet{Format: CaptionFormatCOCO, Images: []CaptionImage{
		{ID: "391895", File: "a.jpg", Captions: []string{"one", "two"}},
		{ID: "x9", File: "b.jpg", Captions: []string{"three"}},
		{ID: "5", File: "c.jpg"},
	}}
	if err := WriteCOCOAnnotations(path, in); err != nil {
		t.Fatal(err)
	}
	out, err := LoadCaptions(path, "")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(out, in) {
		t.Errorf("read back %#v, want %#v", out, in)
	}
	b, _ := os.ReadFile(path)
	for _, want := range []string{`"type":"captions"`, `"licenses":[]`, `"id":391895`, `"id":3,`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("file lacks %s", want)
		}
	}
	dup := &CaptionSet{Images: []CaptionImage{{ID: "1"}, {ID: "1"}}}
	if err := WriteCOCOAnnotations(filepath.Join(t.TempDir(), "d.json"), dup); err == nil {
		t.Error("duplicate ids accepted")
	}
}

func TestCaptionSetHelpers(t *testing.T) {
	s := &CaptionSet{Images: []CaptionImage{{ID: "b", Captions: []string{"x", "y"}}, {ID: "a", Captions: []string{"z"}}}}
	if got := s.IDs(); !reflect.DeepEqual(got, []string{"b", "a"}) {
		t.Errorf("IDs = %v", got)
	}
	if got := s.CaptionsByID(); !reflect.DeepEqual(got, map[string][]string{"b": {"x", "y"}, "a": {"z"}}) {
		t.Errorf("CaptionsByID = %v", got)
	}
	if n := s.NumCaptions(); n != 3 {
		t.Errorf("NumCaptions = %d", n)
	}
}
