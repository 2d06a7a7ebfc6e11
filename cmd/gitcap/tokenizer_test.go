package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/gitcap/gitcap/data/fixtures"
	"github.com/gitcap/gitcap/data/tokenizer"
	"github.com/gitcap/gitcap/gitmodel"
)

// TestTokenizerCommandBuildsHFLayoutFromEveryCaptionFormat builds a
// tokenizer from a COCO file, a metadata.jsonl and a CSV file together; the
// four files load back with our loader, encode the captions without [UNK],
// and have the structure of the bert-base-uncased fixture's files (same
// keys, same normalizer, pre-tokenizer, post-processor and decoder).
func TestTokenizerCommandBuildsHFLayoutFromEveryCaptionFormat(t *testing.T) {
	dir := t.TempDir()
	coco := `{"images":[{"id":1,"file_name":"a.png"}],"annotations":[{"image_id":1,"caption":"A red square on white."}]}`
	jsonl := `{"file_name":"b.png","text":"a blue circle, on black"}` + "\n"
	csv := "file_name,text\nc.png,Two green triangles\n"
	var files []string
	for name, body := range map[string]string{"captions.json": coco, "metadata.jsonl": jsonl, "captions.csv": csv} {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		files = append(files, "--captions", p)
	}
	out := filepath.Join(dir, "tok")
	var so, se bytes.Buffer
	args := append(files, "--out", out, "--preset", "demo")
	if code := exitStatus("tokenizer", runTokenizer(context.Background(), args, &so, &se), &se); code != 0 {
		t.Fatalf("exit %d: %s", code, se.String())
	}
	tok, err := tokenizer.Load(out)
	if err != nil {
		t.Fatal(err)
	}
	if tok.CLS() != 2 || tok.SEP() != 3 || tok.PAD() != 0 {
		t.Errorf("special ids cls %d sep %d pad %d, want 2 3 0", tok.CLS(), tok.SEP(), tok.PAD())
	}
	for _, c := range []string{"A red square on white.", "a blue circle, on black", "Two green triangles"} {
		if ids := tok.Encode(c); slices.Contains(ids, tok.UNK()) {
			t.Errorf("%q encodes with [UNK]: %v", c, ids)
		}
	}
	ref := fixtures.Path(t, "tokenizer", "bert-base-uncased")
	for _, name := range []string{"tokenizer_config.json", "special_tokens_map.json", "tokenizer.json"} {
		got, want := readJSONMap(t, filepath.Join(out, name)), readJSONMap(t, filepath.Join(ref, name))
		if g, w := sortedKeys(got), sortedKeys(want); !reflect.DeepEqual(g, w) {
			t.Errorf("%s keys %v, fixture's %v", name, g, w)
		}
		if name == "tokenizer.json" {
			for _, k := range []string{"normalizer", "pre_tokenizer", "decoder"} {
				if !reflect.DeepEqual(got[k], want[k]) {
					t.Errorf("tokenizer.json %s = %v, fixture's %v", k, got[k], want[k])
				}
			}
		}
	}
	// --preset wrote a config that matches the tokenizer.
	mc, err := gitmodel.LoadConfig(filepath.Join(out, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	if mc.VocabSize != tok.VocabSize() || mc.BosTokenID != 2 || mc.EosTokenID != 3 {
		t.Errorf("preset vocab %d bos %d eos %d; tokenizer has %d tokens", mc.VocabSize, mc.BosTokenID, mc.EosTokenID, tok.VocabSize())
	}
	if _, err := os.Stat(filepath.Join(out, "preprocessor_config.json")); err != nil {
		t.Error(err)
	}
	if !strings.Contains(so.String(), "vocab.txt") {
		t.Errorf("output does not list the files: %s", so.String())
	}
}

func readJSONMap(t *testing.T, path string) map[string]any {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return m
}

func sortedKeys(m map[string]any) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}
