package eval

// BLEU as computed by pycocoevalcap's bleu/bleu_scorer.py with
// Bleu(4).compute_score, i.e. option "closest": each candidate's reference
// length is the reference length closest to its own (the shorter one on a
// tie), the n-gram counts are clipped by the maximum count in any single
// reference, and tiny = 1e-15 / small = 1e-9 guard against zeros.

const (
	bleuN     = 4
	bleuTiny  = 1e-15
	bleuSmall = 1e-9
)

// BLEU returns corpus-level BLEU-1..4 over the images in ids, and each
// image's own BLEU-1..4 (aligned with ids), the way Bleu(4).compute_score
// does. Captions must already be tokenized; words are split on white space
// like Python's str.split.
func BLEU(ids []string, gts map[string][]string, res map[string]string) (corpus [4]float64, perImage [][4]float64, err error) {
	if err := checkInputs(ids, gts, res); err != nil {
		return corpus, nil, err
	}
	corpus, perImage = newNgramCorpus(ids, gts, res).bleu()
	return corpus, perImage, nil
}

// bleu computes BleuScorer.compute_score(option="closest") over the corpus.
func (c *ngramCorpus) bleu() (corpus [4]float64, perImage [][4]float64) {
	maxCount := make([]int32, c.numGrams())
	stamp := make([]int32, c.numGrams())
	perImage = make([][4]float64, c.numImages())
	var totalTest, totalRef int
	var totalGuess, totalCorrect [bleuN]int
	for img := range perImage {
		refs := c.refsOf(img)
		for _, r := range refs {
			for _, g := range c.entries[r.off[0]:r.off[ciderN]] {
				if stamp[g.id] != int32(img)+1 {
					stamp[g.id] = int32(img) + 1
					maxCount[g.id] = g.tf
				} else if g.tf > maxCount[g.id] {
					maxCount[g.id] = g.tf
				}
			}
		}
		hyp := c.hypOf(img)
		testLen := int(hyp.words)
		// min((abs(l-testlen), l) for l in reflen)[1]
		refLen := int(refs[0].words)
		for _, r := range refs[1:] {
			l := int(r.words)
			if d, best := absInt(l-testLen), absInt(refLen-testLen); d < best || (d == best && l < refLen) {
				refLen = l
			}
		}
		var guess, correct [bleuN]int
		for n := 0; n < bleuN; n++ {
			guess[n] = max(0, testLen-n)
			for _, g := range c.entries[hyp.off[n]:hyp.off[n+1]] {
				if stamp[g.id] == int32(img)+1 {
					correct[n] += int(min(maxCount[g.id], g.tf))
				}
			}
		}
		totalTest += testLen
		totalRef += refLen
		for n := 0; n < bleuN; n++ {
			totalGuess[n] += guess[n]
			totalCorrect[n] += correct[n]
		}
		perImage[img] = bleuScores(correct, guess, testLen, refLen)
	}
	return bleuScores(totalCorrect, totalGuess, totalTest, totalRef), perImage
}

// bleuScores turns clipped n-gram counts into BLEU-1..4 with the toolkit's
// guards and brevity penalty.
func bleuScores(correct, guess [bleuN]int, testLen, refLen int) [4]float64 {
	var out [4]float64
	bleu := 1.0
	for k := 0; k < bleuN; k++ {
		bleu *= (float64(correct[k]) + bleuTiny) / (float64(guess[k]) + bleuSmall)
		out[k] = powRN(bleu, 1.0/float64(k+1))
	}
	ratio := (float64(testLen) + bleuTiny) / (float64(refLen) + bleuSmall)
	if ratio < 1 {
		bp := expRN(1 - 1/ratio)
		for k := range out {
			out[k] *= bp
		}
	}
	return out
}

func absInt(x int) int {
	if x < 0 {
		return -x
	}
	return x
}
