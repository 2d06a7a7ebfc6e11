package tokenizer

import (
	"bufio"
	"bytes"
	"cmp"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/gitcap/gitcap/data/fsutil"
)

// The special tokens of a vocabulary made by BuildVocab, with their ids.
const (
	PadToken  = "[PAD]"  // id 0
	UnkToken  = "[UNK]"  // id 1
	ClsToken  = "[CLS]"  // id 2
	SepToken  = "[SEP]"  // id 3
	MaskToken = "[MASK]" // id 4
)

// SpecialTokens are the first entries of every BuildVocab vocabulary, in id
// order: [PAD]=0 (so that padding is 0, as in BERT and GIT), [UNK]=1,
// [CLS]=2, [SEP]=3, [MASK]=4.
func SpecialTokens() []string {
	return []string{PadToken, UnkToken, ClsToken, SepToken, MaskToken}
}

// BuildVocab makes a small WordPiece vocabulary from training captions for a
// demo model. The captions are split exactly as the uncased BERT tokenizer
// splits them (lowercase, accents stripped, punctuation and CJK characters
// separated). The vocabulary is:
//
//  1. the special tokens, ids 0..4 (see SpecialTokens);
//  2. every word seen at least minCount times (minCount < 1 counts as 1),
//     most frequent first, ties in byte order;
//  3. every character seen in any word, alone and as a "##" continuation,
//     in byte order, so that any word made of known characters is split into
//     pieces instead of becoming [UNK].
func BuildVocab(captions []string, minCount int) []string {
	minCount = max(minCount, 1)
	text := newTextNormalizer(true, true, true, true, SpecialTokens(), nil)
	counts := make(map[string]int)
	chars := make(map[rune]bool)
	for _, c := range captions {
		text.walk(c, func(piece string, kind pieceKind) {
			if kind == pieceSpecial {
				return
			}
			if utf8.RuneCountInString(piece) > 100 {
				return // always [UNK]: max_input_chars_per_word
			}
			counts[piece]++
			for _, r := range piece {
				chars[r] = true
			}
		})
	}
	vocab := SpecialTokens()
	have := make(map[string]bool, len(counts)+2*len(chars)+len(vocab))
	for _, s := range vocab {
		have[s] = true
	}
	words := make([]string, 0, len(counts))
	for w, n := range counts {
		if n >= minCount && !have[w] {
			words = append(words, w)
		}
	}
	slices.SortFunc(words, func(a, b string) int {
		if c := cmp.Compare(counts[b], counts[a]); c != 0 {
			return c
		}
		return strings.Compare(a, b)
	})
	for _, w := range words {
		have[w] = true
		vocab = append(vocab, w)
	}
	runes := make([]rune, 0, len(chars))
	for r := range chars {
		runes = append(runes, r)
	}
	slices.Sort(runes)
	for _, r := range runes {
		if s := string(r); !have[s] {
			have[s] = true
			vocab = append(vocab, s)
		}
	}
	for _, r := range runes {
		if s := "##" + string(r); !have[s] {
			have[s] = true
			vocab = append(vocab, s)
		}
	}
	return vocab
}

// WriteFiles writes a BERT-uncased tokenizer for vocab (token i has id i) into
// dir, creating dir if needed: vocab.txt, tokenizer.json (HF fast-tokenizer
// format), tokenizer_config.json and special_tokens_map.json, so that both
// Load and HF's BertTokenizer/BertTokenizerFast/AutoTokenizer can read it.
// The vocabulary must hold [PAD], [UNK], [CLS], [SEP] and [MASK] (anywhere;
// BuildVocab puts them at 0..4) and no empty, repeated or multi-line token.
// Each file is written atomically (temporary file, fsync, rename).
func WriteFiles(dir string, vocab []string) error {
	ids := make(map[string]int, len(vocab))
	for i, tok := range vocab {
		switch {
		case tok == "":
			return fmt.Errorf("tokenizer: vocabulary entry %d is empty", i)
		case strings.ContainsAny(tok, "\r\n"):
			return fmt.Errorf("tokenizer: vocabulary entry %d (%q) contains a line break", i, tok)
		case !utf8.ValidString(tok):
			return fmt.Errorf("tokenizer: vocabulary entry %d (%q) is not valid UTF-8", i, tok)
		}
		if j, dup := ids[tok]; dup {
			return fmt.Errorf("tokenizer: token %q appears twice in the vocabulary (ids %d and %d)", tok, j, i)
		}
		ids[tok] = i
	}
	for _, s := range SpecialTokens() {
		if _, ok := ids[s]; !ok {
			return fmt.Errorf("tokenizer: the vocabulary has no %s token", s)
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("tokenizer: %w", err)
	}

	var vt bytes.Buffer
	vt.Grow(len(vocab) * 8)
	for _, tok := range vocab {
		vt.WriteString(tok)
		vt.WriteByte('\n')
	}
	tj, err := tokenizerJSON(vocab, ids)
	if err != nil {
		return err
	}
	cfg, err := tokenizerConfigJSON(ids)
	if err != nil {
		return err
	}
	stm, err := specialTokensMapJSON()
	if err != nil {
		return err
	}
	for _, f := range []struct {
		name string
		data []byte
	}{{VocabTxt, vt.Bytes()}, {TokenizerConfig, cfg}, {SpecialTokensMap, stm}, {TokenizerJSON, tj}} {
		err := fsutil.WriteAtomic(filepath.Join(dir, f.name), func(w *os.File) error {
			_, err := w.Write(f.data)
			return err
		})
		if err != nil {
			return fmt.Errorf("tokenizer: %w", err)
		}
	}
	return nil
}

// specialNames maps the special token attributes to the BuildVocab tokens,
// in the order HF writes them.
func specialNames() []struct{ key, tok string } {
	return []struct{ key, tok string }{
		{"cls_token", ClsToken}, {"mask_token", MaskToken}, {"pad_token", PadToken},
		{"sep_token", SepToken}, {"unk_token", UnkToken},
	}
}

// addedTokenJSON is an AddedToken as HF serialises it.
type addedTokenJSON struct {
	ID         *int   `json:"id,omitempty"`
	Content    string `json:"content"`
	SingleWord bool   `json:"single_word"`
	Lstrip     bool   `json:"lstrip"`
	Rstrip     bool   `json:"rstrip"`
	Normalized bool   `json:"normalized"`
	Special    *bool  `json:"special,omitempty"`
}

// specialsByID lists the special tokens sorted by id.
func specialsByID(ids map[string]int) []string {
	s := SpecialTokens()
	slices.SortFunc(s, func(a, b string) int { return cmp.Compare(ids[a], ids[b]) })
	return s
}

func marshal(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return nil, fmt.Errorf("tokenizer: %w", err)
	}
	return b.Bytes(), nil
}

// tokenizerJSON renders tokenizer.json like HF tokenizers does for
// bert-base-uncased. The vocabulary is written in id order, which a Go map
// cannot keep, so it is assembled by hand.
func tokenizerJSON(vocab []string, ids map[string]int) ([]byte, error) {
	yes := true
	added := make([]addedTokenJSON, 0, 5)
	for _, s := range specialsByID(ids) {
		id := ids[s]
		added = append(added, addedTokenJSON{ID: &id, Content: s, Special: &yes})
	}
	type templatePiece map[string]struct {
		ID     string `json:"id"`
		TypeID int    `json:"type_id"`
	}
	piece := func(kind, id string, typ int) templatePiece {
		p := templatePiece{}
		p[kind] = struct {
			ID     string `json:"id"`
			TypeID int    `json:"type_id"`
		}{id, typ}
		return p
	}
	type specialJSON struct {
		ID     string   `json:"id"`
		IDs    []int    `json:"ids"`
		Tokens []string `json:"tokens"`
	}
	special := func(tok string) specialJSON {
		return specialJSON{ID: tok, IDs: []int{ids[tok]}, Tokens: []string{tok}}
	}
	cls, sepA, sepB := piece("SpecialToken", ClsToken, 0), piece("SpecialToken", SepToken, 0), piece("SpecialToken", SepToken, 1)
	seqA, seqB := piece("Sequence", "A", 0), piece("Sequence", "B", 1)
	head := []struct {
		key string
		val any
	}{
		{"version", "1.0"},
		{"truncation", nil},
		{"padding", nil},
		{"added_tokens", added},
		{"normalizer", struct {
			Type               string `json:"type"`
			CleanText          bool   `json:"clean_text"`
			HandleChineseChars bool   `json:"handle_chinese_chars"`
			StripAccents       *bool  `json:"strip_accents"`
			Lowercase          bool   `json:"lowercase"`
		}{"BertNormalizer", true, true, nil, true}},
		{"pre_tokenizer", struct {
			Type string `json:"type"`
		}{"BertPreTokenizer"}},
		{"post_processor", struct {
			Type          string                 `json:"type"`
			Single        []templatePiece        `json:"single"`
			Pair          []templatePiece        `json:"pair"`
			SpecialTokens map[string]specialJSON `json:"special_tokens"`
		}{
			Type:          "TemplateProcessing",
			Single:        []templatePiece{cls, seqA, sepA},
			Pair:          []templatePiece{cls, seqA, sepA, seqB, sepB},
			SpecialTokens: map[string]specialJSON{ClsToken: special(ClsToken), SepToken: special(SepToken)},
		}},
		{"decoder", struct {
			Type    string `json:"type"`
			Prefix  string `json:"prefix"`
			Cleanup bool   `json:"cleanup"`
		}{"WordPiece", "##", true}},
	}
	var b bytes.Buffer
	w := bufio.NewWriter(&b)
	w.WriteString("{")
	for _, h := range head {
		v, err := json.Marshal(h.val)
		if err != nil {
			return nil, fmt.Errorf("tokenizer: %w", err)
		}
		fmt.Fprintf(w, "%q:%s,", h.key, v)
	}
	w.WriteString(`"model":{"type":"WordPiece","unk_token":"[UNK]","continuing_subword_prefix":"##","max_input_chars_per_word":100,"vocab":{`)
	for i, tok := range vocab {
		if i > 0 {
			w.WriteByte(',')
		}
		k, err := json.Marshal(tok)
		if err != nil {
			return nil, fmt.Errorf("tokenizer: %w", err)
		}
		w.Write(k)
		fmt.Fprintf(w, ":%d", i)
	}
	w.WriteString("}}}\n")
	if err := w.Flush(); err != nil {
		return nil, fmt.Errorf("tokenizer: %w", err)
	}
	return b.Bytes(), nil
}

// tokenizerConfigJSON renders tokenizer_config.json as
// BertTokenizer.save_pretrained (transformers 4.36) writes it.
func tokenizerConfigJSON(ids map[string]int) ([]byte, error) {
	yes := true
	dec := make(map[string]addedTokenJSON, 5)
	for _, s := range SpecialTokens() {
		dec[fmt.Sprint(ids[s])] = addedTokenJSON{Content: s, Special: &yes}
	}
	cfg := map[string]any{
		"added_tokens_decoder":         dec,
		"clean_up_tokenization_spaces": true,
		"do_basic_tokenize":            true,
		"do_lower_case":                true,
		"model_max_length":             512,
		"never_split":                  nil,
		"strip_accents":                nil,
		"tokenize_chinese_chars":       true,
		"tokenizer_class":              "BertTokenizer",
	}
	for _, n := range specialNames() {
		cfg[n.key] = n.tok
	}
	return marshal(cfg)
}

// specialTokensMapJSON renders special_tokens_map.json.
func specialTokensMapJSON() ([]byte, error) {
	m := make(map[string]addedTokenJSON, 5)
	for _, n := range specialNames() {
		m[n.key] = addedTokenJSON{Content: n.tok}
	}
	return marshal(m)
}
