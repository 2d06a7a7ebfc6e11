// Package caption is the captioning job: a checkpoint loaded as a Pipeline
// (model, tokenizer, image processor), samples captioned in batches, and
// the caption-and-score helpers that validation and `gitcap eval` share.
package caption

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/gitcap/gitcap/data/imageproc"
	"github.com/gitcap/gitcap/data/tokenizer"
	"github.com/gitcap/gitcap/gitmodel"
)

// Pipeline is a checkpoint ready to caption: the model, its tokenizer and
// its image processor (GitProcessor).
type Pipeline struct {
	Dir       string
	Model     *gitmodel.Model
	Tokenizer *tokenizer.Tokenizer
	Processor *imageproc.Processor
}

// LoadPipeline loads a HF checkpoint directory: config.json, weights,
// tokenizer files and preprocessor_config.json.
func LoadPipeline(dir string) (*Pipeline, error) { return LoadPipelineDtype(dir, gitmodel.FP32) }

// LoadPipelineDtype is LoadPipeline with the weights held in dt
// (gitmodel.LoadDtype).
func LoadPipelineDtype(dir string, dt gitmodel.WeightDtype) (*Pipeline, error) {
	m, err := gitmodel.LoadDtype(dir, dt)
	if err != nil {
		return nil, err
	}
	tok, err := tokenizer.Load(dir)
	if err != nil {
		return nil, err
	}
	pcPath := filepath.Join(dir, "preprocessor_config.json")
	cfg, err := imageproc.LoadConfig(pcPath)
	if err != nil {
		return nil, err
	}
	proc, err := imageproc.New(cfg)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", pcPath, err)
	}
	if s := m.Config.Vision.ImageSize; cfg.DoCenterCrop && (cfg.CropHeight != s || cfg.CropWidth != s) {
		return nil, fmt.Errorf("%s: crop size %dx%d does not match the vision tower's image_size %d",
			pcPath, cfg.CropWidth, cfg.CropHeight, s)
	}
	if tok.VocabSize() > m.Config.VocabSize {
		return nil, fmt.Errorf("%s: tokenizer has %d tokens but the model's vocab_size is %d", dir, tok.VocabSize(), m.Config.VocabSize)
	}
	return &Pipeline{Dir: dir, Model: m, Tokenizer: tok, Processor: proc}, nil
}

// Sample is one input to caption: a single image, or the frames of a video
// sample for checkpoints with num_image_with_embedding.
type Sample struct {
	Name   string   // what the user called it (path, folder)
	Frames []string // image files, one per frame
}

// SampleFor turns a command-line argument into a sample: an image file for
// image checkpoints; for video checkpoints with F frames, a folder (F frames
// evenly sampled) or a comma-separated list of exactly F image files.
func (p *Pipeline) SampleFor(arg string) (Sample, error) {
	f := p.Model.Config.Frames()
	if !p.Model.Config.Video() {
		return Sample{Name: arg, Frames: []string{arg}}, nil
	}
	if st, err := os.Stat(arg); err == nil && st.IsDir() {
		frames, err := imageproc.SampleFrames(arg, f)
		if err != nil {
			return Sample{}, err
		}
		return Sample{Name: arg, Frames: frames}, nil
	}
	parts := strings.Split(arg, ",")
	if len(parts) != f {
		return Sample{}, fmt.Errorf("%s: this video checkpoint takes %d frames per sample (a folder, or %d comma-separated image files), got %d", arg, f, f, len(parts))
	}
	return Sample{Name: arg, Frames: parts}, nil
}

// Pixels preprocesses a sample's frames into dst ((Frames, C, H, W)).
func (p *Pipeline) Pixels(s Sample, dst []float32) error {
	c := p.Model.Config
	if len(s.Frames) != c.Frames() {
		return fmt.Errorf("%s: %d frames, the checkpoint takes %d", s.Name, len(s.Frames), c.Frames())
	}
	per := c.Vision.NumChannels * c.Vision.ImageSize * c.Vision.ImageSize
	for i, f := range s.Frames {
		px, err := p.Processor.PreprocessFile(f)
		if err != nil {
			return err
		}
		if len(px) != per {
			return fmt.Errorf("%s: preprocessing gave %d values, the model takes %d", f, len(px), per)
		}
		copy(dst[i*per:(i+1)*per], px)
	}
	return nil
}

// Caption is the result for one sample.
type Caption struct {
	Sample Sample
	Text   string // decoded without the prompt and special tokens
	IDs    []int  // full ids as HF generate returns them
	Score  float64
	Beam   bool
	Err    error
}

// Caption generates captions for samples, batchSize at a time, returning
// them in input order (NumReturnSequences per sample); a sample that cannot
// be read gets its error in Caption.Err and the others are still captioned.
// Sampling results do not depend on the batch size. progress, if non-nil,
// is called after each batch.
func (p *Pipeline) Caption(ctx context.Context, g *gitmodel.Generator, samples []Sample, prompt string, batchSize int, opts gitmodel.GenerateOptions, progress func(done int)) ([]Caption, error) {
	if len(samples) == 0 {
		return nil, fmt.Errorf("no images to caption")
	}
	if batchSize < 1 {
		batchSize = 1
	}
	promptIDs := []int{p.Tokenizer.CLS()}
	if prompt != "" {
		promptIDs = p.Tokenizer.EncodePrompt(prompt)
	}
	c := p.Model.Config
	per := c.Frames() * c.Vision.NumChannels * c.Vision.ImageSize * c.Vision.ImageSize
	buf := make([]float32, batchSize*per)
	out := make([]Caption, 0, len(samples))
	for start := 0; start < len(samples); start += batchSize {
		if err := ctx.Err(); err != nil {
			return out, err
		}
		end := min(start+batchSize, len(samples))
		results := make([][]Caption, end-start) // by input position
		var ok []int
		for i, s := range samples[start:end] {
			if err := p.Pixels(s, buf[len(ok)*per:(len(ok)+1)*per]); err != nil {
				results[i] = []Caption{{Sample: s, Err: err}}
				continue
			}
			ok = append(ok, i)
		}
		if len(ok) > 0 {
			o := opts
			o.SampleOffset = opts.SampleOffset + start
			seqs, err := g.Generate(ctx, buf[:len(ok)*per], len(ok), promptIDs, o)
			if err != nil {
				return out, err
			}
			for k, i := range ok {
				for _, seq := range seqs[k] {
					results[i] = append(results[i], Caption{
						Sample: samples[start+i],
						Text:   p.Tokenizer.Decode(seq.IDs[len(promptIDs):], true),
						IDs:    seq.IDs,
						Score:  seq.Score,
						Beam:   opts.NumBeams > 1,
					})
				}
			}
		}
		for _, r := range results {
			out = append(out, r...)
		}
		if progress != nil {
			progress(end)
		}
	}
	return out, nil
}
