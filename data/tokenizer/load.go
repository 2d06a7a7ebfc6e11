package tokenizer

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/sugarme/tokenizer/model"
	"github.com/sugarme/tokenizer/model/wordpiece"
)

// File names inside a checkpoint directory.
const (
	TokenizerJSON    = "tokenizer.json"
	VocabTxt         = "vocab.txt"
	TokenizerConfig  = "tokenizer_config.json"
	SpecialTokensMap = "special_tokens_map.json"
)

// config is the tokenizer configuration gathered from a checkpoint's files,
// starting from BertTokenizer's defaults.
type config struct {
	lower, chinese, clean, cleanup bool
	strip                          *bool // strip_accents; nil: follow lower

	unk, sep, pad, cls, mask string
	additional               []string
	neverSplit               []string

	prefix         string
	maxChars       int
	modelMaxLength int

	added []addedToken // added tokens declared by the files
}

type addedToken struct {
	file    string
	id      int
	content string
	special bool
}

func defaultConfig() config {
	return config{
		lower: true, chinese: true, clean: true, cleanup: true,
		unk: "[UNK]", sep: "[SEP]", pad: "[PAD]", cls: "[CLS]", mask: "[MASK]",
		prefix: "##", maxChars: 100,
	}
}

// Load reads the tokenizer of a checkpoint directory: the WordPiece
// vocabulary from tokenizer.json (HF fast-tokenizer format, BertNormalizer +
// BertPreTokenizer + WordPiece) if present, else from vocab.txt; then
// tokenizer_config.json (do_lower_case, strip_accents,
// tokenize_chinese_chars, special tokens, never_split, model_max_length,
// clean_up_tokenization_spaces) and special_tokens_map.json when present.
// Settings in tokenizer_config.json take precedence over the normalizer
// section of tokenizer.json, and special_tokens_map.json over both, as in HF.
// (HF's BertTokenizerFast goes further and replaces the lowercase,
// strip_accents and handle_chinese_chars of tokenizer.json by its own
// defaults even when tokenizer_config.json does not set them; here the values
// in tokenizer.json are kept then. Files written by save_pretrained or by
// WriteFiles agree, so this only matters for hand-made files.)
//
// Only BERT-style files are supported: a tokenizer.json whose normalizer is
// not BertNormalizer, whose pre_tokenizer is not BertPreTokenizer or whose
// model is not WordPiece, and added tokens that are not special tokens of the
// vocabulary, give an error rather than a silently different tokenization.
//
// The vocabulary must contain the [CLS], [SEP], [PAD] and [UNK] tokens (or
// the names the configuration gives them). A [MASK] token absent from the
// vocabulary is simply not treated as special (HF would append it as an
// extra token).
func Load(dir string) (*Tokenizer, error) {
	c := defaultConfig()
	var (
		vocab     map[string]int
		vocabFile string
	)
	tj := filepath.Join(dir, TokenizerJSON)
	switch _, err := os.Stat(tj); {
	case err == nil:
		vocabFile = tj
		if vocab, err = c.readTokenizerJSON(tj); err != nil {
			return nil, err
		}
	case errors.Is(err, fs.ErrNotExist):
		vocabFile = filepath.Join(dir, VocabTxt)
		if vocab, err = readVocabTxt(vocabFile); err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil, fmt.Errorf("tokenizer: no vocabulary in %s: neither %s nor %s exists", dir, TokenizerJSON, VocabTxt)
			}
			return nil, err
		}
	default:
		return nil, fmt.Errorf("tokenizer: %w", err)
	}
	if err := c.readTokenizerConfig(filepath.Join(dir, TokenizerConfig)); err != nil {
		return nil, err
	}
	if err := c.readSpecialTokensMap(filepath.Join(dir, SpecialTokensMap)); err != nil {
		return nil, err
	}
	return newTokenizer(vocab, vocabFile, &c)
}

// readVocabTxt reads a BERT vocab.txt like HF's load_vocab: one token per
// line (universal newlines), the id is the line number, a repeated token
// keeps its last line.
func readVocabTxt(path string) (map[string]int, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
		return nil, fmt.Errorf("tokenizer: %w", err)
	}
	if !utf8.Valid(data) {
		return nil, fmt.Errorf("tokenizer: %s: not valid UTF-8", path)
	}
	text := string(data)
	if strings.IndexByte(text, '\r') >= 0 {
		text = strings.ReplaceAll(text, "\r\n", "\n")
		text = strings.ReplaceAll(text, "\r", "\n")
	}
	text = strings.TrimSuffix(text, "\n")
	if text == "" {
		return nil, fmt.Errorf("tokenizer: %s: empty vocabulary", path)
	}
	vocab := make(map[string]int, strings.Count(text, "\n")+1)
	for id := 0; ; id++ {
		line, rest, more := strings.Cut(text, "\n")
		vocab[line] = id
		if !more {
			break
		}
		text = rest
	}
	return vocab, nil
}

// hfTokenizerJSON is the part of an HF tokenizer.json that a BERT WordPiece
// tokenizer uses.
type hfTokenizerJSON struct {
	AddedTokens []struct {
		ID      *int   `json:"id"`
		Content string `json:"content"`
		Special bool   `json:"special"`
	} `json:"added_tokens"`
	Normalizer *struct {
		Type               string `json:"type"`
		CleanText          *bool  `json:"clean_text"`
		HandleChineseChars *bool  `json:"handle_chinese_chars"`
		StripAccents       *bool  `json:"strip_accents"`
		Lowercase          *bool  `json:"lowercase"`
	} `json:"normalizer"`
	PreTokenizer *struct {
		Type string `json:"type"`
	} `json:"pre_tokenizer"`
	Model *struct {
		Type                    string         `json:"type"`
		UnkToken                *string        `json:"unk_token"`
		ContinuingSubwordPrefix *string        `json:"continuing_subword_prefix"`
		MaxInputCharsPerWord    *int           `json:"max_input_chars_per_word"`
		Vocab                   map[string]int `json:"vocab"`
	} `json:"model"`
}

func (c *config) readTokenizerJSON(path string) (map[string]int, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("tokenizer: %w", err)
	}
	var tj hfTokenizerJSON
	if err := json.Unmarshal(data, &tj); err != nil {
		return nil, fmt.Errorf("tokenizer: %s: malformed JSON: %w", path, err)
	}
	m := tj.Model
	switch {
	case m == nil:
		return nil, fmt.Errorf("tokenizer: %s: no \"model\" section", path)
	case m.Type != "" && m.Type != "WordPiece":
		return nil, fmt.Errorf("tokenizer: %s: model type %q is not supported (want WordPiece)", path, m.Type)
	case len(m.Vocab) == 0:
		return nil, fmt.Errorf("tokenizer: %s: empty vocabulary (model.vocab)", path)
	}
	if n := tj.Normalizer; n == nil || n.Type != "BertNormalizer" {
		typ := "null"
		if n != nil {
			typ = strconv.Quote(n.Type)
		}
		return nil, fmt.Errorf("tokenizer: %s: normalizer %s is not supported (want BertNormalizer)", path, typ)
	}
	if p := tj.PreTokenizer; p == nil || p.Type != "BertPreTokenizer" {
		typ := "null"
		if p != nil {
			typ = strconv.Quote(p.Type)
		}
		return nil, fmt.Errorf("tokenizer: %s: pre_tokenizer %s is not supported (want BertPreTokenizer)", path, typ)
	}
	// Every id must name one token, or decoding would be ambiguous.
	byID := make(map[int]string, len(m.Vocab))
	for tok, id := range m.Vocab {
		if id < 0 {
			return nil, fmt.Errorf("tokenizer: %s: token %q has negative id %d", path, tok, id)
		}
		if other, dup := byID[id]; dup {
			return nil, fmt.Errorf("tokenizer: %s: tokens %q and %q share id %d", path, other, tok, id)
		}
		byID[id] = tok
	}
	n := tj.Normalizer
	setBool(&c.clean, n.CleanText)
	setBool(&c.chinese, n.HandleChineseChars)
	setBool(&c.lower, n.Lowercase)
	c.strip = n.StripAccents
	if m.UnkToken != nil {
		c.unk = *m.UnkToken
	}
	if m.ContinuingSubwordPrefix != nil {
		c.prefix = *m.ContinuingSubwordPrefix
	}
	if m.MaxInputCharsPerWord != nil {
		c.maxChars = *m.MaxInputCharsPerWord
	}
	for _, a := range tj.AddedTokens {
		if a.ID == nil {
			return nil, fmt.Errorf("tokenizer: %s: added token %q has no id", path, a.Content)
		}
		c.added = append(c.added, addedToken{file: path, id: *a.ID, content: a.Content, special: a.Special})
	}
	return m.Vocab, nil
}

func setBool(dst *bool, v *bool) {
	if v != nil {
		*dst = *v
	}
}

// readJSONObject reads a JSON object file; a missing file gives nil, nil.
func readJSONObject(path string) (map[string]json.RawMessage, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, nil
		}
		return nil, fmt.Errorf("tokenizer: %w", err)
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("tokenizer: %s: malformed JSON: %w", path, err)
	}
	if m == nil {
		return nil, fmt.Errorf("tokenizer: %s: malformed JSON: not an object", path)
	}
	return m, nil
}

func isNull(raw json.RawMessage) bool {
	return bytes.Equal(bytes.TrimSpace(raw), []byte("null"))
}

// tokenContent decodes a special token given as a string, as an AddedToken
// object {"content": ...} or as null (no such token: "").
func tokenContent(raw json.RawMessage) (string, error) {
	if isNull(raw) {
		return "", nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err == nil {
		return s, nil
	}
	var obj struct {
		Content *string `json:"content"`
	}
	if err := json.Unmarshal(raw, &obj); err != nil || obj.Content == nil {
		return "", errors.New("want a string or an object with \"content\"")
	}
	return *obj.Content, nil
}

func tokenList(raw json.RawMessage) ([]string, error) {
	if isNull(raw) {
		return nil, nil
	}
	var items []json.RawMessage
	if err := json.Unmarshal(raw, &items); err != nil {
		return nil, errors.New("want a list")
	}
	out := make([]string, 0, len(items))
	for _, it := range items {
		s, err := tokenContent(it)
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, nil
}

// applySpecialTokens reads the *_token and additional_special_tokens keys
// shared by tokenizer_config.json and special_tokens_map.json.
func (c *config) applySpecialTokens(path string, m map[string]json.RawMessage) error {
	for _, k := range []struct {
		key string
		dst *string
	}{{"unk_token", &c.unk}, {"sep_token", &c.sep}, {"pad_token", &c.pad}, {"cls_token", &c.cls}, {"mask_token", &c.mask}} {
		raw, ok := m[k.key]
		if !ok {
			continue
		}
		s, err := tokenContent(raw)
		if err != nil {
			return fmt.Errorf("tokenizer: %s: %s: %w", path, k.key, err)
		}
		*k.dst = s
	}
	if raw, ok := m["additional_special_tokens"]; ok {
		l, err := tokenList(raw)
		if err != nil {
			return fmt.Errorf("tokenizer: %s: additional_special_tokens: %w", path, err)
		}
		c.additional = l
	}
	return nil
}

func (c *config) readTokenizerConfig(path string) error {
	m, err := readJSONObject(path)
	if m == nil {
		return err
	}
	bad := func(key string, err error) error {
		return fmt.Errorf("tokenizer: %s: %s: %w", path, key, err)
	}
	for _, k := range []struct {
		key string
		dst *bool
	}{{"do_lower_case", &c.lower}, {"tokenize_chinese_chars", &c.chinese}, {"clean_up_tokenization_spaces", &c.cleanup}} {
		if raw, ok := m[k.key]; ok {
			if err := json.Unmarshal(raw, k.dst); err != nil {
				return bad(k.key, err)
			}
		}
	}
	if raw, ok := m["strip_accents"]; ok {
		var b *bool
		if err := json.Unmarshal(raw, &b); err != nil {
			return bad("strip_accents", err)
		}
		c.strip = b
	}
	for _, key := range []string{"do_basic_tokenize", "split_special_tokens"} {
		raw, ok := m[key]
		if !ok || isNull(raw) {
			continue
		}
		var b bool
		if err := json.Unmarshal(raw, &b); err != nil {
			return bad(key, err)
		}
		if b != (key == "do_basic_tokenize") {
			return bad(key, fmt.Errorf("%v is not supported", b))
		}
	}
	if raw, ok := m["never_split"]; ok {
		if c.neverSplit, err = tokenList(raw); err != nil {
			return bad("never_split", err)
		}
	}
	if raw, ok := m["model_max_length"]; ok && !isNull(raw) {
		var f float64
		if err := json.Unmarshal(raw, &f); err != nil || f < 0 {
			return bad("model_max_length", fmt.Errorf("want a non-negative number, got %s", raw))
		}
		// HF writes int(1e30) (VERY_LARGE_INTEGER) for "no limit".
		if f < 1<<40 {
			c.modelMaxLength = int(f)
		}
	}
	if err := c.applySpecialTokens(path, m); err != nil {
		return err
	}
	if raw, ok := m["added_tokens_decoder"]; ok && !isNull(raw) {
		var dec map[string]struct {
			Content string `json:"content"`
			Special bool   `json:"special"`
		}
		if err := json.Unmarshal(raw, &dec); err != nil {
			return bad("added_tokens_decoder", err)
		}
		for k, v := range dec {
			id, err := strconv.Atoi(k)
			if err != nil {
				return bad("added_tokens_decoder", fmt.Errorf("id %q is not an integer", k))
			}
			c.added = append(c.added, addedToken{file: path, id: id, content: v.Content, special: v.Special})
		}
	}
	return nil
}

func (c *config) readSpecialTokensMap(path string) error {
	m, err := readJSONObject(path)
	if m == nil {
		return err
	}
	return c.applySpecialTokens(path, m)
}

// newTokenizer checks the configuration against the vocabulary and builds
// the sugarme WordPiece model.
func newTokenizer(vocab map[string]int, vocabFile string, c *config) (*Tokenizer, error) {
	ids := make(map[string]int, 4)
	for _, k := range []struct{ name, tok string }{
		{"cls_token", c.cls}, {"sep_token", c.sep}, {"pad_token", c.pad}, {"unk_token", c.unk},
	} {
		if k.tok == "" {
			return nil, fmt.Errorf("tokenizer: %s: no %s is configured", vocabFile, k.name)
		}
		id, ok := vocab[k.tok]
		if !ok {
			return nil, fmt.Errorf("tokenizer: %s: the vocabulary has no %s %q", vocabFile, k.name, k.tok)
		}
		ids[k.name] = id
	}
	if c.prefix == "" {
		return nil, fmt.Errorf("tokenizer: %s: empty continuing_subword_prefix", vocabFile)
	}
	if c.maxChars < 0 {
		return nil, fmt.Errorf("tokenizer: %s: negative max_input_chars_per_word %d", vocabFile, c.maxChars)
	}
	additional := append([]string(nil), c.additional...)
	for _, a := range c.added {
		id, ok := vocab[a.content]
		switch {
		case !ok:
			return nil, fmt.Errorf("tokenizer: %s: added token %q (id %d) is not in the vocabulary of %s; added tokens outside the vocabulary are not supported", a.file, a.content, a.id, vocabFile)
		case id != a.id:
			return nil, fmt.Errorf("tokenizer: %s: added token %q has id %d but the vocabulary of %s gives it %d", a.file, a.content, a.id, vocabFile, id)
		case !a.special:
			return nil, fmt.Errorf("tokenizer: %s: non-special added token %q is not supported", a.file, a.content)
		}
		additional = append(additional, a.content)
	}

	// all_special_tokens order: unk, sep, pad, cls, mask, additional.
	specials := []string{c.unk, c.sep, c.pad, c.cls}
	if _, ok := vocab[c.mask]; ok && c.mask != "" {
		specials = append(specials, c.mask)
	}
	for _, s := range additional {
		if _, ok := vocab[s]; !ok {
			return nil, fmt.Errorf("tokenizer: %s: additional special token %q is not in the vocabulary", vocabFile, s)
		}
		specials = append(specials, s)
	}
	strip := c.lower
	if c.strip != nil {
		strip = *c.strip
	}

	v := model.Vocab(vocab)
	wp := wordpiece.NewWordPieceBuilder().
		Vocab(&v).
		UnkToken(c.unk).
		ContinuingSubwordPrefix(c.prefix).
		MaxInputCharsPerWord(c.maxChars).
		Build()

	t := &Tokenizer{
		text:           newTextNormalizer(c.lower, strip, c.chinese, c.clean, specials, c.neverSplit),
		model:          wp,
		vocab:          wp.GetVocab(),
		maxChars:       c.maxChars,
		joinPrefix:     " " + c.prefix,
		unkToken:       c.unk,
		cls:            ids["cls_token"],
		sep:            ids["sep_token"],
		pad:            ids["pad_token"],
		unk:            ids["unk_token"],
		specialIDs:     make(map[int]bool, len(specials)),
		cleanup:        c.cleanup,
		modelMaxLength: c.modelMaxLength,
	}
	for _, s := range specials {
		t.specialIDs[vocab[s]] = true
	}
	return t, nil
}
