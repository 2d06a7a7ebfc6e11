// Package synth generates a deterministic synthetic image-captioning data
// set: small images of one to three coloured shapes on a plain background,
// each with three to five short reference captions that say what is visible.
// The project's demo trains a small GIT model on it from scratch.
//
// # Scenes
//
// An image shows one, two or three shapes (circle, square, triangle, star)
// in red, green, blue or yellow on a white or black background; the shapes
// of one image have different colours. One shape is small or large and sits
// in the center, on the left, on the right, at the top or at the bottom.
// Two shapes, each small or large, stand side by side (a row) or one above
// the other (a column). Three shapes are all small and stand in a row. Shapes
// never overlap, touch or leave the image, and are painted without
// antialiasing, so every pixel has exactly the background colour or one
// shape's colour. Sizes and positions scale with the image side, so a data
// set looks the same at 32 or 64 pixels apart from resolution.
//
// # Captions
//
// Captions are lowercase, at most MaxCaptionWords words, and name every
// shape by colour and kind (and by size, except in three-shape scenes) in
// spatial order: left to right in a row, top to bottom in a column. Each
// image gets three to five captions, each from a different template (see
// captions.go); they add the single shape's position, the relation between
// two shapes ("to the left of", "above", "next to") or the background.
// Examples:
//
//	a small red circle on the left
//	a large blue square on a white background
//	a small red circle above a large blue square
//	two shapes: a small red circle and a large blue square
//	a red circle, a blue square and a green star from left to right
//
// # Determinism
//
// Everything follows from Options. Each image draws from its own random
// source seeded by (Seed, split, index), so an image does not depend on the
// sizes of the splits, on the others or on the number of goroutines: the
// first 100 validation images are the same whether Train is 10 or 10,000.
// The same Options give byte-identical PNG and JSON files. The splits are
// drawn from the same distribution; held-out images are new pictures, but
// their combinations of colours, kinds, sizes and positions also occur in
// training.
//
// # Files
//
// Write lays the data set out the way COCO does:
//
//	DIR/images/train/000001.png ...
//	DIR/images/val/000001.png ...
//	DIR/images/test/000001.png ...
//	DIR/annotations/captions_train.json
//	DIR/annotations/captions_val.json
//	DIR/annotations/captions_test.json
//
// See Write for the JSON format.
package synth

import (
	"errors"
	"fmt"
	"image"
	"math/rand"
)

// Split names, in the order Generate returns them.
const (
	Train = "train"
	Val   = "val"
	Test  = "test"
)

// Splits lists the split names in order.
func Splits() []string { return []string{Train, Val, Test} }

// Defaults of the zero Options fields.
const (
	DefaultImageSize = 64
	DefaultMaxShapes = 3
)

// Limits on Options.ImageSize.
const (
	MinImageSize = 16
	MaxImageSize = 1024
)

// Options says what to generate. The zero value of ImageSize and MaxShapes
// selects the default.
type Options struct {
	// Seed selects the data set; any value, 0 included, is a valid seed.
	Seed int64
	// Train, Val and Test are the number of images in each split (zero or
	// more, not all zero).
	Train, Val, Test int
	// ImageSize is the side of the square images in pixels, from
	// MinImageSize to MaxImageSize (default DefaultImageSize).
	ImageSize int
	// MaxShapes is the largest number of shapes in an image, 1 to 3
	// (default DefaultMaxShapes). The number of shapes is drawn uniformly
	// from 1 to MaxShapes; a smaller MaxShapes makes an easier data set.
	MaxShapes int
}

// SplitTotal divides a total number of images 80/10/10: val and test get
// n/10 each (rounded down) and train gets the rest.
func SplitTotal(n int) (train, val, test int) {
	val, test = n/10, n/10
	return n - val - test, val, test
}

// withDefaults fills the zero fields and checks the options.
func (o Options) withDefaults() (Options, error) {
	if o.ImageSize == 0 {
		o.ImageSize = DefaultImageSize
	}
	if o.MaxShapes == 0 {
		o.MaxShapes = DefaultMaxShapes
	}
	switch {
	case o.Train < 0 || o.Val < 0 || o.Test < 0:
		return o, fmt.Errorf("synth: negative split size (train %d, val %d, test %d)", o.Train, o.Val, o.Test)
	case o.Train+o.Val+o.Test == 0:
		return o, errors.New("synth: no images requested (train, val and test are all 0)")
	case o.ImageSize < MinImageSize || o.ImageSize > MaxImageSize:
		return o, fmt.Errorf("synth: image size %d outside [%d, %d]", o.ImageSize, MinImageSize, MaxImageSize)
	case o.MaxShapes < 1 || o.MaxShapes > 3:
		return o, fmt.Errorf("synth: max shapes %d outside [1, 3]", o.MaxShapes)
	}
	return o, nil
}

// count returns the size of the split with index s (0 train, 1 val, 2 test).
func (o Options) count(s int) int {
	return [3]int{o.Train, o.Val, o.Test}[s]
}

// Layout says how the shapes of a scene are arranged.
type Layout int

const (
	// Single is one shape at one of five positions.
	Single Layout = iota
	// Row is two or three shapes side by side, listed left to right.
	Row
	// Column is two shapes one above the other, listed top to bottom.
	Column
)

// String returns "single", "row" or "column".
func (l Layout) String() string {
	switch l {
	case Single:
		return "single"
	case Row:
		return "row"
	case Column:
		return "column"
	}
	return fmt.Sprintf("Layout(%d)", int(l))
}

// Shape is one shape of a scene.
type Shape struct {
	Kind  string // "circle", "square", "triangle" or "star"
	Color string // "red", "green", "blue" or "yellow"
	// Size is "small" or "large". Shapes of three-shape scenes are all
	// small, and their captions leave the size out.
	Size string
	// Bounds is the bounding box of the shape's painted pixels.
	Bounds image.Rectangle
}

// Scene is the ground truth behind an image and its captions.
type Scene struct {
	Background string // "white" or "black"
	Layout     Layout
	// Position is where a Single shape stands: "center", "left", "right",
	// "top" or "bottom"; empty for other layouts.
	Position string
	// Shapes lists the shapes in caption order: left to right in a row, top
	// to bottom in a column.
	Shapes []Shape
}

// Example is one generated image with its captions.
type Example struct {
	Split string // Train, Val or Test
	// ID numbers the images of a split from 1; it is the image id in the
	// split's COCO file.
	ID int
	// FileName is the image's file name, relative to DIR/images/<split>/.
	FileName string
	Image    *image.RGBA
	Captions []string
	Scene    Scene
}

// Generate returns the whole data set in memory: the train examples, then
// val, then test, each in ID order. Write produces the same examples without
// holding them all in memory.
func Generate(opts Options) ([]Example, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	out := make([]Example, 0, opts.Train+opts.Val+opts.Test)
	for s := range 3 {
		for i := range opts.count(s) {
			out = append(out, makeExample(opts, s, i))
		}
	}
	return out, nil
}

// fileName is the image file name of the image with the given ID.
func fileName(id int) string { return fmt.Sprintf("%06d.png", id) }

// exampleSeed mixes the data-set seed, the split and the index into the seed
// of one image's random source (splitmix64 finalizer).
func exampleSeed(seed int64, split, index int) int64 {
	x := uint64(seed)
	for _, v := range []uint64{uint64(split) + 1, uint64(index) + 1} {
		x += v * 0x9e3779b97f4a7c15
		x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
		x = (x ^ (x >> 27)) * 0x94d049bb133111eb
		x ^= x >> 31
	}
	return int64(x)
}

// makeExample generates image index (from 0) of split s.
func makeExample(opts Options, s, index int) Example {
	rng := rand.New(rand.NewSource(exampleSeed(opts.Seed, s, index)))
	sc, shapes := drawScene(rng, opts)
	img, bounds := render(opts.ImageSize, sc.Background, shapes)
	for i := range sc.Shapes {
		sc.Shapes[i].Bounds = bounds[i]
	}
	id := index + 1
	return Example{
		Split:    Splits()[s],
		ID:       id,
		FileName: fileName(id),
		Image:    img,
		Captions: makeCaptions(sc, rng),
		Scene:    sc,
	}
}

// drawScene draws a random scene and places its shapes in pixels.
func drawScene(rng *rand.Rand, opts Options) (Scene, []placed) {
	n := 1 + rng.Intn(opts.MaxShapes)
	sc := Scene{Background: backgroundColors[rng.Intn(len(backgroundColors))]}
	colors := rng.Perm(len(shapeColors))
	sc.Shapes = make([]Shape, n)
	for i := range sc.Shapes {
		size := "small"
		if n < 3 && rng.Intn(2) == 1 {
			size = "large"
		}
		sc.Shapes[i] = Shape{
			Kind:  shapeKinds[rng.Intn(len(shapeKinds))],
			Color: shapeColors[colors[i]],
			Size:  size,
		}
	}
	switch {
	case n == 1:
		sc.Layout = Single
		sc.Position = positions[rng.Intn(len(positions))]
	case n == 2 && rng.Intn(2) == 1:
		sc.Layout = Column
	default:
		sc.Layout = Row
	}

	px := float64(opts.ImageSize)
	out := make([]placed, n)
	for i, s := range sc.Shapes {
		d := sizeFrac(s.Size)
		h := d / 2
		// Centre bounds keeping the shape inside the image.
		lo, hi := edgeFrac+h, 1-edgeFrac-h
		var cx, cy float64
		switch sc.Layout {
		case Single:
			a := anchors[sc.Position]
			cx = clamp(a[0]+jitFrac*(2*rng.Float64()-1), lo, hi)
			cy = clamp(a[1]+jitFrac*(2*rng.Float64()-1), lo, hi)
		default:
			// Along the layout axis the shape stays inside its cell, away
			// from the cell's borders; across it, it jitters around the
			// middle.
			along := cellPos(rng.Float64(), i, n, h)
			across := clamp(0.5+crossFrac*(2*rng.Float64()-1), lo, hi)
			cx, cy = along, across
			if sc.Layout == Column {
				cx, cy = across, along
			}
		}
		out[i] = placed{kind: s.Kind, color: s.Color, cx: cx * px, cy: cy * px, d: d * px}
	}
	return sc, out
}

// cellPos places the centre of a shape of half side h in cell i of n equal
// cells along [0, 1], u in [0, 1) choosing where.
func cellPos(u float64, i, n int, h float64) float64 {
	w := 1 / float64(n)
	lo, hi := float64(i)*w+gapFrac+h, float64(i+1)*w-gapFrac-h
	if i == 0 {
		lo = max(lo, edgeFrac+h)
	}
	if i == n-1 {
		hi = min(hi, 1-edgeFrac-h)
	}
	return uniformIn(u, lo, hi)
}

func clamp(v, lo, hi float64) float64 { return max(lo, min(hi, v)) }
