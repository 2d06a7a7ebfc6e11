package main

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/gitcap/gitcap/data/tensorfile"
	"github.com/gitcap/gitcap/gitmodel"
	"github.com/gitcap/gitcap/graph"
)

func runForward(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("forward", stderr)
	model := fs.String("model", "", "checkpoint directory or HuggingFace model id (required)")
	inPath := fs.String("inputs", "", "safetensors file with pixel_values, input_ids, optional attention_mask and labels (required)")
	outPath := fs.String("out", "", "safetensors file to write (required)")
	grads := fs.Bool("grads", false, "also write d loss / d parameter as grad/<name> (needs labels)")
	fs.Usage = func() {
		fs.header("gitcap forward --model DIR --inputs IN.safetensors --out OUT.safetensors [--grads]",
			"Runs one forward pass (and backward with --grads) on a batch and writes the activations,\n"+
				"logits, loss and gradients under HF's names, for comparison with transformers.")
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Errorf("unexpected argument %q", fs.Arg(0))}
	}
	if *model == "" || *inPath == "" || *outPath == "" {
		return usageError{errors.New("--model, --inputs and --out are required")}
	}
	p, err := loadPipeline(ctx, *model, stderr)
	if err != nil {
		return err
	}
	m := p.Model
	in, err := tensorfile.Open(*inPath)
	if err != nil {
		return err
	}
	px, pxShape, err := in.F32("pixel_values")
	if err != nil {
		return err
	}
	ids, idShape, err := in.Ints("input_ids")
	if err != nil {
		return err
	}
	if len(idShape) != 2 {
		return fmt.Errorf("%s: input_ids has shape %v, want [B,T]", *inPath, idShape)
	}
	b, t := idShape[0], idShape[1]
	c := m.Config
	v := c.Vision
	want := []int{b, v.NumChannels, v.ImageSize, v.ImageSize}
	if c.Video() {
		want = []int{b, c.Frames(), v.NumChannels, v.ImageSize, v.ImageSize}
	}
	if fmt.Sprint(pxShape) != fmt.Sprint(want) {
		return fmt.Errorf("%s: pixel_values has shape %v, this checkpoint takes %v", *inPath, pxShape, want)
	}
	batch := gitmodel.Batch{Pixels: px, IDs: ids}
	if in.Has("attention_mask") {
		am, s, err := in.Ints("attention_mask")
		if err != nil {
			return err
		}
		if fmt.Sprint(s) != fmt.Sprint(idShape) {
			return fmt.Errorf("%s: attention_mask has shape %v, input_ids %v", *inPath, s, idShape)
		}
		batch.AttentionMask = am
	}
	hasLabels := in.Has("labels")
	if hasLabels {
		lb, s, err := in.Ints("labels")
		if err != nil {
			return err
		}
		if fmt.Sprint(s) != fmt.Sprint(idShape) {
			return fmt.Errorf("%s: labels has shape %v, input_ids %v", *inPath, s, idShape)
		}
		batch.Labels = lb
	}
	if *grads && !hasLabels {
		return fmt.Errorf("--grads needs labels in %s", *inPath)
	}
	f, err := m.NewForward(b, t, gitmodel.ForwardOptions{AllLogits: true, Loss: hasLabels, Train: *grads})
	if err != nil {
		return err
	}
	defer f.Close()
	if err := f.Run(batch); err != nil {
		return fmt.Errorf("%s: %w", *inPath, err)
	}
	nImg := c.ImageTokens()
	out := map[string]tensorfile.Tensor{
		"vision_last_hidden_state":  {Shape: []int{b * c.Frames(), v.Tokens(), v.HiddenSize}, F32: frameMajor(f, b)},
		"visual_projection":         {Shape: []int{b, nImg, c.HiddenSize}, F32: gitmodel.Values(f.Projected)},
		"decoder_last_hidden_state": {Shape: []int{b, f.N, c.HiddenSize}, F32: gitmodel.Values(f.Decoder.Last)},
		"logits":                    {Shape: []int{b, f.N, c.VocabSize}, F32: gitmodel.Values(f.Logits)},
	}
	if hasLabels {
		out["loss"] = tensorfile.Tensor{Shape: []int{}, F32: []float32{float32(f.LossValue())}}
	}
	if *grads {
		err := f.Grads(func(p *graph.Param, g []float32) {
			out["grad/"+p.Name] = tensorfile.Tensor{Shape: p.Shape(), F32: append([]float32(nil), g...)}
		})
		if err != nil {
			return err
		}
	}
	if err := tensorfile.Write(*outPath, out, map[string]string{"format": "pt", "producer": "gitcap forward"}); err != nil {
		return err
	}
	if hasLabels {
		fmt.Fprintf(stdout, "loss %.7f\n", f.LossValue())
	}
	fmt.Fprintf(stdout, "wrote %s\n", *outPath)
	return nil
}

// frameMajor returns the vision tower's output as HF's image encoder
// returns it: (B·Frames) images, sample-major (HF runs each frame of a
// sample separately; for image checkpoints there is one frame).
func frameMajor(f *gitmodel.Forward, b int) []float32 {
	if len(f.Vision) == 1 {
		return gitmodel.Values(f.Vision[0].Last)
	}
	per := len(gitmodel.Values(f.Vision[0].Last)) / b
	out := make([]float32, 0, per*b*len(f.Vision))
	for i := 0; i < b; i++ {
		for _, vo := range f.Vision {
			out = append(out, gitmodel.Values(vo.Last)[i*per:(i+1)*per]...)
		}
	}
	return out
}
