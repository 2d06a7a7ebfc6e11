package eval

import (
	"math"
	"strings"
	"testing"
)

// FuzzPTBTokenize checks the coco-caption PTB tokenizer pipeline on
// arbitrary captions (seeds: the fixture's raw captions). Properties: no
// panic; the output is lower-cased words separated by single spaces; one
// output per caption; and, as PTBTokenizeAll documents, a caption that is
// not the last line of a run is tokenized the same whatever its
// neighbours are.
func FuzzPTBTokenize(f *testing.F) {
	for _, c := range loadRawTokenize(f) {
		f.Add(c.Raw)
	}
	f.Fuzz(func(t *testing.T, s string) {
		out := PTBTokenize(s)
		if strings.HasPrefix(out, " ") || strings.HasSuffix(out, " ") || strings.Contains(out, "  ") {
			t.Fatalf("PTBTokenize(%q) = %q: not single-space separated", s, out)
		}
		for _, r := range out {
			if r >= 'A' && r <= 'Z' || r == '\n' {
				t.Fatalf("PTBTokenize(%q) = %q: holds %q", s, out, r)
			}
		}
		a := PTBTokenizeAll([]string{s, "a man riding a horse."})
		b := PTBTokenizeAll([]string{"Two dogs, one cat!", s, "the end"})
		if len(a) != 2 || len(b) != 3 {
			t.Fatalf("PTBTokenizeAll gave %d and %d outputs for 2 and 3 captions", len(a), len(b))
		}
		if a[0] != b[1] {
			t.Fatalf("caption %q tokenized as %q before one line and %q between two", s, a[0], b[1])
		}
		if a[1] != "a man riding a horse" || b[0] != "two dogs one cat" {
			t.Fatalf("caption %q changed its neighbours: %q, %q", s, a, b)
		}
	})
}

// FuzzCIDErD scores a fixture corpus (20 real COCO images) in which one
// image's candidate and one of its references are replaced by fuzz input,
// PTB-tokenized as the toolkit feeds them. Properties: no panic, no error;
// every per-image score is finite and within CIDEr-D's range [0, 10]
// (clipped counts, a Gaussian length penalty <= 1 and cosines <= 1, times
// 10); the corpus score is their mean; and an image's score does not
// depend on the order in which the images are listed.
func FuzzCIDErD(f *testing.F) {
	c := loadCiderCases(f)[0]
	res := single(f, c.Res)
	f.Add(res[c.ImageIDs[0]], c.Gts[c.ImageIDs[0]][0])
	f.Add("", "")
	f.Add("a a a a a a a a a a a a", "a")
	f.Add(strings.Repeat("x ", 300), "x")
	f.Fuzz(func(t *testing.T, cand, ref string) {
		ids := c.ImageIDs
		gts := make(map[string][]string, len(ids))
		rs := make(map[string]string, len(ids))
		for _, id := range ids {
			gts[id], rs[id] = c.Gts[id], res[id]
		}
		id0 := ids[0]
		gts[id0] = append([]string{PTBTokenize(ref)}, c.Gts[id0][1:]...)
		rs[id0] = PTBTokenize(cand)
		corpus, per, err := CIDErD(ids, gts, rs)
		if err != nil {
			t.Fatalf("CIDErD: %v", err)
		}
		if len(per) != len(ids) {
			t.Fatalf("%d per-image scores for %d images", len(per), len(ids))
		}
		sum := 0.0
		for i, s := range per {
			if math.IsNaN(s) || s < 0 || s > 10 {
				t.Fatalf("image %s scores %v (candidate %q, reference %q)", ids[i], s, cand, ref)
			}
			sum += s
		}
		if mean := sum / float64(len(per)); math.Abs(mean-corpus) > 1e-12*math.Max(1, mean) {
			t.Fatalf("corpus %v is not the mean %v of the per-image scores", corpus, mean)
		}
		rev := make([]string, len(ids))
		for i, id := range ids {
			rev[len(ids)-1-i] = id
		}
		_, perRev, err := CIDErD(rev, gts, rs)
		if err != nil {
			t.Fatal(err)
		}
		for i := range per {
			if perRev[len(ids)-1-i] != per[i] {
				t.Fatalf("image %s scores %v in order and %v reversed", ids[i], per[i], perRev[len(ids)-1-i])
			}
		}
	})
}
