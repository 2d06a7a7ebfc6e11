package tensorfile

import (
	"encoding/binary"
	"fmt"

	"github.com/nlpodyssey/safetensors"
)

// BF16Bits reads a BF16 tensor's values as they are stored (bfloat16 bit
// patterns), without widening them; ok is false, with no error, when the
// tensor has another dtype (read it with F32).
func (f *File) BF16Bits(name string) (bits []uint16, ok bool, err error) {
	tv, found := f.st.Tensor(name)
	if !found {
		return nil, false, fmt.Errorf("%s: no tensor %q", f.Path, name)
	}
	if tv.DType() != safetensors.BF16 {
		return nil, false, nil
	}
	shape := toInts(tv.Shape())
	n := numel(shape)
	d := tv.Data()
	if len(d) != 2*n {
		return nil, false, fmt.Errorf("%s: tensor %q: %d bytes of data for shape %v and dtype BF16", f.Path, name, len(d), shape)
	}
	bits = make([]uint16, n)
	for i := range bits {
		bits[i] = binary.LittleEndian.Uint16(d[2*i:])
	}
	return bits, true, nil
}
