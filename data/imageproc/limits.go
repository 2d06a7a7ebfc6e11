package imageproc

import (
	"encoding/binary"
	"fmt"
	"io"
	"os"
)

// Pillow's decompression-bomb guard (PIL.Image, Pillow 9.4.0):
// Image.MAX_IMAGE_PIXELS = int(1024*1024*1024 // 4 // 3) = 89,478,485.
// Pillow warns (DecompressionBombWarning) above it and refuses
// (DecompressionBombError) above twice it.
const (
	PillowMaxImagePixels = 89_478_485
	// DefaultMaxPixels is the default refusal threshold: Pillow's
	// DecompressionBombError limit, 2*MAX_IMAGE_PIXELS = 178,956,970.
	DefaultMaxPixels = 2 * PillowMaxImagePixels
	// DefaultMaxBytes is the default largest image file read: 256 MiB,
	// several times the largest JPEG or PNG under DefaultMaxPixels that a
	// camera or an encoder at normal settings produces.
	DefaultMaxBytes = 256 << 20
)

// Limits bounds the images Load and Decode accept. Every check runs on the
// file size and the header, before any pixel memory is allocated, so a
// hostile file costs at most its own size. The zero value is the default.
type Limits struct {
	// MaxPixels refuses images whose width*height exceeds it (0:
	// DefaultMaxPixels, Pillow's refusal threshold; negative: no limit).
	// Images above MaxPixels/2 (Pillow's MAX_IMAGE_PIXELS by default)
	// are decoded with a warning, as Pillow does.
	MaxPixels int64
	// MaxBytes refuses files larger than this (0: DefaultMaxBytes;
	// negative: no limit).
	MaxBytes int64
	// Warn, if set, receives the warning for an image above MaxPixels/2.
	Warn func(msg string)
}

func (l Limits) maxPixels() int64 {
	if l.MaxPixels == 0 {
		return DefaultMaxPixels
	}
	return l.MaxPixels
}

func (l Limits) maxBytes() int64 {
	if l.MaxBytes == 0 {
		return DefaultMaxBytes
	}
	return l.MaxBytes
}

// checkPixels applies MaxPixels (and the warning) to a w x h image.
func (l Limits) checkPixels(what string, w, h int) error {
	n, max := int64(w)*int64(h), l.maxPixels()
	if max < 0 {
		return nil
	}
	if n > max {
		return fmt.Errorf("%s image of %dx%d = %d pixels exceeds the limit of %d pixels (a decompression bomb guard; raise it with --max-image-pixels)", what, w, h, n, max)
	}
	if n > max/2 && l.Warn != nil {
		l.Warn(fmt.Sprintf("%s image of %dx%d = %d pixels is above %d pixels (half the limit): could be a decompression bomb", what, w, h, n, max/2))
	}
	return nil
}

// readFile reads path, refusing a file above MaxBytes before reading it
// (and, for a file that grows or is not a regular file, while reading it).
func (l Limits) readFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	max := l.maxBytes()
	if max < 0 {
		return io.ReadAll(f)
	}
	if fi, err := f.Stat(); err == nil && fi.Mode().IsRegular() && fi.Size() > max {
		return nil, fmt.Errorf("%s: file of %d bytes exceeds the image size limit of %d bytes", path, fi.Size(), max)
	}
	b, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > max {
		return nil, fmt.Errorf("%s: file exceeds the image size limit of %d bytes", path, max)
	}
	return b, nil
}

// Compression bounds used to refuse a file too small to hold the pixels its
// header declares (truncated, or a "header-only" bomb) before the decoder
// allocates the image:
//   - deflate (PNG) expands at most 1032:1 (a 258-byte match per 2 bits);
//   - LZW (GIF) with 12-bit codes emits at most 4096 bytes per code, i.e.
//     under 2731 pixels per byte once its table is full, plus the 4096*4097/2
//     bytes its first 4096 codes can emit;
//   - baseline and progressive JPEG spend at least 1 bit per 8x8 block of
//     every component in the first (DC) scan, and a component is
//     subsampled at most 4x in each direction.
const (
	deflateMaxRatio = 1032
	lzwMaxRatio     = 2731
	lzwWarmup       = 4096 * 4097 / 2
)

// checkDataSize refuses data too short for the w x h pixels its header
// declares (see the bounds above).
func checkDataSize(format string, data []byte, w, h int) error {
	n := int64(len(data))
	var need int64 // a lower bound on the bytes a complete file holds
	switch format {
	case "PNG":
		bpp, ok := pngBitsPerPixel(data)
		if !ok {
			return nil // the decoder reports a bad IHDR
		}
		rowBytes := (int64(w)*bpp + 7) / 8
		need = (int64(h)*rowBytes)/deflateMaxRatio - 64
	case "GIF":
		need = (int64(w)*int64(h) - lzwWarmup) / lzwMaxRatio
	case "JPEG":
		bw, bh := (int64(w)+31)/32, (int64(h)+31)/32
		need = bw * bh / 8
	}
	if n < need {
		return fmt.Errorf("corrupt %s: the header declares %dx%d pixels, which cannot fit in %d bytes: the file is truncated (or a decompression bomb)", format, w, h, n)
	}
	return nil
}

// pngBitsPerPixel reads the IHDR of a PNG (signature, then IHDR first, as
// the format requires) and returns its bits per pixel.
func pngBitsPerPixel(data []byte) (int64, bool) {
	if len(data) < 8+8+13 || string(data[12:16]) != "IHDR" || binary.BigEndian.Uint32(data[8:12]) != 13 {
		return 0, false
	}
	depth, ct := int64(data[24]), data[25]
	channels := map[byte]int64{0: 1, 2: 3, 3: 1, 4: 2, 6: 4}[ct]
	if channels == 0 || depth == 0 {
		return 0, false
	}
	return channels * depth, true
}
