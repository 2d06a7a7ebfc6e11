package imageproc

import (
	"bytes"
	"errors"
	"fmt"
	"image"
	"image/gif"
	"image/png"
	"io"

	"github.com/gitcap/gitcap/data/imageproc/internal/ljpeg"
)

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
// unsupported file) is an error that names the file. The default Limits
// apply; see Limits.Load.
func Load(path string) (image.Image, error) { return Limits{}.Load(path) }

// Load is Load with these limits: a file above MaxBytes is refused before
// it is read, and an image above MaxPixels after its header is read.
func (l Limits) Load(path string) (image.Image, error) {
	data, err := l.readFile(path)
	if err != nil {
		return nil, fmt.Errorf("imageproc: %w", err) // names the file
	}
	img, err := l.Decode(data)
	if err != nil {
		return nil, fmt.Errorf("imageproc: %s: %w", path, err)
	}
	return img, nil
}

// ErrUnsupportedFormat is returned (wrapped) for data that is not PNG, JPEG
// or GIF.
var ErrUnsupportedFormat = errors.New("unsupported image format (want PNG, JPEG or GIF)")

// Decode decodes an in-memory image file with the default Limits; see
// Load.
func Decode(data []byte) (image.Image, error) { return Limits{}.Decode(data) }

// Decode decodes an in-memory image file within these limits; see Load.
func (l Limits) Decode(data []byte) (img image.Image, err error) {
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
	if max := l.maxBytes(); max >= 0 && int64(len(data)) > max {
		return nil, fmt.Errorf("image of %d bytes exceeds the limit of %d bytes", len(data), max)
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
	if err := l.checkPixels(format, cfg.Width, cfg.Height); err != nil {
		return nil, err
	}
	if err := checkDataSize(format, data, cfg.Width, cfg.Height); err != nil {
		return nil, err
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
