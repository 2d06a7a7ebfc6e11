package synth

import (
	"math/rand"
	"sort"
	"strings"
)

// MaxCaptionWords bounds the length of every caption, in words.
const MaxCaptionWords = 16

// Caption templates. In a template, {0}, {1} and {2} stand for the shapes in
// spatial order with their article ("a small red circle"; three-shape
// scenes leave the size out: "a red circle"), {0n} for the first shape
// without its article ("small red circle"), {bg} for the background colour
// and {pos} for a single shape's position phrase ("on the left").
var (
	singleTemplates = []string{
		"{0} {pos}",
		"{0} on a {bg} background",
		"a {bg} background with {0} {pos}",
		"there is {0} {pos} of the image",
		"a single {0n} {pos}",
	}
	rowTemplates = []string{
		"{0} to the left of {1}",
		"two shapes: {0} and {1}",
		"{0} and {1} on a {bg} background",
		"{0} on the left and {1} on the right",
		"{0} next to {1} on a {bg} background",
	}
	columnTemplates = []string{
		"{0} above {1}",
		"two shapes: {0} and {1}",
		"{0} and {1} on a {bg} background",
		"{0} at the top and {1} at the bottom",
		"{0} above {1} on a {bg} background",
	}
	row3Templates = []string{
		"{0}, {1} and {2} from left to right",
		"three shapes: {0}, {1} and {2}",
		"{0}, {1} and {2} on a {bg} background",
		"three shapes in a row: {0}, {1} and {2}",
		"a {bg} background with {0}, {1} and {2}",
	}
)

// positionPhrases maps a single shape's position word to its phrase.
var positionPhrases = map[string]string{
	"center": "in the center",
	"left":   "on the left",
	"right":  "on the right",
	"top":    "at the top",
	"bottom": "at the bottom",
}

// templates returns the caption templates that fit a scene.
func templates(sc Scene) []string {
	switch {
	case sc.Layout == Single:
		return singleTemplates
	case len(sc.Shapes) == 3:
		return row3Templates
	case sc.Layout == Column:
		return columnTemplates
	default:
		return rowTemplates
	}
}

// nounPhrase describes a shape without its article: "small red circle", or
// "red circle" when withSize is false.
func nounPhrase(s Shape, withSize bool) string {
	if withSize {
		return s.Size + " " + s.Color + " " + s.Kind
	}
	return s.Color + " " + s.Kind
}

// fillTemplate expands one template for a scene.
func fillTemplate(t string, sc Scene) string {
	withSize := len(sc.Shapes) < 3
	args := []string{"{bg}", sc.Background}
	if sc.Layout == Single {
		args = append(args, "{pos}", positionPhrases[sc.Position])
	}
	for i, s := range sc.Shapes {
		np := nounPhrase(s, withSize)
		k := string(rune('0' + i))
		args = append(args, "{"+k+"n}", np, "{"+k+"}", "a "+np)
	}
	return strings.NewReplacer(args...).Replace(t)
}

// makeCaptions draws three to five different templates for the scene and
// expands them, in template order.
func makeCaptions(sc Scene, rng *rand.Rand) []string {
	ts := templates(sc)
	n := min(3+rng.Intn(3), len(ts))
	pick := rng.Perm(len(ts))[:n]
	sort.Ints(pick)
	caps := make([]string, n)
	for i, t := range pick {
		caps[i] = fillTemplate(ts[t], sc)
	}
	return caps
}

// Words splits a caption into its words: lowercase, split on spaces, with the
// punctuation the templates use ("," and ":") removed.
func Words(caption string) []string {
	caption = strings.NewReplacer(",", " ", ":", " ").Replace(strings.ToLower(caption))
	return strings.Fields(caption)
}

// Vocabulary returns, sorted, every word that can appear in a caption (see
// Words for how a caption is split). Besides these words, captions use only
// the punctuation "," and ":".
func Vocabulary() []string {
	seen := map[string]bool{}
	add := func(s string) {
		for _, w := range Words(s) {
			seen[w] = true
		}
	}
	for _, group := range [][]string{singleTemplates, rowTemplates, columnTemplates, row3Templates} {
		for _, t := range group {
			// Drop the placeholders; their fillers are added below.
			for _, p := range []string{"{0n}", "{0}", "{1}", "{2}", "{bg}", "{pos}"} {
				t = strings.ReplaceAll(t, p, " ")
			}
			add(t)
		}
	}
	add("a small large")
	for _, group := range [][]string{shapeKinds, shapeColors, backgroundColors} {
		for _, w := range group {
			add(w)
		}
	}
	for _, p := range positionPhrases {
		add(p)
	}
	words := make([]string, 0, len(seen))
	for w := range seen {
		words = append(words, w)
	}
	sort.Strings(words)
	return words
}
