package imageproc

import (
	"math"
	"os"
	"sort"
	"testing"

	"github.com/gitcap/gitcap/data/fixtures"
	"github.com/gitcap/gitcap/data/tensorfile"
)

// fixtureImages lists the 12 images of fixtures/images (the test fails if
// the folder holds a different set, so that new fixtures are not silently
// left out).
var fixtureImages = []string{
	"cats.png",
	"gradient_96x64.png",
	"gray_L_40x30.png",
	"rgba_alpha_48x48.png",
	"shape_black_circle_on_yellow.png",
	"shape_blue_circle_on_white.png",
	"shape_green_triangle_on_black.png",
	"shape_red_square_on_white.png",
	"shape_white_cross_on_red.png",
	"shape_yellow_square_on_black.png",
	"stripes_50x150.png",
	"sun_q90.jpg",
}

func parityProcessors(t *testing.T) map[int]*Processor {
	t.Helper()
	cfg, err := LoadConfig(fixtures.Path(t, "git-tiny", "preprocessor_config.json"))
	if err != nil {
		t.Fatal(err)
	}
	p32, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Size = Size{ShortestEdge: 224}
	cfg.CropHeight, cfg.CropWidth = 224, 224
	p224, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return map[int]*Processor{32: p32, 224: p224}
}

// TestParityWithHF compares every fixture image at 32 and 224 with the
// pixel_values HF's CLIPImageProcessor produced.
func TestParityWithHF(t *testing.T) {
	ref, err := tensorfile.Open(fixtures.Path(t, "git-tiny", "reference", "preprocess.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(fixtures.Path(t, "images"))
	if err != nil {
		t.Fatal(err)
	}
	var onDisk []string
	for _, e := range entries {
		onDisk = append(onDisk, e.Name())
	}
	sort.Strings(onDisk)
	if len(onDisk) != len(fixtureImages) {
		t.Errorf("fixtures/images holds %v, the test knows %v", onDisk, fixtureImages)
	}
	procs := parityProcessors(t)
	for _, res := range []int{32, 224} {
		var worst, sumAbs float64
		var total, exact int
		for _, name := range fixtureImages {
			t.Run(name+"/"+itoa(res), func(t *testing.T) {
				want, shape, err := ref.F32("pixel_values_" + itoa(res) + "/" + name)
				if err != nil {
					t.Fatal(err)
				}
				if len(shape) != 4 || shape[0] != 1 || shape[1] != 3 || shape[2] != res || shape[3] != res {
					t.Fatalf("reference shape %v", shape)
				}
				got, err := procs[res].PreprocessFile(fixtures.Path(t, "images", name))
				if err != nil {
					t.Fatal(err)
				}
				if len(got) != len(want) {
					t.Fatalf("got %d values, want %d", len(got), len(want))
				}
				var maxd, sum float64
				same := 0
				for i := range got {
					d := math.Abs(float64(got[i]) - float64(want[i]))
					sum += d
					maxd = math.Max(maxd, d)
					if got[i] == want[i] {
						same++
					}
				}
				t.Logf("max |diff| %.3g, mean |diff| %.3g, %d/%d values bit-identical", maxd, sum/float64(len(got)), same, len(got))
				if maxd > 0.02 {
					t.Errorf("max |diff| %g > 0.02", maxd)
				}
				worst = math.Max(worst, maxd)
				sumAbs += sum
				total += len(got)
				exact += same
			})
		}
		t.Logf("resolution %d: max |diff| %.3g, mean |diff| %.3g, %d/%d values bit-identical", res, worst, sumAbs/float64(max(total, 1)), exact, total)
	}
}

func itoa(n int) string {
	if n == 0 {
		return "0"
	}
	var b []byte
	for ; n > 0; n /= 10 {
		b = append([]byte{byte('0' + n%10)}, b...)
	}
	return string(b)
}
