package tokenizer

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/gitcap/gitcap/data/fixtures"
)

// FuzzEncodeDecode checks the tokenizer on arbitrary text (seeds: the 42
// fixture texts HF tokenized). Properties: Encode gives [CLS] ... [SEP] with
// in-vocabulary ids and never panics; EncodeTruncated is a prefix of
// Encode closed by [SEP]; decoding is stable (Decode(Encode(Decode(x))) ==
// Decode(x)); and without clean_up_tokenization_spaces, text without
// [UNK] or special tokens round-trips: Encode(Decode(Encode(s))) ==
// Encode(s).
func FuzzEncodeDecode(f *testing.F) {
	for _, c := range readTokenizeFixture(f).Entries {
		f.Add(c.Text)
	}
	tok := mustLoad(f, fixtures.Path(f, "git-tiny"))
	raw := copyFiles(f, fixtures.Path(f, "git-tiny"), VocabTxt)
	if err := os.WriteFile(filepath.Join(raw, "tokenizer_config.json"), []byte(`{"do_lower_case": true, "clean_up_tokenization_spaces": false}`), 0o644); err != nil {
		f.Fatal(err)
	}
	plain := mustLoad(f, raw)
	f.Fuzz(func(t *testing.T, s string) {
		ids := tok.Encode(s)
		if len(ids) < 2 || ids[0] != tok.CLS() || ids[len(ids)-1] != tok.SEP() {
			t.Fatalf("Encode(%q) = %v: not [CLS] ... [SEP]", s, ids)
		}
		for _, id := range ids {
			if id < 0 || id >= tok.VocabSize() {
				t.Fatalf("Encode(%q) gave id %d outside the vocabulary", s, id)
			}
		}
		if tr := tok.EncodeTruncated(s, 8); len(ids) > 8 && (len(tr) != 8 || !slices.Equal(tr[:7], ids[:7]) || tr[7] != tok.SEP()) {
			t.Fatalf("EncodeTruncated(%q, 8) = %v, Encode %v", s, tr, ids)
		}
		text := tok.Decode(ids, true)
		if !utf8.ValidString(text) && utf8.ValidString(s) {
			t.Fatalf("Decode gave invalid UTF-8 %q for %q", text, s)
		}
		if again := tok.Decode(tok.Encode(text), true); again != text {
			t.Fatalf("decoding is not stable: %q -> %q -> %q", s, text, again)
		}
		pids := plain.Encode(s)
		for _, id := range pids[1 : len(pids)-1] {
			if plain.specialIDs[id] {
				return // [UNK] or a literal special token: the text is lost by design
			}
		}
		if strings.Contains(s, "##") {
			return // a literal "##" piece and a continuation piece decode alike
		}
		back := plain.Encode(plain.Decode(pids, true))
		if !slices.Equal(back, pids) {
			t.Fatalf("round trip of %q: %v -> %q -> %v", s, pids, plain.Decode(pids, true), back)
		}
	})
}
