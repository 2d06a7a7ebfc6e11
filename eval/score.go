// Package eval scores image captions the way the coco-caption toolkit
// (pycocoevalcap's COCOEvalCap) does: PTB tokenization, CIDEr-D, BLEU-1..4
// and ROUGE-L, reproducing the toolkit's numbers to the last bit or two.
//
// Inputs are keyed by image id strings: gts maps an image to its reference
// captions, res maps an image to its single candidate caption, and an
// explicit ids slice gives the evaluation order, which matters only for
// the last bits of the corpus means (the toolkit iterates in dict order).
package eval

import (
	"fmt"
	"sort"
	"strconv"
	"sync"
)

// Scores holds the corpus-level metrics of an evaluation and the metrics of
// each image.
type Scores struct {
	// CIDEr is CIDEr-D (what COCOEvalCap reports as "CIDEr").
	CIDEr float64
	// Bleu holds Bleu_1 .. Bleu_4.
	Bleu [4]float64
	// ROUGEL is ROUGE_L.
	ROUGEL float64
	// PerImage maps each evaluated image id to its own scores.
	PerImage map[string]ImageScores
	// IDs lists the evaluated images in evaluation order.
	IDs []string
}

// ImageScores holds the metrics of one image, as COCOEvalCap's evalImgs
// reports them.
type ImageScores struct {
	CIDEr  float64    // CIDEr-D
	Bleu   [4]float64 // BLEU-1..4 of this image alone
	ROUGEL float64    // ROUGE-L
}

// ScoreOptions adjusts Score.
type ScoreOptions struct {
	// Tokenized says the captions are already tokenized the coco-caption
	// way; Score then skips PTBTokenize.
	Tokenized bool
	// DocFreq, when set, supplies CIDEr-D's document frequencies from a
	// reference corpus (see CIDErDWithDF) instead of the evaluated
	// references.
	DocFreq *DocFreq
}

// Score evaluates candidate captions like COCOEvalCap.evaluate: only the
// images with a candidate in res are scored, in the order of ids (pass the
// image order of the annotation file to reproduce the toolkit bit for bit;
// nil means the ids of res sorted, numerically when they are all
// integers). Both sides are PTB-tokenized first unless opt.Tokenized is
// set, references and candidates in separate tokenizer runs as the toolkit
// does.
//
// Every id of res must have references in gts (and be in ids when ids is
// given); otherwise Score returns an error naming the ids.
func Score(ids []string, gts map[string][]string, res map[string]string, opt ScoreOptions) (Scores, error) {
	if len(res) == 0 {
		return Scores{}, fmt.Errorf("eval: no candidate captions to score")
	}
	var order []string
	if ids == nil {
		order = make([]string, 0, len(res))
		for id := range res {
			order = append(order, id)
		}
		SortIDs(order)
	} else {
		inOrder := make(map[string]bool, len(ids))
		for _, id := range ids {
			if inOrder[id] {
				return Scores{}, fmt.Errorf("eval: image %q listed twice in the evaluation order", id)
			}
			inOrder[id] = true
			if _, ok := res[id]; ok {
				order = append(order, id)
			}
		}
		if missing := missingIDs(res, inOrder); len(missing) > 0 {
			return Scores{}, fmt.Errorf("eval: %d candidate image(s) not in the evaluation order: %s", len(missing), listIDs(missing))
		}
	}
	var noRefs []string
	for _, id := range order {
		if len(gts[id]) == 0 {
			noRefs = append(noRefs, id)
		}
	}
	if len(noRefs) > 0 {
		return Scores{}, fmt.Errorf("eval: %d candidate image(s) have no reference captions: %s", len(noRefs), listIDs(noRefs))
	}

	tg, tr := gts, res
	if !opt.Tokenized {
		tg, tr = tokenizeForScoring(order, gts, res)
	}

	var (
		wg                 sync.WaitGroup
		cider, rouge       float64
		ciderPer, rougePer []float64
		bleu               [4]float64
		bleuPer            [][4]float64
		ciderErr, rougeErr error
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		rouge, rougePer, rougeErr = ROUGEL(order, tg, tr)
	}()
	c := newNgramCorpus(order, tg, tr)
	wg.Add(1)
	go func() {
		defer wg.Done()
		bleu, bleuPer = c.bleu()
	}()
	if opt.DocFreq != nil {
		cider, ciderPer, ciderErr = c.ciderWithDF(opt.DocFreq)
	} else {
		cider, ciderPer, ciderErr = c.cider()
	}
	wg.Wait()
	for _, err := range []error{ciderErr, rougeErr} {
		if err != nil {
			return Scores{}, err
		}
	}
	s := Scores{CIDEr: cider, Bleu: bleu, ROUGEL: rouge, PerImage: make(map[string]ImageScores, len(order)), IDs: order}
	for i, id := range order {
		s.PerImage[id] = ImageScores{CIDEr: ciderPer[i], Bleu: bleuPer[i], ROUGEL: rougePer[i]}
	}
	return s, nil
}

// tokenizeForScoring runs PTBTokenizeAll over the references and over the
// candidates of the images in order, as COCOEvalCap does.
func tokenizeForScoring(order []string, gts map[string][]string, res map[string]string) (map[string][]string, map[string]string) {
	var refs []string
	for _, id := range order {
		refs = append(refs, gts[id]...)
	}
	cands := make([]string, len(order))
	for i, id := range order {
		cands[i] = res[id]
	}
	var tokRefs, tokCands []string
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); tokRefs = PTBTokenizeAll(refs) }()
	go func() { defer wg.Done(); tokCands = PTBTokenizeAll(cands) }()
	wg.Wait()
	tg := make(map[string][]string, len(order))
	tr := make(map[string]string, len(order))
	k := 0
	for i, id := range order {
		n := len(gts[id])
		tg[id] = tokRefs[k : k+n : k+n]
		k += n
		tr[id] = tokCands[i]
	}
	return tg, tr
}

func missingIDs(res map[string]string, in map[string]bool) []string {
	var out []string
	for id := range res {
		if !in[id] {
			out = append(out, id)
		}
	}
	SortIDs(out)
	return out
}

// listIDs formats ids for an error message, eliding a long tail.
func listIDs(ids []string) string {
	const show = 10
	s := ""
	for i, id := range ids {
		if i == show {
			return s + fmt.Sprintf(", ... (%d more)", len(ids)-show)
		}
		if i > 0 {
			s += ", "
		}
		s += strconv.Quote(id)
	}
	return s
}

// SortIDs sorts image ids in place: numerically if they are all decimal
// integers, otherwise as strings.
func SortIDs(ids []string) {
	nums := make([]int64, len(ids))
	numeric := true
	for i, id := range ids {
		n, err := strconv.ParseInt(id, 10, 64)
		if err != nil {
			numeric = false
			break
		}
		nums[i] = n
	}
	if !numeric {
		sort.Strings(ids)
		return
	}
	sort.Sort(byNum{ids, nums})
}

type byNum struct {
	ids  []string
	nums []int64
}

func (b byNum) Len() int { return len(b.ids) }
func (b byNum) Less(i, j int) bool {
	if b.nums[i] != b.nums[j] {
		return b.nums[i] < b.nums[j]
	}
	return b.ids[i] < b.ids[j]
}
func (b byNum) Swap(i, j int) {
	b.ids[i], b.ids[j] = b.ids[j], b.ids[i]
	b.nums[i], b.nums[j] = b.nums[j], b.nums[i]
}
