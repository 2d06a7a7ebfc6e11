package main

import (
	"fmt"
	"io"

	"github.com/gitcap/gitcap/data/imageproc"
)

// imageLimitFlags are the decompression-bomb limits of the commands that
// read images (--max-image-pixels, --max-image-bytes): images are checked
// against them from the file size and header, before any pixel is decoded.
type imageLimitFlags struct{ pixels, bytes int64 }

func (f *imageLimitFlags) register(fs *flagSet) {
	fs.Int64Var(&f.pixels, "max-image-pixels", 0, fmt.Sprintf(
		"refuse images with more pixels than this before decoding them (0: %d, twice Pillow's MAX_IMAGE_PIXELS, "+
			"with a warning above Pillow's; negative: no limit)", imageproc.DefaultMaxPixels))
	fs.Int64Var(&f.bytes, "max-image-bytes", 0, fmt.Sprintf(
		"refuse image files larger than this many bytes (0: %d; negative: no limit)", imageproc.DefaultMaxBytes))
}

// apply returns p limited as the flags say, warning on stderr about images
// above Pillow's warning threshold.
func (f *imageLimitFlags) apply(p *imageproc.Processor, stderr io.Writer) *imageproc.Processor {
	return p.WithLimits(imageproc.Limits{MaxPixels: f.pixels, MaxBytes: f.bytes,
		Warn: func(msg string) { fmt.Fprintf(stderr, "warning: %s\n", msg) }})
}
