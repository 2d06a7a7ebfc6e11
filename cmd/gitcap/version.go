package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"runtime"
	"runtime/debug"

	"github.com/gitcap/gitcap/graph"
)

// versionInfo is what "gitcap version" prints and "gitcap bench --json"
// records: enough to tell two measurements' builds and BLAS apart.
type versionInfo struct {
	Gitcap     string         `json:"gitcap"`             // module version, or "(devel)"
	Revision   string         `json:"revision,omitempty"` // VCS commit the binary was built from
	Modified   bool           `json:"modified,omitempty"` // the work tree had uncommitted changes
	Go         string         `json:"go"`                 // toolchain
	Platform   string         `json:"platform"`           // GOOS/GOARCH
	CGO        bool           `json:"cgo"`                // built with cgo (not needed: OpenBLAS is loaded at run time)
	BLAS       graph.BLASInfo `json:"blas_info"`          // the BLAS in use
	OwnLinear  bool           `json:"own_linear_kernel"`  // float32 Linear of 9-1024 rows on gitcap's kernel (graph.OwnLinearKernel)
	GOMAXPROCS int            `json:"gomaxprocs"`         // threads the ops use
}

func currentVersion() versionInfo {
	v := versionInfo{Gitcap: "(unknown)", Go: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH,
		BLAS: graph.BLAS(), OwnLinear: graph.OwnLinearKernel(), GOMAXPROCS: runtime.GOMAXPROCS(0)}
	if bi, ok := debug.ReadBuildInfo(); ok {
		v.Gitcap = bi.Main.Version
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				v.Revision = s.Value
			case "vcs.modified":
				v.Modified = s.Value == "true"
			case "CGO_ENABLED":
				v.CGO = s.Value == "1"
			}
		}
	}
	return v
}

// runVersion implements "gitcap version [--json]" (also "gitcap --version").
func runVersion(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("version", stderr)
	asJSON := fs.Bool("json", false, "print one JSON object")
	if err := fs.Parse(args); err != nil {
		return usageErr(err)
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Errorf("unexpected argument %q", fs.Arg(0))}
	}
	v := currentVersion()
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	}
	rev := v.Revision
	if rev != "" && v.Modified {
		rev += " (modified)"
	}
	if rev != "" {
		rev = ", commit " + rev
	}
	fmt.Fprintf(stdout, "gitcap %s%s\n", v.Gitcap, rev)
	fmt.Fprintf(stdout, "go: %s %s, cgo %v\n", v.Go, v.Platform, v.CGO)
	if v.BLAS.OpenBLAS {
		fmt.Fprintf(stdout, "blas: OpenBLAS %s, %s kernels, %d OpenBLAS thread(s) (%s)\n", v.BLAS.Version, v.BLAS.CoreType, v.BLAS.Threads, v.BLAS.Library)
	} else {
		fmt.Fprintf(stdout, "blas: %s (%s)\n", v.BLAS.Name, v.BLAS.Reason)
	}
	if v.OwnLinear {
		fmt.Fprintln(stdout, "linear: float32 products of 9-1024 rows on gitcap's kernel (the BLAS's bits)")
	}
	fmt.Fprintf(stdout, "threads: %d (GOMAXPROCS)\n", v.GOMAXPROCS)
	return nil
}

// computesCommands use the BLAS; they warn when it is the slow one.
var computesCommands = map[string]bool{"bench": true, "caption": true, "demo": true, "eval": true, "forward": true, "train": true}

// warnIfPureGo prints the pure-Go warning before a command that computes
// (not before its help).
func warnIfPureGo(args []string, stderr io.Writer) {
	if len(args) == 0 || !computesCommands[args[0]] {
		return
	}
	for _, a := range args[1:] {
		if a == "-h" || a == "-help" || a == "--help" {
			return
		}
	}
	warnPureGo(stderr)
}

// warnPureGo prints one line on stderr when the process computes with the
// pure-Go BLAS, saying how to get OpenBLAS. Commands that only print (help,
// version) do not call it.
func warnPureGo(stderr io.Writer) {
	if b := graph.BLAS(); !b.OpenBLAS {
		fmt.Fprintf(stderr, "gitcap: warning: using the pure-Go BLAS (%s), ~20x slower; %s\n", b.Reason, graph.InstallHint)
	}
}
