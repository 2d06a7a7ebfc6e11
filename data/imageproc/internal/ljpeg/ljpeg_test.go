package ljpeg

import (
	"bytes"
	"fmt"
	"image"
	"image/jpeg"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// readPNM reads the binary PGM/PPM files in testdata, written by a small C
// program that decodes each JPEG with libjpeg-turbo 2.1.5 (the library
// Pillow 9.4 uses on Debian bookworm) with default settings and
// out_color_space JCS_RGB.
func readPNM(t *testing.T, path string) (w, h, c int, pix []byte) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var magic string
	var maxv int
	r := bytes.NewReader(b)
	if _, err := fmt.Fscan(r, &magic, &w, &h, &maxv); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if _, err := r.ReadByte(); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	c = 3
	if magic == "P5" {
		c = 1
	}
	pix = b[len(b)-r.Len():]
	if len(pix) != w*h*c {
		t.Fatalf("%s: %d bytes of pixels for %dx%dx%d", path, len(pix), w, h, c)
	}
	return w, h, c, pix
}

// TestMatchesLibjpegTurbo decodes JPEGs covering every chroma subsampling
// libjpeg-turbo handles differently (4:4:4, 4:2:2, 4:4:0, 4:2:0, 4:1:1,
// 4:1:0), baseline and progressive, grayscale, restart intervals and tiny
// or odd sizes, and requires every sample to equal libjpeg-turbo's.
func TestMatchesLibjpegTurbo(t *testing.T) {
	files, err := filepath.Glob("testdata/*.jpg")
	if err != nil || len(files) < 45 {
		t.Fatalf("testdata: %d files, %v", len(files), err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			img, err := Decode(bytes.NewReader(data))
			if err != nil {
				t.Fatal(err)
			}
			w, h, c, want := readPNM(t, strings.TrimSuffix(f, ".jpg")+".pnm")
			if b := img.Bounds(); b != image.Rect(0, 0, w, h) {
				t.Fatalf("bounds %v, want %dx%d", b, w, h)
			}
			diff := 0
			for y := 0; y < h; y++ {
				for x := 0; x < w; x++ {
					for k := 0; k < c; k++ {
						var got byte
						switch m := img.(type) {
						case *image.Gray:
							got = m.Pix[y*m.Stride+x]
						case *image.RGBA:
							got = m.Pix[y*m.Stride+4*x+k]
						default:
							t.Fatalf("decoded to %T", img)
						}
						if got != want[(y*w+x)*c+k] {
							diff++
						}
					}
				}
			}
			if diff != 0 {
				t.Errorf("%d of %d samples differ from libjpeg-turbo", diff, w*h*c)
			}
		})
	}
}

// TestCloseToStdlib checks that the decoder agrees with image/jpeg, on a
// smooth image, up to the small differences of their IDCTs and chroma
// upsampling.
func TestCloseToStdlib(t *testing.T) {
	src := image.NewRGBA(image.Rect(0, 0, 61, 37))
	for y := 0; y < 37; y++ {
		for x := 0; x < 61; x++ {
			src.Pix[y*src.Stride+4*x+0] = uint8(4 * x)
			src.Pix[y*src.Stride+4*x+1] = uint8(6 * y)
			src.Pix[y*src.Stride+4*x+2] = uint8(2*x + 3*y)
			src.Pix[y*src.Stride+4*x+3] = 255
		}
	}
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, src, &jpeg.Options{Quality: 90}); err != nil {
		t.Fatal(err)
	}
	got, err := Decode(bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	ref, err := jpeg.Decode(bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	b := ref.Bounds()
	var sum, n float64
	worst := 0
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			r1, g1, b1, _ := got.At(x, y).RGBA()
			r2, g2, b2, _ := ref.At(x, y).RGBA()
			for _, d := range []int{int(r1>>8) - int(r2>>8), int(g1>>8) - int(g2>>8), int(b1>>8) - int(b2>>8)} {
				d = max(d, -d)
				worst = max(worst, d)
				sum += float64(d)
				n++
			}
		}
	}
	t.Logf("difference from image/jpeg: mean %.2f, max %d levels", sum/n, worst)
	if sum/n > 1.5 || worst > 12 {
		t.Errorf("too far from image/jpeg: mean %.2f, max %d levels", sum/n, worst)
	}
}

// TestCorruptNeverPanics feeds truncated and bit-flipped JPEGs to the
// decoder: errors are fine, panics are not.
func TestCorruptNeverPanics(t *testing.T) {
	data, err := os.ReadFile("testdata/33x47_h2v2_prog.jpg")
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 500; i++ {
		d := append([]byte(nil), data...)
		if i%2 == 0 {
			d = d[:rng.IntN(len(d))]
		} else {
			for k := 0; k < 1+rng.IntN(8); k++ {
				d[rng.IntN(len(d))] ^= byte(1 + rng.IntN(255))
			}
		}
		func() {
			defer func() {
				if r := recover(); r != nil {
					t.Fatalf("case %d: panic: %v", i, r)
				}
			}()
			_, _ = Decode(bytes.NewReader(d))
			_, _ = DecodeConfig(bytes.NewReader(d))
		}()
	}
}
