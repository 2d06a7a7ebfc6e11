package imageproc

import (
	"bytes"
	"image/gif"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gitcap/gitcap/data/fixtures"
)

// FuzzDecode checks image decoding as Load does it (PNG, JPEG through the
// libjpeg-compatible decoder, GIF; EXIF orientation), then preprocessing.
// Seeds: every fixture image, a GIF made from one, and the header-only
// bombs. Properties: no panic (Decode turns a decoder panic into a
// "decoder failed" error, which is reported here as a failure); a decoded
// image is non-empty and within the pixel limit; it preprocesses to the
// processor's output size with finite values.
func FuzzDecode(f *testing.F) {
	paths, err := filepath.Glob(filepath.Join(fixtures.Path(f, "images"), "*"))
	if err != nil || len(paths) == 0 {
		f.Fatalf("no fixture images: %v", err)
	}
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		if len(b) < 64<<10 { // the 640x480 photo slows every mutation down
			f.Add(b)
		}
	}
	img, err := Load(fixtures.Path(f, "images", "gray_L_40x30.png"))
	if err != nil {
		f.Fatal(err)
	}
	var g bytes.Buffer
	if err := gif.Encode(&g, img, nil); err != nil {
		f.Fatal(err)
	}
	f.Add(g.Bytes())
	f.Add(headerOnlyPNG(18000, 18000, 16, 6))
	f.Add(headerOnlyGIF(300, 200))

	pc := DefaultConfig()
	pc.Size, pc.CropHeight, pc.CropWidth = Size{ShortestEdge: 32}, 32, 32
	proc, err := New(pc)
	if err != nil {
		f.Fatal(err)
	}
	limits := Limits{MaxPixels: 1 << 22, MaxBytes: 1 << 20}
	f.Fuzz(func(t *testing.T, b []byte) {
		im, err := limits.Decode(b)
		if err != nil {
			if strings.Contains(err.Error(), "decoder failed") {
				t.Fatalf("a decoder panicked: %v", err)
			}
			return
		}
		r := im.Bounds()
		if r.Empty() || int64(r.Dx())*int64(r.Dy()) > limits.MaxPixels {
			t.Fatalf("decoded an image of %v", r)
		}
		px, err := proc.Preprocess(im)
		if err != nil {
			t.Fatalf("a decoded %v image does not preprocess: %v", r, err)
		}
		oh, ow := proc.OutputSize(r.Dx(), r.Dy())
		if len(px) != 3*oh*ow {
			t.Fatalf("%d values, want 3x%dx%d", len(px), oh, ow)
		}
		for i, v := range px {
			if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
				t.Fatalf("value %d is %v", i, v)
			}
		}
	})
}
