package tokenizer

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/gitcap/gitcap/data/fixtures"
)

var demoCaptions = []string{
	"A red square on a white background.",
	"A blue circle on a white background.",
	"A green triangle on a black background!",
	"Two cats sleeping on a pink couch",
	"A Café with naïve décor",
	"the cat's toy, isn't it?",
}

func TestBuildVocab(t *testing.T) {
	vocab := BuildVocab(demoCaptions, 2)
	if !slices.Equal(vocab[:5], []string{"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"}) {
		t.Fatalf("special tokens = %q", vocab[:5])
	}
	// Most frequent words first: "a" (6), "on" (4), "background" (3),
	// "." (2), "white" (2) ...; "red" (1) is below minCount.
	if !slices.Equal(vocab[5:8], []string{"a", "on", "background"}) {
		t.Errorf("first words = %q", vocab[5:8])
	}
	seen := map[string]bool{}
	for _, tok := range vocab {
		if seen[tok] {
			t.Errorf("duplicate token %q", tok)
		}
		seen[tok] = true
	}
	for _, tok := range []string{"white", ".", "'", "c", "##c", "##e"} {
		if !seen[tok] {
			t.Errorf("token %q missing", tok)
		}
	}
	// Rare words (count 1), unseen letters, un-normalised forms.
	for _, tok := range []string{"cafe", "naive", "z", "##z"} {
		if seen[tok] {
			t.Errorf("unexpected token %q", tok)
		}
	}
	if seen["red"] || seen["Café"] || seen["café"] {
		t.Error("vocabulary holds a rare or un-normalised word")
	}
	if !slices.Equal(BuildVocab(demoCaptions, 2), vocab) {
		t.Error("BuildVocab is not deterministic")
	}
	if got := BuildVocab(nil, 0); !slices.Equal(got, SpecialTokens()) {
		t.Errorf("BuildVocab(nil) = %q", got)
	}
}

func TestWriteFilesRoundTrip(t *testing.T) {
	vocab := BuildVocab(demoCaptions, 1)
	dir := filepath.Join(t.TempDir(), "tok")
	if err := WriteFiles(dir, vocab); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if want := []string{SpecialTokensMap, TokenizerJSON, TokenizerConfig, VocabTxt}; !slices.Equal(names, want) {
		t.Errorf("files = %q, want %q", names, want)
	}
	txt, err := os.ReadFile(filepath.Join(dir, VocabTxt))
	if err != nil {
		t.Fatal(err)
	}
	if string(txt) != strings.Join(vocab, "\n")+"\n" {
		t.Error("vocab.txt is not one token per line in id order")
	}

	vocabOnly := copyFiles(t, dir, VocabTxt)
	for name, d := range map[string]string{"tokenizer.json": dir, "vocab.txt": vocabOnly} {
		tok := mustLoad(t, d)
		if tok.PAD() != 0 || tok.UNK() != 1 || tok.CLS() != 2 || tok.SEP() != 3 || tok.VocabSize() != len(vocab) {
			t.Errorf("%s: PAD/UNK/CLS/SEP/VocabSize = %d/%d/%d/%d/%d", name,
				tok.PAD(), tok.UNK(), tok.CLS(), tok.SEP(), tok.VocabSize())
		}
		for _, c := range []struct{ text, skip, full string }{
			{"A red square on a white background.", "a red square on a white background.",
				"[CLS] a red square on a white background. [SEP]"},
			{"Two CATS sleeping, isn't it?", "two cats sleeping, isn't it?", "[CLS] two cats sleeping, isn't it? [SEP]"},
			{"A Café!", "a cafe!", "[CLS] a cafe! [SEP]"},
			// An unseen word made of seen letters is split into pieces.
			{"a blackboard", "a blackboard", "[CLS] a blackboard [SEP]"},
			// An unseen letter and an emoji are [UNK] (dropped by skip).
			{"zebra 🐱", "", "[CLS] [UNK] [UNK] [SEP]"},
		} {
			ids := tok.Encode(c.text)
			if got := tok.Decode(ids, true); got != c.skip {
				t.Errorf("%s: Decode(Encode(%q), true) = %q, want %q", name, c.text, got, c.skip)
			}
			if got := tok.Decode(ids, false); got != c.full {
				t.Errorf("%s: Decode(Encode(%q), false) = %q, want %q", name, c.text, got, c.full)
			}
		}
		if got := tok.Tokens("blackboard"); !slices.Equal(got, []string{"[CLS]", "black", "##b", "##o", "##a", "##r", "##d", "[SEP]"}) {
			t.Errorf("%s: Tokens(blackboard) = %q", name, got)
		}
	}
}

// The files written for the BERT vocabulary must be what HF wrote for
// bert-base-uncased (up to key order, plus the model "type" that HF
// tokenizers writes and the hand-made fixture omits).
func TestWriteFilesMatchesHF(t *testing.T) {
	ref := fixtures.Path(t, "tokenizer", "bert-base-uncased")
	txt, err := os.ReadFile(filepath.Join(ref, VocabTxt))
	if err != nil {
		t.Fatal(err)
	}
	vocab := strings.Split(strings.TrimSuffix(string(txt), "\n"), "\n")
	dir := t.TempDir()
	if err := WriteFiles(dir, vocab); err != nil {
		t.Fatal(err)
	}
	readJSON := func(path string) map[string]any {
		t.Helper()
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		if err := json.Unmarshal(data, &m); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		return m
	}
	got, want := readJSON(filepath.Join(dir, TokenizerJSON)), readJSON(filepath.Join(ref, TokenizerJSON))
	if m, ok := got["model"].(map[string]any); !ok || m["type"] != "WordPiece" {
		t.Errorf("tokenizer.json model type = %v", got["model"])
	} else {
		delete(m, "type")
	}
	if !reflect.DeepEqual(got, want) {
		for k := range want {
			if !reflect.DeepEqual(got[k], want[k]) && k != "model" {
				t.Errorf("tokenizer.json %q = %v, want %v", k, got[k], want[k])
			}
		}
		t.Error("tokenizer.json differs from HF's")
	}
	for _, c := range []struct{ name, ref string }{
		{TokenizerConfig, filepath.Join(ref, TokenizerConfig)},
		{SpecialTokensMap, fixtures.Path(t, "git-tiny", SpecialTokensMap)},
	} {
		if got, want := readJSON(filepath.Join(dir, c.name)), readJSON(c.ref); !reflect.DeepEqual(got, want) {
			t.Errorf("%s = %v\nwant %v", c.name, got, want)
		}
	}
	if txt2, err := os.ReadFile(filepath.Join(dir, VocabTxt)); err != nil || string(txt2) != string(txt) {
		t.Errorf("vocab.txt differs from the input (%v)", err)
	}
	// And it loads back to the same tokenizer.
	f := readTokenizeFixture(t)
	tok := mustLoad(t, dir)
	for _, c := range f.Entries {
		if got := tok.Encode(c.Text); !slices.Equal(got, c.InputIDs) {
			t.Errorf("%q: Encode = %v, want %v", c.Text, got, c.InputIDs)
		}
	}
}

func TestWriteFilesErrors(t *testing.T) {
	base := SpecialTokens()
	for _, c := range []struct {
		name  string
		vocab []string
		want  string
	}{
		{"no [SEP]", []string{"[PAD]", "[UNK]", "[CLS]", "[MASK]", "a"}, "[SEP]"},
		{"duplicate", append(slices.Clone(base), "a", "a"), `"a" appears twice`},
		{"empty token", append(slices.Clone(base), ""), "empty"},
		{"line break", append(slices.Clone(base), "a\nb"), "line break"},
	} {
		dir := t.TempDir()
		err := WriteFiles(dir, c.vocab)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want one mentioning %q", c.name, err, c.want)
		}
		if entries, _ := os.ReadDir(dir); len(entries) != 0 {
			t.Errorf("%s: files written despite the error", c.name)
		}
	}
}
