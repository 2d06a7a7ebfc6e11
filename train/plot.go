package train

import (
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"image/png"
	"math"
	"os"
	"strconv"
	"strings"

	"github.com/gitcap/gitcap/data/fsutil"
	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	vgdraw "gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// PlotOptions sizes the training-curve plot.
type PlotOptions struct {
	Width, Height int    // pixels; 0 means 900 x 900
	Title         string // prefixed to the first panel's title; empty for none
	// Smoothing is the weight of the exponential moving average drawn over
	// the raw training loss (as TensorBoard's slider), in [0, 1); 0 means
	// 0.9 when there are more than 50 loss points, otherwise none.
	Smoothing float64
}

// Curve colours.
var (
	colRaw   = color.RGBA{0xa0, 0xbe, 0xe6, 0xff}
	colLoss  = color.RGBA{0x1f, 0x5a, 0xb4, 0xff}
	colVal   = color.RGBA{0xe6, 0x6e, 0x14, 0xff}
	colLR    = color.RGBA{0x78, 0x3c, 0xaa, 0xff}
	colScore = color.RGBA{0x1e, 0x96, 0x46, 0xff}
)

const (
	plotMinWH = 240
	plotMaxWH = 8192
	plotDPI   = 96
)

// RenderCurves draws the training curves of recs with gonum.org/v1/plot as
// three stacked panels sharing the step axis: training loss (raw and
// smoothed) with validation loss, learning rate, and validation CIDEr-D.
// Every axis is labelled, ticks of one axis share one number format, and
// each panel with more than one curve has a legend. A panel without data
// says so in its title.
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
	var loss, val, lr, cider plotter.XYs
	for _, r := range recs {
		x := float64(r.Step)
		if IsFinite(r.Loss) {
			loss = append(loss, plotter.XY{X: x, Y: r.Loss})
		}
		if IsFinite(r.ValLoss) {
			val = append(val, plotter.XY{X: x, Y: r.ValLoss})
		}
		if IsFinite(r.LR) {
			lr = append(lr, plotter.XY{X: x, Y: r.LR})
		}
		if IsFinite(r.ValCIDEr) {
			cider = append(cider, plotter.XY{X: x, Y: r.ValCIDEr})
		}
	}
	xlo, xhi := 0.0, 1.0
	for _, xy := range [][]plotter.XY{loss, val, lr, cider} {
		for _, p := range xy {
			xhi = math.Max(xhi, p.X)
			xlo = math.Min(xlo, p.X)
		}
	}

	lossTitle := "loss"
	if opt.Title != "" {
		lossTitle = opt.Title + ": loss"
	}
	lp := newPanel(lossTitle, "loss", xlo, xhi)
	smooth := opt.Smoothing
	if smooth == 0 && len(loss) > 50 {
		smooth = 0.9
	}
	switch {
	case len(loss) == 0:
		lp.Title.Text += " (no loss recorded)"
	case smooth > 0 && len(loss) > 1:
		if err := addLine(lp, loss, colRaw, 1, false, "train (raw)"); err != nil {
			return nil, err
		}
		sm := make(plotter.XYs, len(loss))
		ys := make([]float64, len(loss))
		for i, p := range loss {
			ys[i] = p.Y
		}
		for i, y := range ema(ys, smooth) {
			sm[i] = plotter.XY{X: loss[i].X, Y: y}
		}
		if err := addLine(lp, sm, colLoss, 2, false, fmt.Sprintf("train (EMA %.2g)", smooth)); err != nil {
			return nil, err
		}
	default:
		if err := addLine(lp, loss, colLoss, 2, len(loss) <= 60, "train"); err != nil {
			return nil, err
		}
	}
	if len(val) > 0 {
		if err := addLine(lp, val, colVal, 2, true, "validation"); err != nil {
			return nil, err
		}
	}
	rp := newPanel("learning rate", "learning rate", xlo, xhi)
	if len(lr) == 0 {
		rp.Title.Text += " (none recorded)"
	} else if err := addLine(rp, lr, colLR, 2, false, ""); err != nil {
		return nil, err
	}
	cp := newPanel("validation CIDEr-D", "CIDEr-D", xlo, xhi)
	if len(cider) == 0 {
		cp.Title.Text += " (no validation score yet)"
	} else if err := addLine(cp, cider, colScore, 2, true, ""); err != nil {
		return nil, err
	}
	for _, p := range []*plot.Plot{lp, rp, cp} {
		p.Legend.Top = true
		p.Legend.Left = false
		if p.Y.Min > p.Y.Max { // no data
			p.Y.Min, p.Y.Max = 0, 1
		}
	}

	// Text keeps its point size, so a small picture gets a lower DPI
	// (smaller text in pixels) to leave room for the curves.
	dpi := max(56, min(plotDPI, plotDPI*min(w, h*3/2)/900))
	c := vgimg.NewWith(vgimg.UseWH(vg.Length(w)*vg.Inch/vg.Length(dpi), vg.Length(h)*vg.Inch/vg.Length(dpi)), vgimg.UseDPI(dpi))
	dc := vgdraw.New(c)
	pad := vg.Points(6)
	tiles := vgdraw.Tiles{Rows: 3, Cols: 1, PadX: pad, PadY: pad * 2, PadTop: pad, PadBottom: pad, PadLeft: pad, PadRight: pad * 2}
	plots := [][]*plot.Plot{{lp}, {rp}, {cp}}
	canvases := plot.Align(plots, tiles, dc)
	for i := range plots {
		plots[i][0].Draw(canvases[i][0])
	}
	src := c.Image()
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	draw.Draw(img, img.Bounds(), image.White, image.Point{}, draw.Src)
	draw.Draw(img, img.Bounds(), src, src.Bounds().Min, draw.Over)
	return img, nil
}

// newPanel is a plot with a grid, a step axis over [xlo, xhi] and the
// y axis labelled ylabel.
func newPanel(title, ylabel string, xlo, xhi float64) *plot.Plot {
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text = "step"
	p.Y.Label.Text = ylabel
	p.X.Min, p.X.Max = xlo, xhi
	p.X.Tick.Marker = consistentTicks{}
	p.Y.Tick.Marker = consistentTicks{}
	p.Add(plotter.NewGrid())
	return p
}

// addLine adds a curve (with point markers if dots) and its legend entry
// (none for an empty label: a panel with one curve needs no legend).
func addLine(p *plot.Plot, xy plotter.XYs, c color.Color, width float64, dots bool, label string) error {
	l, err := plotter.NewLine(xy)
	if err != nil {
		return err
	}
	l.Color = c
	l.Width = vg.Points(width)
	p.Add(l)
	if dots {
		s, err := plotter.NewScatter(xy)
		if err != nil {
			return err
		}
		s.Color = c
		s.Radius = vg.Points(2.5)
		s.Shape = vgdraw.CircleGlyph{}
		p.Add(s)
		if label != "" {
			p.Legend.Add(label, l, s)
		}
		return nil
	}
	if label != "" {
		p.Legend.Add(label, l)
	}
	return nil
}

// consistentTicks is plot.DefaultTicks with every label of an axis in one
// format (tickLabels), so an axis never mixes "0.0010" with "5e-04".
type consistentTicks struct{}

func (consistentTicks) Ticks(min, max float64) []plot.Tick {
	ticks := plot.DefaultTicks{}.Ticks(min, max)
	var vals []float64
	for _, t := range ticks {
		if t.Label != "" {
			vals = append(vals, t.Value)
		}
	}
	labels := tickLabels(vals)
	k := 0
	for i := range ticks {
		if ticks[i].Label != "" {
			ticks[i].Label = labels[k]
			k++
		}
	}
	return ticks
}

// tickLabels formats an axis's tick values in one format: fixed-point with
// the fewest decimals that tell them apart when every non-zero value has
// magnitude in [1e-3, 1e5), else scientific with a shared mantissa
// precision ("2.5e-04"). Zero is always "0".
func tickLabels(vals []float64) []string {
	sci := false
	for _, v := range vals {
		if a := math.Abs(v); v != 0 && (a < 1e-3 || a >= 1e5) {
			sci = true
		}
	}
	format := func(v float64, prec int) string {
		if v == 0 {
			return "0"
		}
		if sci {
			return strconv.FormatFloat(v, 'e', prec, 64)
		}
		return strconv.FormatFloat(v, 'f', prec, 64)
	}
	for prec := 0; prec < 10; prec++ {
		out := make([]string, len(vals))
		ok := true
		for i, v := range vals {
			out[i] = format(v, prec)
			if back, _ := strconv.ParseFloat(strings.TrimSpace(out[i]), 64); math.Abs(back-v) > 1e-9*math.Max(1, math.Abs(v)) {
				ok = false
			}
		}
		if ok {
			return out
		}
	}
	out := make([]string, len(vals))
	for i, v := range vals {
		out[i] = format(v, 10)
	}
	return out
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

// WritePlot renders the curves and writes them as a PNG file, atomically.
func WritePlot(path string, recs []Record, opt PlotOptions) error {
	img, err := RenderCurves(recs, opt)
	if err != nil {
		return err
	}
	return fsutil.WriteAtomic(path, func(f *os.File) error {
		return png.Encode(f, img)
	})
}
