package ljpeg

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/gitcap/gitcap/data/fixtures"
)

// FuzzDecode checks the libjpeg-compatible decoder on mutated JPEGs (seeds:
// the fixture photo and the baseline/progressive, subsampled and gray
// files in testdata): no panic, DecodeConfig and Decode agree on the size,
// and decoding is deterministic.
func FuzzDecode(f *testing.F) {
	paths, _ := filepath.Glob("testdata/*.jpg")
	paths = append(paths, fixtures.Path(f, "images", "sun_q90.jpg"))
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		cfg, cerr := DecodeConfig(bytes.NewReader(b))
		if cerr == nil && int64(cfg.Width)*int64(cfg.Height) > 1<<22 {
			return // the caller (imageproc) refuses these from the header
		}
		img, err := Decode(bytes.NewReader(b))
		if err != nil {
			return
		}
		if cerr != nil {
			t.Fatalf("Decode succeeded where DecodeConfig failed: %v", cerr)
		}
		if r := img.Bounds(); r.Dx() != cfg.Width || r.Dy() != cfg.Height || r.Min.X != 0 || r.Min.Y != 0 {
			t.Fatalf("Decode gave %v, DecodeConfig %dx%d", r, cfg.Width, cfg.Height)
		}
		if img.ColorModel() != cfg.ColorModel {
			t.Fatalf("colour models differ: %v vs %v", img.ColorModel(), cfg.ColorModel)
		}
		again, err := Decode(bytes.NewReader(b))
		if err != nil {
			t.Fatalf("second decode failed: %v", err)
		}
		r := img.Bounds()
		for y := r.Min.Y; y < r.Max.Y; y += max(1, r.Dy()/7) {
			for x := r.Min.X; x < r.Max.X; x += max(1, r.Dx()/7) {
				if img.At(x, y) != again.At(x, y) {
					t.Fatalf("pixel (%d,%d) differs between two decodes", x, y)
				}
			}
		}
	})
}
