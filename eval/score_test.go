package eval

import (
	"fmt"
	"strings"
	"testing"
)

// synthCaptions makes n images with refs reference captions each and one
// candidate, deterministic, in raw form (capitals, commas, final periods).
func synthCaptions(n, refs int) (ids []string, gts map[string][]string, res map[string]string) {
	// Pseudo-words of two or three syllables: a 1,200-word vocabulary.
	syl := []string{"ba", "ko", "ri", "tem", "lu", "sen", "da", "mor", "vi", "pla"}
	words := make([]string, 1200)
	for i := range words {
		words[i] = syl[i%10] + syl[(i/10)%10] + strings.Repeat(syl[(i/100)%10], min(1, i/100))
	}
	common := []string{"a", "the", "of", "on", "in", "with", "and", "is", "man", "sitting", "table", "dog", "two", "near"}
	state := uint64(0x9E3779B97F4A7C15)
	rnd := func(k int) int {
		state ^= state << 13
		state ^= state >> 7
		state ^= state << 17
		return int(state % uint64(k))
	}
	sentence := func(topic int) string {
		var b strings.Builder
		nw := 8 + rnd(7)
		for i := 0; i < nw; i++ {
			var w string
			switch r := rnd(10); {
			case r < 4:
				w = common[rnd(len(common))]
			case r < 8:
				w = words[(topic*7+rnd(40))%len(words)]
			default:
				w = words[rnd(len(words))]
			}
			if i == 0 {
				w = strings.ToUpper(w[:1]) + w[1:]
			} else {
				b.WriteByte(' ')
			}
			b.WriteString(w)
			if i == nw/2 && rnd(3) == 0 {
				b.WriteByte(',')
			}
		}
		b.WriteByte('.')
		return b.String()
	}
	gts = make(map[string][]string, n)
	res = make(map[string]string, n)
	for i := 0; i < n; i++ {
		id := fmt.Sprint(100000 + i*7)
		ids = append(ids, id)
		for r := 0; r < refs; r++ {
			gts[id] = append(gts[id], sentence(i))
		}
		res[id] = sentence(i)
	}
	return ids, gts, res
}

func BenchmarkScore5000(b *testing.B) {
	ids, gts, res := synthCaptions(5000, 5)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		s, err := Score(ids, gts, res, ScoreOptions{})
		if err != nil {
			b.Fatal(err)
		}
		if s.CIDEr <= 0 {
			b.Fatal("zero CIDEr")
		}
	}
}

func BenchmarkPTBTokenize30000(b *testing.B) {
	ids, gts, res := synthCaptions(5000, 5)
	var caps []string
	for _, id := range ids {
		caps = append(caps, gts[id]...)
		caps = append(caps, res[id])
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		PTBTokenizeAll(caps)
	}
}

func BenchmarkCIDErD5000(b *testing.B) {
	ids, gts, res := synthCaptions(5000, 5)
	tg, tr := tokenizeForScoring(ids, gts, res)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, _, err := CIDErD(ids, tg, tr); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkBLEU5000(b *testing.B) {
	ids, gts, res := synthCaptions(5000, 5)
	tg, tr := tokenizeForScoring(ids, gts, res)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, _, err := BLEU(ids, tg, tr); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkROUGEL5000(b *testing.B) {
	ids, gts, res := synthCaptions(5000, 5)
	tg, tr := tokenizeForScoring(ids, gts, res)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, _, err := ROUGEL(ids, tg, tr); err != nil {
			b.Fatal(err)
		}
	}
}

// TestScoreRawCaptionsMatchesToolkit runs the whole COCOEvalCap pipeline,
// tokenization included, on the raw COCO captions of the real-data cases.
func TestScoreRawCaptionsMatchesToolkit(t *testing.T) {
	n := 0
	for _, c := range loadCiderCases(t) {
		if c.RawGts == nil {
			continue
		}
		n++
		t.Run(c.Name, func(t *testing.T) {
			s, err := Score(c.ImageIDs, c.RawGts, single(t, c.RawRes), ScoreOptions{})
			if err != nil {
				t.Fatal(err)
			}
			checkScores(t, c, s)
		})
	}
	if n == 0 {
		t.Fatal("no real-data cases in public.json")
	}
}

// TestScoreTokenizedMatchesToolkit scores the tokenized captions of every
// case without tokenizing again.
func TestScoreTokenizedMatchesToolkit(t *testing.T) {
	for _, c := range loadCiderCases(t) {
		t.Run(c.Name, func(t *testing.T) {
			s, err := Score(c.ImageIDs, c.Gts, single(t, c.Res), ScoreOptions{Tokenized: true})
			if err != nil {
				t.Fatal(err)
			}
			checkScores(t, c, s)
		})
	}
}

func checkScores(t *testing.T, c ciderCase, s Scores) {
	t.Helper()
	check := func(what string, got, want float64) {
		t.Helper()
		if !within(got, want, 1e-12) {
			t.Errorf("%s = %.17g, want %.17g", what, got, want)
		}
	}
	check("CIDEr", s.CIDEr, c.CIDErD)
	for k := range s.Bleu {
		check(fmt.Sprintf("Bleu_%d", k+1), s.Bleu[k], c.Bleu[k])
	}
	check("ROUGE_L", s.ROUGEL, c.RougeL)
	if len(s.PerImage) != len(c.ImageIDs) || len(s.IDs) != len(c.ImageIDs) {
		t.Fatalf("%d per-image scores, %d ids; want %d", len(s.PerImage), len(s.IDs), len(c.ImageIDs))
	}
	for _, id := range c.ImageIDs {
		check("CIDEr of "+id, s.PerImage[id].CIDEr, c.CIDErDScores[id])
		check("ROUGE_L of "+id, s.PerImage[id].ROUGEL, c.RougeLScores[id])
	}
}

// TestScoreOnlyImagesWithResults: references of images without a result
// take no part, as in COCOEvalCap (document frequencies included).
func TestScoreOnlyImagesWithResults(t *testing.T) {
	c := loadCiderCases(t)[0]
	res := single(t, c.Res)
	sub := c.ImageIDs[:7]
	subRes := map[string]string{}
	for _, id := range sub {
		subRes[id] = res[id]
	}
	s, err := Score(c.ImageIDs, c.Gts, subRes, ScoreOptions{Tokenized: true})
	if err != nil {
		t.Fatal(err)
	}
	want, _, err := CIDErD(sub, c.Gts, subRes)
	if err != nil {
		t.Fatal(err)
	}
	if s.CIDEr != want || len(s.PerImage) != len(sub) {
		t.Errorf("CIDEr %v over %d images, want %v over %d", s.CIDEr, len(s.PerImage), want, len(sub))
	}
}

func TestScoreRejectsBadInput(t *testing.T) {
	gts := map[string][]string{"1": {"a dog"}, "2": {"a cat"}, "3": {}}
	tests := []struct {
		name string
		ids  []string
		res  map[string]string
		want string
	}{
		{"no results", nil, map[string]string{}, "no candidate captions"},
		{"result without references", nil, map[string]string{"1": "a", "7": "b", "8": "c"}, `2 candidate image(s) have no reference captions: "7", "8"`},
		{"result with an empty reference list", nil, map[string]string{"3": "a"}, `no reference captions: "3"`},
		{"result outside the order", []string{"1"}, map[string]string{"1": "a", "2": "b"}, `not in the evaluation order: "2"`},
		{"order lists an image twice", []string{"1", "1"}, map[string]string{"1": "a"}, "listed twice"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Score(tc.ids, gts, tc.res, ScoreOptions{})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want %q", err, tc.want)
			}
		})
	}
}

func TestScoreWithoutOrderSortsIDs(t *testing.T) {
	gts := map[string][]string{"10": {"a dog"}, "9": {"a cat"}, "100": {"a bird"}}
	res := map[string]string{"10": "a dog", "9": "a cat", "100": "a bird"}
	s, err := Score(nil, gts, res, ScoreOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"9", "10", "100"}; strings.Join(s.IDs, ",") != strings.Join(want, ",") {
		t.Errorf("IDs = %v, want %v", s.IDs, want)
	}
}

func TestSortIDs(t *testing.T) {
	for _, tc := range []struct{ in, want []string }{
		{[]string{"10", "9", "-1", "100"}, []string{"-1", "9", "10", "100"}},
		{[]string{"b.jpg", "a.jpg", "10"}, []string{"10", "a.jpg", "b.jpg"}},
		{nil, nil},
	} {
		SortIDs(tc.in)
		if strings.Join(tc.in, ",") != strings.Join(tc.want, ",") {
			t.Errorf("got %v, want %v", tc.in, tc.want)
		}
	}
}
