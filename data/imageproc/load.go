package imageproc

import (
	"bytes"
	"errors"
	"fmt"
	"image"
	"image/gif"
	"image/png"
	"io"
	"os"

	"github.com/gitcap/gitcap/data/imageproc/internal/ljpeg"
)

// MaxPixels is the largest image (width*height) Load accepts; it is the
// size above which Pillow raises DecompressionBombError (2 *
// Image.MAX_IMAGE_PIXELS).
const MaxPixels = 2 * 178956970

// Load reads an image file the way HF's transformers.image_utils.load_image
// opens one: the first frame is decoded and the EXIF orientation is applied
// (PIL.ImageOps.exif_transpose). Conversion to RGB happens later, in the
// Processor.
//
// Supported formats: PNG (every bit depth and colour type), JPEG (baseline
// and progressive, decoded bit-identically to libjpeg-turbo, which Pillow
// uses; the result is *image.RGBA or *image.Gray) and GIF (first frame).
// EXIF orientation is read from the JPEG APP1 "Exif" segment and from a PNG
// eXIf chunk. Every failure (missing, empty, truncated, corrupt or
// unsupported file) is an error that names the file.
func Load(path string) (image.Image, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("imageproc: %w", err) // *PathError names the file
	}
	img, err := Decode(data)
	if err != nil {
		return nil, fmt.Errorf("imageproc: %s: %w", path, err)
	}
	return img, nil
}

// ErrUnsupportedFormat is returned (wrapped) for data that is not PNG, JPEG
// or GIF.
var ErrUnsupportedFormat = errors.New("unsupported image format (want PNG, JPEG or GIF)")

// Decode decodes an in-memory image file; see Load.
func Decode(data []byte) (img image.Image, err error) {
	defer func() {
		// The decoders are not expected to panic; this is a last line of
		// defence so that a hostile file can never crash the caller.
		if r := recover(); r != nil {
			img, err = nil, fmt.Errorf("corrupt image: decoder failed: %v", r)
		}
	}()
	if len(data) == 0 {
		return nil, errors.New("empty file")
	}
	var (
		decode       func(*bytes.Reader) (image.Image, error)
		decodeConfig func(*bytes.Reader) (image.Config, error)
		format       string
		orientation  = 0
	)
	switch {
	case bytes.HasPrefix(data, []byte("\x89PNG\r\n\x1a\n")):
		format = "PNG"
		decode = func(r *bytes.Reader) (image.Image, error) { return png.Decode(r) }
		decodeConfig = func(r *bytes.Reader) (image.Config, error) { return png.DecodeConfig(r) }
		if o, ok := exifOrientation(pngEXIF(data)); ok {
			orientation = o
		}
	case bytes.HasPrefix(data, []byte("\xff\xd8")):
		format = "JPEG"
		decode = func(r *bytes.Reader) (image.Image, error) { return ljpeg.Decode(r) }
		decodeConfig = func(r *bytes.Reader) (image.Config, error) { return ljpeg.DecodeConfig(r) }
		if o, ok := exifOrientation(jpegEXIF(data)); ok {
			orientation = o
		}
	case bytes.HasPrefix(data, []byte("GIF87a")) || bytes.HasPrefix(data, []byte("GIF89a")):
		format = "GIF"
		decode = func(r *bytes.Reader) (image.Image, error) { return gif.Decode(r) }
		decodeConfig = func(r *bytes.Reader) (image.Config, error) { return gif.DecodeConfig(r) }
	default:
		return nil, ErrUnsupportedFormat
	}
	cfg, err := decodeConfig(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("corrupt %s: %w", format, describe(err))
	}
	if cfg.Width <= 0 || cfg.Height <= 0 {
		return nil, fmt.Errorf("corrupt %s: image is %dx%d", format, cfg.Width, cfg.Height)
	}
	if int64(cfg.Width)*int64(cfg.Height) > MaxPixels {
		return nil, fmt.Errorf("%s image of %dx%d pixels exceeds the limit of %d pixels", format, cfg.Width, cfg.Height, MaxPixels)
	}
	img, err = decode(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("corrupt %s: %w", format, describe(err))
	}
	if b := img.Bounds(); b.Empty() {
		return nil, fmt.Errorf("corrupt %s: empty image", format)
	}
	return Orient(img, orientation), nil
}

// describe makes the decoders' bare io errors say what they mean.
func describe(err error) error {
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return fmt.Errorf("file is truncated (%w)", err)
	}
	return err
}
