package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/gitcap/gitcap/gitmodel"
)

// flagSet is the one flag parser every gitcap command uses. It wraps the
// standard library's flag.FlagSet (so commands register flags as usual) and
// changes what parsing does:
//
//   - flags may come after positional arguments (gitcap caption --model M
//     img.png --json); "--" ends the flags;
//   - an unknown flag is one line with a "did you mean" suggestion, not a
//     usage dump;
//   - -h/--help prints "Usage: gitcap CMD ..." and every flag, spelled
//     --kebab-case.
type flagSet struct {
	*flag.FlagSet
	cmd    string
	stderr io.Writer
	// oldSnake accepts the snake_case spelling a flag had before gitcap
	// went kebab-case (train's, which mirror YAML keys), with a warning, so
	// that existing scripts keep working.
	oldSnake bool
}

// newFlagSet returns the flag set of sub-command name. Its default usage
// text is "Usage: gitcap NAME [flags]" and the flags; commands set Usage
// (with fs.header) for a more specific synopsis.
func newFlagSet(name string, stderr io.Writer) *flagSet {
	fs := &flagSet{FlagSet: flag.NewFlagSet("gitcap "+name, flag.ContinueOnError), cmd: name, stderr: stderr}
	fs.SetOutput(stderr)
	fs.Usage = func() { fs.header("gitcap "+name+" [flags]", "") }
	return fs
}

// header writes "Usage: SYNOPSIS", an optional description and the flags.
func (fs *flagSet) header(synopsis, text string) {
	w := fs.Output()
	fmt.Fprintf(w, "Usage: %s\n\n", synopsis)
	if text != "" {
		fmt.Fprintf(w, "%s\n\n", strings.TrimRight(text, "\n"))
	}
	fmt.Fprintln(w, "Flags:")
	fs.PrintDefaults()
}

// PrintDefaults lists every flag as --name (the standard library writes a
// single dash).
func (fs *flagSet) PrintDefaults() {
	w := fs.Output()
	fs.VisitAll(func(f *flag.Flag) {
		name, usage := flag.UnquoteUsage(f)
		line := "  --" + f.Name
		if name != "" {
			line += " " + name
		}
		fmt.Fprintf(w, "%s\n    \t%s", line, strings.ReplaceAll(usage, "\n", "\n    \t"))
		if d := f.DefValue; d != "" && d != "0" && d != "false" && d != "none" {
			if fmt.Sprintf("%T", f.Value) == "*flag.stringValue" {
				fmt.Fprintf(w, " (default %q)", d)
			} else {
				fmt.Fprintf(w, " (default %s)", d)
			}
		}
		fmt.Fprintln(w)
	})
}

// Parse parses args (flags before, between and after positional arguments)
// and returns a usage error that fits on one line, or flag.ErrHelp after
// printing the usage for -h/--help.
func (fs *flagSet) Parse(args []string) error {
	var flags, pos []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			pos = append(pos, args[i+1:]...)
			break
		}
		if len(a) < 2 || a[0] != '-' {
			pos = append(pos, a)
			continue
		}
		name, _, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if strings.HasPrefix(a, "---") || name == "" {
			return usageError{fmt.Errorf("bad flag syntax %q", a)}
		}
		if name == "h" || name == "help" {
			fs.Usage()
			return flag.ErrHelp
		}
		f := fs.Lookup(name)
		if k := strings.ReplaceAll(name, "_", "-"); f == nil && fs.oldSnake && k != name && fs.Lookup(k) != nil {
			fmt.Fprintf(fs.stderr, "gitcap %s: --%s is the old spelling of --%s; use --%s\n", fs.cmd, name, k, k)
			a = "--" + k + strings.TrimPrefix(strings.TrimLeft(a, "-"), name)
			name, f = k, fs.Lookup(k)
		}
		if f == nil {
			return usageError{errors.New(fs.unknown(name))}
		}
		flags = append(flags, a)
		if b, ok := f.Value.(interface{ IsBoolFlag() bool }); hasValue || (ok && b.IsBoolFlag()) {
			continue
		}
		if i+1 >= len(args) {
			return usageError{fmt.Errorf("--%s needs a value", name)}
		}
		flags = append(flags, args[i+1])
		i++
	}
	out, usage := fs.Output(), fs.Usage
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	err := fs.FlagSet.Parse(append(append(flags, "--"), pos...))
	fs.SetOutput(out)
	fs.Usage = usage
	if err != nil {
		return usageError{errors.New(dashes(err.Error()))}
	}
	return nil
}

// dashes rewrites the standard library's "-name" in a flag error as
// "--name".
func dashes(msg string) string {
	msg = strings.Replace(msg, "for flag -", "for flag --", 1)
	msg = strings.Replace(msg, "for flag --", "for --", 1)
	msg = strings.Replace(msg, "flag needs an argument: -", "a value is needed for --", 1)
	return msg
}

// unknown is the one-line message for an unknown flag, with the nearest
// known flag names by edit distance.
func (fs *flagSet) unknown(name string) string {
	msg := fmt.Sprintf("unknown flag --%s", name)
	if s := fs.suggest(name); len(s) > 0 {
		msg += " (did you mean --" + strings.Join(s, " or --") + "?)"
	}
	return msg + `; "gitcap ` + fs.cmd + ` -h" lists the flags`
}

// suggest returns the known flags closest to name: the same name in
// kebab-case first, then those within an edit distance of a third of the
// name's length (at least 2).
func (fs *flagSet) suggest(name string) []string {
	if k := strings.ReplaceAll(name, "_", "-"); k != name && fs.Lookup(k) != nil {
		return []string{k}
	}
	type cand struct {
		name string
		d    int
	}
	var cs []cand
	limit := max(2, len(name)/3)
	fs.VisitAll(func(f *flag.Flag) {
		d := editDistance(strings.ToLower(name), f.Name)
		if strings.HasPrefix(f.Name, name) && len(name) >= 3 {
			d = min(d, 1)
		}
		if d <= limit {
			cs = append(cs, cand{f.Name, d})
		}
	})
	sort.SliceStable(cs, func(i, j int) bool { return cs[i].d < cs[j].d })
	var out []string
	for _, c := range cs {
		if len(out) == 2 || c.d > cs[0].d {
			break
		}
		out = append(out, c.name)
	}
	return out
}

// editDistance is the Levenshtein distance between a and b.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			c := prev[j-1]
			if a[i-1] != b[j-1] {
				c++
			}
			cur[j] = min(c, prev[j]+1, cur[j-1]+1)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// usageErr marks flag errors as usage errors, leaving -h alone.
func usageErr(err error) error {
	var ue usageError
	if errors.Is(err, flag.ErrHelp) || errors.As(err, &ue) {
		return err
	}
	return usageError{err}
}

// dtypeFlag registers --dtype, the weight dtype of an inference command
// (caption, eval, serve), and returns where the parsed value lands; a value
// other than fp32 or bf16 is a one-line usage error.
func (fs *flagSet) dtypeFlag() *gitmodel.WeightDtype {
	dt := gitmodel.FP32
	fs.Var((*dtypeValue)(&dt), "dtype", "weight `dtype`: fp32; bf16 (weights rounded to bfloat16: half the memory, faster decoding on AVX-512 CPUs); bf16-full (bf16, and the vision tower's and prefix's matrix products also round their inputs to bf16: AMX tiles where the CPU has them, else VDPBF16PS on AVX512_BF16 CPUs)")
	return &dt
}

type dtypeValue gitmodel.WeightDtype

func (v *dtypeValue) String() string {
	if v == nil {
		return ""
	}
	return string(*v)
}

func (v *dtypeValue) Set(s string) error {
	dt, err := gitmodel.ParseWeightDtype(s)
	if err != nil {
		return err
	}
	*v = dtypeValue(dt)
	return nil
}
