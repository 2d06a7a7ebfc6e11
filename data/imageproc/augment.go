package imageproc

import (
	"fmt"
	"image"
	"math"
	"math/rand/v2"
)

// RandomResizedCropRect draws the crop of torchvision's
// RandomResizedCrop.get_params for an image of w x h pixels: up to 10 tries
// of an area fraction uniform in scale and a log-uniform aspect ratio in
// ratio, w = round(sqrt(area*ratio)), h = round(sqrt(area/ratio)) (Python's
// round half to even), accepted when it fits, at a uniform position;
// otherwise the fallback central crop clamped to the ratio range. The
// rectangle is relative to (0, 0). The same rng state gives the same rect.
func RandomResizedCropRect(w, h int, scale, ratio [2]float64, rng *rand.Rand) (image.Rectangle, error) {
	if w <= 0 || h <= 0 {
		return image.Rectangle{}, fmt.Errorf("imageproc: RandomResizedCrop of an empty image (%dx%d)", w, h)
	}
	if rng == nil {
		return image.Rectangle{}, fmt.Errorf("imageproc: RandomResizedCrop needs a random source")
	}
	if !(scale[0] > 0 && scale[0] <= scale[1]) || math.IsInf(scale[1], 0) {
		return image.Rectangle{}, fmt.Errorf("imageproc: RandomResizedCrop scale %v: want 0 < min <= max", scale)
	}
	if !(ratio[0] > 0 && ratio[0] <= ratio[1]) || math.IsInf(ratio[1], 0) {
		return image.Rectangle{}, fmt.Errorf("imageproc: RandomResizedCrop ratio %v: want 0 < min <= max", ratio)
	}
	area := float64(w * h)
	logLo, logHi := math.Log(ratio[0]), math.Log(ratio[1])
	for try := 0; try < 10; try++ {
		targetArea := area * (scale[0] + (scale[1]-scale[0])*rng.Float64())
		aspect := math.Exp(logLo + (logHi-logLo)*rng.Float64())
		cw := int(math.RoundToEven(math.Sqrt(targetArea * aspect)))
		ch := int(math.RoundToEven(math.Sqrt(targetArea / aspect)))
		if 0 < cw && cw <= w && 0 < ch && ch <= h {
			i := rng.IntN(h - ch + 1)
			j := rng.IntN(w - cw + 1)
			return image.Rect(j, i, j+cw, i+ch), nil
		}
	}
	// Fallback to a central crop.
	inRatio := float64(w) / float64(h)
	cw, ch := w, h
	switch {
	case inRatio < ratio[0]:
		ch = int(math.RoundToEven(float64(cw) / ratio[0]))
	case inRatio > ratio[1]:
		cw = int(math.RoundToEven(float64(ch) * ratio[1]))
	}
	i := (h - ch) / 2
	j := (w - cw) / 2
	return image.Rect(j, i, j+cw, i+ch), nil
}

// RandomResizedCrop returns the crop of img chosen by RandomResizedCropRect
// (torchvision semantics; the usual arguments are scale {0.08, 1} and ratio
// {3/4, 4/3}). Unlike torchvision it does not resize: run the result
// through a Processor (for instance with size {height, width}) to get the
// model's resolution. The crop shares no memory with img.
func RandomResizedCrop(img image.Image, scale, ratio [2]float64, rng *rand.Rand) (image.Image, error) {
	b := img.Bounds()
	r, err := RandomResizedCropRect(b.Dx(), b.Dy(), scale, ratio, rng)
	if err != nil {
		return nil, err
	}
	return Crop(img, r), nil
}

// Crop copies the rectangle r (relative to img.Bounds().Min, clipped to the
// image) into a new image of the same pixel type whose bounds start at
// (0, 0).
func Crop(img image.Image, r image.Rectangle) image.Image {
	b := img.Bounds()
	r = r.Intersect(image.Rect(0, 0, b.Dx(), b.Dy()))
	return remap(img, r.Dx(), r.Dy(), func(x, y int) (int, int) { return x + r.Min.X, y + r.Min.Y })
}

// MaybeHFlip flips img with probability p (torchvision's
// RandomHorizontalFlip: flip when a uniform draw is < p).
func MaybeHFlip(img image.Image, p float64, rng *rand.Rand) image.Image {
	if rng != nil && rng.Float64() < p {
		return HFlip(img)
	}
	return img
}
