package caption

import (
	"context"

	"github.com/gitcap/gitcap/data"
	"github.com/gitcap/gitcap/eval"
	"github.com/gitcap/gitcap/gitmodel"
)

// GroupByImage returns the distinct images of pairs in first-seen order and
// each image's captions.
func GroupByImage(pairs []data.TrainPair) ([]string, map[string][]string) {
	var imgs []string
	gts := map[string][]string{}
	for _, p := range pairs {
		if _, ok := gts[p.Image]; !ok {
			imgs = append(imgs, p.Image)
		}
		gts[p.Image] = append(gts[p.Image], p.Caption)
	}
	return imgs, gts
}

// CaptionImages captions image files with greedy decoding (maxLength is HF's
// max_length; 0 means 50). An image that cannot be read gets "".
func CaptionImages(ctx context.Context, p *Pipeline, imgs []string, batch, maxLength int) (map[string]string, error) {
	if maxLength <= 0 {
		maxLength = 50
	}
	g := p.Model.NewGenerator()
	defer g.Close()
	samples := make([]Sample, len(imgs))
	for i, im := range imgs {
		samples[i] = Sample{Name: im, Frames: []string{im}}
	}
	caps, err := p.Caption(ctx, g, samples, "", max(batch, 1), gitmodel.GenerateOptions{MaxLength: maxLength, NumBeams: 1}, nil)
	if err != nil {
		return nil, err
	}
	res := make(map[string]string, len(imgs))
	for i, c := range caps {
		res[imgs[i]] = c.Text
	}
	return res, nil
}

// CIDErD PTB-tokenizes references and candidates and scores them with
// CIDEr-D (as coco-caption does), over ids in order.
func CIDErD(ids []string, gts map[string][]string, res map[string]string) (float64, []float64, error) {
	tg := make(map[string][]string, len(ids))
	tr := make(map[string]string, len(ids))
	for _, id := range ids {
		tg[id] = eval.PTBTokenizeAll(gts[id])
		tr[id] = eval.PTBTokenize(res[id])
	}
	return eval.CIDErD(ids, tg, tr)
}
