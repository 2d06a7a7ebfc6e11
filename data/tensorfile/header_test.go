package tensorfile

import (
	"encoding/binary"
	"strings"
	"testing"
)

// rawHeader builds a file from a literal header and data.
func rawHeader(hdr string, data []byte) []byte {
	for len(hdr)%8 != 0 {
		hdr += " "
	}
	out := make([]byte, 8, 8+len(hdr)+len(data))
	binary.LittleEndian.PutUint64(out, uint64(len(hdr)))
	return append(append(out, hdr...), data...)
}

// TestDuplicatedKeyIsReportedUnderItsOwnName checks that a tensor named
// twice in the header is the one the error names (the parser alone blames
// the next tensor, whose offsets no longer line up).
func TestDuplicatedKeyIsReportedUnderItsOwnName(t *testing.T) {
	for _, tc := range []struct {
		name, hdr, want string
	}{
		{"tensor", `{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}}`, `tensor "a" appears more than once`},
		{"metadata", `{"__metadata__":{"format":"pt"},"__metadata__":{"format":"pt"},"a":{"dtype":"F32","shape":[3],"data_offsets":[0,12]}}`, `__metadata__ appears more than once`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("dup.safetensors", rawHeader(tc.hdr, make([]byte, 12)))
			if err == nil {
				t.Fatal("parsed a header with a duplicated key")
			}
			if !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "dup.safetensors") {
				t.Fatalf("error %q does not say %q and name the file", err, tc.want)
			}
			if strings.Contains(err.Error(), `"b"`) {
				t.Fatalf("error %q blames another tensor", err)
			}
		})
	}
}

// TestDistinctKeysAreNotDuplicates checks that the duplicate scan does not
// fire on nested keys that repeat across tensors (dtype, shape, ...).
func TestDistinctKeysAreNotDuplicates(t *testing.T) {
	hdr := `{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}`
	if _, err := Parse("ok.safetensors", rawHeader(hdr, make([]byte, 8))); err != nil {
		t.Fatal(err)
	}
}
