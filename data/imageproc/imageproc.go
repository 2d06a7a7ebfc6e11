// Package imageproc loads images and turns them into GIT's pixel_values
// exactly as HuggingFace's CLIPImageProcessor (transformers 4.36.2, with
// Pillow 9.4.0 and libjpeg-turbo 2.1.5) does:
//
//  1. Load: decode PNG/JPEG/GIF and apply the EXIF orientation
//     (transformers.image_utils.load_image). JPEGs are decoded
//     bit-identically to libjpeg-turbo.
//  2. convert("RGB"): see toRGB for each pixel type (alpha dropped, gray
//     replicated, palette looked up).
//  3. Resize so that the short side is size.shortest_edge and the long side
//     int(shortest_edge*long/short) (or to size.height x size.width) with
//     Pillow's separable, antialiased convolution resampler
//     (ImagingResample: fixed-point coefficients with 22 fractional bits,
//     horizontal pass then vertical pass, 8-bit intermediate). Bit-exact.
//  4. Center crop (top = (h-crop_h)//2, left = (w-crop_w)//2), zero-padding
//     an image smaller than the crop the way transformers 4.36.2's
//     image_transforms.center_crop does (including its off-by-one: when the
//     missing size is odd the result is one pixel smaller than the crop;
//     fixed in transformers 4.42).
//  5. x*rescale_factor computed in float64 from the uint8 value, cast to
//     float32, then (x-mean)/std in float32, channels first.
//
// The output is a float32 tensor [3, H, W] in row-major order. A Processor
// is immutable and safe for concurrent use; per-goroutine scratch memory is
// held in a Scratch that the caller owns.
package imageproc

import (
	"fmt"
	"image"
)

// Processor preprocesses images for one Config.
type Processor struct {
	cfg  Config
	filt filter
	// lut[c][v] is the final value of channel c for the uint8 sample v
	// (rescale and normalisation folded in; bit-identical to doing them
	// one after the other).
	lut [3][256]float32
	// limits bound the files PreprocessFile and Load accept.
	limits Limits
}

// WithLimits returns a copy of p that loads images within l (the CLI's
// --max-image-pixels sets l.MaxPixels). p itself is unchanged.
func (p *Processor) WithLimits(l Limits) *Processor {
	q := *p
	q.limits = l
	return &q
}

// Limits returns the limits PreprocessFile and Load apply.
func (p *Processor) Limits() Limits { return p.limits }

// Load loads an image file within p's limits (see Limits.Load).
func (p *Processor) Load(path string) (image.Image, error) { return p.limits.Load(path) }

// Scratch holds the buffers one goroutine reuses across images. The zero
// value is ready to use; a Scratch must not be shared between goroutines.
type Scratch struct {
	rgb, tmp, win []uint8
	acc           []int32
	cx, cy        coeffs
}

// New returns a Processor for cfg, or an error if cfg cannot be run.
func New(cfg Config) (*Processor, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("imageproc: %w", err)
	}
	p := &Processor{cfg: cfg}
	if cfg.DoResize {
		f, err := filterFor(cfg.Resample)
		if err != nil {
			return nil, fmt.Errorf("imageproc: %w", err)
		}
		p.filt = f
	}
	for c := 0; c < 3; c++ {
		mean, std := float32(cfg.ImageMean[c]), float32(cfg.ImageStd[c])
		for v := 0; v < 256; v++ {
			x := float32(v)
			if cfg.DoRescale {
				x = float32(float64(v) * cfg.RescaleFactor)
			}
			if cfg.DoNormalize {
				x = (x - mean) / std
			}
			p.lut[c][v] = x
		}
	}
	return p, nil
}

// Config returns the processor's configuration.
func (p *Processor) Config() Config { return p.cfg }

// ResizedSize is the size (width, height) an input of w x h has after the
// resize step (the input size when do_resize is false). It follows HF's
// get_resize_output_image_size with default_to_square=False.
func (p *Processor) ResizedSize(w, h int) (rw, rh int) {
	if !p.cfg.DoResize {
		return w, h
	}
	s := p.cfg.Size
	if s.ShortestEdge <= 0 {
		return s.Width, s.Height
	}
	short, long := h, w
	if w <= h {
		short, long = w, h
	}
	newShort := s.ShortestEdge
	// Python: int(requested_new_short * long / short), a float64 true
	// division then truncation.
	newLong := int(float64(newShort*long) / float64(short))
	if w <= h {
		return newShort, newLong
	}
	return newLong, newShort
}

// cropPlan says where the output comes from: output pixel (i, j) is resized
// pixel (i+offY, j+offX) when that lies inside the resized image and zero
// (before rescale/normalise) otherwise.
type cropPlan struct {
	outW, outH, offX, offY int
}

func floorDiv(a, b int) int {
	q := a / b
	if (a%b != 0) && ((a < 0) != (b < 0)) {
		q--
	}
	return q
}

// plan computes the center crop of transformers 4.36.2's
// image_transforms.center_crop for a w x h image.
func (p *Processor) plan(w, h int) cropPlan {
	if !p.cfg.DoCenterCrop {
		return cropPlan{outW: w, outH: h}
	}
	axis := func(orig, crop int) (out, off int) {
		top := floorDiv(orig-crop, 2)
		bottom := top + crop
		if top >= 0 && bottom <= orig {
			return crop, top
		}
		// Zero-pad to max(crop, orig), image placed at (new-orig)//2, then
		// slice [max(0, top+pad), min(new, bottom+pad)).
		n := max(crop, orig)
		pad := (n - orig) / 2
		lo := max(0, top+pad)
		hi := min(n, bottom+pad)
		return hi - lo, lo - pad
	}
	var c cropPlan
	c.outH, c.offY = axis(h, p.cfg.CropHeight)
	c.outW, c.offX = axis(w, p.cfg.CropWidth)
	return c
}

// OutputSize is the (height, width) of the tensor produced for an input
// image of w x h pixels. It is (crop_height, crop_width) except when
// do_center_crop is false or the resized image is smaller than the crop by
// an odd number of pixels (see the package comment).
func (p *Processor) OutputSize(w, h int) (oh, ow int) {
	rw, rh := p.ResizedSize(w, h)
	c := p.plan(rw, rh)
	return c.outH, c.outW
}

// Preprocess returns img as a float32 tensor [3, H, W] (H, W from
// OutputSize).
func (p *Processor) Preprocess(img image.Image) ([]float32, error) {
	b := img.Bounds()
	oh, ow := p.OutputSize(b.Dx(), b.Dy())
	dst := make([]float32, 3*oh*ow)
	var s Scratch
	if _, _, err := p.PreprocessInto(dst, img, &s); err != nil {
		return nil, err
	}
	return dst, nil
}

// PreprocessInto writes img as a [3, H, W] tensor into dst[:3*H*W] and
// returns H and W. dst may be a slice of a batch tensor. s holds reusable
// buffers (nil allocates temporary ones); after the first image of a given
// size no further allocation happens.
func (p *Processor) PreprocessInto(dst []float32, img image.Image, s *Scratch) (h, w int, err error) {
	if img == nil {
		return 0, 0, fmt.Errorf("imageproc: nil image")
	}
	if s == nil {
		s = new(Scratch)
	}
	b := img.Bounds()
	iw, ih := b.Dx(), b.Dy()
	if iw <= 0 || ih <= 0 {
		return 0, 0, fmt.Errorf("imageproc: empty image (%dx%d)", iw, ih)
	}
	if max := p.limits.maxPixels(); max >= 0 && int64(iw)*int64(ih) > max {
		return 0, 0, fmt.Errorf("imageproc: image of %dx%d pixels exceeds the limit of %d pixels", iw, ih, max)
	}
	rw, rh := p.ResizedSize(iw, ih)
	if rw <= 0 || rh <= 0 {
		return 0, 0, fmt.Errorf("imageproc: image of %dx%d resizes to %dx%d", iw, ih, rw, rh)
	}
	c := p.plan(rw, rh)
	n := c.outH * c.outW
	if len(dst) < 3*n {
		return 0, 0, fmt.Errorf("imageproc: output buffer holds %d values, need 3*%d*%d = %d", len(dst), c.outH, c.outW, 3*n)
	}
	s.rgb = toRGB(s.rgb, img)

	// The part of the resized image that the crop keeps.
	x0, x1 := max(0, c.offX), min(rw, c.offX+c.outW)
	y0, y1 := max(0, c.offY), min(rh, c.offY+c.outH)
	ww := max(0, x1-x0)
	if x1 > x0 && y1 > y0 {
		s.win = grow(s.win, 3*ww*(y1-y0))
		resizeWindow(s.win, s.rgb, iw, ih, rw, rh, x0, x1, y0, y1, p.filt, s)
	}

	r, g, bl := dst[:n], dst[n:2*n], dst[2*n:3*n]
	for i := 0; i < c.outH; i++ {
		sy := i + c.offY
		for j := 0; j < c.outW; j++ {
			sx := j + c.offX
			var v0, v1, v2 uint8 // zero padding
			if sy >= y0 && sy < y1 && sx >= x0 && sx < x1 {
				q := s.win[3*((sy-y0)*ww+(sx-x0)):]
				v0, v1, v2 = q[0], q[1], q[2]
			}
			k := i*c.outW + j
			r[k], g[k], bl[k] = p.lut[0][v0], p.lut[1][v1], p.lut[2][v2]
		}
	}
	return c.outH, c.outW, nil
}

// PreprocessFile loads path (see Load) and preprocesses it.
func (p *Processor) PreprocessFile(path string) ([]float32, error) {
	img, err := p.limits.Load(path)
	if err != nil {
		return nil, err
	}
	out, err := p.Preprocess(img)
	if err != nil {
		return nil, fmt.Errorf("imageproc: %s: %w", path, err)
	}
	return out, nil
}
