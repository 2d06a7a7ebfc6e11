package imageproc

import (
	"fmt"
	"math"
)

// Resampling filters, numbered as PIL's Image.Resampling (and HF's
// PILImageResampling) so that a preprocessor_config.json "resample" value can
// be used directly.
const (
	Nearest  = 0 // not supported by this package (PIL uses an affine transform)
	Lanczos  = 1
	Bilinear = 2
	Bicubic  = 3
	Box      = 4
	Hamming  = 5
)

// filter is Pillow's struct filter: a kernel and its support at scale 1.
type filter struct {
	fn      func(float64) float64
	support float64
}

// The kernels are written with explicit float64 conversions around every
// product that is followed by an addition: Go may otherwise fuse a*b+c into
// one FMA instruction on some architectures, which Pillow's C code (compiled
// for baseline x86-64) never does, and that could move a coefficient by one
// ulp.

func boxFilter(x float64) float64 {
	if x > -0.5 && x <= 0.5 {
		return 1.0
	}
	return 0.0
}

func bilinearFilter(x float64) float64 {
	if x < 0.0 {
		x = -x
	}
	if x < 1.0 {
		return 1.0 - x
	}
	return 0.0
}

func hammingFilter(x float64) float64 {
	if x < 0.0 {
		x = -x
	}
	if x == 0.0 {
		return 1.0
	}
	if x >= 1.0 {
		return 0.0
	}
	x = x * math.Pi
	// 0.54f and 0.46f are float constants in Pillow.
	return math.Sin(x) / x * (float64(float32(0.54)) + float64(float64(float32(0.46))*math.Cos(x)))
}

func bicubicFilter(x float64) float64 {
	const a = -0.5
	if x < 0.0 {
		x = -x
	}
	if x < 1.0 {
		// ((a + 2.0) * x - (a + 3.0)) * x * x + 1
		t := float64((a+2.0)*x) - (a + 3.0)
		return float64(t*x*x) + 1
	}
	if x < 2.0 {
		// (((x - 5) * x + 8) * x - 4) * a
		t := float64((x-5)*x) + 8
		t = float64(t*x) - 4
		return t * a
	}
	return 0.0
}

func sincFilter(x float64) float64 {
	if x == 0.0 {
		return 1.0
	}
	x = x * math.Pi
	return math.Sin(x) / x
}

func lanczosFilter(x float64) float64 {
	if -3.0 <= x && x < 3.0 {
		return sincFilter(x) * sincFilter(x/3)
	}
	return 0.0
}

func filterFor(resample int) (filter, error) {
	switch resample {
	case Lanczos:
		return filter{lanczosFilter, 3.0}, nil
	case Bilinear:
		return filter{bilinearFilter, 1.0}, nil
	case Bicubic:
		return filter{bicubicFilter, 2.0}, nil
	case Box:
		return filter{boxFilter, 0.5}, nil
	case Hamming:
		return filter{hammingFilter, 1.0}, nil
	case Nearest:
		return filter{}, fmt.Errorf("resample 0 (nearest) is not supported; use 1 (lanczos), 2 (bilinear), 3 (bicubic), 4 (box) or 5 (hamming)")
	}
	return filter{}, fmt.Errorf("unknown resample filter %d (PIL numbering: 1 lanczos, 2 bilinear, 3 bicubic, 4 box, 5 hamming)", resample)
}

// precisionBits is Pillow's PRECISION_BITS for 8-bit images.
const precisionBits = 32 - 8 - 2

// coeffs holds the fixed-point resampling weights of one axis: for output
// index i, the input samples bounds[2i] .. bounds[2i]+bounds[2i+1]-1 are
// weighted by k[i*ksize : i*ksize+bounds[2i+1]].
type coeffs struct {
	ksize  int
	bounds []int
	k      []int32
	pre    []float64
}

// precompute is Pillow's precompute_coeffs followed by
// normalize_coeffs_8bpc, for the box (0, inSize) of the input axis. The
// buffers of c are reused.
func (c *coeffs) precompute(inSize, outSize int, f filter) {
	// in0 = 0 and in1 = inSize are floats in Pillow; (double)(in1 - in0) is
	// exact for any image size below 2^24.
	in0 := 0.0
	scale := float64(float32(inSize)-float32(0)) / float64(outSize)
	filterscale := scale
	if filterscale < 1.0 {
		filterscale = 1.0
	}
	support := f.support * filterscale
	ksize := int(math.Ceil(support))*2 + 1
	c.ksize = ksize
	c.bounds = grow(c.bounds, 2*outSize)
	c.k = grow(c.k, outSize*ksize)
	c.pre = grow(c.pre, ksize)
	ss := 1.0 / filterscale
	for xx := 0; xx < outSize; xx++ {
		center := in0 + float64((float64(xx)+0.5)*scale)
		ww := 0.0
		xmin := int(center - support + 0.5)
		if xmin < 0 {
			xmin = 0
		}
		xmax := int(center + support + 0.5)
		if xmax > inSize {
			xmax = inSize
		}
		xmax -= xmin
		pre := c.pre[:ksize]
		for x := 0; x < xmax; x++ {
			w := f.fn((float64(x+xmin) - center + 0.5) * ss)
			pre[x] = w
			ww += w
		}
		for x := 0; x < xmax; x++ {
			if ww != 0.0 {
				pre[x] /= ww
			}
		}
		k := c.k[xx*ksize : (xx+1)*ksize]
		for x := range k {
			if x >= xmax {
				k[x] = 0
				continue
			}
			// normalize_coeffs_8bpc; the product by 2^22 is exact.
			if pre[x] < 0 {
				k[x] = int32(-0.5 + pre[x]*(1<<precisionBits))
			} else {
				k[x] = int32(0.5 + pre[x]*(1<<precisionBits))
			}
		}
		c.bounds[2*xx] = xmin
		c.bounds[2*xx+1] = xmax
	}
}

// clip8 is Pillow's clip8: drop the fixed-point fraction and clamp.
func clip8(v int32) uint8 {
	v >>= precisionBits
	if v < 0 {
		return 0
	}
	if v > 255 {
		return 255
	}
	return uint8(v)
}

func grow[T any](s []T, n int) []T {
	if cap(s) < n {
		return make([]T, n)
	}
	return s[:n]
}

// resizeWindow computes the pixels [x0,x1) x [y0,y1) of Pillow's
// Image.resize((dw, dh), resample) of the packed RGB image src (sw x sh,
// 3 bytes per pixel), writing them packed into dst ((x1-x0) x (y1-y0)).
// It follows ImagingResampleInner: horizontal pass first (only when the
// width changes) into an 8-bit intermediate, then the vertical pass (only
// when the height changes); each output pixel is computed exactly as Pillow
// computes it, so any window of the result is bit-identical to the same
// window of Pillow's full result.
func resizeWindow(dst, src []uint8, sw, sh, dw, dh, x0, x1, y0, y1 int, f filter, s *Scratch) {
	ow, oh := x1-x0, y1-y0
	if ow <= 0 || oh <= 0 {
		return
	}
	needH := dw != sw
	needV := dh != sh

	// Rows of the horizontally resampled image that are needed.
	ry0, ry1 := y0, y1
	if needV {
		s.cy.precompute(sh, dh, f)
		ry0 = s.cy.bounds[2*y0]
		ry1 = ry0
		for y := y0; y < y1; y++ {
			ry0 = min(ry0, s.cy.bounds[2*y])
			ry1 = max(ry1, s.cy.bounds[2*y]+s.cy.bounds[2*y+1])
		}
	}

	// tmp holds rows [ry0, ry1) of the horizontal result, columns [x0, x1).
	var tmp []uint8
	tmpStride := 3 * ow
	if needH {
		s.cx.precompute(sw, dw, f)
		s.tmp = grow(s.tmp, tmpStride*(ry1-ry0))
		tmp = s.tmp
		ks := s.cx.ksize
		for y := ry0; y < ry1; y++ {
			in := src[y*3*sw : (y+1)*3*sw]
			out := tmp[(y-ry0)*tmpStride : (y-ry0+1)*tmpStride]
			for xx := x0; xx < x1; xx++ {
				xmin := s.cx.bounds[2*xx]
				xmax := s.cx.bounds[2*xx+1]
				k := s.cx.k[xx*ks : xx*ks+xmax]
				p := in[3*xmin : 3*(xmin+xmax)]
				ss0, ss1, ss2 := int32(1<<(precisionBits-1)), int32(1<<(precisionBits-1)), int32(1<<(precisionBits-1))
				for x, kx := range k {
					q := p[3*x : 3*x+3 : 3*x+3]
					ss0 += int32(q[0]) * kx
					ss1 += int32(q[1]) * kx
					ss2 += int32(q[2]) * kx
				}
				o := out[3*(xx-x0) : 3*(xx-x0)+3 : 3*(xx-x0)+3]
				o[0], o[1], o[2] = clip8(ss0), clip8(ss1), clip8(ss2)
			}
		}
	} else {
		// The source itself, viewed from row ry0 and column x0.
		tmp = src[ry0*3*sw+3*x0:]
		tmpStride = 3 * sw
	}

	if !needV {
		for y := y0; y < y1; y++ {
			copy(dst[(y-y0)*3*ow:(y-y0+1)*3*ow], tmp[(y-ry0)*tmpStride:(y-ry0)*tmpStride+3*ow])
		}
		return
	}
	// Vertical pass, one output row at a time: accumulate whole input rows
	// (same sums as Pillow's per-pixel loop, in a cache-friendly order).
	ks := s.cy.ksize
	s.acc = grow(s.acc, 3*ow)
	acc := s.acc
	for yy := y0; yy < y1; yy++ {
		ymin := s.cy.bounds[2*yy] - ry0
		ymax := s.cy.bounds[2*yy+1]
		k := s.cy.k[yy*ks : yy*ks+ymax]
		for i := range acc {
			acc[i] = 1 << (precisionBits - 1)
		}
		for y, ky := range k {
			row := tmp[(ymin+y)*tmpStride:]
			row = row[:len(acc)]
			for i, v := range row {
				acc[i] += int32(v) * ky
			}
		}
		out := dst[(yy-y0)*3*ow : (yy-y0+1)*3*ow]
		for i, v := range acc {
			out[i] = clip8(v)
		}
	}
}
