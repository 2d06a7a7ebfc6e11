package synth

import (
	"image"
	"image/color"
	"image/draw"
	"math"
)

// Shape kinds, in the order the generator draws them from.
var shapeKinds = []string{"circle", "square", "triangle", "star"}

// Shape colours and background colours are disjoint sets, so a shape never
// blends into its background, and the shapes of one image always have
// different colours.
var (
	shapeColors      = []string{"red", "green", "blue", "yellow"}
	backgroundColors = []string{"white", "black"}
)

// palette maps each colour word to the RGB value painted for it. The values
// are saturated and far apart so that they stay distinct after the image is
// shrunk to 32x32 or 16x16.
var palette = map[string]color.RGBA{
	"red":    {R: 220, G: 20, B: 20, A: 255},
	"green":  {R: 20, G: 170, B: 40, A: 255},
	"blue":   {R: 30, G: 70, B: 230, A: 255},
	"yellow": {R: 250, G: 215, B: 0, A: 255},
	"white":  {R: 255, G: 255, B: 255, A: 255},
	"black":  {R: 0, G: 0, B: 0, A: 255},
}

// ColorRGBA returns the RGB value painted for a colour word of the dataset
// ("red", "white", ...), and false for a word that is not one.
func ColorRGBA(name string) (color.RGBA, bool) {
	c, ok := palette[name]
	return c, ok
}

// Geometry, as fractions of the image side.
const (
	smallFrac = 0.28 // side of a small shape's bounding box
	largeFrac = 0.42 // side of a large shape's bounding box
	edgeFrac  = 0.03 // least distance from a shape to the image border
	gapFrac   = 0.02 // least distance from a shape to its layout cell's border
	jitFrac   = 0.04 // jitter around a single shape's anchor point
	crossFrac = 0.08 // jitter across the axis of a row or column
	starInner = 0.45 // star's inner radius over its outer radius
	starScale = 0.53 // star's outer radius over its box side
)

// sizeFrac is the side of a shape's bounding box for a size word.
func sizeFrac(size string) float64 {
	if size == "large" {
		return largeFrac
	}
	return smallFrac
}

// anchors holds the centre of a single shape for each position word.
var anchors = map[string][2]float64{
	"center": {0.5, 0.5},
	"left":   {0.25, 0.5},
	"right":  {0.75, 0.5},
	"top":    {0.5, 0.25},
	"bottom": {0.5, 0.75},
}

// positions lists the position words of a single shape in a fixed order
// (map iteration order is random, the generator must not depend on it).
var positions = []string{"center", "left", "right", "top", "bottom"}

// placed is a shape with its centre and box side in pixels.
type placed struct {
	kind, color string
	cx, cy, d   float64
}

// uniformIn returns a value drawn uniformly from [lo, hi], or their midpoint
// when the interval is empty.
func uniformIn(u, lo, hi float64) float64 {
	if hi <= lo {
		return (lo + hi) / 2
	}
	return lo + u*(hi-lo)
}

// render paints the background and the shapes on a new size x size image
// and returns it with each shape's painted bounding box.
func render(size int, background string, shapes []placed) (*image.RGBA, []image.Rectangle) {
	img := image.NewRGBA(image.Rect(0, 0, size, size))
	draw.Draw(img, img.Bounds(), image.NewUniform(palette[background]), image.Point{}, draw.Src)
	bounds := make([]image.Rectangle, len(shapes))
	for i, s := range shapes {
		bounds[i] = fill(img, s)
	}
	return img, bounds
}

// fill paints one shape without antialiasing: a pixel takes the shape's
// colour when its centre lies inside the shape. It returns the bounding box
// of the painted pixels.
func fill(img *image.RGBA, s placed) image.Rectangle {
	inside := insideFunc(s)
	c := palette[s.color]
	r := s.d // generous: the star is slightly wider than d/2 from its centre
	x0 := max(int(math.Floor(s.cx-r)), 0)
	y0 := max(int(math.Floor(s.cy-r)), 0)
	x1 := min(int(math.Ceil(s.cx+r)), img.Rect.Max.X)
	y1 := min(int(math.Ceil(s.cy+r)), img.Rect.Max.Y)
	var box image.Rectangle
	for y := y0; y < y1; y++ {
		for x := x0; x < x1; x++ {
			if !inside(float64(x)+0.5-s.cx, float64(y)+0.5-s.cy) {
				continue
			}
			img.SetRGBA(x, y, c)
			box = box.Union(image.Rect(x, y, x+1, y+1))
		}
	}
	return box
}

// insideFunc returns the point-in-shape test for s, in coordinates relative
// to the shape's centre (y grows downwards).
func insideFunc(s placed) func(dx, dy float64) bool {
	h := s.d / 2
	switch s.kind {
	case "square":
		return func(dx, dy float64) bool { return math.Abs(dx) <= h && math.Abs(dy) <= h }
	case "triangle":
		// Apex at the top centre, base along the bottom of the box.
		return func(dx, dy float64) bool {
			depth := dy + h // distance below the apex
			return depth >= 0 && dy <= h && math.Abs(dx) <= depth/2
		}
	case "star":
		poly := starPolygon(s.d)
		return func(dx, dy float64) bool { return inPolygon(poly, dx, dy) }
	default: // circle
		return func(dx, dy float64) bool { return dx*dx+dy*dy <= h*h }
	}
}

// starPolygon returns the ten vertices of a five-pointed star, one point
// upwards, centred so that its bounding box is centred on the origin.
func starPolygon(d float64) [][2]float64 {
	ro := starScale * d
	ri := starInner * ro
	// The top point is at -ro and the two lower points at ro*cos(36°): shift
	// down by half the difference so the box is centred.
	shift := (ro - ro*math.Cos(math.Pi/5)) / 2
	poly := make([][2]float64, 10)
	for i := range poly {
		r := ro
		if i%2 == 1 {
			r = ri
		}
		a := float64(i) * math.Pi / 5
		poly[i] = [2]float64{r * math.Sin(a), -r*math.Cos(a) + shift}
	}
	return poly
}

// inPolygon reports whether (x, y) lies inside the polygon (even-odd rule).
func inPolygon(poly [][2]float64, x, y float64) bool {
	in := false
	for i, j := 0, len(poly)-1; i < len(poly); j, i = i, i+1 {
		xi, yi := poly[i][0], poly[i][1]
		xj, yj := poly[j][0], poly[j][1]
		if (yi > y) != (yj > y) && x < (xj-xi)*(y-yi)/(yj-yi)+xi {
			in = !in
		}
	}
	return in
}
