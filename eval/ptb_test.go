package eval

import (
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/gitcap/gitcap/data/fixtures"
)

type rawTokenizeCase struct {
	Raw       string `json:"raw"`
	Tokenized string `json:"tokenized"`
	Note      string `json:"note"`
}

func loadRawTokenize(t testing.TB) []rawTokenizeCase {
	t.Helper()
	b, err := os.ReadFile(fixtures.Path(t, "cider", "raw_tokenize.json"))
	if err != nil {
		t.Fatal(err)
	}
	var cases []rawTokenizeCase
	if err := json.Unmarshal(b, &cases); err != nil {
		t.Fatalf("raw_tokenize.json: %v", err)
	}
	if len(cases) == 0 {
		t.Fatal("raw_tokenize.json: no cases")
	}
	return cases
}

func TestPTBTokenizeFixture(t *testing.T) {
	for _, c := range loadRawTokenize(t) {
		t.Run(c.Note, func(t *testing.T) {
			if got := PTBTokenize(c.Raw); got != c.Tokenized {
				t.Errorf("PTBTokenize(%q) = %q, want %q", c.Raw, got, c.Tokenized)
			}
		})
	}
}

// TestPTBTokenizeRealCaptions tokenizes the raw COCO captions of the
// real-data cases in the order the toolkit's wrapper feeds them to the
// tokenizer and compares with the stored tokenized captions.
func TestPTBTokenizeRealCaptions(t *testing.T) {
	n := 0
	for _, c := range loadCiderCases(t) {
		if c.RawGts == nil {
			continue
		}
		for _, side := range []struct {
			name     string
			raw, tok map[string][]string
		}{{"gts", c.RawGts, c.Gts}, {"res", c.RawRes, c.Res}} {
			var raw, want []string
			for _, id := range c.ImageIDs {
				if len(side.raw[id]) != len(side.tok[id]) {
					t.Fatalf("%s %s image %s: %d raw and %d tokenized captions", c.Name, side.name, id, len(side.raw[id]), len(side.tok[id]))
				}
				raw = append(raw, side.raw[id]...)
				want = append(want, side.tok[id]...)
			}
			got := PTBTokenizeAll(raw)
			for i := range raw {
				n++
				if got[i] != want[i] {
					t.Errorf("%s %s: %q -> %q, want %q", c.Name, side.name, raw[i], got[i], want[i])
				}
			}
		}
	}
	if n == 0 {
		t.Fatal("no raw captions in public.json")
	}
	t.Logf("%d captions", n)
}

// tokenizeSlow is PTBTokenizeAll without the fast path and with the
// wrapper's filtering done step by step: every token comes from the lexer
// rules.
func tokenizeSlow(captions []string) []string {
	rules := ptbRules()
	lines := make([]string, len(captions))
	for i, c := range captions {
		lines[i] = cleanLine(c)
	}
	out := make([]string, len(captions))
	for i, line := range lines {
		w := line
		if i+1 < len(lines) {
			w += "\n" + lines[i+1]
			if i+2 < len(lines) {
				w += "\n"
			}
		}
		out[i] = filterTokensSlow(lexLine(rules, w, len(line), nil, false))
	}
	return out
}

func TestPTBFastPathMatchesLexer(t *testing.T) {
	pieces := []string{
		"a", "A", "man", "Mr", "mr", "etc", "St", "Dr", "vs", "no", "No", "ft", "Ind", "cannot", "Gonna", "wanna",
		"dunno", "nno", "U.S", "U", "S", "don", "t", "can", "it", "s", "o", "clock", "re", "ll", "Yahoo", "co",
		"www", "com", "x", "pro", "anti", "black", "white", "and", "or", "B", "e", "mail", "5th", "2x4", "A1",
		"ab1", "Sept", "Calif", "Bancorp", "Messrs", "Ph", "Miss", "miss", "Mass", "Ark", "ark", "Ill", "ill",
		"Jan", "Inc", "Co", "ca", "n't", "'s", "Ave", "alex", "tables", "i", "I", "e.g", "i.e", "Yahoo!", "12",
		"555", "1234", "7/8", "3 ", "12 ", "٣", "(555)", "10/12/2014",
		".", ",", ";", ":", "!", "?", "'", "\"", "-", "--", "---", "...", ". .", "(", ")", "[", "]", "{", "}",
		"$", "&", "&amp;", "*", "/", "#", "@", "_", "+", "=", "<", ">", "`", "''", "%",
		"3", "10", "10:30", "1,000", "3.5", "5 7/8", "1/2", "555-1234", "'90s", "\u00e9", "caf\u00e9",
		"\u2019", "\u201c", "\u201d", "\u2014", "\u2026", "\u00bd", "\u20ac", "\u00a0", "\u00ad", "\t",
	}
	seps := []string{"", "", " ", " ", " ", "  ", ".", ". ", ", "}
	rng := uint64(12345)
	next := func(n int) int {
		rng ^= rng << 13
		rng ^= rng >> 7
		rng ^= rng << 17
		return int(rng % uint64(n))
	}
	var captions []string
	for _, c := range loadRawTokenize(t) {
		captions = append(captions, c.Raw)
	}
	for i := 0; i < 10000; i++ {
		var s string
		for k := 1 + next(8); k > 0; k-- {
			s += pieces[next(len(pieces))] + seps[next(len(seps))]
		}
		captions = append(captions, s)
	}
	fast := PTBTokenizeAll(captions)
	slow := tokenizeSlow(captions)
	bad := 0
	for i := range captions {
		if fast[i] != slow[i] {
			bad++
			if bad <= 20 {
				t.Errorf("%q: fast path %q, lexer %q", captions[i], fast[i], slow[i])
			}
		}
	}
}

// TestPTBTokenizeIsIdempotentOnTokenizedCaptions re-tokenizes every
// tokenized caption of the fixtures: the pipeline leaves them unchanged
// (the fixture README checked this for the hand-written cases).
func TestPTBTokenizeIsIdempotentOnTokenizedCaptions(t *testing.T) {
	var tok []string
	for _, c := range loadCiderCases(t) {
		for _, id := range c.ImageIDs {
			tok = append(tok, c.Gts[id]...)
			tok = append(tok, c.Res[id]...)
		}
	}
	for _, c := range loadRawTokenize(t) {
		tok = append(tok, c.Tokenized)
	}
	got := PTBTokenizeAll(tok)
	for i := range tok {
		if got[i] != tok[i] {
			t.Errorf("%q -> %q", tok[i], got[i])
		}
	}
}

func TestPTBTokenizeBehaviour(t *testing.T) {
	for _, tc := range []struct{ name, in, want string }{
		{"carriage return and other line separators become spaces", "two\rdogs\u2028and\u2029a\fcat\vhere", "two dogs and a cat here"},
		{"untokenizable characters are deleted", "a \x01dog \U0001F436 here", "a dog here"},
		{"curly apostrophes split like straight ones", "A man\u2019s hat isn\u2019t here", "a man 's hat is n't here"},
		{"curly double quotes are removed", "a \u201cbig\u201d dog", "a big dog"},
		{"unicode ellipsis and dashes are removed", "wait\u2026 a dog \u2014 running", "wait a dog running"},
		{"ampersand entity", "salt &amp; pepper", "salt & pepper"},
		{"hashtags and at-names stay whole", "#sunset with @bob", "#sunset with @bob"},
		{"email and web addresses stay whole", "mail bob@example.com or see www.example.com", "mail bob@example.com or see www.example.com"},
		{"repeated question marks are kept", "what?? no", "what ?? no"},
		{"three hyphens become -- and are removed", "a --- b", "a b"},
		{"fractions are spelled out", "a \u00bd cup", "a 1/2 cup"},
		{"euro becomes $", "\u20ac5 note", "$ 5 note"},
		{"empty caption", "", ""},
		{"white space only", " \t ", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := PTBTokenize(tc.in); got != tc.want {
				t.Errorf("PTBTokenize(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

// TestPTBTokenizeAllKeepsLinesApart: a caption's tokens never leak into
// the neighbouring captions, and empty captions stay empty.
func TestPTBTokenizeAllKeepsLinesApart(t *testing.T) {
	in := []string{"Mr.", "", "A dog\nrunning.", "etc.", "The U.S."}
	want := []string{"mr.", "", "a dog running", "etc.", "the u.s."}
	got := PTBTokenizeAll(in)
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("got %q, want %q", got, want)
	}
}

// BenchmarkPTBTokenizeCOCO tokenizes the fixture's raw COCO captions,
// repeated to 30,000 lines.
func BenchmarkPTBTokenizeCOCO(b *testing.B) {
	var raw []string
	for _, c := range loadCiderCases(b) {
		for _, id := range c.ImageIDs {
			raw = append(raw, c.RawGts[id]...)
			raw = append(raw, c.RawRes[id]...)
		}
	}
	if len(raw) == 0 {
		b.Fatal("no raw captions")
	}
	var caps []string
	for len(caps) < 30000 {
		caps = append(caps, raw...)
	}
	caps = caps[:30000]
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		PTBTokenizeAll(caps)
	}
}
