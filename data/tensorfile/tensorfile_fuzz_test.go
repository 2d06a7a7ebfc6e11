package tensorfile

import (
	"bytes"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/gitcap/gitcap/data/fixtures"
)

// smallFixture rewrites the fixture checkpoint's smallest tensors (and an
// integer tensor) as a few-hundred-byte file, so that mutations of a real
// HF-written header stay fast to fuzz.
func smallFixture(f *testing.F) []byte {
	src, err := Open(fixtures.Path(f, "git-tiny", "model.safetensors"))
	if err != nil {
		f.Fatal(err)
	}
	ts := map[string]Tensor{}
	for _, n := range src.Names() {
		if sh, _ := src.Shape(n); len(sh) == 1 && sh[0] <= 32 && len(ts) < 3 {
			if ts[n], err = src.Tensor(n); err != nil {
				f.Fatal(err)
			}
		}
	}
	ts["ids"] = Tensor{Shape: []int{2, 2}, I64: []int64{101, 7, -1, 102}}
	ts["scalar"] = Tensor{Shape: []int{}, F32: []float32{1.5}}
	path := filepath.Join(f.TempDir(), "small.safetensors")
	if err := Write(path, ts, src.Metadata); err != nil {
		f.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		f.Fatal(err)
	}
	return b
}

// FuzzParse checks the safetensors header and tensor reader: no panic; an
// error names the file; every tensor of a parsed file either reads with as
// many values as its shape says or gives an error naming the file and the
// tensor; and what was read survives Write and Parse bit for bit.
func FuzzParse(f *testing.F) {
	small := smallFixture(f)
	f.Add(small)
	f.Add(small[:len(small)-3])
	f.Add(small[:40])
	f.Add(rawFile("F16", []int{2}, []byte{0, 0x7c, 1, 0x7e}))
	f.Add(rawFile("BF16", []int{1}, []byte{0xc0, 0x7f}))
	f.Add(rawFile("F64", []int{1}, make([]byte, 8)))
	f.Add(rawFile("I8", []int{3}, []byte{1, 2, 255}))
	f.Add(rawFile("BOOL", []int{0}, nil))
	f.Fuzz(func(t *testing.T, b []byte) {
		const name = "fuzz.safetensors"
		file, err := Parse(name, b)
		if err != nil {
			if !strings.Contains(err.Error(), name) {
				t.Fatalf("error does not name the file: %v", err)
			}
			return
		}
		read := map[string]Tensor{}
		for _, n := range file.Names() {
			if !file.Has(n) {
				t.Fatalf("Names lists %q but Has says no", n)
			}
			shape, err := file.Shape(n)
			if err != nil {
				t.Fatal(err)
			}
			tt, err := file.Tensor(n)
			if err != nil {
				if !strings.Contains(err.Error(), name) || !strings.Contains(err.Error(), n) {
					t.Fatalf("tensor error does not name the file and tensor %q: %v", n, err)
				}
				continue
			}
			if !slices.Equal(tt.Shape, shape) {
				t.Fatalf("%s: Tensor shape %v, Shape %v", n, tt.Shape, shape)
			}
			if got := len(tt.F32) + len(tt.I64); got != tt.Len() || (tt.F32 == nil) == (tt.I64 == nil) && tt.Len() > 0 {
				t.Fatalf("%s: %d values (F32 %v, I64 %v) for shape %v", n, got, tt.F32 != nil, tt.I64 != nil, shape)
			}
			read[n] = tt
		}
		if len(read) == 0 {
			return
		}
		var out bytes.Buffer
		path := filepath.Join(fixtures.ScratchDir(t), "rt.safetensors")
		if err := Write(path, read, file.Metadata); err != nil {
			t.Fatalf("writing what was read: %v", err)
		}
		rb, _ := os.ReadFile(path)
		out.Write(rb)
		back, err := Parse("rt", out.Bytes())
		if err != nil {
			t.Fatalf("parsing what Write wrote: %v", err)
		}
		for n, want := range read {
			got, err := back.Tensor(n)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got.Shape, want.Shape) || !slices.Equal(got.I64, want.I64) ||
				!slices.EqualFunc(got.F32, want.F32, func(a, b float32) bool { return math.Float32bits(a) == math.Float32bits(b) }) {
				t.Fatalf("%s changed in a Write/Parse round trip", n)
			}
		}
	})
}
