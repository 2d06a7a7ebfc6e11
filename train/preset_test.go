package train

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gitcap/gitcap/configs"
	"github.com/gitcap/gitcap/data/tokenizer"
)

// TestLoadPresetTakesVocabSizeAndChecksSpecialIDs: vocab_size 0 becomes the
// tokenizer's size; bos/eos/pad ids that differ from the tokenizer's
// [CLS]/[SEP]/[PAD], or a vocab_size below the tokenizer's, are errors
// naming both values.
func TestLoadPresetTakesVocabSizeAndChecksSpecialIDs(t *testing.T) {
	base, err := configs.Read("demo.json") // vocab_size 0, bos 2, eos 3, pad 0
	if err != nil {
		t.Fatal(err)
	}
	vocab := tokenizer.BuildVocab([]string{"a red square", "a blue circle"}, 1)
	cases := []struct {
		name, from, to string
		want           []string // empty: no error
	}{
		{"vocab_size 0 from the tokenizer", "", "", nil},
		{"bos disagrees", `"bos_token_id": 2`, `"bos_token_id": 101`, []string{"bos_token_id is 101", "[CLS] = 2"}},
		{"eos disagrees", `"eos_token_id": 3`, `"eos_token_id": 102`, []string{"eos_token_id is 102", "[SEP] = 3"}},
		{"pad disagrees", `"pad_token_id": 0`, `"pad_token_id": 1`, []string{"pad_token_id is 1", "[PAD] = 0"}},
		{"vocab too small", `"vocab_size": 0`, `"vocab_size": 5`, []string{"vocab_size 5", "tokenizer's"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := tokenizer.WriteFiles(dir, vocab); err != nil {
				t.Fatal(err)
			}
			preset := string(base)
			if c.from != "" {
				if !strings.Contains(preset, c.from) {
					t.Fatalf("demo.json lacks %s", c.from)
				}
				preset = strings.Replace(preset, c.from, c.to, 1)
			}
			path := filepath.Join(dir, "config.json")
			if err := os.WriteFile(path, []byte(preset), 0o644); err != nil {
				t.Fatal(err)
			}
			mc, tok, err := LoadPreset(path)
			if c.want == nil {
				if err != nil {
					t.Fatal(err)
				}
				if mc.VocabSize != len(vocab) || tok.VocabSize() != len(vocab) {
					t.Errorf("vocab_size %d, want the tokenizer's %d", mc.VocabSize, len(vocab))
				}
				return
			}
			if err == nil {
				t.Fatal("want an error")
			}
			for _, w := range append(c.want, path) {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}
