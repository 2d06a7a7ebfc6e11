package eval

import (
	"encoding/json"
	"fmt"
	"math"
	"strings"
)

// CIDEr-D as computed by pycocoevalcap's cider/cider_scorer.py (identical to
// tylin/coco-caption): n = 1..4, Gaussian length penalty with sigma 6,
// clipped tf-idf similarity, x10. The floating-point operations are done in
// the toolkit's order, so that the scores agree to the last bit or two.

const (
	ciderN     = 4
	ciderSigma = 6.0
)

// CIDErD scores each candidate res[id] against the references gts[id] for
// the images in ids, in that order, and returns the corpus score (the mean
// of the per-image scores) and the per-image scores, aligned with ids.
//
// Captions must already be tokenized (see PTBTokenize); words are split on
// white space like Python's str.split. Document frequencies come from the
// references of the evaluated images only, and ref_len is ln(len(ids)), as in
// Cider().compute_score(gts, res). The order of ids matters only for the
// last bits of the corpus mean.
func CIDErD(ids []string, gts map[string][]string, res map[string]string) (corpus float64, perImage []float64, err error) {
	if err := checkInputs(ids, gts, res); err != nil {
		return 0, nil, err
	}
	return newNgramCorpus(ids, gts, res).cider()
}

// cider computes CIDEr-D with document frequencies from the corpus's own
// references and ref_len = ln(number of images).
func (c *ngramCorpus) cider() (float64, []float64, error) {
	df := make([]int32, c.numGrams())
	stamp := make([]int32, c.numGrams())
	anyRef := false
	for img := 0; img < c.numImages(); img++ {
		for _, r := range c.refsOf(img) {
			for _, g := range c.entries[r.off[0]:r.off[ciderN]] {
				anyRef = true
				if stamp[g.id] != int32(img)+1 {
					stamp[g.id] = int32(img) + 1
					df[g.id]++
				}
			}
		}
	}
	if !anyRef {
		// The toolkit fails here too: max() of an empty document frequency.
		return 0, nil, fmt.Errorf("eval: CIDEr-D: every reference caption is empty")
	}
	return c.score(logInt(c.numImages()), func(id int32) int { return int(df[id]) })
}

// DocFreq holds the document frequency of every n-gram (n = 1..4) of a
// reference corpus: the number of images with the n-gram in at least one of
// their reference captions. It is the "corpus idf" of CIDEr-D variants that
// take df from the training references (coco-train-idf) instead of the
// evaluated set. A DocFreq is read-only once built and safe for concurrent
// use.
type DocFreq struct {
	numImages int
	df        map[string]dfCount
}

// dfCount is an n-gram's document frequency and the last image (+1) that
// counted it.
type dfCount struct{ n, last int32 }

// NewDocFreq computes document frequencies over a reference corpus: one
// element per image, each holding that image's tokenized reference captions.
func NewDocFreq(images [][]string) *DocFreq {
	d := &DocFreq{numImages: len(images), df: make(map[string]dfCount)}
	var words []string
	for img, refs := range images {
		for _, ref := range refs {
			words = appendPyFields(words[:0], ref)
			for n := 1; n <= ciderN; n++ {
				for i := 0; i+n <= len(words); i++ {
					g := strings.Join(words[i:i+n], " ")
					if c := d.df[g]; c.last != int32(img)+1 {
						d.df[g] = dfCount{c.n + 1, int32(img) + 1}
					}
				}
			}
		}
	}
	return d
}

// NumImages is the number of images the frequencies were counted over; its
// logarithm is CIDEr-D's ref_len.
func (d *DocFreq) NumImages() int { return d.numImages }

// Len is the number of distinct n-grams.
func (d *DocFreq) Len() int { return len(d.df) }

// Get returns the document frequency of an n-gram given as its words joined
// by single spaces.
func (d *DocFreq) Get(ngram string) int { return int(d.df[ngram].n) }

type docFreqJSON struct {
	NumImages int            `json:"num_images"`
	DF        map[string]int `json:"df"`
}

// MarshalJSON encodes the frequencies as {"num_images": N, "df": {ngram: count}}.
func (d *DocFreq) MarshalJSON() ([]byte, error) {
	df := make(map[string]int, len(d.df))
	for g, c := range d.df {
		df[g] = int(c.n)
	}
	return json.Marshal(docFreqJSON{d.numImages, df})
}

// UnmarshalJSON decodes what MarshalJSON wrote.
func (d *DocFreq) UnmarshalJSON(b []byte) error {
	var v docFreqJSON
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	if v.NumImages <= 0 {
		return fmt.Errorf("eval: document frequencies: num_images is %d, want > 0", v.NumImages)
	}
	df := make(map[string]dfCount, len(v.DF))
	for g, n := range v.DF {
		if n <= 0 || n > v.NumImages {
			return fmt.Errorf("eval: document frequencies: n-gram %q has frequency %d, want 1..%d", g, n, v.NumImages)
		}
		df[g] = dfCount{n: int32(n)}
	}
	d.numImages, d.df = v.NumImages, df
	return nil
}

// CIDErDWithDF is CIDErD with document frequencies taken from a reference
// corpus (df) instead of the evaluated references, and ref_len =
// ln(df.NumImages()).
func CIDErDWithDF(ids []string, gts map[string][]string, res map[string]string, df *DocFreq) (corpus float64, perImage []float64, err error) {
	if df == nil || df.numImages <= 0 {
		return 0, nil, fmt.Errorf("eval: CIDEr-D: document frequencies over an empty corpus")
	}
	if err := checkInputs(ids, gts, res); err != nil {
		return 0, nil, err
	}
	return newNgramCorpus(ids, gts, res).ciderWithDF(df)
}

// ciderWithDF computes CIDEr-D with document frequencies from df.
func (c *ngramCorpus) ciderWithDF(df *DocFreq) (float64, []float64, error) {
	freq := make([]int, c.numGrams())
	for id := range freq {
		freq[id] = int(df.df[c.gramText(int32(id))].n)
	}
	return c.score(logInt(df.numImages), func(id int32) int { return freq[id] })
}

// checkInputs validates the common arguments of the scorers.
func checkInputs(ids []string, gts map[string][]string, res map[string]string) error {
	if len(ids) == 0 {
		return fmt.Errorf("eval: no images to score")
	}
	seen := make(map[string]bool, len(ids))
	for _, id := range ids {
		if seen[id] {
			return fmt.Errorf("eval: image %q listed twice", id)
		}
		seen[id] = true
		refs, ok := gts[id]
		if !ok {
			return fmt.Errorf("eval: image %q has no references", id)
		}
		if len(refs) == 0 {
			return fmt.Errorf("eval: image %q has an empty list of references", id)
		}
		if _, ok := res[id]; !ok {
			return fmt.Errorf("eval: image %q has no candidate caption", id)
		}
	}
	return nil
}

// gramCount is one n-gram of a sentence with its term frequency.
type gramCount struct {
	id int32
	tf int32
}

// cookedSentence locates a sentence's n-grams in ngramCorpus.entries:
// order n (0-based) is entries[off[n]:off[n+1]], in order of first
// occurrence (the insertion order of the toolkit's dicts).
type cookedSentence struct {
	off [ciderN + 1]int32
	// length is the toolkit's "length": the number of bigram occurrences.
	length int32
	// words is the number of words.
	words int32
}

// ngramCorpus interns the words and n-grams of one evaluation; CIDEr-D and
// BLEU are computed from it. An n-gram of order n > 1 is identified by its
// prefix (an n-gram of order n-1) and its last word, so the n-gram table is
// keyed by pairs of int32.
type ngramCorpus struct {
	words      map[string]int32
	wordText   []string
	wordGram   []int32   // word id -> its unigram's n-gram id
	ext        gramTable // prefix n-gram id, word id -> n-gram id
	gramPrefix []int32   // n-gram id -> prefix n-gram id, -1 for unigrams
	gramWord   []int32   // n-gram id -> last word id
	entries    []gramCount
	sents      []cookedSentence
	// Image i has references sents[first[i]:first[i+1]-1] and its
	// candidate at sents[first[i+1]-1].
	first []int32

	// Scratch space for cook.
	wids      []int32
	prev, cur []int32
	buf       []string
}

func newNgramCorpus(ids []string, gts map[string][]string, res map[string]string) *ngramCorpus {
	// Size the tables from a cheap upper bound of the n-gram count.
	total := 0
	for _, id := range ids {
		for _, r := range gts[id] {
			total += len(r)/4 + 1
		}
		total += len(res[id])/4 + 1
	}
	c := &ngramCorpus{
		words:      make(map[string]int32),
		ext:        newGramTable(total),
		first:      make([]int32, 0, len(ids)+1),
		gramPrefix: make([]int32, 0, total),
		gramWord:   make([]int32, 0, total),
		entries:    make([]gramCount, 0, 2*total),
	}
	for _, id := range ids {
		c.first = append(c.first, int32(len(c.sents)))
		for _, r := range gts[id] {
			c.cook(r)
		}
		c.cook(res[id])
	}
	c.first = append(c.first, int32(len(c.sents)))
	return c
}

// gramTable is an open-addressing hash table from uint64 keys to
// non-negative int32 values; faster than a Go map for the million or so
// n-gram lookups of a large evaluation.
type gramTable struct {
	entries []gramEntry
	shift   uint
	n       int
}

type gramEntry struct {
	key uint64
	val int32 // value+1; 0 marks an empty slot
}

func newGramTable(capacity int) gramTable {
	bits := uint(4)
	for 1<<bits < 2*capacity {
		bits++
	}
	return gramTable{entries: make([]gramEntry, 1<<bits), shift: 64 - bits}
}

// find returns the slot of key, or the empty slot where it would go.
func (t *gramTable) find(key uint64) (int, bool) {
	mask := len(t.entries) - 1
	i := int((key * 0x9E3779B97F4A7C15) >> t.shift)
	for {
		e := &t.entries[i]
		if e.val == 0 {
			return i, false
		}
		if e.key == key {
			return i, true
		}
		i = (i + 1) & mask
	}
}

func (t *gramTable) val(slot int) int32 { return t.entries[slot].val - 1 }

// insert stores key at the empty slot find returned.
func (t *gramTable) insert(slot int, key uint64, val int32) {
	t.entries[slot] = gramEntry{key, val + 1}
	t.n++
	if 2*t.n > len(t.entries) {
		old := t.entries
		t.entries = make([]gramEntry, 2*len(old))
		t.shift--
		for _, e := range old {
			if e.val != 0 {
				s, _ := t.find(e.key)
				t.entries[s] = e
			}
		}
	}
}

func (c *ngramCorpus) newGram(prefix, word int32) int32 {
	id := int32(len(c.gramPrefix))
	c.gramPrefix = append(c.gramPrefix, prefix)
	c.gramWord = append(c.gramWord, word)
	return id
}

// cook appends the n-grams of one sentence (precook in the toolkit).
func (c *ngramCorpus) cook(sentence string) {
	c.buf = appendPyFields(c.buf[:0], sentence)
	c.wids = c.wids[:0]
	for _, w := range c.buf {
		id, ok := c.words[w]
		if !ok {
			id = int32(len(c.wordText))
			c.words[w] = id
			c.wordText = append(c.wordText, w)
			c.wordGram = append(c.wordGram, c.newGram(-1, id))
		}
		c.wids = append(c.wids, id)
	}
	s := cookedSentence{words: int32(len(c.wids))}
	s.off[0] = int32(len(c.entries))
	nw := len(c.wids)
	c.prev = c.prev[:0]
	for n := 1; n <= ciderN; n++ {
		c.cur = c.cur[:0]
		for i := 0; i+n <= nw; i++ {
			var gid int32
			if n == 1 {
				gid = c.wordGram[c.wids[i]]
			} else {
				key := uint64(uint32(c.prev[i]))<<32 | uint64(uint32(c.wids[i+n-1]))
				slot, ok := c.ext.find(key)
				if ok {
					gid = c.ext.val(slot)
				} else {
					gid = c.newGram(c.prev[i], c.wids[i+n-1])
					c.ext.insert(slot, key, gid)
				}
			}
			c.cur = append(c.cur, gid)
			// Sentences are short: a linear scan of this order's n-grams
			// so far beats a lookup in a corpus-wide table.
			found := false
			for k := s.off[n-1]; k < int32(len(c.entries)); k++ {
				if c.entries[k].id == gid {
					c.entries[k].tf++
					found = true
					break
				}
			}
			if !found {
				c.entries = append(c.entries, gramCount{gid, 1})
			}
			if n == 2 {
				s.length++
			}
		}
		c.prev, c.cur = c.cur, c.prev
		s.off[n] = int32(len(c.entries))
	}
	c.sents = append(c.sents, s)
}

func (c *ngramCorpus) numImages() int { return len(c.first) - 1 }

// refsOf returns the references of image img.
func (c *ngramCorpus) refsOf(img int) []cookedSentence {
	return c.sents[c.first[img] : c.first[img+1]-1]
}

// hypOf returns the candidate of image img.
func (c *ngramCorpus) hypOf(img int) *cookedSentence { return &c.sents[c.first[img+1]-1] }

// numGrams is the number of distinct n-grams.
func (c *ngramCorpus) numGrams() int { return len(c.gramPrefix) }

// gramText returns an n-gram's words joined by single spaces.
func (c *ngramCorpus) gramText(id int32) string {
	var parts [ciderN]string
	k := ciderN
	for ; id >= 0; id = c.gramPrefix[id] {
		k--
		parts[k] = c.wordText[c.gramWord[id]]
	}
	return strings.Join(parts[k:], " ")
}

// score runs compute_cider with the given ref_len and document frequencies.
func (c *ngramCorpus) score(refLen float64, df func(int32) int) (float64, []float64, error) {
	// Memoized ln(max(1, df)); a local cache, one per evaluation.
	logDF := map[int]float64{}
	idf := make([]float64, c.numGrams())
	for id := range idf {
		f := df(int32(id))
		if f < 1 {
			f = 1
		}
		l, ok := logDF[f]
		if !ok {
			l = logInt(f)
			logDF[f] = l
		}
		idf[id] = refLen - l
	}
	// weights fills w (aligned with entries) and returns the norms.
	weights := func(s *cookedSentence, w []float64) (norm [ciderN]float64) {
		base := s.off[0]
		for n := 0; n < ciderN; n++ {
			sum := 0.0
			for k := s.off[n]; k < s.off[n+1]; k++ {
				g := c.entries[k]
				x := float64(g.tf) * idf[g.id]
				w[k-base] = x
				sum += float64(x * x)
			}
			norm[n] = math.Sqrt(sum)
		}
		return norm
	}
	penalty := map[int32]float64{}
	refW := make([]float64, c.numGrams())
	refStamp := make([]int32, c.numGrams())
	var pairStamp int32
	var hw, rw []float64
	nImages := c.numImages()
	scores := make([]float64, nImages)
	for i := 0; i < nImages; i++ {
		hyp := c.hypOf(i)
		hw = grow(hw, int(hyp.off[ciderN]-hyp.off[0]))
		hnorm := weights(hyp, hw)
		var sum [ciderN]float64
		refs := c.refsOf(i)
		for j := range refs {
			ref := &refs[j]
			rw = grow(rw, int(ref.off[ciderN]-ref.off[0]))
			rnorm := weights(ref, rw)
			pairStamp++
			for k := ref.off[0]; k < ref.off[ciderN]; k++ {
				g := c.entries[k].id
				refW[g] = rw[k-ref.off[0]]
				refStamp[g] = pairStamp
			}
			delta := hyp.length - ref.length
			pen, ok := penalty[delta]
			if !ok {
				d := float64(delta)
				pen = powERN(-(d * d) / (2 * ciderSigma * ciderSigma))
				penalty[delta] = pen
			}
			for n := 0; n < ciderN; n++ {
				val := 0.0
				for k := hyp.off[n]; k < hyp.off[n+1]; k++ {
					g := c.entries[k].id
					wr := 0.0
					if refStamp[g] == pairStamp {
						wr = refW[g]
					}
					wh := hw[k-hyp.off[0]]
					m := wh
					if wr < wh {
						m = wr
					}
					val += float64(m * wr)
				}
				if hnorm[n] != 0 && rnorm[n] != 0 {
					val /= float64(hnorm[n] * rnorm[n])
				}
				val *= pen
				sum[n] += val
			}
		}
		// np.mean over the 4 orders is a sequential sum from 0.
		avg := 0.0
		for n := 0; n < ciderN; n++ {
			avg += sum[n]
		}
		avg /= ciderN
		avg /= float64(len(refs))
		avg *= 10.0
		scores[i] = avg
	}
	return npMean(scores), scores, nil
}

func grow(s []float64, n int) []float64 {
	if cap(s) < n {
		return make([]float64, n, 2*n)
	}
	return s[:n]
}

// npMean is np.mean of a float64 vector: numpy's pairwise sum divided by n.
func npMean(a []float64) float64 {
	if len(a) == 0 {
		return math.NaN()
	}
	return pairwiseSum(a) / float64(len(a))
}

// pairwiseSum reproduces numpy's pairwise summation (DOUBLE_pairwise_sum)
// as np.add.reduce applies it to a contiguous vector: 0 + pairwise(a).
func pairwiseSum(a []float64) float64 {
	return 0 + pairwise(a)
}

func pairwise(a []float64) float64 {
	n := len(a)
	switch {
	case n < 8:
		res := 0.0
		for _, v := range a {
			res += v
		}
		return res
	case n <= 128:
		var r [8]float64
		copy(r[:], a[:8])
		i := 8
		for ; i < n-n%8; i += 8 {
			for j := 0; j < 8; j++ {
				r[j] += a[i+j]
			}
		}
		res := ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]))
		for ; i < n; i++ {
			res += a[i]
		}
		return res
	default:
		n2 := n / 2
		n2 -= n2 % 8
		return pairwise(a[:n2]) + pairwise(a[n2:])
	}
}
