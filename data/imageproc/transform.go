package imageproc

import (
	"image"
	"image/color"
)

// remap builds a w2 x h2 image of the same concrete type as img (for the
// standard library's pixel-buffer types; anything else becomes
// *image.NRGBA) whose pixel (x, y) is img's pixel src(x, y), coordinates
// relative to img.Bounds().Min. The result's bounds start at (0, 0).
func remap(img image.Image, w2, h2 int, src func(x, y int) (int, int)) image.Image {
	r := image.Rect(0, 0, w2, h2)
	var (
		spix, dpix       []byte
		sstride, dstride int
		bpp              int
		out              image.Image
	)
	switch m := img.(type) {
	case *image.RGBA:
		n := image.NewRGBA(r)
		spix, sstride, bpp, out, dpix, dstride = m.Pix, m.Stride, 4, n, n.Pix, n.Stride
	case *image.NRGBA:
		n := image.NewNRGBA(r)
		spix, sstride, bpp, out, dpix, dstride = m.Pix, m.Stride, 4, n, n.Pix, n.Stride
	case *image.Gray:
		n := image.NewGray(r)
		spix, sstride, bpp, out, dpix, dstride = m.Pix, m.Stride, 1, n, n.Pix, n.Stride
	case *image.Gray16:
		n := image.NewGray16(r)
		spix, sstride, bpp, out, dpix, dstride = m.Pix, m.Stride, 2, n, n.Pix, n.Stride
	case *image.RGBA64:
		n := image.NewRGBA64(r)
		spix, sstride, bpp, out, dpix, dstride = m.Pix, m.Stride, 8, n, n.Pix, n.Stride
	case *image.NRGBA64:
		n := image.NewNRGBA64(r)
		spix, sstride, bpp, out, dpix, dstride = m.Pix, m.Stride, 8, n, n.Pix, n.Stride
	case *image.CMYK:
		n := image.NewCMYK(r)
		spix, sstride, bpp, out, dpix, dstride = m.Pix, m.Stride, 4, n, n.Pix, n.Stride
	case *image.Alpha:
		n := image.NewAlpha(r)
		spix, sstride, bpp, out, dpix, dstride = m.Pix, m.Stride, 1, n, n.Pix, n.Stride
	case *image.Paletted:
		n := image.NewPaletted(r, append(color.Palette(nil), m.Palette...))
		spix, sstride, bpp, out, dpix, dstride = m.Pix, m.Stride, 1, n, n.Pix, n.Stride
	default:
		// Convert to non-premultiplied RGBA first.
		b := img.Bounds()
		n := image.NewNRGBA(image.Rect(0, 0, b.Dx(), b.Dy()))
		for y := 0; y < b.Dy(); y++ {
			for x := 0; x < b.Dx(); x++ {
				n.SetNRGBA(x, y, color.NRGBAModel.Convert(img.At(b.Min.X+x, b.Min.Y+y)).(color.NRGBA))
			}
		}
		return remap(n, w2, h2, src)
	}
	for y := 0; y < h2; y++ {
		row := dpix[y*dstride : y*dstride+w2*bpp]
		for x := 0; x < w2; x++ {
			sx, sy := src(x, y)
			o := sy*sstride + sx*bpp
			copy(row[x*bpp:(x+1)*bpp], spix[o:o+bpp])
		}
	}
	return out
}

// Orient returns img transformed for display according to an EXIF
// orientation value, exactly as PIL's ImageOps.exif_transpose does
// (2 FLIP_LEFT_RIGHT, 3 ROTATE_180, 4 FLIP_TOP_BOTTOM, 5 TRANSPOSE,
// 6 ROTATE_270, 7 TRANSVERSE, 8 ROTATE_90). Other values return img as is.
func Orient(img image.Image, orientation int) image.Image {
	b := img.Bounds()
	w, h := b.Dx(), b.Dy()
	switch orientation {
	case 2:
		return remap(img, w, h, func(x, y int) (int, int) { return w - 1 - x, y })
	case 3:
		return remap(img, w, h, func(x, y int) (int, int) { return w - 1 - x, h - 1 - y })
	case 4:
		return remap(img, w, h, func(x, y int) (int, int) { return x, h - 1 - y })
	case 5:
		return remap(img, h, w, func(x, y int) (int, int) { return y, x })
	case 6:
		return remap(img, h, w, func(x, y int) (int, int) { return y, h - 1 - x })
	case 7:
		return remap(img, h, w, func(x, y int) (int, int) { return w - 1 - y, h - 1 - x })
	case 8:
		return remap(img, h, w, func(x, y int) (int, int) { return w - 1 - y, x })
	}
	return img
}

// HFlip mirrors img left to right (PIL's FLIP_LEFT_RIGHT, torchvision's
// RandomHorizontalFlip when it fires). The result has the same pixel type
// for the standard library's image types and bounds starting at (0, 0).
func HFlip(img image.Image) image.Image {
	return Orient(img, 2)
}
