package imageproc

import (
	"image"
	"image/color"
)

// toRGB writes img as packed 8-bit RGB (3 bytes per pixel, rows of
// 3*width bytes, origin at img.Bounds().Min) into dst, growing it if
// needed, with the semantics of PIL's Image.convert("RGB") applied to the
// image Pillow would have opened:
//
//   - grayscale (*image.Gray) is replicated to the three channels;
//   - non-premultiplied alpha (*image.NRGBA, *image.NRGBA64, palette entries
//     of type color.NRGBA, as Go's PNG decoder produces for RGBA, LA and
//     tRNS images) is simply dropped, with no compositing;
//   - *image.RGBA / *image.RGBA64 are premultiplied: opaque pixels are
//     taken as they are, translucent ones are un-premultiplied first (the
//     best available approximation of PIL's non-premultiplied data; exact
//     whenever alpha is 255);
//   - paletted images go through their palette;
//   - 16-bit RGB(A) keeps the high byte of each sample (PIL's "RGB;16B" and
//     "RGBA;16B" raw modes);
//   - 16-bit grayscale (*image.Gray16) is clipped to [0, 255], not scaled:
//     Pillow 9.4 opens a 16-bit grayscale PNG in mode "I" and its I->RGB
//     conversion clamps each value to 255;
//   - CMYK uses Pillow's cmyk2rgb formula;
//   - anything else goes through color.NRGBAModel.
func toRGB(dst []uint8, img image.Image) []uint8 {
	b := img.Bounds()
	w, h := b.Dx(), b.Dy()
	dst = grow(dst, 3*w*h)
	switch m := img.(type) {
	case *image.RGBA:
		for y := 0; y < h; y++ {
			src := m.Pix[y*m.Stride : y*m.Stride+4*w]
			out := dst[3*w*y : 3*w*(y+1)]
			for x := 0; x < w; x++ {
				p := src[4*x : 4*x+4 : 4*x+4]
				if p[3] == 255 {
					out[3*x], out[3*x+1], out[3*x+2] = p[0], p[1], p[2]
				} else {
					c := color.NRGBAModel.Convert(color.RGBA{p[0], p[1], p[2], p[3]}).(color.NRGBA)
					out[3*x], out[3*x+1], out[3*x+2] = c.R, c.G, c.B
				}
			}
		}
	case *image.NRGBA:
		for y := 0; y < h; y++ {
			src := m.Pix[y*m.Stride : y*m.Stride+4*w]
			out := dst[3*w*y : 3*w*(y+1)]
			for x := 0; x < w; x++ {
				out[3*x], out[3*x+1], out[3*x+2] = src[4*x], src[4*x+1], src[4*x+2]
			}
		}
	case *image.Gray:
		for y := 0; y < h; y++ {
			src := m.Pix[y*m.Stride : y*m.Stride+w]
			out := dst[3*w*y : 3*w*(y+1)]
			for x, v := range src {
				out[3*x], out[3*x+1], out[3*x+2] = v, v, v
			}
		}
	case *image.Gray16:
		for y := 0; y < h; y++ {
			src := m.Pix[y*m.Stride : y*m.Stride+2*w]
			out := dst[3*w*y : 3*w*(y+1)]
			for x := 0; x < w; x++ {
				v := int(src[2*x])<<8 | int(src[2*x+1])
				g := uint8(min(v, 255))
				out[3*x], out[3*x+1], out[3*x+2] = g, g, g
			}
		}
	case *image.NRGBA64:
		for y := 0; y < h; y++ {
			src := m.Pix[y*m.Stride : y*m.Stride+8*w]
			out := dst[3*w*y : 3*w*(y+1)]
			for x := 0; x < w; x++ {
				out[3*x], out[3*x+1], out[3*x+2] = src[8*x], src[8*x+2], src[8*x+4]
			}
		}
	case *image.RGBA64:
		for y := 0; y < h; y++ {
			src := m.Pix[y*m.Stride : y*m.Stride+8*w]
			out := dst[3*w*y : 3*w*(y+1)]
			for x := 0; x < w; x++ {
				p := src[8*x : 8*x+8 : 8*x+8]
				if p[6] == 0xff && p[7] == 0xff {
					out[3*x], out[3*x+1], out[3*x+2] = p[0], p[2], p[4]
				} else {
					c := color.NRGBA64Model.Convert(m.RGBA64At(b.Min.X+x, b.Min.Y+y)).(color.NRGBA64)
					out[3*x], out[3*x+1], out[3*x+2] = uint8(c.R>>8), uint8(c.G>>8), uint8(c.B>>8)
				}
			}
		}
	case *image.Paletted:
		var lut [256][3]uint8 // out-of-range indices stay black
		for i, c := range m.Palette {
			if i >= 256 {
				break
			}
			lut[i] = paletteRGB(c)
		}
		for y := 0; y < h; y++ {
			src := m.Pix[y*m.Stride : y*m.Stride+w]
			out := dst[3*w*y : 3*w*(y+1)]
			for x, v := range src {
				c := lut[v]
				out[3*x], out[3*x+1], out[3*x+2] = c[0], c[1], c[2]
			}
		}
	case *image.CMYK:
		for y := 0; y < h; y++ {
			src := m.Pix[y*m.Stride : y*m.Stride+4*w]
			out := dst[3*w*y : 3*w*(y+1)]
			for x := 0; x < w; x++ {
				p := src[4*x : 4*x+4 : 4*x+4]
				nk := 255 - int(p[3])
				for k := 0; k < 3; k++ {
					out[3*x+k] = clampU8(nk - mulDiv255(int(p[k]), nk))
				}
			}
		}
	default:
		for y := 0; y < h; y++ {
			out := dst[3*w*y : 3*w*(y+1)]
			for x := 0; x < w; x++ {
				c := color.NRGBAModel.Convert(img.At(b.Min.X+x, b.Min.Y+y)).(color.NRGBA)
				out[3*x], out[3*x+1], out[3*x+2] = c.R, c.G, c.B
			}
		}
	}
	return dst
}

// paletteRGB is the RGB of a palette entry with any alpha dropped.
func paletteRGB(c color.Color) [3]uint8 {
	switch c := c.(type) {
	case color.NRGBA:
		return [3]uint8{c.R, c.G, c.B}
	case color.RGBA:
		if c.A == 255 {
			return [3]uint8{c.R, c.G, c.B}
		}
	case nil:
		return [3]uint8{}
	}
	n := color.NRGBAModel.Convert(c).(color.NRGBA)
	return [3]uint8{n.R, n.G, n.B}
}

// mulDiv255 is Pillow's MULDIV255: a*b/255 rounded.
func mulDiv255(a, b int) int {
	t := a*b + 128
	return ((t >> 8) + t) >> 8
}

func clampU8(v int) uint8 {
	if v < 0 {
		return 0
	}
	if v > 255 {
		return 255
	}
	return uint8(v)
}
