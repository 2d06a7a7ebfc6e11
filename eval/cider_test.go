package eval

import (
	"encoding/json"
	"math"
	"os"
	"strings"
	"testing"

	"github.com/gitcap/gitcap/data/fixtures"
)

// ciderCase is one case of the shared coco-caption fixture public.json.
type ciderCase struct {
	Name         string              `json:"name"`
	ImageIDs     []string            `json:"image_ids"`
	RawGts       map[string][]string `json:"raw_gts"`
	RawRes       map[string][]string `json:"raw_res"`
	Gts          map[string][]string `json:"gts"`
	Res          map[string][]string `json:"res"`
	CIDErD       float64             `json:"cider_d"`
	CIDErDScores map[string]float64  `json:"cider_d_scores"`
	Bleu         [4]float64          `json:"bleu"`
	RougeL       float64             `json:"rouge_l"`
	RougeLScores map[string]float64  `json:"rouge_l_scores"`
}

func loadCiderCases(t testing.TB) []ciderCase {
	t.Helper()
	b, err := os.ReadFile(fixtures.Path(t, "cider", "public.json"))
	if err != nil {
		t.Fatal(err)
	}
	var cases []ciderCase
	if err := json.Unmarshal(b, &cases); err != nil {
		t.Fatalf("public.json: %v", err)
	}
	if len(cases) == 0 {
		t.Fatal("public.json: no cases")
	}
	return cases
}

// single turns the fixture's one-element candidate lists into strings.
func single(t testing.TB, res map[string][]string) map[string]string {
	out := make(map[string]string, len(res))
	for id, c := range res {
		if len(c) != 1 {
			t.Fatalf("image %s: %d candidates", id, len(c))
		}
		out[id] = c[0]
	}
	return out
}

func ulps(a, b float64) int64 {
	d := int64(math.Float64bits(a)) - int64(math.Float64bits(b))
	if d < 0 {
		d = -d
	}
	return d
}

// within reports whether got is within tol of want, absolutely or
// relatively.
func within(got, want, tol float64) bool {
	d := math.Abs(got - want)
	return d <= tol || d <= tol*math.Abs(want)
}

// TestCIDErDMatchesToolkit compares corpus and per-image CIDEr-D with
// pycocoevalcap on every public case. With the toolkit's summation orders
// and correctly rounded log and pow, the values agree bit for bit; the test
// allows 1e-12.
func TestCIDErDMatchesToolkit(t *testing.T) {
	for _, c := range loadCiderCases(t) {
		t.Run(c.Name, func(t *testing.T) {
			got, per, err := CIDErD(c.ImageIDs, c.Gts, single(t, c.Res))
			if err != nil {
				t.Fatal(err)
			}
			if !within(got, c.CIDErD, 1e-12) {
				t.Errorf("corpus CIDEr-D = %.17g, want %.17g", got, c.CIDErD)
			}
			var maxULP int64
			for i, id := range c.ImageIDs {
				want, ok := c.CIDErDScores[id]
				if !ok {
					t.Fatalf("fixture lacks the score of image %s", id)
				}
				if !within(per[i], want, 1e-12) {
					t.Errorf("image %s: CIDEr-D = %.17g, want %.17g", id, per[i], want)
				}
				maxULP = max(maxULP, ulps(per[i], want))
			}
			t.Logf("corpus off by %d ulp, per-image by at most %d ulp", ulps(got, c.CIDErD), maxULP)
		})
	}
}

// TestBLEUMatchesToolkit compares corpus BLEU-1..4 ("closest" reference
// length) with pycocoevalcap; the values agree to 1 ulp (glibc's pow is
// not correctly rounded in one case).
func TestBLEUMatchesToolkit(t *testing.T) {
	for _, c := range loadCiderCases(t) {
		t.Run(c.Name, func(t *testing.T) {
			got, per, err := BLEU(c.ImageIDs, c.Gts, single(t, c.Res))
			if err != nil {
				t.Fatal(err)
			}
			if len(per) != len(c.ImageIDs) {
				t.Fatalf("%d per-image scores for %d images", len(per), len(c.ImageIDs))
			}
			for k := range got {
				if !within(got[k], c.Bleu[k], 1e-12) {
					t.Errorf("Bleu_%d = %.17g, want %.17g", k+1, got[k], c.Bleu[k])
				}
			}
		})
	}
}

// TestROUGELMatchesToolkit compares corpus and per-image ROUGE-L with
// pycocoevalcap; the values agree bit for bit.
func TestROUGELMatchesToolkit(t *testing.T) {
	for _, c := range loadCiderCases(t) {
		t.Run(c.Name, func(t *testing.T) {
			got, per, err := ROUGEL(c.ImageIDs, c.Gts, single(t, c.Res))
			if err != nil {
				t.Fatal(err)
			}
			if !within(got, c.RougeL, 1e-12) {
				t.Errorf("ROUGE_L = %.17g, want %.17g", got, c.RougeL)
			}
			for i, id := range c.ImageIDs {
				if !within(per[i], c.RougeLScores[id], 1e-12) {
					t.Errorf("image %s: ROUGE_L = %.17g, want %.17g", id, per[i], c.RougeLScores[id])
				}
			}
		})
	}
}

// TestCIDErDWithOwnDocFreqEqualsCIDErD builds the document frequencies from
// the evaluated references themselves: CIDErDWithDF must then give exactly
// CIDErD.
func TestCIDErDWithOwnDocFreqEqualsCIDErD(t *testing.T) {
	for _, c := range loadCiderCases(t) {
		t.Run(c.Name, func(t *testing.T) {
			res := single(t, c.Res)
			var corpus [][]string
			for _, id := range c.ImageIDs {
				corpus = append(corpus, c.Gts[id])
			}
			df := NewDocFreq(corpus)
			want, wantPer, err := CIDErD(c.ImageIDs, c.Gts, res)
			if err != nil {
				t.Fatal(err)
			}
			got, gotPer, err := CIDErDWithDF(c.ImageIDs, c.Gts, res, df)
			if err != nil {
				t.Fatal(err)
			}
			if got != want {
				t.Errorf("corpus %.17g, want %.17g", got, want)
			}
			for i := range gotPer {
				if gotPer[i] != wantPer[i] {
					t.Errorf("image %s: %.17g, want %.17g", c.ImageIDs[i], gotPer[i], wantPer[i])
				}
			}
		})
	}
}

func TestDocFreqCountsImagesOnce(t *testing.T) {
	df := NewDocFreq([][]string{
		{"a dog runs", "a dog runs fast"},
		{"a cat", "the dog sleeps"},
		{""},
	})
	for _, tc := range []struct {
		ngram string
		want  int
	}{{"a", 2}, {"dog", 2}, {"a dog", 1}, {"a dog runs fast", 1}, {"runs fast", 1}, {"cat", 1}, {"bird", 0}} {
		if got := df.Get(tc.ngram); got != tc.want {
			t.Errorf("df(%q) = %d, want %d", tc.ngram, got, tc.want)
		}
	}
	if df.NumImages() != 3 {
		t.Errorf("NumImages = %d", df.NumImages())
	}
	b, err := json.Marshal(df)
	if err != nil {
		t.Fatal(err)
	}
	var back DocFreq
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if back.NumImages() != 3 || back.Len() != df.Len() || back.Get("a dog runs fast") != 1 {
		t.Errorf("JSON round trip lost data: %s", b)
	}
	for _, bad := range []string{`{"num_images": 0, "df": {}}`, `{"num_images": 2, "df": {"a": 3}}`, `[1]`} {
		var d DocFreq
		if err := json.Unmarshal([]byte(bad), &d); err == nil {
			t.Errorf("%s accepted", bad)
		}
	}
}

func TestScorersRejectBadInput(t *testing.T) {
	gts := map[string][]string{"1": {"a dog"}, "2": {"a cat"}, "3": {}}
	res := map[string]string{"1": "a dog", "2": "a cat", "3": "x"}
	tests := []struct {
		name string
		ids  []string
		gts  map[string][]string
		res  map[string]string
		want string
	}{
		{"no images", nil, gts, res, "no images"},
		{"image listed twice", []string{"1", "1"}, gts, res, "listed twice"},
		{"image without references", []string{"1", "9"}, gts, map[string]string{"1": "a", "9": "b"}, "no references"},
		{"empty reference list", []string{"1", "3"}, gts, res, "empty list of references"},
		{"image without candidate", []string{"1", "2"}, gts, map[string]string{"1": "a"}, "no candidate"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err1 := CIDErD(tc.ids, tc.gts, tc.res)
			_, _, err2 := BLEU(tc.ids, tc.gts, tc.res)
			_, _, err3 := ROUGEL(tc.ids, tc.gts, tc.res)
			for _, err := range []error{err1, err2, err3} {
				if err == nil || !strings.Contains(err.Error(), tc.want) {
					t.Errorf("err = %v, want %q", err, tc.want)
				}
			}
		})
	}
	if _, _, err := CIDErD([]string{"1"}, map[string][]string{"1": {"", " "}}, map[string]string{"1": "a"}); err == nil {
		t.Error("CIDEr-D with only empty references: no error (the toolkit fails too)")
	}
	if _, _, err := CIDErDWithDF([]string{"1"}, gts, res, &DocFreq{}); err == nil {
		t.Error("CIDErDWithDF with an empty corpus: no error")
	}
}

// TestPairwiseSumFollowsNumpy checks the summation structure on values
// where the order shows.
func TestPairwiseSumFollowsNumpy(t *testing.T) {
	a := make([]float64, 300)
	for i := range a {
		a[i] = 1 + float64(i)*1e-16 + math.Pow(-1, float64(i))*1e-17
	}
	// numpy: pairwise(a[:144]) + pairwise(a[144:]), both split further.
	want := (pairwise(a[:72]) + pairwise(a[72:144])) + (pairwise(a[144:216]) + pairwise(a[216:]))
	if got := pairwiseSum(a); got != want {
		t.Errorf("pairwiseSum = %.17g, want %.17g", got, want)
	}
	small := []float64{0.1, 0.2, 0.3}
	if got := pairwiseSum(small); got != (small[0]+small[1])+small[2] {
		t.Errorf("short sums are sequential: %.17g", got)
	}
	if !math.IsNaN(npMean(nil)) {
		t.Error("mean of nothing is not NaN")
	}
}
