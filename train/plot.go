package train

import (
	"fmt"
	"image"
	"image/color"
	"image/png"
	"math"
	"os"
	"strconv"
	"strings"

	"github.com/gitcap/gitcap/data/tensorfile"
)

// PlotOptions sizes the training-curve plot.
type PlotOptions struct {
	Width, Height int    // pixels; 0 means 900 x 900
	Title         string // drawn at the top; empty for none
	// Smoothing is the weight of the exponential moving average drawn over
	// the raw training loss (as TensorBoard's slider), in [0, 1); 0 means
	// 0.9 when there are more than 50 loss points, otherwise none.
	Smoothing float64
}

// Colours, as 0xRRGGBB.
const (
	colBG     = 0xffffff
	colPanel  = 0xfafafc
	colGrid   = 0xe1e1e8
	colAxis   = 0x3c3c3c
	colText   = 0x282828
	colMuted  = 0x969696
	colRaw    = 0xa0bee6
	colLoss   = 0x1f5ab4
	colVal    = 0xe66e14
	colLR     = 0x783caa
	colScore  = 0x1e9646
	plotMinWH = 240
	plotMaxWH = 8192
)

func rgb(h uint32) color.RGBA { return color.RGBA{uint8(h >> 16), uint8(h >> 8), uint8(h), 255} }

// series is one curve of a panel.
type series struct {
	label   string
	x, y    []float64
	c       color.RGBA
	markers bool // draw a dot at every point
	thin    bool // 1-pixel line
}

type panel struct {
	title  string
	series []series
	empty  string // message when no series has finite data
}

// RenderCurves draws the training curves of recs as three stacked panels
// sharing the step axis: training loss (raw and smoothed) with validation
// loss, learning rate, and validation CIDEr. Panels without data say so.
func RenderCurves(recs []Record, opt PlotOptions) (*image.RGBA, error) {
	w, h := opt.Width, opt.Height
	if w == 0 && h == 0 {
		w, h = 900, 900
	}
	if w < plotMinWH || h < plotMinWH || w > plotMaxWH || h > plotMaxWH {
		return nil, fmt.Errorf("plot: size %dx%d out of range (%d to %d pixels a side)", w, h, plotMinWH, plotMaxWH)
	}
	if !(opt.Smoothing >= 0 && opt.Smoothing < 1) {
		return nil, fmt.Errorf("plot: smoothing must be in [0, 1), got %v", opt.Smoothing)
	}

	var lossX, lossY, valX, valY, lrX, lrY, sX, sY []float64
	for _, r := range recs {
		x := float64(r.Step)
		if IsFinite(r.Loss) {
			lossX, lossY = append(lossX, x), append(lossY, r.Loss)
		}
		if IsFinite(r.ValLoss) {
			valX, valY = append(valX, x), append(valY, r.ValLoss)
		}
		if IsFinite(r.LR) {
			lrX, lrY = append(lrX, x), append(lrY, r.LR)
		}
		if IsFinite(r.ValCIDEr) {
			sX, sY = append(sX, x), append(sY, r.ValCIDEr)
		}
	}
	lossPanel := panel{title: "loss", empty: "no loss recorded"}
	smooth := opt.Smoothing
	if smooth == 0 && len(lossY) > 50 {
		smooth = 0.9
	}
	if smooth > 0 && len(lossY) > 1 {
		lossPanel.series = append(lossPanel.series,
			series{label: "", x: lossX, y: lossY, c: rgb(colRaw), thin: true},
			series{label: "train", x: lossX, y: ema(lossY, smooth), c: rgb(colLoss)})
	} else {
		lossPanel.series = append(lossPanel.series, series{label: "train", x: lossX, y: lossY, c: rgb(colLoss), markers: len(lossY) <= 60})
	}
	if len(valY) > 0 {
		lossPanel.series = append(lossPanel.series, series{label: "val", x: valX, y: valY, c: rgb(colVal), markers: true})
	}
	panels := []panel{
		lossPanel,
		{title: "learning rate", series: []series{{label: "", x: lrX, y: lrY, c: rgb(colLR)}}, empty: "no learning rate recorded"},
		{title: "validation CIDEr-D", series: []series{{label: "", x: sX, y: sY, c: rgb(colScore), markers: true}}, empty: "no validation score yet"},
	}

	// Step axis shared by all panels.
	xlo, xhi := math.Inf(1), math.Inf(-1)
	for _, p := range panels {
		for _, s := range p.series {
			for _, x := range s.x {
				xlo, xhi = math.Min(xlo, x), math.Max(xhi, x)
			}
		}
	}
	if xlo > xhi {
		xlo, xhi = 0, 1
	}
	xlo = math.Min(xlo, 0)
	if xlo == xhi {
		xhi = xlo + 1
	}
	xticks, xstep := niceTicks(xlo, xhi, 8)
	if xstep < 1 { // steps are whole numbers
		xstep = 1
		xticks = xticks[:0]
		for x := math.Ceil(xlo); x <= xhi; x++ {
			xticks = append(xticks, x)
		}
	}

	img := image.NewRGBA(image.Rect(0, 0, w, h))
	fillRect(img, 0, 0, w, h, rgb(colBG))
	scale := 1
	if w >= 700 && h >= 600 {
		scale = 2
	}
	lineH := cellH * scale
	top := lineH / 2
	if opt.Title != "" {
		drawText(img, (w-textWidth(opt.Title, scale))/2, top, opt.Title, scale, rgb(colText))
		top += lineH + lineH/2
	}
	left := 10*cellW*scale + 8*scale
	right := w - 6*scale - 2
	bottom := h - 2*lineH - 8*scale
	gap := lineH * 2
	ph := (bottom - top - 2*gap) / 3
	if ph < 30 || right-left < 60 {
		return nil, fmt.Errorf("plot: size %dx%d too small for three panels", w, h)
	}
	for i, p := range panels {
		y0 := top + i*(ph+gap) + lineH
		drawPanel(img, p, image.Rect(left, y0, right, y0+ph-lineH), xlo, xhi, xticks, xstep, scale, i == len(panels)-1)
	}
	// x axis label
	drawText(img, left+(right-left-textWidth("step", scale))/2, h-lineH-scale, "step", scale, rgb(colText))
	return img, nil
}

// drawPanel draws one panel into the plot area r (the title goes above it).
func drawPanel(img *image.RGBA, p panel, r image.Rectangle, xlo, xhi float64, xticks []float64, xstep float64, scale int, xlabels bool) {
	lineH := cellH * scale
	fillRect(img, r.Min.X, r.Min.Y, r.Dx(), r.Dy(), rgb(colPanel))
	drawText(img, r.Min.X, r.Min.Y-lineH, p.title, scale, rgb(colText))

	ylo, yhi := math.Inf(1), math.Inf(-1)
	for _, s := range p.series {
		for _, y := range s.y {
			ylo, yhi = math.Min(ylo, y), math.Max(yhi, y)
		}
	}
	hasData := ylo <= yhi
	if !hasData {
		ylo, yhi = 0, 1
	}
	if ylo == yhi {
		switch {
		case ylo == 0:
			yhi = 1
		case ylo > 0:
			ylo, yhi = 0, 2*ylo
		default:
			ylo, yhi = 2*ylo, 0
		}
	} else {
		pad := (yhi - ylo) * 0.05
		if ylo >= 0 && ylo-pad < 0.1*(yhi-ylo) {
			ylo = 0 // losses, rates and scores are >= 0: keep the axis there
		} else {
			ylo -= pad
		}
		yhi += pad
	}
	nt := max(3, min(8, r.Dy()/(3*lineH)))
	yticks, ystep := niceTicks(ylo, yhi, nt)
	for tries := 0; len(yticks) < 2 && tries < 3; tries++ {
		nt *= 2
		yticks, ystep = niceTicks(ylo, yhi, nt)
	}
	px := func(x float64) int {
		return r.Min.X + int(math.Round((x-xlo)/(xhi-xlo)*float64(r.Dx()-1)))
	}
	py := func(y float64) int {
		return r.Max.Y - 1 - int(math.Round((y-ylo)/(yhi-ylo)*float64(r.Dy()-1)))
	}
	tick := 4 * scale
	for _, t := range yticks {
		y := py(t)
		hline(img, r.Min.X, r.Max.X-1, y, rgb(colGrid))
		hline(img, r.Min.X-tick, r.Min.X-1, y, rgb(colAxis))
		lab := tickLabel(t, ystep)
		drawText(img, r.Min.X-tick-2*scale-textWidth(lab, scale), y-glyphH*scale/2, lab, scale, rgb(colText))
	}
	for _, t := range xticks {
		x := px(t)
		vline(img, x, r.Min.Y, r.Max.Y-1, rgb(colGrid))
		vline(img, x, r.Max.Y, r.Max.Y+tick-1, rgb(colAxis))
		if xlabels {
			lab := tickLabel(t, xstep)
			lx := x - textWidth(lab, scale)/2
			lx = min(max(lx, 0), img.Rect.Max.X-textWidth(lab, scale))
			drawText(img, lx, r.Max.Y+tick+2*scale, lab, scale, rgb(colText))
		}
	}
	// axes
	vline(img, r.Min.X, r.Min.Y, r.Max.Y-1, rgb(colAxis))
	hline(img, r.Min.X, r.Max.X-1, r.Max.Y-1, rgb(colAxis))
	if !hasData {
		drawText(img, r.Min.X+(r.Dx()-textWidth(p.empty, scale))/2, r.Min.Y+(r.Dy()-glyphH*scale)/2, p.empty, scale, rgb(colMuted))
		return
	}
	clip := r.Inset(-3 * scale).Intersect(img.Rect) // points on the edge stay visible
	for _, s := range p.series {
		th := scale + 1
		if s.thin {
			th = 1
		}
		for i := range s.x {
			x, y := px(s.x[i]), py(s.y[i])
			if i > 0 {
				drawLine(img, px(s.x[i-1]), py(s.y[i-1]), x, y, th, s.c, clip)
			} else if len(s.x) == 1 {
				dot(img, x, y, 3*scale+1, s.c, clip)
			}
			if s.markers {
				dot(img, x, y, 3*scale+1, s.c, clip)
			}
		}
	}
	// legend, top right, for labelled series
	lx := r.Max.X - 4*scale
	for i := len(p.series) - 1; i >= 0; i-- {
		s := p.series[i]
		if s.label == "" {
			continue
		}
		lx -= textWidth(s.label, scale)
		drawText(img, lx, r.Min.Y+3*scale, s.label, scale, s.c)
		lx -= 3 * scale
		fillRect(img, lx-6*scale, r.Min.Y+3*scale+glyphH*scale/2-scale/2-1, 6*scale, scale+1, s.c)
		lx -= 10 * scale
	}
}

// ema smooths y like TensorBoard: a debiased exponential moving average.
func ema(y []float64, w float64) []float64 {
	out := make([]float64, len(y))
	var acc, norm float64
	for i, v := range y {
		acc = acc*w + (1-w)*v
		norm = norm*w + (1 - w)
		out[i] = acc / norm
	}
	return out
}

// niceTicks returns tick values covering [lo, hi] at a "nice" step (1, 2,
// 2.5 or 5 times a power of ten), at most about n+1 of them.
func niceTicks(lo, hi float64, n int) ([]float64, float64) {
	if n < 2 {
		n = 2
	}
	raw := (hi - lo) / float64(n)
	mag := math.Pow(10, math.Floor(math.Log10(raw)))
	step := mag
	for _, m := range []float64{1, 2, 2.5, 5, 10} {
		step = m * mag
		if step >= raw {
			break
		}
	}
	var ticks []float64
	for k := math.Ceil(lo/step - 1e-9); ; k++ {
		t := k * step
		if t > hi+step*1e-9 {
			break
		}
		if math.Abs(t) < step*1e-9 {
			t = 0
		}
		ticks = append(ticks, t)
	}
	return ticks, step
}

// tickLabel formats a tick value with as few digits as its step needs:
// "0.25", "1500", "20k", "3e-4".
func tickLabel(v, step float64) string {
	if v == 0 {
		return "0"
	}
	a := math.Abs(v)
	if a >= 1e4 && math.Mod(v, 1000) == 0 && step >= 1000 {
		return strconv.FormatFloat(v/1000, 'f', -1, 64) + "k"
	}
	// extra is 1 when the step's leading digits are "25".
	sexp := math.Floor(math.Log10(step) + 1e-9)
	extra := 0
	if m := step / math.Pow(10, sexp); math.Abs(m-math.Round(m)) > 1e-6 {
		extra = 1
	}
	if a < 1e-3 || a >= 1e6 {
		digits := max(0, int(math.Floor(math.Log10(a)+1e-9))-int(sexp)+extra)
		s := strconv.FormatFloat(v, 'e', digits, 64)
		mant, exp, _ := strings.Cut(s, "e")
		if strings.Contains(mant, ".") {
			mant = strings.TrimRight(strings.TrimRight(mant, "0"), ".")
		}
		e, _ := strconv.Atoi(exp)
		return mant + "e" + strconv.Itoa(e)
	}
	dec := max(0, -int(sexp)+extra)
	return strconv.FormatFloat(v, 'f', dec, 64)
}

func hline(img *image.RGBA, x0, x1, y int, c color.RGBA) { fillRect(img, x0, y, x1-x0+1, 1, c) }
func vline(img *image.RGBA, x, y0, y1 int, c color.RGBA) { fillRect(img, x, y0, 1, y1-y0+1, c) }

// dot draws a filled square of side d centred on (x, y), clipped to clip.
func dot(img *image.RGBA, x, y, d int, c color.RGBA, clip image.Rectangle) {
	r := image.Rect(x-d/2, y-d/2, x-d/2+d, y-d/2+d).Intersect(clip)
	fillRect(img, r.Min.X, r.Min.Y, r.Dx(), r.Dy(), c)
}

// drawLine draws a line of thickness th (Bresenham, stamping squares),
// clipped to clip.
func drawLine(img *image.RGBA, x0, y0, x1, y1, th int, c color.RGBA, clip image.Rectangle) {
	dx, dy := abs(x1-x0), -abs(y1-y0)
	sx, sy := 1, 1
	if x0 > x1 {
		sx = -1
	}
	if y0 > y1 {
		sy = -1
	}
	e := dx + dy
	for {
		if th == 1 {
			if (image.Point{x0, y0}).In(clip) {
				img.SetRGBA(x0, y0, c)
			}
		} else {
			dot(img, x0, y0, th, c, clip)
		}
		if x0 == x1 && y0 == y1 {
			return
		}
		e2 := 2 * e
		if e2 >= dy {
			e += dy
			x0 += sx
		}
		if e2 <= dx {
			e += dx
			y0 += sy
		}
	}
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}

// WritePlot renders the curves and writes them as a PNG file, atomically.
func WritePlot(path string, recs []Record, opt PlotOptions) error {
	img, err := RenderCurves(recs, opt)
	if err != nil {
		return err
	}
	return tensorfile.WriteAtomic(path, func(f *os.File) error {
		return png.Encode(f, img)
	})
}

// A tiny built-in 5x7 bitmap font (upper-case letters, digits and common
// punctuation) for plot labels; lower-case letters are drawn as capitals.

const (
	glyphW = 5
	glyphH = 7
	cellW  = glyphW + 1 // advance per character, in font pixels
	cellH  = glyphH + 2 // line height, in font pixels
)

// glyph returns the rows of a character, bit 4 = leftmost column.
func glyph(r rune) [glyphH]uint8 {
	switch r {
	case ' ':
		return [7]uint8{}
	case '0':
		return [7]uint8{0b01110, 0b10001, 0b10011, 0b10101, 0b11001, 0b10001, 0b01110}
	case '1':
		return [7]uint8{0b00100, 0b01100, 0b00100, 0b00100, 0b00100, 0b00100, 0b01110}
	case '2':
		return [7]uint8{0b01110, 0b10001, 0b00001, 0b00010, 0b00100, 0b01000, 0b11111}
	case '3':
		return [7]uint8{0b11111, 0b00010, 0b00100, 0b00010, 0b00001, 0b10001, 0b01110}
	case '4':
		return [7]uint8{0b00010, 0b00110, 0b01010, 0b10010, 0b11111, 0b00010, 0b00010}
	case '5':
		return [7]uint8{0b11111, 0b10000, 0b11110, 0b00001, 0b00001, 0b10001, 0b01110}
	case '6':
		return [7]uint8{0b00110, 0b01000, 0b10000, 0b11110, 0b10001, 0b10001, 0b01110}
	case '7':
		return [7]uint8{0b11111, 0b00001, 0b00010, 0b00100, 0b01000, 0b01000, 0b01000}
	case '8':
		return [7]uint8{0b01110, 0b10001, 0b10001, 0b01110, 0b10001, 0b10001, 0b01110}
	case '9':
		return [7]uint8{0b01110, 0b10001, 0b10001, 0b01111, 0b00001, 0b00010, 0b01100}
	case 'A':
		return [7]uint8{0b01110, 0b10001, 0b10001, 0b11111, 0b10001, 0b10001, 0b10001}
	case 'B':
		return [7]uint8{0b11110, 0b10001, 0b10001, 0b11110, 0b10001, 0b10001, 0b11110}
	case 'C':
		return [7]uint8{0b01110, 0b10001, 0b10000, 0b10000, 0b10000, 0b10001, 0b01110}
	case 'D':
		return [7]uint8{0b11100, 0b10010, 0b10001, 0b10001, 0b10001, 0b10010, 0b11100}
	case 'E':
		return [7]uint8{0b11111, 0b10000, 0b10000, 0b11110, 0b10000, 0b10000, 0b11111}
	case 'F':
		return [7]uint8{0b11111, 0b10000, 0b10000, 0b11110, 0b10000, 0b10000, 0b10000}
	case 'G':
		return [7]uint8{0b01110, 0b10001, 0b10000, 0b10111, 0b10001, 0b10001, 0b01111}
	case 'H':
		return [7]uint8{0b10001, 0b10001, 0b10001, 0b11111, 0b10001, 0b10001, 0b10001}
	case 'I':
		return [7]uint8{0b01110, 0b00100, 0b00100, 0b00100, 0b00100, 0b00100, 0b01110}
	case 'J':
		return [7]uint8{0b00111, 0b00010, 0b00010, 0b00010, 0b00010, 0b10010, 0b01100}
	case 'K':
		return [7]uint8{0b10001, 0b10010, 0b10100, 0b11000, 0b10100, 0b10010, 0b10001}
	case 'L':
		return [7]uint8{0b10000, 0b10000, 0b10000, 0b10000, 0b10000, 0b10000, 0b11111}
	case 'M':
		return [7]uint8{0b10001, 0b11011, 0b10101, 0b10101, 0b10001, 0b10001, 0b10001}
	case 'N':
		return [7]uint8{0b10001, 0b10001, 0b11001, 0b10101, 0b10011, 0b10001, 0b10001}
	case 'O':
		return [7]uint8{0b01110, 0b10001, 0b10001, 0b10001, 0b10001, 0b10001, 0b01110}
	case 'P':
		return [7]uint8{0b11110, 0b10001, 0b10001, 0b11110, 0b10000, 0b10000, 0b10000}
	case 'Q':
		return [7]uint8{0b01110, 0b10001, 0b10001, 0b10001, 0b10101, 0b10010, 0b01101}
	case 'R':
		return [7]uint8{0b11110, 0b10001, 0b10001, 0b11110, 0b10100, 0b10010, 0b10001}
	case 'S':
		return [7]uint8{0b01111, 0b10000, 0b10000, 0b01110, 0b00001, 0b00001, 0b11110}
	case 'T':
		return [7]uint8{0b11111, 0b00100, 0b00100, 0b00100, 0b00100, 0b00100, 0b00100}
	case 'U':
		return [7]uint8{0b10001, 0b10001, 0b10001, 0b10001, 0b10001, 0b10001, 0b01110}
	case 'V':
		return [7]uint8{0b10001, 0b10001, 0b10001, 0b10001, 0b10001, 0b01010, 0b00100}
	case 'W':
		return [7]uint8{0b10001, 0b10001, 0b10001, 0b10101, 0b10101, 0b10101, 0b01010}
	case 'X':
		return [7]uint8{0b10001, 0b10001, 0b01010, 0b00100, 0b01010, 0b10001, 0b10001}
	case 'Y':
		return [7]uint8{0b10001, 0b10001, 0b10001, 0b01010, 0b00100, 0b00100, 0b00100}
	case 'Z':
		return [7]uint8{0b11111, 0b00001, 0b00010, 0b00100, 0b01000, 0b10000, 0b11111}
	case '.':
		return [7]uint8{0, 0, 0, 0, 0, 0b01100, 0b01100}
	case ',':
		return [7]uint8{0, 0, 0, 0, 0b01100, 0b00100, 0b01000}
	case '-':
		return [7]uint8{0, 0, 0, 0b11111, 0, 0, 0}
	case '+':
		return [7]uint8{0, 0b00100, 0b00100, 0b11111, 0b00100, 0b00100, 0}
	case '=':
		return [7]uint8{0, 0, 0b11111, 0, 0b11111, 0, 0}
	case ':':
		return [7]uint8{0, 0b01100, 0b01100, 0, 0b01100, 0b01100, 0}
	case '(':
		return [7]uint8{0b00010, 0b00100, 0b01000, 0b01000, 0b01000, 0b00100, 0b00010}
	case ')':
		return [7]uint8{0b01000, 0b00100, 0b00010, 0b00010, 0b00010, 0b00100, 0b01000}
	case '[':
		return [7]uint8{0b01110, 0b01000, 0b01000, 0b01000, 0b01000, 0b01000, 0b01110}
	case ']':
		return [7]uint8{0b01110, 0b00010, 0b00010, 0b00010, 0b00010, 0b00010, 0b01110}
	case '/':
		return [7]uint8{0, 0b00001, 0b00010, 0b00100, 0b01000, 0b10000, 0}
	case '_':
		return [7]uint8{0, 0, 0, 0, 0, 0, 0b11111}
	case '%':
		return [7]uint8{0b11000, 0b11001, 0b00010, 0b00100, 0b01000, 0b10011, 0b00011}
	case '*':
		return [7]uint8{0, 0b00100, 0b10101, 0b01110, 0b10101, 0b00100, 0}
	case '\'':
		return [7]uint8{0b01100, 0b00100, 0b01000, 0, 0, 0, 0}
	case '!':
		return [7]uint8{0b00100, 0b00100, 0b00100, 0b00100, 0b00100, 0, 0b00100}
	case '<':
		return [7]uint8{0b00010, 0b00100, 0b01000, 0b10000, 0b01000, 0b00100, 0b00010}
	case '>':
		return [7]uint8{0b01000, 0b00100, 0b00010, 0b00001, 0b00010, 0b00100, 0b01000}
	case '#':
		return [7]uint8{0b01010, 0b01010, 0b11111, 0b01010, 0b11111, 0b01010, 0b01010}
	}
	return [7]uint8{0b01110, 0b10001, 0b00001, 0b00010, 0b00100, 0, 0b00100} // '?'
}

// textWidth is the width in pixels of s drawn at scale.
func textWidth(s string, scale int) int {
	n := len([]rune(s))
	if n == 0 {
		return 0
	}
	return (n*cellW - 1) * scale
}

// drawText draws s with its top-left corner at (x, y), each font pixel a
// scale x scale square.
func drawText(img *image.RGBA, x, y int, s string, scale int, c color.RGBA) {
	for _, r := range strings.ToUpper(s) {
		g := glyph(r)
		for row := 0; row < glyphH; row++ {
			bits := g[row]
			for col := 0; col < glyphW; col++ {
				if bits&(1<<(glyphW-1-col)) != 0 {
					fillRect(img, x+col*scale, y+row*scale, scale, scale, c)
				}
			}
		}
		x += cellW * scale
	}
}

// fillRect fills a rectangle, clipped to the image.
func fillRect(img *image.RGBA, x, y, w, h int, c color.RGBA) {
	r := image.Rect(x, y, x+w, y+h).Intersect(img.Rect)
	for yy := r.Min.Y; yy < r.Max.Y; yy++ {
		i := img.PixOffset(r.Min.X, yy)
		for xx := r.Min.X; xx < r.Max.X; xx++ {
			img.Pix[i], img.Pix[i+1], img.Pix[i+2], img.Pix[i+3] = c.R, c.G, c.B, c.A
			i += 4
		}
	}
}
