package tokenizer

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/gitcap/gitcap/data/fixtures"
)

// tokenizeFixture is git-tiny/reference/tokenize.json, made with HF's slow
// BertTokenizer (transformers 4.36.2).
type tokenizeFixture struct {
	Entries []struct {
		Text                 string   `json:"text"`
		InputIDs             []int    `json:"input_ids"`
		Tokens               []string `json:"tokens"`
		DecodedSkipSpecial   string   `json:"decoded_skip_special"`
		DecodedWithSpecial   string   `json:"decoded_with_special"`
		Truncated32          []int    `json:"input_ids_truncated_max_length_32"`
		DecodedTruncatedSkip *string  `json:"decoded_truncated_skip_special"`
	} `json:"entries"`
	Batch struct {
		Texts         []string `json:"texts"`
		InputIDs      [][]int  `json:"input_ids"`
		AttentionMask [][]int  `json:"attention_mask"`
	} `json:"batch_padding_example"`
}

func readTokenizeFixture(t testing.TB) tokenizeFixture {
	t.Helper()
	data, err := os.ReadFile(fixtures.Path(t, "git-tiny", "reference", "tokenize.json"))
	if err != nil {
		t.Fatal(err)
	}
	var f tokenizeFixture
	if err := json.Unmarshal(data, &f); err != nil {
		t.Fatal(err)
	}
	if len(f.Entries) < 42 || len(f.Batch.Texts) == 0 {
		t.Fatalf("tokenize.json: %d entries, %d batch texts; want >= 42 and > 0", len(f.Entries), len(f.Batch.Texts))
	}
	return f
}

func mustLoad(t testing.TB, dir string) *Tokenizer {
	t.Helper()
	tok, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// copyFiles copies the named files of src into a new temporary directory.
func copyFiles(t testing.TB, src string, names ...string) string {
	t.Helper()
	dir := t.TempDir()
	for _, n := range names {
		data, err := os.ReadFile(filepath.Join(src, n))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, n), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// fixtureTokenizers loads the git-tiny tokenizer from tokenizer.json (with
// its config files), from vocab.txt alone, and the bert-base-uncased copy.
func fixtureTokenizers(t testing.TB) map[string]*Tokenizer {
	gitTiny := fixtures.Path(t, "git-tiny")
	return map[string]*Tokenizer{
		"tokenizer.json":    mustLoad(t, gitTiny),
		"vocab.txt":         mustLoad(t, copyFiles(t, gitTiny, VocabTxt)),
		"bert-base-uncased": mustLoad(t, fixtures.Path(t, "tokenizer", "bert-base-uncased")),
	}
}

func TestFixtureCases(t *testing.T) {
	f := readTokenizeFixture(t)
	for name, tok := range fixtureTokenizers(t) {
		t.Run(name, func(t *testing.T) {
			if tok.CLS() != 101 || tok.SEP() != 102 || tok.PAD() != 0 || tok.UNK() != 100 || tok.VocabSize() != 30522 {
				t.Fatalf("CLS/SEP/PAD/UNK/VocabSize = %d/%d/%d/%d/%d, want 101/102/0/100/30522",
					tok.CLS(), tok.SEP(), tok.PAD(), tok.UNK(), tok.VocabSize())
			}
			truncated := 0
			for i, c := range f.Entries {
				if got := tok.Encode(c.Text); !slices.Equal(got, c.InputIDs) {
					t.Errorf("case %d %q: Encode = %v, want %v", i, c.Text, got, c.InputIDs)
				}
				if got := tok.Tokens(c.Text); !slices.Equal(got, c.Tokens) {
					t.Errorf("case %d %q: Tokens = %q, want %q", i, c.Text, got, c.Tokens)
				}
				if got := tok.Decode(c.InputIDs, true); got != c.DecodedSkipSpecial {
					t.Errorf("case %d %q: Decode(skip) = %q, want %q", i, c.Text, got, c.DecodedSkipSpecial)
				}
				if got := tok.Decode(c.InputIDs, false); got != c.DecodedWithSpecial {
					t.Errorf("case %d %q: Decode = %q, want %q", i, c.Text, got, c.DecodedWithSpecial)
				}
				want32 := c.InputIDs
				if c.Truncated32 != nil {
					truncated++
					want32 = c.Truncated32
				}
				if got := tok.EncodeTruncated(c.Text, 32); !slices.Equal(got, want32) {
					t.Errorf("case %d %q: EncodeTruncated(32) = %v, want %v", i, c.Text, got, want32)
				}
				if c.DecodedTruncatedSkip != nil {
					if got := tok.Decode(c.Truncated32, true); got != *c.DecodedTruncatedSkip {
						t.Errorf("case %d: Decode(truncated, skip) = %q, want %q", i, got, *c.DecodedTruncatedSkip)
					}
				}
				wantPrompt := c.InputIDs[:len(c.InputIDs)-1]
				if got := tok.EncodePrompt(c.Text); !slices.Equal(got, wantPrompt) {
					t.Errorf("case %d %q: EncodePrompt = %v, want %v", i, c.Text, got, wantPrompt)
				}
			}
			if truncated == 0 {
				t.Error("no case has input_ids_truncated_max_length_32")
			}

			seqs := make([][]int, len(f.Batch.Texts))
			for i, s := range f.Batch.Texts {
				seqs[i] = tok.Encode(s)
			}
			ids, mask := PadBatch(seqs, tok.PAD())
			if !equal2(ids, f.Batch.InputIDs) || !equal2(mask, f.Batch.AttentionMask) {
				t.Errorf("PadBatch = %v %v, want %v %v", ids, mask, f.Batch.InputIDs, f.Batch.AttentionMask)
			}
		})
	}
}

func equal2(a, b [][]int) bool {
	return slices.EqualFunc(a, b, func(x, y []int) bool { return slices.Equal(x, y) })
}

func TestPromptAndConfig(t *testing.T) {
	tok := mustLoad(t, fixtures.Path(t, "git-tiny"))
	// generate.json's prompt: [CLS] "a photo of", no [SEP].
	if got, want := tok.EncodePrompt("a photo of"), []int{101, 1037, 6302, 1997}; !slices.Equal(got, want) {
		t.Errorf("EncodePrompt = %v, want %v", got, want)
	}
	if got := tok.ModelMaxLength(); got != 512 {
		t.Errorf("ModelMaxLength = %d, want 512", got)
	}
	if got := mustLoad(t, copyFiles(t, fixtures.Path(t, "git-tiny"), VocabTxt)).ModelMaxLength(); got != 0 {
		t.Errorf("ModelMaxLength without config = %d, want 0", got)
	}
}

func TestEncodeTruncatedEdges(t *testing.T) {
	tok := mustLoad(t, copyFiles(t, fixtures.Path(t, "git-tiny"), VocabTxt))
	full := tok.Encode("a red square on white") // 7 ids
	for _, c := range []struct {
		maxLen int
		want   []int
	}{
		{100, full},
		{7, full},
		{6, []int{101, 1037, 2417, 2675, 2006, 102}},
		{3, []int{101, 1037, 102}},
		// HF cannot remove enough tokens, logs an error and keeps them all.
		{2, full},
		{0, full},
	} {
		if got := tok.EncodeTruncated("a red square on white", c.maxLen); !slices.Equal(got, c.want) {
			t.Errorf("EncodeTruncated(%d) = %v, want %v", c.maxLen, got, c.want)
		}
	}
	if got := tok.EncodeTruncated("", 2); !slices.Equal(got, []int{101, 102}) {
		t.Errorf("EncodeTruncated(\"\", 2) = %v", got)
	}
}

func TestDecodeUnknownIDs(t *testing.T) {
	tok := mustLoad(t, fixtures.Path(t, "git-tiny"))
	// HF: ids_to_tokens.get(id, unk_token); such ids are not special ids.
	if got := tok.Decode([]int{101, 1037, 999999, -1, 102}, true); got != "a [UNK] [UNK]" {
		t.Errorf("Decode = %q", got)
	}
	if got := tok.Decode(nil, true); got != "" {
		t.Errorf("Decode(nil) = %q", got)
	}
	// A leading continuation piece keeps its ## (only " ##" is removed),
	// clean-up: " do not" is left alone (sugarme's decoder would change it).
	if got := tok.Decode([]int{15472, 2079, 2025}, false); got != "##lc do not" {
		t.Errorf("Decode = %q", got)
	}
}

func TestPadBatch(t *testing.T) {
	in := [][]int{{5, 6, 7}, {}, {8}}
	ids, mask := PadBatch(in, -1)
	if want := [][]int{{5, 6, 7}, {-1, -1, -1}, {8, -1, -1}}; !equal2(ids, want) {
		t.Errorf("ids = %v, want %v", ids, want)
	}
	if want := [][]int{{1, 1, 1}, {0, 0, 0}, {1, 0, 0}}; !equal2(mask, want) {
		t.Errorf("mask = %v, want %v", mask, want)
	}
	ids[0][0] = 42
	if in[0][0] != 5 {
		t.Error("PadBatch aliases its input")
	}
	_ = append(ids[0], 99) // rows must not share spare capacity
	if ids[1][0] != -1 {
		t.Error("appending to a row overwrote the next one")
	}
	if mask2, _ := PadBatch(nil, 0); len(mask2) != 0 {
		t.Error("PadBatch(nil) not empty")
	}
}

// writeDir creates a directory holding the given files.
func writeDir(t testing.TB, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// smallVocab is a hand-made vocabulary for the behaviour tests below.
const smallVocab = "[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\na\nb\nab\ni\ne\nx\ny\nhello\nHello\n[\n]\ncl\n##s\n##b\n" +
	"\u00e9\nfoo.bar\nfoo\n.\nbar\n,\n"

func smallIDs(t *testing.T, tok *Tokenizer, text string) []string {
	t.Helper()
	toks := tok.Tokens(text)
	return toks[1 : len(toks)-1]
}

// These expectations follow the transformers 4.36 source of
// BertTokenizer/BasicTokenizer/PreTrainedTokenizer.tokenize for inputs that
// the fixture does not cover.
func TestHFBasicTokenizerSemantics(t *testing.T) {
	tok := mustLoad(t, writeDir(t, map[string]string{VocabTxt: smallVocab}))
	long := "a" + strings.Repeat("b", 99) // 100 characters: ab ##b x 98
	longPieces := append([]string{"ab"}, slices.Repeat([]string{"##b"}, 98)...)
	for _, c := range []struct {
		text string
		want []string
	}{
		// Only the exact, case-sensitive special token is kept.
		{"x[SEP]y [MASK]", []string{"x", "[SEP]", "y", "[MASK]"}},
		{"[cls] [Cls]", []string{"[", "cl", "##s", "]", "[", "cl", "##s", "]"}},
		// A special token broken by a zero-width space is lowercased
		// like any text before BasicTokenizer removes the Cf character.
		{"[CL\u200bS]", []string{"[", "cl", "##s", "]"}},
		// Every category C* character is removed (Cc, Cf, Co, unassigned).
		{"a\ue000b a\u0378b a\u00adb a\x7fb", []string{"ab", "ab", "ab", "ab"}},
		// Python whitespace splits words: U+2028, U+3000, NBSP.
		{"a\u2028b\u3000a\u00a0b", []string{"a", "b", "a", "b"}},
		// Lowercase, NFD, drop Mn: U+0130, combining accents, precomposed.
		{"\u0130 E\u0301 \u00c9", []string{"i", "e", "e"}},
		// Words longer than 100 characters are [UNK], even when splittable.
		{long, longPieces},
		{long + "b", []string{"[UNK]"}},
		{"abbb", []string{"ab", "##b", "##b"}},
		{"abz", []string{"[UNK]"}},
		{"", []string{}},
		{"\t\n ", []string{}},
	} {
		if got := smallIDs(t, tok, c.text); !slices.Equal(got, c.want) {
			t.Errorf("Tokens(%q) = %q, want %q", c.text, got, c.want)
		}
	}
}

func TestCasedConfig(t *testing.T) {
	dir := writeDir(t, map[string]string{
		VocabTxt:        smallVocab,
		TokenizerConfig: `{"do_lower_case": false, "never_split": ["foo.bar"], "model_max_length": 1e30}`,
	})
	tok := mustLoad(t, dir)
	for _, c := range []struct {
		text string
		want []string
	}{
		{"Hello hello", []string{"Hello", "hello"}},
		// Not lowercased, so accents are kept (strip_accents unset) and
		// the text is NFC-normalised.
		{"e\u0301", []string{"\u00e9"}},
		// BasicTokenizer's never_split holds the special tokens: once the
		// zero-width space is gone, the cased "[CLS]" stays whole and
		// WordPiece finds it in the vocabulary.
		{"[CL\u200bS]", []string{"[CLS]"}},
		// never_split keeps the token whole and looks it up directly.
		{"foo.bar foo,bar", []string{"foo.bar", "foo", ",", "bar"}},
	} {
		if got := smallIDs(t, tok, c.text); !slices.Equal(got, c.want) {
			t.Errorf("Tokens(%q) = %q, want %q", c.text, got, c.want)
		}
	}
	if tok.ModelMaxLength() != 0 {
		t.Errorf("ModelMaxLength = %d, want 0 for HF's 'no limit'", tok.ModelMaxLength())
	}
}

func TestLoadErrors(t *testing.T) {
	gitTiny := fixtures.Path(t, "git-tiny")
	cfg, err := os.ReadFile(filepath.Join(gitTiny, TokenizerConfig))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name  string
		files map[string]string
		want  []string // substrings of the error
	}{
		{"empty dir", map[string]string{}, []string{"neither tokenizer.json nor vocab.txt"}},
		{"malformed tokenizer.json", map[string]string{TokenizerJSON: `{"model": {`, VocabTxt: smallVocab},
			[]string{TokenizerJSON, "malformed JSON"}},
		{"malformed tokenizer_config.json", map[string]string{VocabTxt: smallVocab, TokenizerConfig: `{"do_lower_case": tru}`},
			[]string{TokenizerConfig, "malformed JSON"}},
		{"bad config value", map[string]string{VocabTxt: smallVocab, TokenizerConfig: `{"do_lower_case": "yes"}`},
			[]string{TokenizerConfig, "do_lower_case"}},
		{"malformed special_tokens_map.json", map[string]string{VocabTxt: smallVocab, SpecialTokensMap: `[`},
			[]string{SpecialTokensMap, "malformed JSON"}},
		{"no [CLS]", map[string]string{VocabTxt: "[PAD]\n[UNK]\n[SEP]\na\n"}, []string{VocabTxt, `"[CLS]"`}},
		{"no [PAD]", map[string]string{VocabTxt: "[CLS]\n[UNK]\n[SEP]\na\n"}, []string{VocabTxt, `"[PAD]"`}},
		{"no [UNK]", map[string]string{VocabTxt: "[PAD]\n[CLS]\n[SEP]\na\n"}, []string{VocabTxt, `"[UNK]"`}},
		{"no [SEP]", map[string]string{VocabTxt: "[PAD]\n[UNK]\n[CLS]\na\n"}, []string{VocabTxt, `"[SEP]"`}},
		{"empty vocab.txt", map[string]string{VocabTxt: ""}, []string{VocabTxt, "empty"}},
		{"config renames cls", map[string]string{VocabTxt: smallVocab, TokenizerConfig: `{"cls_token": "<s>"}`},
			[]string{VocabTxt, `"<s>"`}},
		{"tokenizer.json without [SEP]", map[string]string{TokenizerJSON: `{"normalizer":{"type":"BertNormalizer"},
			"pre_tokenizer":{"type":"BertPreTokenizer"},"model":{"vocab":{"[PAD]":0,"[UNK]":1,"[CLS]":2}}}`},
			[]string{TokenizerJSON, `"[SEP]"`}},
		{"BPE model", map[string]string{TokenizerJSON: `{"model":{"type":"BPE","vocab":{"a":0}}}`},
			[]string{TokenizerJSON, "BPE"}},
		{"other normalizer", map[string]string{TokenizerJSON: `{"normalizer":{"type":"NFKC"},
			"pre_tokenizer":{"type":"BertPreTokenizer"},"model":{"vocab":{"a":0}}}`},
			[]string{TokenizerJSON, "NFKC"}},
		{"shared ids", map[string]string{TokenizerJSON: `{"normalizer":{"type":"BertNormalizer"},
			"pre_tokenizer":{"type":"BertPreTokenizer"},"model":{"vocab":{"a":0,"b":0}}}`},
			[]string{TokenizerJSON, "share id 0"}},
		{"added token id mismatch", map[string]string{VocabTxt: smallVocab, TokenizerConfig: string(cfg)},
			[]string{TokenizerConfig, "added token"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			tok, err := Load(writeDir(t, c.files))
			if err == nil {
				t.Fatalf("Load succeeded (%p), want an error", tok)
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

func TestVocabTxtLines(t *testing.T) {
	// Universal newlines like Python's text mode; a repeated token keeps
	// its last line; the earlier id decodes as [UNK].
	tok := mustLoad(t, writeDir(t, map[string]string{VocabTxt: "[PAD]\r\n[UNK]\r[CLS]\n[SEP]\na\nb\na\n"}))
	if tok.VocabSize() != 6 {
		t.Errorf("VocabSize = %d, want 6", tok.VocabSize())
	}
	if got := tok.Encode("a b"); !slices.Equal(got, []int{2, 6, 5, 3}) {
		t.Errorf("Encode = %v", got)
	}
	if got := tok.Decode([]int{4, 6}, false); got != "[UNK] a" {
		t.Errorf("Decode = %q", got)
	}
}

const benchCaption = "Two cats sleeping on a pink couch next to a remote control."

func BenchmarkEncode(b *testing.B) {
	tok := mustLoad(b, fixtures.Path(b, "git-tiny"))
	b.ReportAllocs()
	for b.Loop() {
		tok.Encode(benchCaption)
	}
}

func BenchmarkEncodeLowercaseASCII(b *testing.B) {
	tok := mustLoad(b, fixtures.Path(b, "git-tiny"))
	b.ReportAllocs()
	for b.Loop() {
		tok.Encode("two cats sleeping on a pink couch")
	}
}

func BenchmarkDecode(b *testing.B) {
	tok := mustLoad(b, fixtures.Path(b, "git-tiny"))
	ids := tok.Encode(benchCaption)
	b.ReportAllocs()
	for b.Loop() {
		tok.Decode(ids, true)
	}
}

func TestEncodeAllocations(t *testing.T) {
	tok := mustLoad(t, fixtures.Path(t, "git-tiny"))
	if n := testing.AllocsPerRun(100, func() { tok.Encode("two cats sleeping on a pink couch") }); n > 1 {
		t.Errorf("Encode of a lowercase caption: %v allocations, want 1", n)
	}
	if n := testing.AllocsPerRun(100, func() { tok.Encode(benchCaption) }); n > 2 {
		t.Errorf("Encode of a capitalised caption: %v allocations, want <= 2", n)
	}
}
