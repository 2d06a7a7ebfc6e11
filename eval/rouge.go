package eval

import "strings"

// ROUGE-L as computed by pycocoevalcap's rouge/rouge.py: captions are split
// on single spaces (so an empty caption is one empty token), precision and
// recall are the longest common subsequence over the candidate and
// reference lengths, each maximised over the references, and combined as an
// F-measure with beta = 1.2.

const rougeBeta = 1.2

// ROUGEL returns the mean ROUGE-L over the images in ids and each image's
// score, aligned with ids. Captions must already be tokenized.
func ROUGEL(ids []string, gts map[string][]string, res map[string]string) (corpus float64, perImage []float64, err error) {
	if err := checkInputs(ids, gts, res); err != nil {
		return 0, nil, err
	}
	perImage = make([]float64, len(ids))
	var row []int
	for i, id := range ids {
		cand := strings.Split(res[id], " ")
		precMax, recMax := 0.0, 0.0
		for j, r := range gts[id] {
			ref := strings.Split(r, " ")
			var l int
			l, row = lcs(ref, cand, row)
			prec := float64(l) / float64(len(cand))
			rec := float64(l) / float64(len(ref))
			// max(prec), max(rec): the first maximum wins; all values are
			// non-negative so the order does not change the result.
			if j == 0 || prec > precMax {
				precMax = prec
			}
			if j == 0 || rec > recMax {
				recMax = rec
			}
		}
		perImage[i] = rougeF(precMax, recMax)
	}
	return npMean(perImage), perImage, nil
}

// rougeF is calc_score's F-measure, in the toolkit's operation order.
func rougeF(prec, rec float64) float64 {
	if prec == 0 || rec == 0 {
		return 0
	}
	beta := rougeBeta
	b2 := float64(beta * beta)
	num := float64(float64((1+b2)*prec) * rec)
	den := rec + float64(b2*prec)
	return num / den
}

// lcs returns the length of the longest common subsequence of a and b,
// using row as scratch space.
func lcs(a, b []string, row []int) (int, []int) {
	if len(a) < len(b) {
		a, b = b, a
	}
	if cap(row) < len(b)+1 {
		row = make([]int, len(b)+1)
	}
	row = row[:len(b)+1]
	clear(row)
	for i := 1; i <= len(a); i++ {
		prevDiag := 0 // row[j-1] of the previous i
		for j := 1; j <= len(b); j++ {
			up := row[j]
			if a[i-1] == b[j-1] {
				row[j] = prevDiag + 1
			} else if row[j-1] > up {
				row[j] = row[j-1]
			}
			prevDiag = up
		}
	}
	return row[len(b)], row
}
