package data

import (
	"bytes"
	"strings"
	"testing"
)

// TestCaptionFilesMustBeUTF8 checks that a caption file with a byte that is
// not UTF-8 (a Latin-1 "é" here) is refused with its file and line, in every
// format, instead of being mangled (JSON) or passed on (CSV).
func TestCaptionFilesMustBeUTF8(t *testing.T) {
	for _, tc := range []struct {
		name, body, want string
	}{
		{"a.csv", "file_name,text\na.jpg,caf\xe9 on a street\n", "a.csv:2: field 2 is not UTF-8"},
		{"m.jsonl", "{\"file_name\": \"a.jpg\", \"text\": \"ok\"}\n{\"file_name\": \"b.jpg\", \"text\": \"caf\xe9\"}\n", "m.jsonl:2: not UTF-8"},
		{"coco.json", "{\"images\": [{\"id\": 1, \"file_name\": \"a.jpg\"}],\n \"annotations\": [{\"image_id\": 1, \"caption\": \"caf\xe9\"}]}", "coco.json:2:49: not UTF-8 (byte 0xe9)"},
		{"res.json", "[{\"image_id\": 1, \"caption\": \"caf\xe9\"}]", "res.json:1:33: not UTF-8"},
		{"k.json", "{\"images\": [{\"filename\": \"caf\xe9.jpg\", \"split\": \"test\", \"sentences\": [{\"raw\": \"x\"}]}]}", "k.json:1:30: not UTF-8"},
	} {
		_, err := ParseCaptions(tc.name, []byte(tc.body), "")
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: want an error containing %q, got %v", tc.name, tc.want, err)
		}
	}
	if _, err := ParseCaptionsCSV("ok.csv", bytes.NewReader([]byte("file_name,text\na.jpg,café\n"))); err != nil {
		t.Errorf("valid UTF-8 refused: %v", err)
	}
}
