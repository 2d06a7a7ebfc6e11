package imageproc

import (
	"bytes"
	"compress/zlib"
	"encoding/binary"
	"hash/crc32"
	"image"
	"image/color"
	"image/gif"
	"image/jpeg"
	"image/png"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/gitcap/gitcap/data/fixtures"
)

func pngChunk(typ string, data []byte) []byte {
	out := binary.BigEndian.AppendUint32(nil, uint32(len(data)))
	out = append(out, typ...)
	out = append(out, data...)
	return binary.BigEndian.AppendUint32(out, crc32.ChecksumIEEE(append([]byte(typ), data...)))
}

// headerOnlyPNG is a valid-looking PNG that declares w x h pixels of the
// given depth and colour type but carries almost no image data (the 69-byte
// 18000x18000 16-bit RGBA file of issue 13).
func headerOnlyPNG(w, h uint32, depth, colorType byte) []byte {
	ihdr := binary.BigEndian.AppendUint32(nil, w)
	ihdr = binary.BigEndian.AppendUint32(ihdr, h)
	ihdr = append(ihdr, depth, colorType, 0, 0, 0)
	var z bytes.Buffer
	zw := zlib.NewWriter(&z)
	zw.Write([]byte{0})
	zw.Close()
	out := []byte("\x89PNG\r\n\x1a\n")
	out = append(out, pngChunk("IHDR", ihdr)...)
	out = append(out, pngChunk("IDAT", z.Bytes())...)
	return append(out, pngChunk("IEND", nil)...)
}

// headerOnlyGIF declares a w x h screen and frame with a one-code image.
func headerOnlyGIF(w, h uint16) []byte {
	out := []byte("GIF89a")
	out = binary.LittleEndian.AppendUint16(out, w)
	out = binary.LittleEndian.AppendUint16(out, h)
	out = append(out, 0x80, 0, 0, 0, 0, 0, 255, 255, 255) // global table of 2 colours
	out = append(out, ',', 0, 0, 0, 0)
	out = binary.LittleEndian.AppendUint16(out, w)
	out = binary.LittleEndian.AppendUint16(out, h)
	out = append(out, 0, 2, 2, 0x44, 0x01, 0, ';')
	return out
}

// headerOnlyJPEG takes a real small JPEG and rewrites the size in its SOF0
// segment, dropping nothing else: the scan then holds far too few blocks.
func headerOnlyJPEG(t *testing.T, w, h uint16) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, image.NewGray(image.Rect(0, 0, 8, 8)), nil); err != nil {
		t.Fatal(err)
	}
	b := buf.Bytes()
	i := bytes.Index(b, []byte{0xff, 0xc0})
	if i < 0 {
		t.Fatal("no SOF0")
	}
	binary.BigEndian.PutUint16(b[i+5:], h)
	binary.BigEndian.PutUint16(b[i+7:], w)
	return b
}

// allocDuring returns the bytes allocated while f runs.
func allocDuring(f func()) uint64 {
	var a, b runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&a)
	f()
	runtime.ReadMemStats(&b)
	return b.TotalAlloc - a.TotalAlloc
}

// TestHeaderOnlyBombsAreRefusedCheaply checks that files declaring huge
// images are refused from their header: with the default limit, with the
// pixel limit disabled (the data-size bound) and below the limit, each
// allocating well under the 100 MB budget.
func TestHeaderOnlyBombsAreRefusedCheaply(t *testing.T) {
	const budget = 100 << 20
	bomb := headerOnlyPNG(18000, 18000, 16, 6)
	if len(bomb) > 80 {
		t.Fatalf("bomb is %d bytes, want a header-only file like the issue's 69 bytes", len(bomb))
	}
	for _, tc := range []struct {
		name   string
		data   []byte
		limits Limits
		want   string
	}{
		{"png over the default limit", bomb, Limits{}, "exceeds the limit of 178956970 pixels"},
		{"png with no pixel limit", bomb, Limits{MaxPixels: -1}, "cannot fit in"},
		{"png under the limit", headerOnlyPNG(12000, 12000, 16, 6), Limits{}, "truncated"},
		{"gray png under the limit", headerOnlyPNG(13000, 13000, 1, 0), Limits{}, "truncated"},
		{"gif under the limit", headerOnlyGIF(12000, 12000), Limits{}, "truncated"},
		{"gif over the limit", headerOnlyGIF(65535, 65535), Limits{}, "exceeds the limit"},
		{"jpeg under the limit", headerOnlyJPEG(t, 12000, 12000), Limits{}, "truncated"},
		{"jpeg over the limit", headerOnlyJPEG(t, 60000, 60000), Limits{}, "exceeds the limit"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var err error
			n := allocDuring(func() { _, err = tc.limits.Decode(tc.data) })
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("want an error saying %q, got %v", tc.want, err)
			}
			if n > budget {
				t.Errorf("refusing it allocated %d bytes (budget %d)", n, budget)
			}
		})
	}
}

// TestPixelLimitIsSettableAndWarnsAboveHalf checks MaxPixels and the
// Pillow-style warning above half of it, through a Processor.
func TestPixelLimitIsSettableAndWarnsAboveHalf(t *testing.T) {
	path := fixtures.Path(t, "images", "gradient_96x64.png") // 6144 pixels
	p, err := New(DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.PreprocessFile(path); err != nil {
		t.Fatalf("default limits: %v", err)
	}
	_, err = p.WithLimits(Limits{MaxPixels: 6143}).PreprocessFile(path)
	if err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "96x64") || !strings.Contains(err.Error(), "6143") {
		t.Fatalf("want a pixel-limit error naming the file and the sizes, got %v", err)
	}
	var warned []string
	q := p.WithLimits(Limits{MaxPixels: 10000, Warn: func(m string) { warned = append(warned, m) }})
	if _, err := q.PreprocessFile(path); err != nil {
		t.Fatal(err)
	}
	if len(warned) != 1 || !strings.Contains(warned[0], "96x64") {
		t.Fatalf("want one warning about 96x64, got %q", warned)
	}
	if p.Limits().MaxPixels != 0 {
		t.Fatal("WithLimits changed the original processor")
	}
}

// TestByteLimitRefusesBeforeReading checks MaxBytes on a file and on
// in-memory data.
func TestByteLimitRefusesBeforeReading(t *testing.T) {
	path := fixtures.Path(t, "images", "cats.png")
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	l := Limits{MaxBytes: fi.Size() - 1}
	if _, err := l.Load(path); err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "exceeds the image size limit") {
		t.Fatalf("want a byte-limit error naming the file, got %v", err)
	}
	if _, err := l.Decode(make([]byte, fi.Size())); err == nil || !strings.Contains(err.Error(), "exceeds the limit") {
		t.Fatalf("want a byte-limit error, got %v", err)
	}
	if _, err := (Limits{MaxBytes: fi.Size()}).Load(path); err != nil {
		t.Fatalf("a file at the limit: %v", err)
	}
}

// TestHighlyCompressedImagesPassTheDataSizeBound checks the bound has no
// false positives on the most compressible real files: large uniform
// images from Go's PNG (best compression), GIF and JPEG encoders.
func TestHighlyCompressedImagesPassTheDataSizeBound(t *testing.T) {
	const w, h = 1200, 900
	gray := image.NewGray(image.Rect(0, 0, w, h))
	pal := image.NewPaletted(image.Rect(0, 0, w, h), color.Palette{color.Black, color.White})
	rgba := image.NewNRGBA64(image.Rect(0, 0, w, h))
	files := map[string]func(*bytes.Buffer) error{
		"png gray": func(b *bytes.Buffer) error {
			return (&png.Encoder{CompressionLevel: png.BestCompression}).Encode(b, gray)
		},
		"png rgba64": func(b *bytes.Buffer) error {
			return (&png.Encoder{CompressionLevel: png.BestCompression}).Encode(b, rgba)
		},
		"gif":  func(b *bytes.Buffer) error { return gif.Encode(b, pal, nil) },
		"jpeg": func(b *bytes.Buffer) error { return jpeg.Encode(b, gray, &jpeg.Options{Quality: 1}) },
	}
	dir := t.TempDir()
	for name, enc := range files {
		var b bytes.Buffer
		if err := enc(&b); err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(dir, strings.ReplaceAll(name, " ", "_"))
		os.WriteFile(path, b.Bytes(), 0o644)
		img, err := Load(path)
		if err != nil {
			t.Errorf("%s (%d bytes): %v", name, b.Len(), err)
			continue
		}
		if img.Bounds().Dx() != w || img.Bounds().Dy() != h {
			t.Errorf("%s: decoded %v", name, img.Bounds())
		}
	}
}
