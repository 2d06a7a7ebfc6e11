// Copyright 2026 The gitcap Authors. The upsampling and colour conversion
// arithmetic is that of libjpeg-turbo's jdsample.c and jdcolor.c, so that the
// result matches libjpeg-turbo's default decompression bit for bit.

package ljpeg

import "image"

// ycbcrToRGBA upsamples the chroma planes of d.img3 the way libjpeg-turbo
// does with do_fancy_upsampling (its default) and converts to RGB with
// libjpeg's fixed-point YCbCr->RGB arithmetic.
func (d *decoder) ycbcrToRGBA() *image.RGBA {
	w, h := d.width, d.height
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	m := d.img3
	hExp := d.comp[0].h / d.comp[1].h
	vExp := d.comp[0].v / d.comp[1].v
	// libjpeg's downsampled_width/height: ceil(W * h_i / h_max).
	cw := (w*d.comp[1].h + d.comp[0].h - 1) / d.comp[0].h
	ch := (h*d.comp[1].v + d.comp[0].v - 1) / d.comp[0].v
	cb := upsample(m.Cb, m.CStride, cw, ch, w, h, hExp, vExp)
	cr := upsample(m.Cr, m.CStride, cw, ch, w, h, hExp, vExp)
	for y := 0; y < h; y++ {
		yrow := m.Y[y*m.YStride : y*m.YStride+w]
		cbrow := cb[y*w : y*w+w]
		crrow := cr[y*w : y*w+w]
		out := img.Pix[y*img.Stride : y*img.Stride+4*w]
		for x := 0; x < w; x++ {
			r, g, b := yccToRGB(int(yrow[x]), int(cbrow[x]), int(crrow[x]))
			o := out[4*x : 4*x+4 : 4*x+4]
			o[0], o[1], o[2], o[3] = r, g, b, 255
		}
	}
	return img
}

// yccToRGB is jdcolor.c's ycc_rgb_convert for one pixel (SCALEBITS = 16).
func yccToRGB(y, cb, cr int) (r, g, b uint8) {
	const (
		scaleBits = 16
		oneHalf   = 1 << (scaleBits - 1)
		fixR      = 91881 // FIX(1.40200)
		fixB      = 116130
		fixGr     = 46802 // FIX(0.71414)
		fixGb     = 22554 // FIX(0.34414)
	)
	cb -= 128
	cr -= 128
	rr := y + (fixR*cr+oneHalf)>>scaleBits
	bb := y + (fixB*cb+oneHalf)>>scaleBits
	gg := y + (-fixGb*cb+oneHalf+-fixGr*cr)>>scaleBits
	return clamp8(rr), clamp8(gg), clamp8(bb)
}

func clamp8(v int) uint8 {
	if v < 0 {
		return 0
	}
	if v > 255 {
		return 255
	}
	return uint8(v)
}

// upsample expands a cw x ch chroma plane (row stride stride) to w x h as
// libjpeg-turbo's jinit_upsampler chooses: triangular ("fancy") filters for
// 2:1 horizontal, 2:1 vertical and 2:1 both ways, replication otherwise.
// Neighbours outside the plane are the edge samples, as libjpeg's context
// rows and first/last column special cases make them.
func upsample(src []byte, stride, cw, ch, w, h, hExp, vExp int) []byte {
	out := make([]byte, w*h)
	clampRow := func(r int) int {
		if r < 0 {
			return 0
		}
		if r >= ch {
			return ch - 1
		}
		return r
	}
	switch {
	case hExp == 1 && vExp == 1:
		for y := 0; y < h; y++ {
			copy(out[y*w:y*w+w], src[y*stride:y*stride+w])
		}
	case hExp == 2 && vExp == 1 && cw > 2: // h2v1_fancy_upsample
		for y := 0; y < h; y++ {
			in := src[y*stride : y*stride+cw]
			o := out[y*w : y*w+w]
			for x := 0; x < w; x++ {
				j := x >> 1
				v := 3 * int(in[j])
				if x&1 == 0 {
					o[x] = byte((v + int(in[max(j-1, 0)]) + 1) >> 2)
				} else {
					o[x] = byte((v + int(in[min(j+1, cw-1)]) + 2) >> 2)
				}
			}
		}
	case hExp == 1 && vExp == 2: // h1v2_fancy_upsample
		for y := 0; y < h; y++ {
			r := y >> 1
			nb, bias := clampRow(r-1), 1
			if y&1 == 1 {
				nb, bias = clampRow(r+1), 2
			}
			in0 := src[r*stride : r*stride+cw]
			in1 := src[nb*stride : nb*stride+cw]
			o := out[y*w : y*w+w]
			for x := 0; x < w; x++ {
				o[x] = byte((3*int(in0[x]) + int(in1[x]) + bias) >> 2)
			}
		}
	case hExp == 2 && vExp == 2 && cw > 2: // h2v2_fancy_upsample
		sums := make([]int, cw)
		for y := 0; y < h; y++ {
			r := y >> 1
			nb := clampRow(r - 1)
			if y&1 == 1 {
				nb = clampRow(r + 1)
			}
			in0 := src[r*stride : r*stride+cw]
			in1 := src[nb*stride : nb*stride+cw]
			for j := range sums {
				sums[j] = 3*int(in0[j]) + int(in1[j])
			}
			o := out[y*w : y*w+w]
			for x := 0; x < w; x++ {
				j := x >> 1
				if x&1 == 0 {
					o[x] = byte((3*sums[j] + sums[max(j-1, 0)] + 8) >> 4)
				} else {
					o[x] = byte((3*sums[j] + sums[min(j+1, cw-1)] + 7) >> 4)
				}
			}
		}
	default: // h2v1_upsample, h2v2_upsample, int_upsample: replication.
		for y := 0; y < h; y++ {
			in := src[(y/vExp)*stride:]
			o := out[y*w : y*w+w]
			for x := 0; x < w; x++ {
				o[x] = in[x/hExp]
			}
		}
	}
	return out
}
