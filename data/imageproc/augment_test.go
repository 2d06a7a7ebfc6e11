package imageproc

import (
	"image"
	"image/color"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestRandomResizedCropDeterministic(t *testing.T) {
	scale, ratio := [2]float64{0.08, 1}, [2]float64{3.0 / 4, 4.0 / 3}
	var first []image.Rectangle
	for run := 0; run < 2; run++ {
		rng := rand.New(rand.NewPCG(42, 1))
		var rects []image.Rectangle
		for i := 0; i < 200; i++ {
			r, err := RandomResizedCropRect(640, 480, scale, ratio, rng)
			if err != nil {
				t.Fatal(err)
			}
			if !r.In(image.Rect(0, 0, 640, 480)) || r.Empty() {
				t.Fatalf("rect %v outside the image", r)
			}
			frac := float64(r.Dx()*r.Dy()) / (640 * 480)
			ar := float64(r.Dx()) / float64(r.Dy())
			// Rounding of w and h loosens the bounds slightly.
			if frac < 0.07 || frac > 1.01 || ar < 0.7 || ar > 1.4 {
				t.Errorf("rect %v: area fraction %.3f, aspect %.3f", r, frac, ar)
			}
			rects = append(rects, r)
		}
		if run == 0 {
			first = rects
		} else if !reflect.DeepEqual(first, rects) {
			t.Error("same seed gave different crops")
		}
	}
	rng := rand.New(rand.NewPCG(43, 1))
	other, _ := RandomResizedCropRect(640, 480, scale, ratio, rng)
	if other == first[0] {
		t.Log("different seed gave the same first crop (possible but unlikely)")
	}
}

func TestRandomResizedCropFallback(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 1))
	// A square crop of the full area never fits a 100x50 image, so after 10
	// tries torchvision falls back to the central crop clamped to ratio 1.
	r, err := RandomResizedCropRect(100, 50, [2]float64{1, 1}, [2]float64{1, 1}, rng)
	if err != nil {
		t.Fatal(err)
	}
	if r != image.Rect(25, 0, 75, 50) {
		t.Errorf("fallback rect %v", r)
	}
	r, _ = RandomResizedCropRect(50, 100, [2]float64{1, 1}, [2]float64{1, 1}, rng)
	if r != image.Rect(0, 25, 50, 75) {
		t.Errorf("fallback rect %v", r)
	}
	r, _ = RandomResizedCropRect(60, 50, [2]float64{1, 1}, [2]float64{0.5, 2}, rng)
	// Any ratio in range that fits is accepted; the fallback (whole image)
	// applies only if none did.
	if !r.In(image.Rect(0, 0, 60, 50)) {
		t.Errorf("rect %v", r)
	}
	for _, bad := range [][2][2]float64{{{0, 1}, {1, 1}}, {{0.5, 0.1}, {1, 1}}, {{0.5, 1}, {0, 1}}, {{0.5, 1}, {2, 1}}, {{0.1, math.Inf(1)}, {1, 1}}} {
		if _, err := RandomResizedCropRect(10, 10, bad[0], bad[1], rng); err == nil {
			t.Errorf("scale %v ratio %v accepted", bad[0], bad[1])
		}
	}
	if _, err := RandomResizedCropRect(10, 10, [2]float64{0.5, 1}, [2]float64{1, 1}, nil); err == nil {
		t.Error("nil rng accepted")
	}
}

func TestRandomResizedCropPixels(t *testing.T) {
	src := image.NewNRGBA(image.Rect(5, 5, 45, 35))
	for y := 5; y < 35; y++ {
		for x := 5; x < 45; x++ {
			src.SetNRGBA(x, y, color.NRGBA{uint8(x), uint8(y), 7, uint8(x * y)})
		}
	}
	rng1 := rand.New(rand.NewPCG(9, 9))
	rng2 := rand.New(rand.NewPCG(9, 9))
	crop, err := RandomResizedCrop(src, [2]float64{0.2, 0.6}, [2]float64{0.5, 2}, rng1)
	if err != nil {
		t.Fatal(err)
	}
	r, _ := RandomResizedCropRect(40, 30, [2]float64{0.2, 0.6}, [2]float64{0.5, 2}, rng2)
	c, ok := crop.(*image.NRGBA)
	if !ok {
		t.Fatalf("crop is %T", crop)
	}
	if c.Bounds() != image.Rect(0, 0, r.Dx(), r.Dy()) {
		t.Fatalf("crop bounds %v for rect %v", c.Bounds(), r)
	}
	for y := 0; y < r.Dy(); y++ {
		for x := 0; x < r.Dx(); x++ {
			if c.NRGBAAt(x, y) != src.NRGBAAt(5+r.Min.X+x, 5+r.Min.Y+y) {
				t.Fatalf("pixel (%d,%d) differs", x, y)
			}
		}
	}
	flipped := HFlip(c).(*image.NRGBA)
	for y := 0; y < r.Dy(); y++ {
		for x := 0; x < r.Dx(); x++ {
			if flipped.NRGBAAt(x, y) != c.NRGBAAt(r.Dx()-1-x, y) {
				t.Fatalf("flip pixel (%d,%d) differs", x, y)
			}
		}
	}
	// A type remap does not know is converted through NRGBA.
	yc := image.NewYCbCr(image.Rect(0, 0, 4, 2), image.YCbCrSubsampleRatio420)
	if _, ok := HFlip(yc).(*image.NRGBA); !ok {
		t.Error("YCbCr flip should give NRGBA")
	}
	n := 0
	rng := rand.New(rand.NewPCG(3, 3))
	for i := 0; i < 100; i++ {
		if MaybeHFlip(c, 0.5, rng) != image.Image(c) {
			n++
		}
	}
	if n < 30 || n > 70 {
		t.Errorf("flipped %d of 100 times with p=0.5", n)
	}
}

func TestFrameIndices(t *testing.T) {
	cases := []struct {
		total, n int
		want     []int
	}{
		{10, 4, []int{0, 3, 6, 9}},
		{6, 6, []int{0, 1, 2, 3, 4, 5}},
		{5, 1, []int{0}},
		{7, 2, []int{0, 6}},
		{100, 6, []int{0, 20, 40, 60, 80, 99}},
	}
	for _, c := range cases {
		if got := FrameIndices(c.total, c.n); !reflect.DeepEqual(got, c.want) {
			t.Errorf("FrameIndices(%d, %d) = %v, want %v", c.total, c.n, got, c.want)
		}
	}
}

func TestSampleFrames(t *testing.T) {
	dir := t.TempDir()
	for _, name := range []string{"f03.png", "f01.JPG", "f00.jpeg", "f02.gif", "f05.png", "f04.png", "notes.txt", "f06.bmp"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Mkdir(filepath.Join(dir, "sub.png"), 0o755); err != nil {
		t.Fatal(err)
	}
	got, err := SampleFrames(dir, 3)
	if err != nil {
		t.Fatal(err)
	}
	// Six frames f00..f05: linspace(0, 6, 3) = 0, 3, 6 -> 0, 3, 5.
	want := []string{filepath.Join(dir, "f00.jpeg"), filepath.Join(dir, "f03.png"), filepath.Join(dir, "f05.png")}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
	if _, err := SampleFrames(dir, 7); err == nil || !strings.Contains(err.Error(), dir) || !strings.Contains(err.Error(), "6 image files") {
		t.Errorf("too many frames: %v", err)
	}
	if _, err := SampleFrames(dir, 0); err == nil {
		t.Error("n=0 accepted")
	}
	empty := t.TempDir()
	if _, err := SampleFrames(empty, 1); err == nil || !strings.Contains(err.Error(), "no image files") {
		t.Errorf("empty dir: %v", err)
	}
	if _, err := SampleFrames(filepath.Join(empty, "missing"), 1); err == nil || !strings.Contains(err.Error(), "missing") {
		t.Errorf("missing dir: %v", err)
	}
}
