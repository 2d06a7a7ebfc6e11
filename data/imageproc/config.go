package imageproc

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"os"
)

// OpenAI CLIP normalisation constants (HF's OPENAI_CLIP_MEAN / _STD).
const (
	clipMeanR, clipMeanG, clipMeanB = 0.48145466, 0.4578275, 0.40821073
	clipStdR, clipStdG, clipStdB    = 0.26862954, 0.26130258, 0.27577711
)

// Size is a resize target: either ShortestEdge (> 0: scale so that the short
// side has this length, keeping the aspect ratio) or Height x Width (exact).
type Size struct {
	ShortestEdge  int
	Height, Width int
}

func (s Size) String() string {
	if s.ShortestEdge > 0 {
		return fmt.Sprintf("{shortest_edge: %d}", s.ShortestEdge)
	}
	return fmt.Sprintf("{height: %d, width: %d}", s.Height, s.Width)
}

// Config mirrors the fields of HF's CLIPImageProcessor (transformers
// 4.36.2) that affect pixel values.
type Config struct {
	DoResize     bool
	Size         Size
	Resample     int // PIL numbering: 1 lanczos, 2 bilinear, 3 bicubic, 4 box, 5 hamming
	DoCenterCrop bool
	// CropHeight and CropWidth are crop_size.
	CropHeight, CropWidth int
	DoRescale             bool
	RescaleFactor         float64
	DoNormalize           bool
	ImageMean, ImageStd   [3]float64
	// DoConvertRGB is recorded for completeness. Images are always
	// converted to RGB (the only input for which HF's processor works with
	// do_convert_rgb=false is an RGB image, for which conversion is a no-op).
	DoConvertRGB bool
}

// DefaultConfig is CLIPImageProcessor's defaults: shortest edge 224,
// bicubic, center crop 224x224, rescale 1/255, CLIP mean/std, convert RGB.
func DefaultConfig() Config {
	return Config{
		DoResize:      true,
		Size:          Size{ShortestEdge: 224},
		Resample:      Bicubic,
		DoCenterCrop:  true,
		CropHeight:    224,
		CropWidth:     224,
		DoRescale:     true,
		RescaleFactor: 1.0 / 255.0,
		DoNormalize:   true,
		ImageMean:     [3]float64{clipMeanR, clipMeanG, clipMeanB},
		ImageStd:      [3]float64{clipStdR, clipStdG, clipStdB},
		DoConvertRGB:  true,
	}
}

// Validate reports a configuration this package cannot run.
func (c Config) Validate() error {
	if c.DoResize {
		if c.Size.ShortestEdge <= 0 && (c.Size.Height <= 0 || c.Size.Width <= 0) {
			return fmt.Errorf("size %v: need a positive shortest_edge or a positive height and width", c.Size)
		}
		if _, err := filterFor(c.Resample); err != nil {
			return err
		}
	}
	if c.DoCenterCrop && (c.CropHeight <= 0 || c.CropWidth <= 0) {
		return fmt.Errorf("crop_size %dx%d: height and width must be positive", c.CropHeight, c.CropWidth)
	}
	if c.DoRescale && (math.IsNaN(c.RescaleFactor) || math.IsInf(c.RescaleFactor, 0)) {
		return fmt.Errorf("rescale_factor %v is not finite", c.RescaleFactor)
	}
	if c.DoNormalize {
		for i := 0; i < 3; i++ {
			if float32(c.ImageStd[i]) == 0 || math.IsNaN(c.ImageStd[i]) {
				return fmt.Errorf("image_std[%d] = %v: must be non-zero", i, c.ImageStd[i])
			}
		}
	}
	return nil
}

// LoadConfig reads a HF preprocessor_config.json. Missing keys (and keys set
// to null) take CLIPImageProcessor's defaults; keys this package does not use
// are ignored.
func LoadConfig(path string) (Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("imageproc: reading preprocessor config: %w", err)
	}
	cfg, err := ParseConfig(data)
	if err != nil {
		return Config{}, fmt.Errorf("imageproc: %s: %w", path, err)
	}
	return cfg, nil
}

// ParseConfig parses the JSON text of a preprocessor_config.json; see
// LoadConfig.
func ParseConfig(data []byte) (Config, error) {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(data, &raw); err != nil {
		return Config{}, fmt.Errorf("malformed JSON: %w", err)
	}
	if raw == nil {
		return Config{}, fmt.Errorf("malformed JSON: top level must be an object")
	}
	c := DefaultConfig()
	var err error
	get := func(key string) (json.RawMessage, bool) {
		v, ok := raw[key]
		if !ok || bytes.Equal(bytes.TrimSpace(v), []byte("null")) {
			return nil, false
		}
		return v, true
	}
	boolField := func(key string, dst *bool) {
		if v, ok := get(key); ok && err == nil {
			if e := json.Unmarshal(v, dst); e != nil {
				err = fmt.Errorf("field %q: want true or false, got %s", key, v)
			}
		}
	}
	boolField("do_resize", &c.DoResize)
	boolField("do_center_crop", &c.DoCenterCrop)
	boolField("do_rescale", &c.DoRescale)
	boolField("do_normalize", &c.DoNormalize)
	boolField("do_convert_rgb", &c.DoConvertRGB)
	if err != nil {
		return Config{}, err
	}
	if v, ok := get("size"); ok {
		if c.Size, err = parseSize(v, false); err != nil {
			return Config{}, fmt.Errorf("field \"size\": %w", err)
		}
	}
	if v, ok := get("crop_size"); ok {
		s, e := parseSize(v, true)
		if e != nil {
			return Config{}, fmt.Errorf("field \"crop_size\": %w", e)
		}
		if s.ShortestEdge > 0 {
			return Config{}, fmt.Errorf("field \"crop_size\": need height and width, got %s", v)
		}
		c.CropHeight, c.CropWidth = s.Height, s.Width
	}
	if v, ok := get("resample"); ok {
		var r float64
		if e := json.Unmarshal(v, &r); e != nil || r != math.Trunc(r) {
			return Config{}, fmt.Errorf("field \"resample\": want an integer, got %s", v)
		}
		c.Resample = int(r)
	}
	if v, ok := get("rescale_factor"); ok {
		if e := json.Unmarshal(v, &c.RescaleFactor); e != nil {
			return Config{}, fmt.Errorf("field \"rescale_factor\": want a number, got %s", v)
		}
	}
	for _, f := range []struct {
		key string
		dst *[3]float64
	}{{"image_mean", &c.ImageMean}, {"image_std", &c.ImageStd}} {
		if v, ok := get(f.key); ok {
			if *f.dst, err = parseTriple(v); err != nil {
				return Config{}, fmt.Errorf("field %q: %w", f.key, err)
			}
		}
	}
	if err := c.Validate(); err != nil {
		return Config{}, err
	}
	return c, nil
}

// parseSize follows HF's get_size_dict: an int is {"shortest_edge": n} for
// size (default_to_square=False) and {"height": n, "width": n} for crop_size;
// a two-element list is (height, width); a dict is taken as is.
func parseSize(v json.RawMessage, square bool) (Size, error) {
	var n float64
	if json.Unmarshal(v, &n) == nil {
		if n != math.Trunc(n) || n <= 0 {
			return Size{}, fmt.Errorf("want a positive integer, got %s", v)
		}
		if square {
			return Size{Height: int(n), Width: int(n)}, nil
		}
		return Size{ShortestEdge: int(n)}, nil
	}
	var list []float64
	if json.Unmarshal(v, &list) == nil {
		if len(list) != 2 {
			return Size{}, fmt.Errorf("want [height, width], got %s", v)
		}
		for _, x := range list {
			if x != math.Trunc(x) || x <= 0 {
				return Size{}, fmt.Errorf("want positive integers, got %s", v)
			}
		}
		return Size{Height: int(list[0]), Width: int(list[1])}, nil
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(v, &m); err != nil || m == nil {
		return Size{}, fmt.Errorf("want an integer, [height, width] or an object, got %s", v)
	}
	intKey := func(k string) (int, bool, error) {
		raw, ok := m[k]
		if !ok || bytes.Equal(bytes.TrimSpace(raw), []byte("null")) {
			return 0, false, nil
		}
		var x float64
		if err := json.Unmarshal(raw, &x); err != nil || x != math.Trunc(x) || x <= 0 {
			return 0, true, fmt.Errorf("%q: want a positive integer, got %s", k, raw)
		}
		return int(x), true, nil
	}
	se, hasSE, err := intKey("shortest_edge")
	if err != nil {
		return Size{}, err
	}
	h, hasH, err := intKey("height")
	if err != nil {
		return Size{}, err
	}
	w, hasW, err := intKey("width")
	if err != nil {
		return Size{}, err
	}
	switch {
	case hasSE:
		// CLIPImageProcessor.resize uses shortest_edge when present (a
		// longest_edge next to it is ignored there too).
		return Size{ShortestEdge: se}, nil
	case hasH && hasW:
		return Size{Height: h, Width: w}, nil
	}
	return Size{}, fmt.Errorf("want \"shortest_edge\" or both \"height\" and \"width\", got %s", v)
}

// parseTriple reads a per-channel list of 3 numbers, or one number used for
// all channels.
func parseTriple(v json.RawMessage) ([3]float64, error) {
	var out [3]float64
	var x float64
	if json.Unmarshal(v, &x) == nil {
		return [3]float64{x, x, x}, nil
	}
	var list []float64
	if err := json.Unmarshal(v, &list); err != nil {
		return out, fmt.Errorf("want a number or a list of 3 numbers, got %s", v)
	}
	if len(list) != 3 {
		return out, fmt.Errorf("want 3 values (one per RGB channel), got %d", len(list))
	}
	copy(out[:], list)
	return out, nil
}
