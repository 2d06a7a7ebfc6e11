package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"strconv"
	"strings"
	"testing"

	"github.com/gitcap/gitcap/data/fixtures"
)

// TestEveryCommandHasUsageHeaderAndOneLineUnknownFlag: for every command,
// -h prints "Usage: gitcap CMD" and every flag as --kebab-case, and an
// unknown flag is one line with exit status 2.
func TestEveryCommandHasUsageHeaderAndOneLineUnknownFlag(t *testing.T) {
	for name := range commands() {
		t.Run(name, func(t *testing.T) {
			var so, se bytes.Buffer
			if code := realMain([]string{name, "-h"}, &so, &se); code != 0 {
				t.Errorf("-h: exit %d", code)
			}
			help := se.String()
			if !strings.HasPrefix(help, "Usage: gitcap "+name) {
				t.Errorf("-h does not start with the usage header:\n%s", help)
			}
			if strings.Contains(help, "Usage of") || hasSnakeFlag(help) || hasSingleDashFlag(help) {
				t.Errorf("-h lists single-dash or snake_case flags:\n%s", help)
			}
			se.Reset()
			if code := realMain([]string{name, "--no-such-flag"}, &so, &se); code != 2 {
				t.Errorf("unknown flag: exit %d, want 2", code)
			}
			if msg := strings.TrimSpace(se.String()); strings.Count(msg, "\n") != 0 || !strings.Contains(msg, "unknown flag --no-such-flag") {
				t.Errorf("unknown flag message is not one line:\n%s", msg)
			}
		})
	}
}

func hasSingleDashFlag(help string) bool {
	for _, line := range strings.Split(help, "\n") {
		if strings.HasPrefix(line, "  -") && !strings.HasPrefix(line, "  --") {
			return true
		}
	}
	return false
}

func hasSnakeFlag(help string) bool {
	for _, line := range strings.Split(help, "\n") {
		if f, ok := strings.CutPrefix(line, "  --"); ok {
			name, _, _ := strings.Cut(f, " ")
			if strings.Contains(name, "_") {
				return true
			}
		}
	}
	return false
}

// TestFlagParsing covers the shared parser: flags after positional
// arguments, --name=value, -name, "--" ending the flags, bool flags,
// missing values, suggestions, and train's flag list.
func TestFlagParsing(t *testing.T) {
	cases := []struct {
		name     string
		args     []string
		wantErr  string // "" means success
		wantPos  []string
		wantJSON bool
		wantN    int
	}{
		{"flags before", []string{"--json", "--n", "3", "a.png"}, "", []string{"a.png"}, true, 3},
		{"flags after positionals", []string{"a.png", "--json", "b.png", "--n", "4"}, "", []string{"a.png", "b.png"}, true, 4},
		{"equals form", []string{"--n=5", "a.png", "--json=false"}, "", []string{"a.png"}, false, 5},
		{"single dash", []string{"-n", "6", "-json", "a.png"}, "", []string{"a.png"}, true, 6},
		{"double dash ends flags", []string{"--n", "2", "--", "--json", "-x.png"}, "", []string{"--json", "-x.png"}, false, 2},
		{"lone dash is positional", []string{"-", "--n", "1"}, "", []string{"-"}, false, 1},
		{"missing value", []string{"a.png", "--n"}, "--n needs a value", nil, false, 0},
		{"bad value", []string{"--n", "x"}, `invalid value "x" for --n`, nil, false, 0},
		{"unknown with suggestion", []string{"--jsn"}, "unknown flag --jsn (did you mean --json?)", nil, false, 0},
		{"snake to kebab", []string{"--max_shapes", "2"}, "did you mean --max-shapes?", nil, false, 0},
		{"unknown without suggestion", []string{"--zzzzzzzz"}, "unknown flag --zzzzzzzz;", nil, false, 0},
		{"triple dash", []string{"---n", "1"}, "bad flag syntax", nil, false, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			fs := newFlagSet("test", &bytes.Buffer{})
			asJSON := fs.Bool("json", false, "")
			n := fs.Int("n", 0, "")
			fs.Int("max-shapes", 0, "")
			err := fs.Parse(c.args)
			if c.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), c.wantErr) {
					t.Errorf("error %v, want %q", err, c.wantErr)
				}
				var ue usageError
				if err != nil && !errorsAs(err, &ue) {
					t.Errorf("error %v is not a usage error (exit 2)", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if strings.Join(fs.Args(), " ") != strings.Join(c.wantPos, " ") || *asJSON != c.wantJSON || *n != c.wantN {
				t.Errorf("args %q json %v n %d; want %q %v %d", fs.Args(), *asJSON, *n, c.wantPos, c.wantJSON, c.wantN)
			}
		})
	}
	// -h returns flag.ErrHelp (exit 0).
	fs := newFlagSet("test", &bytes.Buffer{})
	if err := fs.Parse([]string{"a", "--help"}); err != flag.ErrHelp {
		t.Errorf("--help: %v", err)
	}
}

// TestTrainHelpListsEveryFlagIncludingResume: train's -h lists --resume,
// --config and the kebab-case configuration flags.
func TestTrainHelpListsEveryFlagIncludingResume(t *testing.T) {
	var so, se bytes.Buffer
	realMain([]string{"train", "--help"}, &so, &se)
	for _, f := range []string{"--resume directory", "--config", "--batch-size", "--out-dir", "--train.path", "--augment.random-resized-crop", "--save-total-limit", "--max-text-len"} {
		if !strings.Contains(se.String(), "  "+f) {
			t.Errorf("train -h does not list %s", f)
		}
	}
}

// TestCaptionAcceptsFlagsAfterImages runs the example:
// gitcap caption --model M img.png --json.
func TestCaptionAcceptsFlagsAfterImages(t *testing.T) {
	var so, se bytes.Buffer
	img := fixtures.Path(t, "images", "cats.png")
	if err := runCaption(context.Background(), []string{"--model", fixtures.Path(t, "git-tiny"), img, "--json"}, &so, &se); err != nil {
		t.Fatal(err, se.String())
	}
	var got struct{ Image string }
	if err := json.Unmarshal(so.Bytes(), &got); err != nil || got.Image != img {
		t.Errorf("output %q (%v), want one JSON object for %s", so.String(), err, img)
	}
}

func errorsAs(err error, target any) bool { return errors.As(err, target) }

func itoa(n int) string { return strconv.Itoa(n) }

// TestTrainTakesTheOldSnakeCaseSpellingWithAWarning: train's flags were
// snake_case (like its YAML keys) before the CLI went kebab-case; scripts
// that use the old spelling keep working and are told the new one.
func TestTrainTakesTheOldSnakeCaseSpellingWithAWarning(t *testing.T) {
	for _, args := range [][]string{{"--batch_size", "4", "--out_dir=runs/x"}, {"--batch-size", "4", "--out-dir", "runs/x"}} {
		var stderr bytes.Buffer
		fs := newFlagSet("train", &stderr)
		fs.oldSnake = true
		batch := fs.Int("batch-size", 0, "")
		out := fs.String("out-dir", "", "")
		if err := fs.Parse(args); err != nil {
			t.Fatalf("%v: %v", args, err)
		}
		if *batch != 4 || *out != "runs/x" {
			t.Errorf("%v: batch %d, out %q", args, *batch, *out)
		}
		warned := strings.Contains(stderr.String(), "--batch_size is the old spelling of --batch-size") &&
			strings.Contains(stderr.String(), "--out_dir is the old spelling of --out-dir")
		if old := strings.Contains(args[0], "_"); warned != old {
			t.Errorf("%v: warning %q", args, stderr.String())
		}
	}
	fs := newFlagSet("caption", &bytes.Buffer{}) // never snake_case: still an error
	fs.Int("batch-size", 0, "")
	if err := fs.Parse([]string{"--batch_size", "2"}); err == nil || !strings.Contains(err.Error(), "did you mean --batch-size") {
		t.Errorf("caption --batch_size: %v", err)
	}
}
