package train

import (
	"bytes"
	"image/color"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

// syntheticRun is what a 1000-step run logs: loss every 10 steps, a
// validation every 200.
func syntheticRun() []Record {
	s := Schedule{Kind: ScheduleCosine, BaseLR: 1e-4, WarmupSteps: 100, TotalSteps: 1000, MinLRRatio: 0.1}
	var recs []Record
	for step := 10; step <= 1000; step += 10 {
		r := NewRecord(step)
		r.Epoch = float64(step) / 250
		r.Loss = 3*math.Exp(-float64(step)/300) + 0.6 + 0.15*math.Sin(float64(step)*0.7)
		r.LR = s.LR(step - 1)
		r.GradNorm = 1
		recs = append(recs, r)
		if step%200 == 0 {
			v := NewRecord(step)
			v.ValLoss = 3*math.Exp(-float64(step)/300) + 0.8
			v.ValCIDEr = 1.1 * (1 - math.Exp(-float64(step)/400))
			recs = append(recs, v)
		}
	}
	return recs
}

func TestWritePlotProducesPNGOfRequestedSize(t *testing.T) {
	dir := t.TempDir()
	if d := os.Getenv("GITCAP_PLOT_DIR"); d != "" {
		dir = d // to look at the pictures
	}
	cases := []struct {
		name string
		recs []Record
		w, h int
	}{
		{"full run", syntheticRun(), 900, 900},
		{"small", syntheticRun(), 400, 300},
		{"wide", syntheticRun()[:40], 1600, 700},
		{"no records", nil, 640, 480},
		{"one record", []Record{{Step: 0, Loss: 2, LR: 0, ValLoss: math.NaN(), ValCIDEr: math.NaN(), Epoch: math.NaN(), GradNorm: math.NaN(), ImagesPerS: math.NaN()}}, 500, 500},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, "curves_"+tc.name+".png")
			if err := WritePlot(path, tc.recs, PlotOptions{Width: tc.w, Height: tc.h, Title: "gitcap " + tc.name}); err != nil {
				t.Fatal(err)
			}
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			img, err := png.Decode(bytes.NewReader(b))
			if err != nil {
				t.Fatalf("not a PNG: %v", err)
			}
			if got := img.Bounds().Size(); got.X != tc.w || got.Y != tc.h {
				t.Errorf("size %v, want %dx%d", got, tc.w, tc.h)
			}
		})
	}
}

// TestRenderCurvesDrawsTheData checks that each curve's colour and dark
// label text appear in the picture.
func TestRenderCurvesDrawsTheData(t *testing.T) {
	img, err := RenderCurves(syntheticRun(), PlotOptions{Width: 600, Height: 600})
	if err != nil {
		t.Fatal(err)
	}
	near := func(a, b uint8) bool { return a-b < 12 || b-a < 12 }
	for _, c := range []struct {
		name string
		c    color.RGBA
	}{{"train loss", colLoss}, {"val loss", colVal}, {"learning rate", colLR}, {"CIDEr", colScore}, {"text", color.RGBA{0, 0, 0, 255}}} {
		n := 0
		for y := 0; y < 600; y++ {
			for x := 0; x < 600; x++ {
				p := img.RGBAAt(x, y)
				if near(p.R, c.c.R) && near(p.G, c.c.G) && near(p.B, c.c.B) {
					n++
				}
			}
		}
		if n < 20 {
			t.Errorf("%s colour drawn on %d pixels only", c.name, n)
		}
	}
}

func TestRenderCurvesRejectsBadSize(t *testing.T) {
	for _, wh := range [][2]int{{10, 10}, {100000, 500}, {500, -1}} {
		if _, err := RenderCurves(nil, PlotOptions{Width: wh[0], Height: wh[1]}); err == nil {
			t.Errorf("size %v: no error", wh)
		}
	}
}

// TestTickLabelsShareOneFormat: the labels of one axis use one format
// and as few digits as tell them apart.
func TestTickLabelsShareOneFormat(t *testing.T) {
	cases := []struct {
		vals []float64
		want []string
	}{
		{[]float64{0, 250, 500, 750, 1000}, []string{"0", "250", "500", "750", "1000"}},
		{[]float64{0, 0.25, 0.5, 0.75}, []string{"0", "0.25", "0.50", "0.75"}},
		{[]float64{5e-4, 0.001, 0.0015}, []string{"5.0e-04", "1.0e-03", "1.5e-03"}},
		{[]float64{0, 2.5e-5, 5e-5, 7.5e-5}, []string{"0", "2.5e-05", "5.0e-05", "7.5e-05"}},
		{[]float64{1, 2, 3}, []string{"1", "2", "3"}},
	}
	for _, c := range cases {
		if got := tickLabels(c.vals); !reflect.DeepEqual(got, c.want) {
			t.Errorf("tickLabels(%v) = %q, want %q", c.vals, got, c.want)
		}
	}
}
