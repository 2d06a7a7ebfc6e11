package tokenizer

import (
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// This file reproduces the text side of HuggingFace's slow BertTokenizer
// (transformers 4.36): PreTrainedTokenizer.tokenize (lowercasing outside
// special tokens, splitting on special tokens) and BasicTokenizer (clean text,
// CJK splitting, NFC, whitespace split, lowercase, accent stripping,
// punctuation split). The word pieces it produces are handed to the
// WordPiece model of github.com/sugarme/tokenizer.
//
// sugarme's own BertNormalizer/BertPreTokenizer are not used because they
// differ from HF on real input: accent stripping is broken (accented words
// become [UNK]), only ' ', \t, \n, \r count as whitespace (NBSP and other Zs
// separators do not split words, and the whitespace mapping only happens next
// to a removed control character), there is no NFC step, private-use and
// unassigned code points are kept (HF drops every category C* character),
// and literal special tokens in the text are split as punctuation.

// pieceKind says what a caller must do with a piece produced by walk.
type pieceKind uint8

const (
	// pieceWord is a basic token. HF's BertTokenizer._tokenize looks it up
	// whole if it is in the configured never_split list, else runs it
	// through WordPiece.
	pieceWord pieceKind = iota
	// pieceSpecial is a special token found verbatim in the text
	// (HF's added-token trie): its id is its vocabulary entry.
	pieceSpecial
)

// textNormalizer holds the settings of HF's BasicTokenizer plus the special
// tokens. It is immutable after construction.
type textNormalizer struct {
	lower        bool // do_lower_case
	stripAccents bool // strip_accents, or (strip_accents unset and do_lower_case)
	chinese      bool // tokenize_chinese_chars
	clean        bool // clean_text (always true for the slow tokenizer)

	// specials are the special tokens in HF's all_special_tokens order
	// (unk, sep, pad, cls, mask, additional); only tokens present in the
	// vocabulary are kept.
	specials  []string
	firstByte [256]bool // first bytes of specials

	// neverSplit is the configured never_split list: such a whitespace
	// token is neither lowercased nor split and is looked up whole.
	neverSplit map[string]bool
	// basicNeverSplit is neverSplit plus the special tokens: HF passes
	// all_special_tokens as never_split to BasicTokenizer.tokenize.
	basicNeverSplit map[string]bool
	// nsMin and nsMax bound the byte lengths in basicNeverSplit so that
	// most words skip the map lookup.
	nsMin, nsMax int
}

func newTextNormalizer(lower, strip, chinese, clean bool, specials, neverSplit []string) textNormalizer {
	n := textNormalizer{lower: lower, stripAccents: strip, chinese: chinese, clean: clean}
	seen := make(map[string]bool, len(specials))
	for _, s := range specials {
		if s == "" || seen[s] {
			continue
		}
		seen[s] = true
		n.specials = append(n.specials, s)
		n.firstByte[s[0]] = true
	}
	n.basicNeverSplit = make(map[string]bool, len(n.specials)+len(neverSplit))
	for _, s := range n.specials {
		n.basicNeverSplit[s] = true
	}
	if len(neverSplit) > 0 {
		n.neverSplit = make(map[string]bool, len(neverSplit))
		for _, s := range neverSplit {
			n.neverSplit[s] = true
			n.basicNeverSplit[s] = true
		}
	}
	n.nsMin = -1
	for s := range n.basicNeverSplit {
		if n.nsMin < 0 || len(s) < n.nsMin {
			n.nsMin = len(s)
		}
		if len(s) > n.nsMax {
			n.nsMax = len(s)
		}
	}
	return n
}

// isNeverSplit reports whether w is a special token or a never_split token.
func (n *textNormalizer) isNeverSplit(w string) bool {
	return n.nsMin >= 0 && len(w) >= n.nsMin && len(w) <= n.nsMax && n.basicNeverSplit[w]
}

// walk splits text into pieces exactly as HF's BertTokenizer.tokenize does
// before WordPiece and calls emit for each of them in order.
func (n *textNormalizer) walk(text string, emit func(piece string, kind pieceKind)) {
	if n.lower {
		text = n.lowerOutsideSpecials(text)
	}
	for len(text) > 0 {
		pos, tok := n.nextSpecial(text)
		if pos < 0 {
			n.basic(text, emit)
			return
		}
		if pos > 0 {
			n.basic(text[:pos], emit)
		}
		emit(tok, pieceSpecial)
		text = text[pos+len(tok):]
	}
}

// lowerOutsideSpecials reproduces
//
//	re.sub(r"(SPECIALS)|(.+?)", lambda m: m.groups()[0] or m.groups()[1].lower(), text)
//
// i.e. every character is lowercased on its own except inside a special
// token (alternatives tried in all_special_tokens order). It returns text
// itself, without allocating, when nothing changes.
func (n *textNormalizer) lowerOutsideSpecials(text string) string {
	var b strings.Builder // empty until the first change
	changed := false
	begin := func(i int) {
		changed = true
		b.Grow(len(text) + 8)
		b.WriteString(text[:i])
	}
	for i := 0; i < len(text); {
		c := text[i]
		if n.firstByte[c] {
			if tok := n.firstSpecialAt(text[i:]); tok != "" {
				if changed {
					b.WriteString(tok)
				}
				i += len(tok)
				continue
			}
		}
		if c < utf8.RuneSelf {
			if 'A' <= c && c <= 'Z' {
				if !changed {
					begin(i)
				}
				c += 'a' - 'A'
			}
			if changed {
				b.WriteByte(c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(text[i:])
		if r == 'İ' || (r != utf8.RuneError && unicode.ToLower(r) != r) {
			if !changed {
				begin(i)
			}
			writePyLower(&b, r)
		} else if changed {
			b.WriteString(text[i : i+size])
		}
		i += size
	}
	if !changed {
		return text
	}
	return b.String()
}

// writePyLower writes Python's str.lower() of a single character. The only
// unconditional multi-character lowercase mapping in Unicode is U+0130.
func writePyLower(b *strings.Builder, r rune) {
	if r == 'İ' {
		b.WriteString("i\u0307")
		return
	}
	b.WriteRune(unicode.ToLower(r))
}

// firstSpecialAt returns the first special token (in all_special_tokens
// order, like a regex alternation) that s starts with, or "".
func (n *textNormalizer) firstSpecialAt(s string) string {
	for _, tok := range n.specials {
		if strings.HasPrefix(s, tok) {
			return tok
		}
	}
	return ""
}

// nextSpecial finds the leftmost special token in s (the longest one if
// several start there), like HF's Trie.split. It returns -1 if none.
func (n *textNormalizer) nextSpecial(s string) (int, string) {
	if len(n.specials) == 0 {
		return -1, ""
	}
	for i := 0; i < len(s); i++ {
		if !n.firstByte[s[i]] {
			continue
		}
		best := ""
		for _, tok := range n.specials {
			if len(tok) > len(best) && strings.HasPrefix(s[i:], tok) {
				best = tok
			}
		}
		if best != "" {
			return i, best
		}
	}
	return -1, ""
}

// basic is HF's BasicTokenizer.tokenize on one segment that contains no
// special token.
func (n *textNormalizer) basic(seg string, emit func(string, pieceKind)) {
	s := seg
	if n.needsCleaning(seg) {
		s = n.cleanCopy(seg)
	}
	// whitespace_tokenize: str.split() on Python whitespace.
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if asciiSpace(c) {
				i++
				continue
			}
		} else if r, size := utf8.DecodeRuneInString(s[i:]); isPySpace(r) {
			i += size
			continue
		}
		j, ascii := i, true
		for j < len(s) {
			c := s[j]
			if c < utf8.RuneSelf {
				if asciiSpace(c) {
					break
				}
				j++
				continue
			}
			r, size := utf8.DecodeRuneInString(s[j:])
			if isPySpace(r) {
				break
			}
			ascii = false
			j += size
		}
		n.word(s[i:j], ascii, emit)
		i = j
	}
}

// needsCleaning reports whether seg holds a character that _clean_text
// removes or that _tokenize_chinese_chars surrounds with spaces (or invalid
// UTF-8, which Python text cannot hold; it is treated as U+FFFD). Whitespace
// needs no mapping: the whitespace split below treats it as a separator.
func (n *textNormalizer) needsCleaning(seg string) bool {
	for i := 0; i < len(seg); {
		c := seg[i]
		if c < utf8.RuneSelf {
			if n.clean && asciiControl(c) {
				return true
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(seg[i:])
		if r == utf8.RuneError && size == 1 {
			return true
		}
		if n.clean && (r == utf8.RuneError || isControl(r)) {
			return true
		}
		if n.chinese && isCJK(r) {
			return true
		}
		i += size
	}
	return false
}

// cleanCopy applies _clean_text (when enabled) and _tokenize_chinese_chars.
func (n *textNormalizer) cleanCopy(seg string) string {
	var b strings.Builder
	b.Grow(len(seg) + 16)
	for _, r := range seg {
		if n.clean {
			if r == 0 || r == utf8.RuneError || isControl(r) {
				continue
			}
			if isBertWhitespace(r) {
				b.WriteByte(' ')
				continue
			}
		}
		if n.chinese && isCJK(r) {
			b.WriteByte(' ')
			b.WriteRune(r)
			b.WriteByte(' ')
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

// word processes one whitespace-separated token: NFC (HF normalises the whole
// text, which is the same as normalising each word since no canonical
// composition spans a whitespace character), never_split, lowercase, accent
// stripping and the punctuation split.
func (n *textNormalizer) word(w string, ascii bool, emit func(string, pieceKind)) {
	if !ascii && !norm.NFC.IsNormalString(w) {
		w = norm.NFC.String(w)
	}
	if !n.isNeverSplit(w) {
		// ASCII text was already lowercased by lowerOutsideSpecials and
		// has no accents; Python's lower() is idempotent.
		if !ascii {
			if n.lower {
				w = pyLower(w)
			}
			if n.stripAccents {
				w = stripAccents(w)
			}
		}
		if !n.isNeverSplit(w) {
			n.splitPunct(w, emit)
			return
		}
	}
	emit(w, pieceWord)
}

// splitPunct is _run_split_on_punc: every punctuation character becomes a
// piece of its own.
func (n *textNormalizer) splitPunct(w string, emit func(string, pieceKind)) {
	start := 0
	for i := 0; i < len(w); {
		c := w[i]
		size := 1
		var punct bool
		if c < utf8.RuneSelf {
			punct = asciiPunct(c)
		} else {
			var r rune
			r, size = utf8.DecodeRuneInString(w[i:])
			punct = unicode.IsPunct(r)
		}
		if punct {
			if start < i {
				emit(w[start:i], pieceWord)
			}
			emit(w[i:i+size], pieceWord)
			start = i + size
		}
		i += size
	}
	if start < len(w) {
		emit(w[start:], pieceWord)
	}
}

// pyLower is Python's str.lower() for a string whose capital sigmas have
// already been lowercased one character at a time (so the Final_Sigma rule
// never applies).
func pyLower(s string) string {
	for i, r := range s {
		if r == 'İ' || unicode.ToLower(r) != r {
			var b strings.Builder
			b.Grow(len(s) + 4)
			b.WriteString(s[:i])
			for _, r := range s[i:] {
				writePyLower(&b, r)
			}
			return b.String()
		}
	}
	return s
}

// stripAccents is _run_strip_accents: NFD, then drop nonspacing marks (Mn).
func stripAccents(s string) string {
	d := norm.NFD.String(s)
	for i, r := range d {
		if unicode.Is(unicode.Mn, r) {
			var b strings.Builder
			b.Grow(len(d))
			b.WriteString(d[:i])
			for _, r := range d[i:] {
				if !unicode.Is(unicode.Mn, r) {
					b.WriteRune(r)
				}
			}
			return b.String()
		}
	}
	return d
}

// asciiSpace is Python's str.isspace for an ASCII byte.
func asciiSpace(c byte) bool {
	return c == ' ' || (c >= '\t' && c <= '\r') || (c >= 0x1c && c <= 0x1f)
}

// asciiControl is _is_control for an ASCII byte (NUL included).
func asciiControl(c byte) bool {
	return (c < 0x20 && c != '\t' && c != '\n' && c != '\r') || c == 0x7f
}

// asciiPunct is _is_punctuation for an ASCII byte: all non-alphanumeric
// printable ASCII.
func asciiPunct(c byte) bool {
	return (c >= 33 && c <= 47) || (c >= 58 && c <= 64) || (c >= 91 && c <= 96) || (c >= 123 && c <= 126)
}

// isPySpace is Python's str.isspace for one character: White_Space plus the
// information separators U+001C..U+001F.
func isPySpace(r rune) bool {
	return unicode.IsSpace(r) || (r >= 0x1c && r <= 0x1f)
}

// isBertWhitespace is HF's _is_whitespace.
func isBertWhitespace(r rune) bool {
	return r == ' ' || r == '\t' || r == '\n' || r == '\r' || unicode.Is(unicode.Zs, r)
}

// isControl is HF's _is_control: category C* (Cc, Cf, Co, Cs and unassigned
// Cn), except tab, newline and carriage return.
func isControl(r rune) bool {
	if r == '\t' || r == '\n' || r == '\r' {
		return false
	}
	if r < utf8.RuneSelf {
		return asciiControl(byte(r))
	}
	if unicode.Is(unicode.C, r) {
		return true
	}
	return !assigned(r)
}

// assigned reports whether r has a general category other than Cn.
func assigned(r rune) bool {
	return unicode.In(r, unicode.L, unicode.M, unicode.N, unicode.P, unicode.S, unicode.Z, unicode.C)
}

// isCJK is HF's _is_chinese_char (CJK Unified Ideographs and extensions,
// compatibility ideographs).
func isCJK(r rune) bool {
	return (r >= 0x4E00 && r <= 0x9FFF) ||
		(r >= 0x3400 && r <= 0x4DBF) ||
		(r >= 0x20000 && r <= 0x2A6DF) ||
		(r >= 0x2A700 && r <= 0x2B73F) ||
		(r >= 0x2B740 && r <= 0x2B81F) ||
		(r >= 0x2B820 && r <= 0x2CEAF) ||
		(r >= 0xF900 && r <= 0xFAFF) ||
		(r >= 0x2F800 && r <= 0x2FA1F)
}
