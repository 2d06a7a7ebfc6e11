package eval

import (
	"unicode"
	"unicode/utf8"
)

// pyIsSpace reports whether Python's str.split() treats r as white space:
// Go's unicode.IsSpace plus the ASCII information separators U+001C..U+001F.
func pyIsSpace(r rune) bool {
	if r < utf8.RuneSelf {
		switch r {
		case ' ', '\t', '\n', '\v', '\f', '\r', 0x1c, 0x1d, 0x1e, 0x1f:
			return true
		}
		return false
	}
	return unicode.IsSpace(r)
}

// appendPyFields appends the words of s, split like Python's s.split(), to
// dst. The words share s's memory.
func appendPyFields(dst []string, s string) []string {
	start := -1
	for i := 0; i < len(s); {
		r, size := rune(s[i]), 1
		if r >= utf8.RuneSelf {
			r, size = utf8.DecodeRuneInString(s[i:])
		}
		if pyIsSpace(r) {
			if start >= 0 {
				dst = append(dst, s[start:i])
				start = -1
			}
		} else if start < 0 {
			start = i
		}
		i += size
	}
	if start >= 0 {
		dst = append(dst, s[start:])
	}
	return dst
}
