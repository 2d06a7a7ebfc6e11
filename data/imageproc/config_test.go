package imageproc

import (
	"strings"
	"testing"

	"github.com/gitcap/gitcap/data/fixtures"
)

func TestLoadConfigFixture(t *testing.T) {
	cfg, err := LoadConfig(fixtures.Path(t, "git-tiny", "preprocessor_config.json"))
	if err != nil {
		t.Fatal(err)
	}
	want := DefaultConfig()
	want.Size = Size{ShortestEdge: 32}
	want.CropHeight, want.CropWidth = 32, 32
	want.RescaleFactor = 0.00392156862745098
	if cfg != want {
		t.Errorf("got %+v\nwant %+v", cfg, want)
	}
}

func TestParseConfig(t *testing.T) {
	def := DefaultConfig()
	cases := []struct {
		name, json string
		check      func(Config) bool
	}{
		{"empty object gives CLIP defaults", `{}`, func(c Config) bool { return c == def }},
		{"nulls give defaults", `{"size": null, "crop_size": null, "image_mean": null, "resample": null}`,
			func(c Config) bool { return c == def }},
		{"git-base style ints", `{"size": 224, "crop_size": 224, "feature_extractor_type": "CLIPFeatureExtractor"}`,
			func(c Config) bool {
				return c.Size == Size{ShortestEdge: 224} && c.CropHeight == 224 && c.CropWidth == 224
			}},
		{"height/width size", `{"size": {"height": 30, "width": 40}, "crop_size": {"height": 20, "width": 10}}`,
			func(c Config) bool {
				return c.Size == Size{Height: 30, Width: 40} && c.CropHeight == 20 && c.CropWidth == 10
			}},
		{"list size", `{"size": [30, 40], "crop_size": [5, 6]}`,
			func(c Config) bool {
				return c.Size == Size{Height: 30, Width: 40} && c.CropHeight == 5 && c.CropWidth == 6
			}},
		{"bilinear, flags, scalar mean", `{"resample": 2, "do_center_crop": false, "do_normalize": false, "image_mean": 0.5, "image_std": [1, 2, 3]}`,
			func(c Config) bool {
				return c.Resample == Bilinear && !c.DoCenterCrop && !c.DoNormalize &&
					c.ImageMean == [3]float64{0.5, 0.5, 0.5} && c.ImageStd == [3]float64{1, 2, 3}
			}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg, err := ParseConfig([]byte(c.json))
			if err != nil {
				t.Fatal(err)
			}
			if !c.check(cfg) {
				t.Errorf("%+v", cfg)
			}
		})
	}
}

func TestLoadConfigErrors(t *testing.T) {
	cases := []struct{ name, json, want string }{
		{"malformed", `{"size": 32,`, "malformed JSON"},
		{"not an object", `[1, 2]`, "malformed JSON"},
		{"bool type", `{"do_resize": "yes"}`, `"do_resize"`},
		{"size type", `{"size": "big"}`, `"size"`},
		{"size dict", `{"size": {"longest_edge": 10}}`, `"size"`},
		{"size negative", `{"size": -3}`, `"size"`},
		{"crop shortest edge", `{"crop_size": {"shortest_edge": 10}}`, `"crop_size"`},
		{"resample float", `{"resample": 2.5}`, `"resample"`},
		{"resample nearest", `{"resample": 0}`, "nearest"},
		{"resample unknown", `{"resample": 9}`, "unknown resample"},
		{"mean length", `{"image_mean": [0.1, 0.2]}`, `"image_mean"`},
		{"std zero", `{"image_std": [0.1, 0, 0.2]}`, "image_std"},
		{"rescale type", `{"rescale_factor": "1/255"}`, `"rescale_factor"`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := writeFile(t, "preprocessor_config.json", []byte(c.json))
			_, err := LoadConfig(path)
			if err == nil {
				t.Fatal("no error")
			}
			if !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %q should name the file and mention %q", err, c.want)
			}
		})
	}
	if _, err := LoadConfig("/nonexistent/preprocessor_config.json"); err == nil ||
		!strings.Contains(err.Error(), "/nonexistent/preprocessor_config.json") {
		t.Errorf("missing file: %v", err)
	}
}
