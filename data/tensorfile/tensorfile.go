// Package tensorfile reads and writes safetensors files as plain Go slices.
//
// It wraps github.com/nlpodyssey/safetensors with the checks a user needs:
// a truncated or corrupt file, a missing tensor or a tensor of an unexpected
// dtype gives an error naming the file and the tensor, never a panic.
// F16 and BF16 tensors are widened to float32 on read. Files are written
// atomically (temporary file, fsync, rename).
package tensorfile

import (
	"encoding/binary"
	"fmt"
	"math"
	"os"
	"sort"

	"github.com/nlpodyssey/safetensors"

	"github.com/gitcap/gitcap/data/fsutil"
)

// Tensor is one named tensor held as float32 or int64 values.
type Tensor struct {
	Shape []int
	F32   []float32 // set for floating-point tensors
	I64   []int64   // set for integer tensors
	BF16  []uint16  // bfloat16 bit patterns, written as BF16 (Write only; reading widens, see BF16Bits)
}

// Len is the number of elements the shape describes.
func (t Tensor) Len() int { return numel(t.Shape) }

func numel(shape []int) int {
	n := 1
	for _, d := range shape {
		n *= d
	}
	return n
}

// File is a parsed safetensors file.
type File struct {
	Path     string
	st       safetensors.SafeTensors
	Metadata map[string]string
}

// Open reads and parses a safetensors file.
func Open(path string) (*File, error) {
	buf, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return Parse(path, buf)
}

// Parse parses a safetensors file already in memory; path is used in errors.
func Parse(path string, buf []byte) (f *File, err error) {
	defer func() {
		if r := recover(); r != nil {
			f, err = nil, fmt.Errorf("%s: corrupt safetensors file: %v", path, r)
		}
	}()
	if len(buf) < 8 {
		return nil, fmt.Errorf("%s: not a safetensors file (only %d bytes)", path, len(buf))
	}
	hlen := binary.LittleEndian.Uint64(buf[:8])
	if hlen > uint64(len(buf)-8) {
		return nil, fmt.Errorf("%s: truncated or corrupt safetensors file: header of %d bytes but file has %d", path, hlen, len(buf))
	}
	if err := checkHeader(path, buf[8:8+hlen]); err != nil {
		return nil, err
	}
	st, err := safetensors.Deserialize(buf)
	if err != nil {
		return nil, fmt.Errorf("%s: corrupt safetensors file: %w", path, err)
	}
	_, md, err := safetensors.ReadMetadata(buf)
	if err != nil {
		return nil, fmt.Errorf("%s: corrupt safetensors header: %w", path, err)
	}
	return &File{Path: path, st: st, Metadata: md.Metadata()}, nil
}

// Names lists the tensors in the file, sorted.
func (f *File) Names() []string {
	n := f.st.Names()
	sort.Strings(n)
	return n
}

// Has reports whether the file holds a tensor called name.
func (f *File) Has(name string) bool {
	_, ok := f.st.Tensor(name)
	return ok
}

// Shape returns a tensor's shape.
func (f *File) Shape(name string) ([]int, error) {
	tv, ok := f.st.Tensor(name)
	if !ok {
		return nil, fmt.Errorf("%s: no tensor %q", f.Path, name)
	}
	return toInts(tv.Shape()), nil
}

func toInts(s []uint64) []int {
	out := make([]int, len(s))
	for i, v := range s {
		out[i] = int(v)
	}
	return out
}

// Tensor reads a tensor. Floating-point dtypes (F16, BF16, F32, F64) become
// F32; integer dtypes (I8..I64, U8, BOOL) become I64.
func (f *File) Tensor(name string) (Tensor, error) {
	tv, ok := f.st.Tensor(name)
	if !ok {
		return Tensor{}, fmt.Errorf("%s: no tensor %q", f.Path, name)
	}
	shape := toInts(tv.Shape())
	n := numel(shape)
	d := tv.Data()
	size := int(tv.DType().Size())
	if len(d) != n*size {
		return Tensor{}, fmt.Errorf("%s: tensor %q: %d bytes of data for shape %v and dtype %s", f.Path, name, len(d), shape, tv.DType())
	}
	t := Tensor{Shape: shape}
	switch tv.DType() {
	case safetensors.F32:
		t.F32 = make([]float32, n)
		for i := range t.F32 {
			t.F32[i] = math.Float32frombits(binary.LittleEndian.Uint32(d[4*i:]))
		}
	case safetensors.F64:
		t.F32 = make([]float32, n)
		for i := range t.F32 {
			t.F32[i] = float32(math.Float64frombits(binary.LittleEndian.Uint64(d[8*i:])))
		}
	case safetensors.F16:
		t.F32 = make([]float32, n)
		for i := range t.F32 {
			t.F32[i] = f16ToF32(binary.LittleEndian.Uint16(d[2*i:]))
		}
	case safetensors.BF16:
		t.F32 = make([]float32, n)
		for i := range t.F32 {
			t.F32[i] = math.Float32frombits(uint32(binary.LittleEndian.Uint16(d[2*i:])) << 16)
		}
	case safetensors.I64:
		t.I64 = make([]int64, n)
		for i := range t.I64 {
			t.I64[i] = int64(binary.LittleEndian.Uint64(d[8*i:]))
		}
	case safetensors.I32:
		t.I64 = make([]int64, n)
		for i := range t.I64 {
			t.I64[i] = int64(int32(binary.LittleEndian.Uint32(d[4*i:])))
		}
	case safetensors.I16:
		t.I64 = make([]int64, n)
		for i := range t.I64 {
			t.I64[i] = int64(int16(binary.LittleEndian.Uint16(d[2*i:])))
		}
	case safetensors.I8:
		t.I64 = make([]int64, n)
		for i := range t.I64 {
			t.I64[i] = int64(int8(d[i]))
		}
	case safetensors.U8, safetensors.BOOL:
		t.I64 = make([]int64, n)
		for i := range t.I64 {
			t.I64[i] = int64(d[i])
		}
	default:
		return Tensor{}, fmt.Errorf("%s: tensor %q has unsupported dtype %s", f.Path, name, tv.DType())
	}
	return t, nil
}

// F32 reads a floating-point tensor.
func (f *File) F32(name string) ([]float32, []int, error) {
	t, err := f.Tensor(name)
	if err != nil {
		return nil, nil, err
	}
	if t.F32 == nil {
		return nil, nil, fmt.Errorf("%s: tensor %q is an integer tensor, want floating point", f.Path, name)
	}
	return t.F32, t.Shape, nil
}

// I64 reads an integer tensor.
func (f *File) I64(name string) ([]int64, []int, error) {
	t, err := f.Tensor(name)
	if err != nil {
		return nil, nil, err
	}
	if t.I64 == nil {
		return nil, nil, fmt.Errorf("%s: tensor %q is a floating-point tensor, want integers", f.Path, name)
	}
	return t.I64, t.Shape, nil
}

// Ints reads an integer tensor as Go ints (token ids, masks, labels).
func (f *File) Ints(name string) ([]int, []int, error) {
	v, shape, err := f.I64(name)
	if err != nil {
		return nil, nil, err
	}
	out := make([]int, len(v))
	for i, x := range v {
		out[i] = int(x)
	}
	return out, shape, nil
}

// f16ToF32 widens an IEEE half-precision value.
func f16ToF32(h uint16) float32 {
	sign := uint32(h>>15) << 31
	exp := uint32(h>>10) & 0x1f
	mant := uint32(h) & 0x3ff
	switch {
	case exp == 0 && mant == 0:
		return math.Float32frombits(sign)
	case exp == 0: // subnormal
		for mant&0x400 == 0 {
			mant <<= 1
			exp--
		}
		exp++
		mant &= 0x3ff
		return math.Float32frombits(sign | (exp+127-15)<<23 | mant<<13)
	case exp == 0x1f:
		return math.Float32frombits(sign | 0xff<<23 | mant<<13)
	}
	return math.Float32frombits(sign | (exp+127-15)<<23 | mant<<13)
}

// view implements safetensors.View; unlike safetensors.NewTensorView it
// accepts 0-d tensors (a scalar loss).
type view struct {
	dt    safetensors.DType
	shape []uint64
	data  []byte
}

func (v view) DType() safetensors.DType { return v.dt }
func (v view) Shape() []uint64          { return v.shape }
func (v view) Data() []byte             { return v.data }
func (v view) DataLen() uint64          { return uint64(len(v.data)) }

// Write stores tensors in a safetensors file at path, atomically: the data
// goes to a temporary file in the same directory that is synced and renamed
// over path, so a crash never leaves a half-written file.
func Write(path string, tensors map[string]Tensor, metadata map[string]string) error {
	views := make(map[string]view, len(tensors))
	for name, t := range tensors {
		shape := make([]uint64, len(t.Shape))
		for i, d := range t.Shape {
			shape[i] = uint64(d)
		}
		n := numel(t.Shape)
		switch {
		case t.F32 != nil:
			if len(t.F32) != n {
				return fmt.Errorf("tensorfile: %s: %d values for shape %v", name, len(t.F32), t.Shape)
			}
			b := make([]byte, 4*n)
			for i, v := range t.F32 {
				binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(v))
			}
			views[name] = view{safetensors.F32, shape, b}
		case t.BF16 != nil:
			if len(t.BF16) != n {
				return fmt.Errorf("tensorfile: %s: %d values for shape %v", name, len(t.BF16), t.Shape)
			}
			b := make([]byte, 2*n)
			for i, v := range t.BF16 {
				binary.LittleEndian.PutUint16(b[2*i:], v)
			}
			views[name] = view{safetensors.BF16, shape, b}
		case t.I64 != nil:
			if len(t.I64) != n {
				return fmt.Errorf("tensorfile: %s: %d values for shape %v", name, len(t.I64), t.Shape)
			}
			b := make([]byte, 8*n)
			for i, v := range t.I64 {
				binary.LittleEndian.PutUint64(b[8*i:], uint64(v))
			}
			views[name] = view{safetensors.I64, shape, b}
		default:
			if n != 0 {
				return fmt.Errorf("tensorfile: %s: no data", name)
			}
			views[name] = view{safetensors.F32, shape, nil}
		}
	}
	return fsutil.WriteAtomic(path, func(f *os.File) error {
		return safetensors.SerializeToWriter(views, metadata, f)
	})
}
