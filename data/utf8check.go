package data

import (
	"bytes"
	"fmt"
	"unicode/utf8"
)

// checkUTF8 reports the first byte of b that is not UTF-8, as name:line:col.
// Caption files must be UTF-8 (as HF datasets and the COCO tools read
// them): encoding/json would silently turn such bytes into U+FFFD, and
// CSV would pass them on to the tokenizer, so a Latin-1 file would train
// or score on mangled text without a word.
func checkUTF8(name string, b []byte) error {
	if utf8.Valid(b) {
		return nil
	}
	off := 0
	for off < len(b) {
		r, size := utf8.DecodeRune(b[off:])
		if r == utf8.RuneError && size <= 1 {
			break
		}
		off += size
	}
	line := 1 + bytes.Count(b[:off], []byte{'\n'})
	col := off - bytes.LastIndexByte(b[:off], '\n')
	return fmt.Errorf("%s:%d:%d: not UTF-8 (byte 0x%02x); caption files must be UTF-8", name, line, col, b[off])
}
