package synth

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"image/png"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/gitcap/gitcap/data/fsutil"
)

// Summary describes a data set that Write produced.
type Summary struct {
	Dir    string         // the directory given to Write
	Splits []SplitSummary // train, val, test
}

// SplitSummary describes one split of a written data set.
type SplitSummary struct {
	Split       string // Train, Val or Test
	Images      int    // number of images
	Captions    int    // number of captions (annotations)
	ImageDir    string // DIR/images/<split>
	Annotations string // DIR/annotations/captions_<split>.json
}

// Images is the total number of images written.
func (s Summary) Images() int {
	n := 0
	for _, sp := range s.Splits {
		n += sp.Images
	}
	return n
}

// COCO captions file layout, as Write writes it.
type (
	cocoFile struct {
		Info        cocoInfo         `json:"info"`
		Images      []cocoImage      `json:"images"`
		Annotations []cocoAnnotation `json:"annotations"`
	}
	cocoInfo struct {
		Description string `json:"description"`
		Version     string `json:"version"`
	}
	cocoImage struct {
		ID       int    `json:"id"`
		FileName string `json:"file_name"`
		Width    int    `json:"width"`
		Height   int    `json:"height"`
	}
	cocoAnnotation struct {
		ID      int    `json:"id"`
		ImageID int    `json:"image_id"`
		Caption string `json:"caption"`
	}
)

// ImageDir returns the directory holding a split's images: DIR/images/<split>.
func ImageDir(dir, split string) string { return filepath.Join(dir, "images", split) }

// AnnotationsPath returns the path of a split's captions file:
// DIR/annotations/captions_<split>.json.
func AnnotationsPath(dir, split string) string {
	return filepath.Join(dir, "annotations", "captions_"+split+".json")
}

// Write generates the data set and writes it under dir, creating the
// directories it needs:
//
//	DIR/images/<split>/NNNNNN.png          one PNG per image, NNNNNN its ID
//	DIR/annotations/captions_<split>.json  COCO captions file
//
// for each split train, val and test (a split of size 0 gets an empty
// captions file and no images). A captions file is COCO's format:
//
//	{"info": {"description": "...", "version": "1"},
//	 "images": [{"id": 1, "file_name": "000001.png", "width": 64, "height": 64}, ...],
//	 "annotations": [{"id": 1, "image_id": 1, "caption": "a small red circle on the left"}, ...]}
//
// where file_name is relative to DIR/images/<split>/, image ids number a
// split's images from 1 and annotation ids number its captions from 1.
//
// The captions files are removed first and written last, each atomically
// (temporary file, then rename), so a data set is complete exactly when its
// three captions files exist: a failed or cancelled Write (it stops soon
// after ctx is done and returns ctx.Err()) leaves none. Images left over from
// an earlier, larger data set in the same directory are not removed; the
// captions files do not list them.
func Write(ctx context.Context, dir string, opts Options) (Summary, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return Summary{}, err
	}
	sum := Summary{Dir: dir}
	for _, split := range Splits() {
		if err := os.Remove(AnnotationsPath(dir, split)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return Summary{}, fmt.Errorf("synth: %w", err)
		}
	}
	if err := os.MkdirAll(filepath.Join(dir, "annotations"), 0o755); err != nil {
		return Summary{}, fmt.Errorf("synth: %w", err)
	}
	for s, split := range Splits() {
		if opts.count(s) == 0 {
			continue
		}
		if err := os.MkdirAll(ImageDir(dir, split), 0o755); err != nil {
			return Summary{}, fmt.Errorf("synth: %w", err)
		}
	}

	captions, err := writeImages(ctx, dir, opts)
	if err != nil {
		return Summary{}, err
	}

	for s, split := range Splits() {
		f := cocoFile{
			Info: cocoInfo{
				Description: fmt.Sprintf("gitcap synthetic shapes, %s split, seed %d, %dx%d images", split, opts.Seed, opts.ImageSize, opts.ImageSize),
				Version:     "1",
			},
			Images:      make([]cocoImage, 0, opts.count(s)),
			Annotations: []cocoAnnotation{},
		}
		for i, caps := range captions[s] {
			id := i + 1
			f.Images = append(f.Images, cocoImage{ID: id, FileName: fileName(id), Width: opts.ImageSize, Height: opts.ImageSize})
			for _, c := range caps {
				f.Annotations = append(f.Annotations, cocoAnnotation{ID: len(f.Annotations) + 1, ImageID: id, Caption: c})
			}
		}
		buf, err := json.MarshalIndent(f, "", " ")
		if err != nil {
			return Summary{}, fmt.Errorf("synth: %w", err)
		}
		buf = append(buf, '\n')
		if err := ctx.Err(); err != nil {
			return Summary{}, err
		}
		path := AnnotationsPath(dir, split)
		err = fsutil.WriteAtomic(path, func(w *os.File) error {
			_, err := w.Write(buf)
			return err
		})
		if err != nil {
			return Summary{}, fmt.Errorf("synth: %w", err)
		}
		sum.Splits = append(sum.Splits, SplitSummary{
			Split:       split,
			Images:      len(f.Images),
			Captions:    len(f.Annotations),
			ImageDir:    ImageDir(dir, split),
			Annotations: path,
		})
	}
	return sum, nil
}

// writeImages generates every image and writes its PNG, on a few
// goroutines. It returns the captions, indexed by split and image index.
func writeImages(ctx context.Context, dir string, opts Options) ([3][][]string, error) {
	var captions [3][][]string
	type job struct{ split, index int }
	var jobs []job
	for s := range 3 {
		captions[s] = make([][]string, opts.count(s))
		for i := range opts.count(s) {
			jobs = append(jobs, job{s, i})
		}
	}

	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		next     atomic.Int64
		wg       sync.WaitGroup
		errOnce  sync.Once
		firstErr error
	)
	fail := func(err error) {
		errOnce.Do(func() { firstErr = err; cancel() })
	}
	workers := min(runtime.GOMAXPROCS(0), 8, len(jobs))
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var buf bytes.Buffer
			enc := png.Encoder{CompressionLevel: png.DefaultCompression, BufferPool: new(encoderBuffer)}
			for wctx.Err() == nil {
				j := int(next.Add(1) - 1)
				if j >= len(jobs) {
					return
				}
				ex := makeExample(opts, jobs[j].split, jobs[j].index)
				buf.Reset()
				if err := enc.Encode(&buf, ex.Image); err != nil {
					fail(fmt.Errorf("synth: encoding %s/%s: %w", ex.Split, ex.FileName, err))
					return
				}
				path := filepath.Join(ImageDir(dir, ex.Split), ex.FileName)
				if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
					fail(fmt.Errorf("synth: %w", err))
					return
				}
				captions[jobs[j].split][jobs[j].index] = ex.Captions
			}
		}()
	}
	wg.Wait()
	if firstErr != nil {
		return captions, firstErr
	}
	return captions, ctx.Err()
}

// encoderBuffer is a one-slot png.EncoderBufferPool: a worker reuses its
// encoder's buffers (the zlib state) from one image to the next.
type encoderBuffer struct{ b *png.EncoderBuffer }

func (p *encoderBuffer) Get() *png.EncoderBuffer  { b := p.b; p.b = nil; return b }
func (p *encoderBuffer) Put(b *png.EncoderBuffer) { p.b = b }
