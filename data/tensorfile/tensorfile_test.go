package tensorfile

import (
	"encoding/binary"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// rawFile builds a safetensors file by hand with one tensor of the given
// dtype, shape and raw little-endian bytes.
func rawFile(dtype string, shape []int, data []byte) []byte {
	hdr := fmt.Sprintf(`{"t":{"dtype":"%s","shape":%s,"data_offsets":[0,%d]}}`, dtype, strings.ReplaceAll(fmt.Sprint(shape), " ", ","), len(data))
	for len(hdr)%8 != 0 {
		hdr += " "
	}
	out := make([]byte, 8, 8+len(hdr)+len(data))
	binary.LittleEndian.PutUint64(out, uint64(len(hdr)))
	return append(append(out, hdr...), data...)
}

// TestHalfPrecisionIsWidenedToFloat32 checks F16 and BF16 decoding on
// values whose float32 form is known exactly.
func TestHalfPrecisionIsWidenedToFloat32(t *testing.T) {
	want := []float32{1, -2, 0.5, 65504, 0, float32(math.Inf(1)), 5.960464477539063e-08} // last: smallest F16 subnormal
	f16 := []uint16{0x3c00, 0xc000, 0x3800, 0x7bff, 0x0000, 0x7c00, 0x0001}
	b := make([]byte, 2*len(f16))
	for i, h := range f16 {
		binary.LittleEndian.PutUint16(b[2*i:], h)
	}
	f, err := Parse("f16.safetensors", rawFile("F16", []int{len(f16)}, b))
	if err != nil {
		t.Fatal(err)
	}
	got, _, err := f.F32("t")
	if err != nil {
		t.Fatal(err)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("F16 %#04x: got %g, want %g", f16[i], got[i], want[i])
		}
	}
	bf := []float32{1, -3.5, 1e30}
	b = make([]byte, 2*len(bf))
	for i, v := range bf {
		binary.LittleEndian.PutUint16(b[2*i:], uint16(math.Float32bits(v)>>16))
	}
	f, err = Parse("bf16.safetensors", rawFile("BF16", []int{3}, b))
	if err != nil {
		t.Fatal(err)
	}
	got, _, _ = f.F32("t")
	for i, v := range bf {
		if w := math.Float32frombits(math.Float32bits(v) &^ 0xffff); got[i] != w {
			t.Errorf("BF16: got %g, want %g", got[i], w)
		}
	}
}

func TestWriteRoundTripsIncludingScalars(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.safetensors")
	in := map[string]Tensor{
		"loss": {Shape: []int{}, F32: []float32{1.5}},
		"w":    {Shape: []int{2, 2}, F32: []float32{1, 2, 3, 4}},
		"ids":  {Shape: []int{3}, I64: []int64{-100, 0, 7}},
	}
	if err := Write(path, in, map[string]string{"format": "pt"}); err != nil {
		t.Fatal(err)
	}
	f, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if f.Metadata["format"] != "pt" {
		t.Errorf("metadata %v", f.Metadata)
	}
	for name, want := range in {
		got, err := f.Tensor(name)
		if err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("%s: got %+v, want %+v", name, got, want)
		}
	}
	if _, err := f.Tensor("nope"); err == nil || !strings.Contains(err.Error(), path) {
		t.Errorf("missing tensor error %v should name the file", err)
	}
	if _, _, err := f.I64("w"); err == nil {
		t.Error("reading a float tensor as integers should fail")
	}
	ents, _ := os.ReadDir(filepath.Dir(path))
	if len(ents) != 1 {
		t.Errorf("temporary files left behind: %v", ents)
	}
}

func TestParseRejectsCorruptData(t *testing.T) {
	good := rawFile("F32", []int{2}, make([]byte, 8))
	for name, b := range map[string][]byte{
		"empty":            nil,
		"short":            good[:4],
		"truncated header": good[:12],
		"truncated data":   good[:len(good)-4],
		"not json":         append([]byte{4, 0, 0, 0, 0, 0, 0, 0}, "{{{{"...),
	} {
		if _, err := Parse("bad.safetensors", b); err == nil || !strings.Contains(err.Error(), "bad.safetensors") {
			t.Errorf("%s: want an error naming the file, got %v", name, err)
		}
	}
}
