package gitmodel

import (
	"context"
	"math"
	"slices"
	"sort"
)

// hypothesis is a finished beam: tokens without the final [SEP] (HF stores
// them that way and appends [SEP] when padding the output).
type hypothesis struct {
	ids   []int
	score float64
}

// beamHyps keeps the NumBeams best finished hypotheses of one image, as
// transformers' BeamHypotheses does.
type beamHyps struct {
	n          int
	penalty    float64
	early      bool
	hyps       []hypothesis
	worstScore float64
}

func (h *beamHyps) add(ids []int, sumLogprobs float64, genLen int) {
	score := sumLogprobs / math.Pow(float64(genLen), h.penalty)
	if len(h.hyps) < h.n || score > h.worstScore {
		h.hyps = append(h.hyps, hypothesis{append([]int(nil), ids...), score})
		if len(h.hyps) > h.n {
			worst, second := 0, -1
			for i := range h.hyps {
				if h.hyps[i].score < h.hyps[worst].score {
					worst = i
				}
			}
			h.hyps = append(h.hyps[:worst], h.hyps[worst+1:]...)
			for i := range h.hyps {
				if second < 0 || h.hyps[i].score < h.hyps[second].score {
					second = i
				}
			}
			h.worstScore = h.hyps[second].score
		} else {
			h.worstScore = math.Min(score, h.worstScore)
		}
	}
}

// isDone: with early stopping, as soon as n hypotheses are finished;
// otherwise when the best running beam cannot beat the worst finished one.
func (h *beamHyps) isDone(bestSum float64, curLen, promptLen int) bool {
	if len(h.hyps) < h.n {
		return false
	}
	if h.early {
		return true
	}
	return h.worstScore >= bestSum/math.Pow(float64(curLen-promptLen), h.penalty)
}

// beam runs beam search with transformers 4.36's semantics: log-softmax
// scores (after the logits processors) accumulate per beam; each step keeps
// the top 2·beams candidates of each image; a candidate ending in [SEP]
// among the first `beams` becomes a hypothesis scored sum/len^penalty, len
// counting generated tokens including the [SEP].
func (r *search) beam(ctx context.Context, pixels []float32, batch int) ([][]Sequence, error) {
	o := r.o
	k := o.NumBeams
	rows := batch * k
	logits, err := r.s.start(pixels, batch, r.prompt, k)
	if err != nil {
		return nil, err
	}
	// Two sets of sequence buffers, swapped every step: reordering beams
	// copies histories without allocating.
	seqs, spare := make([][]int, rows), make([][]int, rows)
	for i := range seqs {
		seqs[i] = append(make([]int, 0, r.maxLen), r.prompt...)
		spare[i] = make([]int, 0, r.maxLen)
	}
	beamScores := make([]float64, rows)
	for i := range beamScores {
		if i%k != 0 {
			beamScores[i] = -1e9 // only the first beam is live at the start
		}
	}
	hyps := make([]*beamHyps, batch)
	for i := range hyps {
		hyps[i] = &beamHyps{n: k, penalty: o.LengthPenalty, early: o.EarlyStopping, worstScore: 1e9}
	}
	done := make([]bool, batch)
	promptLen := len(r.prompt)
	type cand struct {
		score float64
		beam  int
		token int
	}
	cands := make([]cand, 0, k*r.vocab)
	logp := make([]float32, r.vocab)
	nextTokens := make([]int, rows)
	nextSrc := make([]int, rows)
	nextScores := make([]float64, rows)
	cur := promptLen
	for {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		for b := 0; b < batch; b++ {
			if done[b] {
				for j := 0; j < k; j++ {
					nextTokens[b*k+j], nextSrc[b*k+j], nextScores[b*k+j] = r.pad, b*k, 0
				}
				continue
			}
			cands = cands[:0]
			for j := 0; j < k; j++ {
				row := b*k + j
				scores := logits[row*r.vocab : (row+1)*r.vocab]
				logSoftmaxTorch(scores, logp)
				copy(scores, logp)
				r.process(seqs[row], scores)
				bs := float32(beamScores[row])
				for t, v := range scores {
					cands = append(cands, cand{float64(v + bs), j, t}) // float32 sums, as HF
				}
			}
			top := topCandidates(cands, 2*k, func(c cand) float64 { return c.score })
			n := 0
			for rank, c := range top {
				row := b*k + c.beam
				if c.token == r.eos {
					if rank >= k {
						continue
					}
					hyps[b].add(seqs[row], c.score, cur+1-promptLen)
					continue
				}
				nextTokens[b*k+n], nextSrc[b*k+n], nextScores[b*k+n] = c.token, row, c.score
				n++
				if n == k {
					break
				}
			}
			best := math.Inf(-1)
			for _, c := range top {
				best = math.Max(best, c.score)
			}
			done[b] = done[b] || hyps[b].isDone(best, cur+1, promptLen)
		}
		// Reorder the beams and append their tokens.
		for i := range spare {
			spare[i] = append(append(spare[i][:0], seqs[nextSrc[i]]...), nextTokens[i])
			beamScores[i] = nextScores[i]
		}
		seqs, spare = spare, seqs
		cur++
		allDone := true
		for _, d := range done {
			allDone = allDone && d
		}
		if allDone || cur >= r.maxLen {
			break
		}
		r.s.reorder(nextSrc)
		if logits, err = r.s.step(nextTokens); err != nil {
			return nil, err
		}
	}
	// Finalise: running beams of unfinished images become hypotheses too.
	out := make([][]Sequence, batch)
	for b := 0; b < batch; b++ {
		if !done[b] {
			for j := 0; j < k; j++ {
				row := b*k + j
				hyps[b].add(seqs[row], beamScores[row], len(seqs[row])-promptLen)
			}
		}
		// HF sorts ascending and pops from the end: among equal scores the
		// hypothesis added last wins. Reversing an ascending stable sort
		// gives the same order.
		hs := append([]hypothesis(nil), hyps[b].hyps...)
		sort.SliceStable(hs, func(i, j int) bool { return hs[i].score < hs[j].score })
		slices.Reverse(hs)
		for i := 0; i < o.NumReturnSequences && i < len(hs); i++ {
			ids := hs[i].ids
			if len(ids) < r.maxLen {
				ids = append(ids, r.eos)
			}
			out[b] = append(out[b], Sequence{IDs: ids, Score: hs[i].score})
		}
	}
	return out, nil
}

// logSoftmaxTorch writes log-softmax(s) computed the way PyTorch's CPU
// kernel does in float32 (AVX2: the exp terms accumulate in 8 float32 lanes,
// which are then summed in order). Beam scores are sums of these values,
// and near-certain tokens (log p ≈ -0.005) are exactly where float32
// accumulation over a 30k vocabulary drifts by ~1e-4 from the exact value:
// matching HF's sequence_score needs HF's arithmetic.
func logSoftmaxTorch(s []float32, out []float32) {
	mx := s[0]
	for _, v := range s {
		if v > mx {
			mx = v
		}
	}
	const lanes = 8
	var acc [lanes]float32
	d := 0
	for ; d+lanes <= len(s); d += lanes {
		for l := 0; l < lanes; l++ {
			acc[l] += float32(math.Exp(float64(s[d+l] - mx)))
		}
	}
	for l := 0; d+l < len(s); l++ {
		acc[l] += float32(math.Exp(float64(s[d+l] - mx)))
	}
	var sum float32
	for _, a := range acc {
		sum += a
	}
	lse := float32(math.Log(float64(sum)))
	for i, v := range s {
		out[i] = v - mx - lse
	}
}

// topCandidates returns the n highest-scoring items, best first (earlier
// items first among equal scores). It keeps a small sorted buffer instead
// of sorting all beams×vocab candidates.
func topCandidates[C any](cs []C, n int, score func(C) float64) []C {
	top := make([]C, 0, n+1)
	for _, c := range cs {
		sc := score(c)
		if len(top) == n && sc <= score(top[n-1]) {
			continue
		}
		i := len(top)
		for i > 0 && score(top[i-1]) < sc {
			i--
		}
		top = append(top, c)
		copy(top[i+1:], top[i:])
		top[i] = c
		if len(top) > n {
			top = top[:n]
		}
	}
	return top
}
