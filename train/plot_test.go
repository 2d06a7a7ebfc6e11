package train

import (
	"bytes"
	"image/png"
	"math"
	"os"
	"path/filepath"
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

func TestRenderCurvesDrawsTheData(t *testing.T) {
	img, err := RenderCurves(syntheticRun(), PlotOptions{Width: 600, Height: 600})
	if err != nil {
		t.Fatal(err)
	}
	count := map[uint32]int{}
	for y := 0; y < 600; y++ {
		for x := 0; x < 600; x++ {
			c := img.RGBAAt(x, y)
			count[uint32(c.R)<<16|uint32(c.G)<<8|uint32(c.B)]++
		}
	}
	for _, c := range []struct {
		name string
		rgb  uint32
	}{{"train loss", colLoss}, {"val loss", colVal}, {"learning rate", colLR}, {"CIDEr", colScore}, {"text", colText}} {
		if count[c.rgb] < 20 {
			t.Errorf("%s colour drawn on %d pixels only", c.name, count[c.rgb])
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

func TestTickLabels(t *testing.T) {
	cases := []struct {
		v, step float64
		want    string
	}{
		{0, 1, "0"}, {0.25, 0.05, "0.25"}, {1500, 500, "1500"}, {20000, 5000, "20k"},
		{3e-4, 1e-4, "3e-4"}, {1.5e-5, 5e-6, "1.5e-5"}, {2, 0.5, "2.0"}, {0.001, 0.0005, "0.0010"},
		{0.25, 0.25, "0.25"}, {0.75, 0.25, "0.75"}, {7.5e-5, 2.5e-5, "7.5e-5"}, {750, 250, "750"}, {2.5, 2.5, "2.5"},
	}
	for _, tc := range cases {
		if got := tickLabel(tc.v, tc.step); got != tc.want {
			t.Errorf("tickLabel(%v, %v) = %q, want %q", tc.v, tc.step, got, tc.want)
		}
	}
	ticks, step := niceTicks(0, 1000, 6)
	if step != 200 || len(ticks) != 6 || ticks[5] != 1000 {
		t.Errorf("niceTicks(0, 1000, 6) = %v step %v", ticks, step)
	}
}
