package imageproc

import (
	"bytes"
	"image"
	"image/color"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/gitcap/gitcap/data/fixtures"
)

func mustNew(t testing.TB, cfg Config) *Processor {
	t.Helper()
	p, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestResizedSize(t *testing.T) {
	p := mustNew(t, DefaultConfig())
	cases := []struct{ w, h, rw, rh int }{
		{640, 480, 298, 224}, // int(224*640/480) = int(298.67)
		{480, 640, 224, 298},
		{50, 150, 224, 672},
		{96, 64, 336, 224},
		{224, 224, 224, 224},
		{1, 1000, 224, 224000},
		{333, 223, 334, 224}, // int(224*333/223) = int(334.49)
	}
	for _, c := range cases {
		if rw, rh := p.ResizedSize(c.w, c.h); rw != c.rw || rh != c.rh {
			t.Errorf("%dx%d -> %dx%d, want %dx%d", c.w, c.h, rw, rh, c.rw, c.rh)
		}
	}
	cfg := DefaultConfig()
	cfg.Size = Size{Height: 20, Width: 30}
	if rw, rh := mustNew(t, cfg).ResizedSize(640, 480); rw != 30 || rh != 20 {
		t.Errorf("height/width size: %dx%d", rw, rh)
	}
}

// TestCenterCropPadding follows transformers 4.36.2's center_crop,
// including its off-by-one for odd padding (transformers issue #30922).
func TestCenterCropPadding(t *testing.T) {
	cfg := DefaultConfig()
	cfg.DoResize = false
	cfg.DoRescale, cfg.DoNormalize = false, false
	cfg.CropHeight, cfg.CropWidth = 8, 8
	p := mustNew(t, cfg)
	for _, c := range []struct{ n, out, off int }{
		{3, 7, -2}, // HF 4.36.2 returns 7x7 here
		{4, 8, -2},
		{8, 8, 0},
		{11, 8, 1},
		{12, 8, 2},
	} {
		img := image.NewGray(image.Rect(0, 0, c.n, c.n))
		for i := range img.Pix {
			img.Pix[i] = uint8(1 + i)
		}
		got, err := p.Preprocess(img)
		if err != nil {
			t.Fatal(err)
		}
		oh, ow := p.OutputSize(c.n, c.n)
		if oh != c.out || ow != c.out || len(got) != 3*c.out*c.out {
			t.Fatalf("%dx%d: output %dx%d (%d values), want %dx%d", c.n, c.n, oh, ow, len(got), c.out, c.out)
		}
		for i := 0; i < c.out; i++ {
			for j := 0; j < c.out; j++ {
				sy, sx := i+c.off, j+c.off
				want := float32(0)
				if sy >= 0 && sy < c.n && sx >= 0 && sx < c.n {
					want = float32(img.Pix[sy*c.n+sx])
				}
				if got[i*c.out+j] != want || got[2*c.out*c.out+i*c.out+j] != want {
					t.Fatalf("%dx%d: out(%d,%d) = %v, want %v", c.n, c.n, i, j, got[i*c.out+j], want)
				}
			}
		}
	}
}

func randomRGB(rng *rand.Rand, w, h int) *image.RGBA {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for i := range img.Pix {
		img.Pix[i] = uint8(rng.IntN(256))
		if i%4 == 3 {
			img.Pix[i] = 255
		}
	}
	return img
}

// TestResizeWindowMatchesFull checks that computing only the cropped window
// gives the same bytes as computing the whole resized image.
func TestResizeWindowMatchesFull(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	var s Scratch
	for trial := 0; trial < 60; trial++ {
		sw, sh := 1+rng.IntN(70), 1+rng.IntN(70)
		dw, dh := 1+rng.IntN(90), 1+rng.IntN(90)
		if trial%5 == 0 {
			dw = sw
		}
		if trial%7 == 0 {
			dh = sh
		}
		f, _ := filterFor(1 + trial%5)
		src := toRGB(nil, randomRGB(rng, sw, sh))
		full := make([]uint8, 3*dw*dh)
		resizeWindow(full, src, sw, sh, dw, dh, 0, dw, 0, dh, f, &s)
		x0, y0 := rng.IntN(dw), rng.IntN(dh)
		x1, y1 := x0+1+rng.IntN(dw-x0), y0+1+rng.IntN(dh-y0)
		win := make([]uint8, 3*(x1-x0)*(y1-y0))
		resizeWindow(win, src, sw, sh, dw, dh, x0, x1, y0, y1, f, &s)
		for y := y0; y < y1; y++ {
			a := full[3*(y*dw+x0) : 3*(y*dw+x1)]
			b := win[3*(y-y0)*(x1-x0) : 3*(y-y0+1)*(x1-x0)]
			if !bytes.Equal(a, b) {
				t.Fatalf("trial %d (%dx%d -> %dx%d, window %d..%d x %d..%d): row %d differs", trial, sw, sh, dw, dh, x0, x1, y0, y1, y)
			}
		}
	}
}

func TestResizeConstantImage(t *testing.T) {
	for _, r := range []int{Lanczos, Bilinear, Bicubic, Box, Hamming} {
		f, err := filterFor(r)
		if err != nil {
			t.Fatal(err)
		}
		src := bytes.Repeat([]uint8{17, 130, 250}, 37*23)
		dst := make([]uint8, 3*64*9)
		resizeWindow(dst, src, 37, 23, 64, 9, 0, 64, 0, 9, f, &Scratch{})
		if want := bytes.Repeat([]uint8{17, 130, 250}, 64*9); !bytes.Equal(dst, want) {
			t.Errorf("filter %d changed a constant image", r)
		}
	}
}

// TestNoRescaleNoNormalize checks channel order and layout: with every step
// off, the tensor is the RGB bytes, channels first.
func TestNoRescaleNoNormalize(t *testing.T) {
	cfg := DefaultConfig()
	cfg.DoResize, cfg.DoCenterCrop, cfg.DoRescale, cfg.DoNormalize = false, false, false, false
	p := mustNew(t, cfg)
	img := image.NewNRGBA(image.Rect(10, 20, 13, 22)) // non-zero origin
	for y := 20; y < 22; y++ {
		for x := 10; x < 13; x++ {
			img.SetNRGBA(x, y, color.NRGBA{uint8(x), uint8(y), uint8(x + y), 9})
		}
	}
	got, err := p.Preprocess(img)
	if err != nil {
		t.Fatal(err)
	}
	want := []float32{10, 11, 12, 10, 11, 12, 20, 20, 20, 21, 21, 21, 30, 31, 32, 31, 32, 33}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("got %v, want %v", got, want)
		}
	}
}

func TestPreprocessIntoReusesScratch(t *testing.T) {
	img, err := Load(fixtures.Path(t, "images", "cats.png"))
	if err != nil {
		t.Fatal(err)
	}
	p := mustNew(t, DefaultConfig())
	want, err := p.Preprocess(img)
	if err != nil {
		t.Fatal(err)
	}
	batch := make([]float32, 2*3*224*224)
	var s Scratch
	allocs := testing.AllocsPerRun(5, func() {
		if _, _, err := p.PreprocessInto(batch[3*224*224:], img, &s); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Errorf("%v allocations per image with a warm Scratch", allocs)
	}
	for i, v := range want {
		if batch[3*224*224+i] != v {
			t.Fatalf("value %d: %v, want %v", i, batch[3*224*224+i], v)
		}
	}
	if _, _, err := p.PreprocessInto(make([]float32, 100), img, &s); err == nil || !strings.Contains(err.Error(), "buffer") {
		t.Errorf("short buffer: %v", err)
	}
	if _, _, err := p.PreprocessInto(batch, image.NewRGBA(image.Rectangle{}), &s); err == nil {
		t.Error("empty image accepted")
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Resample = Nearest
	if _, err := New(cfg); err == nil || !strings.Contains(err.Error(), "nearest") {
		t.Errorf("nearest: %v", err)
	}
	cfg = DefaultConfig()
	cfg.CropWidth = 0
	if _, err := New(cfg); err == nil {
		t.Error("zero crop accepted")
	}
}

func BenchmarkPreprocessCats224(b *testing.B) {
	img, err := Load(fixtures.Path(b, "images", "cats.png"))
	if err != nil {
		b.Fatal(err)
	}
	p := mustNew(b, DefaultConfig())
	dst := make([]float32, 3*224*224)
	var s Scratch
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := p.PreprocessInto(dst, img, &s); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkPreprocessFileCats224(b *testing.B) {
	path := fixtures.Path(b, "images", "cats.png")
	p := mustNew(b, DefaultConfig())
	b.ReportAllocs()
	for b.Loop() {
		if _, err := p.PreprocessFile(path); err != nil {
			b.Fatal(err)
		}
	}
}
