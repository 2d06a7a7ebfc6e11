// Package tokenizer is the GIT text tokenizer: HuggingFace's BertTokenizer
// (uncased WordPiece, transformers 4.36) built on github.com/sugarme/tokenizer.
//
// Encode(text) gives exactly GitProcessor(text=text)["input_ids"], i.e.
// [CLS] pieces [SEP]; Decode reproduces tokenizer.decode. The WordPiece model
// (vocabulary, greedy longest-match-first with "##" continuations, [UNK] for
// words that cannot be split or are longer than max_input_chars_per_word) is
// sugarme's wordpiece.WordPiece. The text normalisation and pre-tokenisation
// in front of it are done here (basic.go), because sugarme's BERT normaliser
// and pre-tokeniser differ from HF on accents, non-ASCII whitespace, control
// and private-use characters, NFC and literal special tokens; decoding is done
// here too because sugarme's WordPiece decoder applies its clean-up per token
// and rewrites " do not" to " don't", which HF does not.
//
// A Tokenizer is immutable after Load and safe for concurrent use.
package tokenizer

import (
	"strings"
	"unicode/utf8"

	"github.com/sugarme/tokenizer/model/wordpiece"
)

// Tokenizer is a BERT WordPiece tokenizer loaded from a checkpoint directory.
type Tokenizer struct {
	text  textNormalizer
	model wordpiece.WordPiece
	vocab map[string]int // the model's vocabulary map (read only)

	maxChars   int    // max_input_chars_per_word
	joinPrefix string // " " + continuing_subword_prefix, removed when decoding
	unkToken   string

	cls, sep, pad, unk int
	specialIDs         map[int]bool // all_special_ids
	cleanup            bool         // clean_up_tokenization_spaces
	modelMaxLength     int          // 0 = no limit known
}

// CLS is the id of the [CLS] token (GIT's BOS).
func (t *Tokenizer) CLS() int { return t.cls }

// SEP is the id of the [SEP] token (GIT's EOS).
func (t *Tokenizer) SEP() int { return t.sep }

// PAD is the id of the [PAD] token.
func (t *Tokenizer) PAD() int { return t.pad }

// UNK is the id of the [UNK] token.
func (t *Tokenizer) UNK() int { return t.unk }

// VocabSize is the number of distinct tokens in the vocabulary (HF's
// vocab_size). For vocab.txt files without duplicate lines, such as BERT's,
// it is the number of lines.
func (t *Tokenizer) VocabSize() int { return len(t.vocab) }

// ModelMaxLength is tokenizer_config.json's model_max_length, or 0 when the
// checkpoint sets none. Encode does not truncate to it (nor does HF).
func (t *Tokenizer) ModelMaxLength() int { return t.modelMaxLength }

// Encode tokenizes text as GitProcessor(text=text) does: [CLS] pieces [SEP],
// without truncation.
func (t *Tokenizer) Encode(text string) []int {
	ids := make([]int, 1, estimateIDs(text))
	ids[0] = t.cls
	ids = t.appendIDs(ids, text)
	return append(ids, t.sep)
}

// EncodePrompt is [CLS] followed by the pieces of text, without [SEP]: the
// prompt for conditional generation (e.g. "a photo of", or a VQA question).
func (t *Tokenizer) EncodePrompt(text string) []int {
	ids := make([]int, 1, estimateIDs(text))
	ids[0] = t.cls
	return t.appendIDs(ids, text)
}

// EncodeTruncated is HF's tokenizer(text, truncation=True, max_length=maxLen):
// [CLS], at most maxLen-2 pieces, [SEP]. Like HF, a maxLen of 2 or less
// cannot be honoured and the full sequence is returned (HF logs an error).
func (t *Tokenizer) EncodeTruncated(text string, maxLen int) []int {
	ids := t.Encode(text)
	if len(ids) > maxLen && maxLen > 2 {
		ids[maxLen-1] = t.sep
		ids = ids[:maxLen:maxLen]
	}
	return ids
}

// Tokens returns the token strings of Encode(text), [CLS] and [SEP]
// included (HF's convert_ids_to_tokens(input_ids)).
func (t *Tokenizer) Tokens(text string) []string {
	ids := t.Encode(text)
	toks := make([]string, len(ids))
	for i, id := range ids {
		toks[i] = t.idToToken(id)
	}
	return toks
}

// Decode is HF's tokenizer.decode(ids, skip_special_tokens=skipSpecial):
// tokens joined with spaces, " ##" removed, surrounding whitespace trimmed,
// then clean_up_tokenization (when the checkpoint enables it, the default).
// Ids outside the vocabulary decode as [UNK] and, as in HF, are not skipped.
func (t *Tokenizer) Decode(ids []int, skipSpecial bool) string {
	var b strings.Builder
	first := true
	for _, id := range ids {
		if skipSpecial && t.specialIDs[id] {
			continue
		}
		if !first {
			b.WriteByte(' ')
		}
		first = false
		b.WriteString(t.idToToken(id))
	}
	s := strings.ReplaceAll(b.String(), t.joinPrefix, "")
	s = strings.TrimFunc(s, isPySpace)
	if t.cleanup {
		s = cleanUpTokenization(s)
	}
	return s
}

// PadBatch right-pads every sequence with padID to the length of the longest
// one and returns the padded ids and the attention mask (1 for tokens, 0 for
// padding), as HF's padding=True does. The input is not modified.
func PadBatch(seqs [][]int, padID int) (ids [][]int, mask [][]int) {
	width := 0
	for _, s := range seqs {
		width = max(width, len(s))
	}
	ids = make([][]int, len(seqs))
	mask = make([][]int, len(seqs))
	idBuf := make([]int, len(seqs)*width)
	maskBuf := make([]int, len(seqs)*width)
	for i, s := range seqs {
		row := idBuf[i*width : (i+1)*width : (i+1)*width]
		m := maskBuf[i*width : (i+1)*width : (i+1)*width]
		copy(row, s)
		for j := range row {
			if j < len(s) {
				m[j] = 1
			} else {
				row[j] = padID
			}
		}
		ids[i], mask[i] = row, m
	}
	return ids, mask
}

// cleanUpTokenization is HF's PreTrainedTokenizerBase.clean_up_tokenization:
// the same replacements in the same order (strings.ReplaceAll returns its
// input without allocating when there is nothing to replace).
func cleanUpTokenization(s string) string {
	s = strings.ReplaceAll(s, " .", ".")
	s = strings.ReplaceAll(s, " ?", "?")
	s = strings.ReplaceAll(s, " !", "!")
	s = strings.ReplaceAll(s, " ,", ",")
	s = strings.ReplaceAll(s, " ' ", "'")
	s = strings.ReplaceAll(s, " n't", "n't")
	s = strings.ReplaceAll(s, " 'm", "'m")
	s = strings.ReplaceAll(s, " 's", "'s")
	s = strings.ReplaceAll(s, " 've", "'ve")
	return strings.ReplaceAll(s, " 're", "'re")
}

// estimateIDs guesses the capacity of an encoding so that most captions need
// a single allocation.
func estimateIDs(text string) int {
	return len(text)/3 + 4
}

// idToToken is HF's convert_ids_to_tokens for one id: [UNK] when unknown.
func (t *Tokenizer) idToToken(id int) string {
	if tok, ok := t.model.IdToToken(id); ok {
		return tok
	}
	return t.unkToken
}

// appendIDs appends the ids of text's pieces (no [CLS]/[SEP]) to dst.
func (t *Tokenizer) appendIDs(dst []int, text string) []int {
	t.text.walk(text, func(piece string, kind pieceKind) {
		if kind == pieceSpecial {
			dst = append(dst, t.vocab[piece])
			return
		}
		if t.text.neverSplit != nil && t.text.neverSplit[piece] {
			// BertTokenizer._tokenize keeps never_split tokens whole.
			if id, ok := t.vocab[piece]; ok {
				dst = append(dst, id)
			} else {
				dst = append(dst, t.unk)
			}
			return
		}
		dst = t.appendWordPiece(dst, piece)
	})
	return dst
}

// appendWordPiece runs one basic token through the WordPiece model.
func (t *Tokenizer) appendWordPiece(dst []int, w string) []int {
	// HF first replaces a word longer than max_input_chars_per_word
	// (counted in characters) by [UNK], even when it is in the vocabulary.
	if len(w) > t.maxChars && utf8.RuneCountInString(w) > t.maxChars {
		return append(dst, t.unk)
	}
	// A word that is itself in the vocabulary is the first candidate of the
	// greedy longest match, so the answer is its id; looking it up here
	// spares the model's per-candidate allocations for the common case.
	if id, ok := t.vocab[w]; ok {
		return append(dst, id)
	}
	toks, err := t.model.Tokenize(w)
	if err != nil || len(toks) == 0 {
		// Tokenize fails only without an [UNK] entry, which Load rejects.
		return append(dst, t.unk)
	}
	for _, tk := range toks {
		dst = append(dst, tk.Id)
	}
	return dst
}
