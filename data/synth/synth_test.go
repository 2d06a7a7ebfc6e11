package synth

import (
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"image/png"
	"os"
	"slices"
	"strings"
	"testing"
)

// mention is one shape named in a caption.
type mention struct{ size, color, kind string }

// parseMentions returns the shapes a caption names, in order: each colour
// word followed by a shape word, with the size word before it if any.
func parseMentions(t *testing.T, caption string) []mention {
	t.Helper()
	w := Words(caption)
	var out []mention
	for i, word := range w {
		if !slices.Contains(shapeColors, word) {
			continue
		}
		if i+1 >= len(w) || !slices.Contains(shapeKinds, w[i+1]) {
			t.Errorf("caption %q: colour %q not followed by a shape word", caption, word)
			continue
		}
		m := mention{color: word, kind: w[i+1]}
		if i > 0 && (w[i-1] == "small" || w[i-1] == "large") {
			m.size = w[i-1]
		}
		out = append(out, m)
	}
	return out
}

// colorBox is what the pixels say about one colour.
type colorBox struct {
	box   image.Rectangle
	count int
}

// pixelBoxes scans an image and returns, per colour word, the bounding box
// and number of its pixels; it fails on a pixel of no palette colour.
func pixelBoxes(t *testing.T, img *image.RGBA) map[string]colorBox {
	t.Helper()
	byRGBA := map[color.RGBA]string{}
	for name, c := range palette {
		byRGBA[c] = name
	}
	out := map[string]colorBox{}
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			name, ok := byRGBA[img.RGBAAt(x, y)]
			if !ok {
				t.Fatalf("pixel (%d,%d) = %v is no palette colour", x, y, img.RGBAAt(x, y))
			}
			cb := out[name]
			cb.box = cb.box.Union(image.Rect(x, y, x+1, y+1))
			cb.count++
			out[name] = cb
		}
	}
	return out
}

func center(r image.Rectangle) (float64, float64) {
	return float64(r.Min.X+r.Max.X) / 2, float64(r.Min.Y+r.Max.Y) / 2
}

// fillRange is the expected share of a shape's bounding box it paints.
var fillRange = map[string][2]float64{
	"square":   {0.99, 1.0},
	"circle":   {0.7, 0.9},
	"triangle": {0.45, 0.6},
	"star":     {0.3, 0.5},
}

// checkExample checks an example's captions against its own pixels.
func checkExample(t *testing.T, ex Example, size int) {
	t.Helper()
	name := fmt.Sprintf("%s/%s", ex.Split, ex.FileName)
	if n := len(ex.Captions); n < 3 || n > 5 {
		t.Errorf("%s: %d captions, want 3 to 5", name, n)
	}
	seen := map[string]bool{}
	for _, c := range ex.Captions {
		if seen[c] {
			t.Errorf("%s: duplicate caption %q", name, c)
		}
		seen[c] = true
	}
	if ex.Image.Bounds() != image.Rect(0, 0, size, size) {
		t.Fatalf("%s: image bounds %v", name, ex.Image.Bounds())
	}
	px := pixelBoxes(t, ex.Image)
	sz := float64(size)
	sc := ex.Scene
	bg := ex.Image.RGBAAt(0, 0)
	if bg != palette[sc.Background] {
		t.Errorf("%s: corner pixel %v, want background %s", name, bg, sc.Background)
	}
	if px[sc.Background].count < size*size*3/10 {
		t.Errorf("%s: only %d background pixels", name, px[sc.Background].count)
	}
	if len(px) != len(sc.Shapes)+1 {
		t.Errorf("%s: %d colours in the image, want %d", name, len(px), len(sc.Shapes)+1)
	}
	for _, c := range ex.Captions {
		if strings.ToLower(c) != c {
			t.Errorf("%s: caption %q not lowercase", name, c)
		}
		words := Words(c)
		if len(words) > MaxCaptionWords {
			t.Errorf("%s: caption %q has %d words", name, c, len(words))
		}
		ms := parseMentions(t, c)
		if len(ms) != len(sc.Shapes) {
			t.Fatalf("%s: caption %q names %d shapes, scene has %d", name, c, len(ms), len(sc.Shapes))
		}
		// Every named shape is there, in the stated colour, size and kind.
		for i, m := range ms {
			s := sc.Shapes[i]
			if m.color != s.Color || m.kind != s.Kind || (m.size != "" && m.size != s.Size) {
				t.Errorf("%s: caption %q shape %d is %+v, scene has %+v", name, c, i, m, s)
			}
			cb, ok := px[m.color]
			if !ok {
				t.Fatalf("%s: caption %q names %s, no %s pixel in the image", name, c, m.color, m.color)
			}
			if cb.box != s.Bounds {
				t.Errorf("%s: %s pixels in %v, scene says %v", name, m.color, cb.box, s.Bounds)
			}
			side := float64(max(cb.box.Dx(), cb.box.Dy())) / sz
			switch m.size {
			case "small":
				if side > 0.31 {
					t.Errorf("%s: caption %q: small %s %s spans %.2f of the image", name, c, m.color, m.kind, side)
				}
			case "large":
				if side < 0.35 {
					t.Errorf("%s: caption %q: large %s %s spans %.2f of the image", name, c, m.color, m.kind, side)
				}
			}
			// Only squares fill their box. The share of the box a shape
			// fills tells the kinds apart from 16 pixels up; below, the
			// points of a star are too coarse to measure.
			fill := float64(cb.count) / float64(cb.box.Dx()*cb.box.Dy())
			if (m.kind == "square") != (fill > 0.99) || fill < 0.3 {
				t.Errorf("%s: %s %s fills %.2f of its box", name, m.color, m.kind, fill)
			}
			if r := fillRange[m.kind]; cb.box.Dx() >= 16 && (fill < r[0] || fill > r[1]) {
				t.Errorf("%s: %s %s fills %.2f of its box, want [%.2f, %.2f]", name, m.color, m.kind, fill, r[0], r[1])
			}
			if cb.box.Min.X == 0 || cb.box.Min.Y == 0 || cb.box.Max.X == size || cb.box.Max.Y == size {
				t.Errorf("%s: %s %s touches the border: %v", name, m.color, m.kind, cb.box)
			}
		}
		// Background, when named.
		for i, w := range words {
			if w == "background" && words[i-1] != sc.Background {
				t.Errorf("%s: caption %q, background is %s", name, c, sc.Background)
			}
		}
		has := func(w string) bool { return slices.Contains(words, w) }
		if len(ms) == 1 {
			// The stated position matches the pixels.
			x, y := center(px[ms[0].color].box)
			x, y = x/sz, y/sz
			checks := map[string]bool{
				"left":   x < 0.4,
				"right":  x > 0.6,
				"top":    y < 0.4,
				"bottom": y > 0.6,
				"center": x > 0.4 && x < 0.6 && y > 0.4 && y < 0.6,
			}
			for w, ok := range checks {
				if has(w) && !ok {
					t.Errorf("%s: caption %q but shape centre at (%.2f, %.2f)", name, c, x, y)
				}
			}
			continue
		}
		// Several shapes: named left to right or top to bottom, without
		// overlap, and the relation words agree.
		rowOK, colOK := true, true
		for i := 1; i < len(ms); i++ {
			a, b := px[ms[i-1].color].box, px[ms[i].color].box
			rowOK = rowOK && a.Max.X < b.Min.X
			colOK = colOK && a.Max.Y < b.Min.Y
		}
		if !rowOK && !colOK {
			t.Errorf("%s: caption %q names shapes out of spatial order", name, c)
		}
		if (has("left") || has("right") || has("next") || has("row")) && !rowOK {
			t.Errorf("%s: caption %q, but shapes are not left to right", name, c)
		}
		if (has("above") || has("top") || has("bottom")) && !colOK {
			t.Errorf("%s: caption %q, but shapes are not top to bottom", name, c)
		}
	}
}

func TestCaptionsMatchPixels(t *testing.T) {
	for _, size := range []int{32, 64} {
		exs, err := Generate(Options{Seed: 7, Train: 300, Val: 50, Test: 50, ImageSize: size})
		if err != nil {
			t.Fatal(err)
		}
		for _, ex := range exs {
			checkExample(t, ex, size)
			if t.Failed() {
				t.Fatalf("size %d: stopping at first bad example %s/%s: %q", size, ex.Split, ex.FileName, ex.Captions)
			}
		}
	}
}

func TestSceneVariety(t *testing.T) {
	exs, err := Generate(Options{Seed: 1, Train: 2000})
	if err != nil {
		t.Fatal(err)
	}
	counts := map[string]int{}
	templ := map[string]int{}
	for _, ex := range exs {
		sc := ex.Scene
		counts[fmt.Sprintf("shapes=%d", len(sc.Shapes))]++
		counts["layout="+sc.Layout.String()]++
		counts["bg="+sc.Background]++
		if sc.Position != "" {
			counts["pos="+sc.Position]++
		}
		for _, s := range sc.Shapes {
			counts["kind="+s.Kind]++
			counts["color="+s.Color]++
			counts["size="+s.Size]++
		}
		for _, c := range ex.Captions {
			// The template is the caption with content words removed.
			var skel []string
			for _, w := range Words(c) {
				if !slices.Contains(shapeColors, w) && !slices.Contains(shapeKinds, w) &&
					!slices.Contains(backgroundColors, w) && w != "small" && w != "large" {
					skel = append(skel, w)
				}
			}
			templ[strings.Join(skel, " ")]++
		}
	}
	var want []string
	for _, k := range shapeKinds {
		want = append(want, "kind="+k)
	}
	for _, c := range shapeColors {
		want = append(want, "color="+c)
	}
	for _, c := range backgroundColors {
		want = append(want, "bg="+c)
	}
	for _, p := range positions {
		want = append(want, "pos="+p)
	}
	want = append(want, "shapes=1", "shapes=2", "shapes=3", "layout=single", "layout=row", "layout=column", "size=small", "size=large")
	for _, k := range want {
		if counts[k] < 50 {
			t.Errorf("%s occurs %d times in 2000 images", k, counts[k])
		}
	}
	if len(templ) < 15 {
		t.Errorf("only %d distinct caption templates: %v", len(templ), templ)
	}
}

func TestVocabulary(t *testing.T) {
	vocab := Vocabulary()
	exs, err := Generate(Options{Seed: 3, Train: 1000})
	if err != nil {
		t.Fatal(err)
	}
	used := map[string]bool{}
	for _, ex := range exs {
		for _, c := range ex.Captions {
			for _, w := range Words(c) {
				used[w] = true
				if _, ok := slices.BinarySearch(vocab, w); !ok {
					t.Errorf("caption %q: word %q not in Vocabulary()", c, w)
				}
			}
			if strings.Trim(c, "abcdefghijklmnopqrstuvwxyz ,:") != "" {
				t.Errorf("caption %q has characters other than letters, spaces, ',' and ':'", c)
			}
		}
	}
	if len(used) != len(vocab) {
		t.Errorf("1000 images use %d of the %d vocabulary words", len(used), len(vocab))
	}
	t.Logf("vocabulary (%d words): %s", len(vocab), strings.Join(vocab, " "))
}

func TestDeterministicGenerate(t *testing.T) {
	opts := Options{Seed: 42, Train: 20, Val: 5, Test: 5, ImageSize: 32}
	a, err := Generate(opts)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := Generate(opts)
	for i := range a {
		if !slices.Equal(a[i].Image.Pix, b[i].Image.Pix) || !slices.Equal(a[i].Captions, b[i].Captions) {
			t.Fatalf("example %d differs between two runs", i)
		}
	}
	// A split does not depend on the sizes of the others.
	c, _ := Generate(Options{Seed: 42, Train: 3, Val: 5, Test: 2, ImageSize: 32})
	for i := range 5 {
		if !slices.Equal(a[20+i].Image.Pix, c[3+i].Image.Pix) || !slices.Equal(a[20+i].Captions, c[3+i].Captions) {
			t.Fatalf("val example %d depends on the train size", i)
		}
	}
	d, _ := Generate(Options{Seed: 43, Train: 20, Val: 5, Test: 5, ImageSize: 32})
	same := 0
	for i := range a {
		if slices.Equal(a[i].Image.Pix, d[i].Image.Pix) {
			same++
		}
	}
	if same > 3 {
		t.Errorf("seeds 42 and 43 give %d identical images of %d", same, len(a))
	}
}

func TestSplitsAndIDs(t *testing.T) {
	exs, err := Generate(Options{Train: 7, Val: 0, Test: 3})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, ex := range exs {
		got = append(got, fmt.Sprintf("%s:%d:%s", ex.Split, ex.ID, ex.FileName))
	}
	want := []string{
		"train:1:000001.png", "train:2:000002.png", "train:3:000003.png", "train:4:000004.png",
		"train:5:000005.png", "train:6:000006.png", "train:7:000007.png",
		"test:1:000001.png", "test:2:000002.png", "test:3:000003.png",
	}
	if !slices.Equal(got, want) {
		t.Errorf("got %v\nwant %v", got, want)
	}
}

func TestMaxShapes(t *testing.T) {
	for _, max := range []int{1, 2} {
		exs, err := Generate(Options{Seed: 5, Train: 200, MaxShapes: max})
		if err != nil {
			t.Fatal(err)
		}
		for _, ex := range exs {
			if len(ex.Scene.Shapes) > max {
				t.Fatalf("MaxShapes %d: image with %d shapes", max, len(ex.Scene.Shapes))
			}
		}
	}
}

func TestOptionErrors(t *testing.T) {
	for _, o := range []Options{
		{},
		{Train: -1, Val: 2},
		{Train: 1, ImageSize: 8},
		{Train: 1, ImageSize: 5000},
		{Train: 1, MaxShapes: 4},
		{Train: 1, MaxShapes: -1},
	} {
		if _, err := Generate(o); err == nil {
			t.Errorf("Generate(%+v) succeeded", o)
		}
	}
}

func TestSplitTotal(t *testing.T) {
	for n, want := range map[int][3]int{2000: {1600, 200, 200}, 25: {21, 2, 2}, 5: {5, 0, 0}} {
		tr, v, te := SplitTotal(n)
		if [3]int{tr, v, te} != want {
			t.Errorf("SplitTotal(%d) = %d, %d, %d, want %v", n, tr, v, te, want)
		}
	}
}

// TestSampleGrid writes a grid of sample images to $SYNTH_GRID when it is
// set, for looking at by eye, and prints their captions.
func TestSampleGrid(t *testing.T) {
	path := os.Getenv("SYNTH_GRID")
	if path == "" {
		t.Skip("set SYNTH_GRID=/tmp/grid.png to write a sample grid")
	}
	for _, size := range []int{64, 32} {
		exs, err := Generate(Options{Seed: 1, Train: 48, ImageSize: size})
		if err != nil {
			t.Fatal(err)
		}
		// Each image is blown up (nearest neighbour) to 128 pixels.
		const cols, pad, cell = 8, 6, 128
		k := cell / size
		rows := (len(exs) + cols - 1) / cols
		grid := image.NewRGBA(image.Rect(0, 0, cols*(cell+pad)+pad, rows*(cell+pad)+pad))
		draw.Draw(grid, grid.Bounds(), image.NewUniform(color.RGBA{128, 128, 128, 255}), image.Point{}, draw.Src)
		for i, ex := range exs {
			at := image.Pt(pad+(i%cols)*(cell+pad), pad+(i/cols)*(cell+pad))
			for y := range cell {
				for x := range cell {
					grid.SetRGBA(at.X+x, at.Y+y, ex.Image.RGBAAt(x/k, y/k))
				}
			}
			if size == 64 {
				t.Logf("%2d %v", i, ex.Captions)
			}
		}
		p := strings.TrimSuffix(path, ".png") + fmt.Sprintf("_%d.png", size)
		f, err := os.Create(p)
		if err != nil {
			t.Fatal(err)
		}
		if err := png.Encode(f, grid); err != nil {
			t.Fatal(err)
		}
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
	}
}
