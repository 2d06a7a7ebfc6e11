package main

import (
	"bytes"
	"debug/elf"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/gitcap/gitcap/graph"
)

// TestVersionPrintsGitcapGoBLASAndThreads: "gitcap version" and "gitcap
// --version" print the build, the Go version, the BLAS in use and the
// thread count; --json has the same.
func TestVersionPrintsGitcapGoBLASAndThreads(t *testing.T) {
	for _, args := range [][]string{{"version"}, {"--version"}} {
		var stdout, stderr bytes.Buffer
		if code := realMain(args, &stdout, &stderr); code != 0 {
			t.Fatalf("%v: exit %d: %s", args, code, stderr.String())
		}
		out := stdout.String()
		for _, want := range []string{"gitcap ", "go: " + runtime.Version(), "blas: " + graph.BLAS().Name, "threads: " + itoa(runtime.GOMAXPROCS(0)) + " (GOMAXPROCS)"} {
			if !strings.Contains(out, want) {
				t.Errorf("%v printed %q, want it to contain %q", args, out, want)
			}
		}
		if stderr.Len() != 0 {
			t.Errorf("%v wrote %q on stderr", args, stderr.String())
		}
	}
	var stdout, stderr bytes.Buffer
	if code := realMain([]string{"version", "--json"}, &stdout, &stderr); code != 0 {
		t.Fatalf("version --json: exit %d: %s", code, stderr.String())
	}
	var v versionInfo
	if err := json.Unmarshal(stdout.Bytes(), &v); err != nil {
		t.Fatalf("version --json printed %q: %v", stdout.String(), err)
	}
	if v.Go != runtime.Version() || v.GOMAXPROCS != runtime.GOMAXPROCS(0) || v.BLAS != graph.BLAS() || v.Gitcap == "" {
		t.Errorf("version --json = %+v", v)
	}
}

// helperMainEnv makes TestHelperRealMain run realMain on the arguments it
// holds (one per line).
const helperMainEnv = "GITCAP_TEST_MAIN_ARGS"

// TestHelperRealMain is not a test: TestPureGoWarning runs the test binary
// again through it, with the BLAS chosen by the environment.
func TestHelperRealMain(t *testing.T) {
	a := os.Getenv(helperMainEnv)
	if a == "" {
		t.Skip("helper process for TestPureGoWarning")
	}
	os.Exit(realMain(strings.Split(a, "\n"), os.Stdout, os.Stderr))
}

// TestPureGoWarning: on the pure-Go BLAS a command that computes prints
// exactly one warning line on stderr saying how to install OpenBLAS;
// version, help and a command's -h print none, and neither does anything
// on OpenBLAS.
func TestPureGoWarning(t *testing.T) {
	if testing.Short() {
		t.Skip("starts helper processes")
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(t.TempDir(), "missing")
	run := func(blas string, args ...string) string {
		cmd := exec.Command(exe, "-test.run", "^TestHelperRealMain$")
		cmd.Env = append(os.Environ(), helperMainEnv+"="+strings.Join(args, "\n"), graph.EnvOpenBLAS+"="+blas)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		_ = cmd.Run() // the commands below fail on purpose, after the warning
		return stderr.String()
	}
	count := func(s string) int { return strings.Count(s, "warning: using the pure-Go BLAS") }
	for _, tc := range []struct {
		blas string
		args []string
		want int
	}{
		{"off", []string{"caption", "--model", missing, "x.png"}, 1},
		{"off", []string{"eval", "--model", missing}, 1},
		{"off", []string{"train", "--config", missing}, 1},
		{"off", []string{"version"}, 0},
		{"off", []string{"help"}, 0},
		{"off", []string{"caption", "-h"}, 0},
		{"off", []string{"score", missing, missing}, 0}, // scoring does no matrix products
	} {
		stderr := run(tc.blas, tc.args...)
		if got := count(stderr); got != tc.want {
			t.Errorf("GITCAP_OPENBLAS=%s gitcap %s: %d warnings, want %d; stderr:\n%s", tc.blas, strings.Join(tc.args, " "), got, tc.want, stderr)
		}
		if tc.want == 1 && !strings.Contains(stderr, "apt-get install libopenblas0") {
			t.Errorf("the warning does not say how to install OpenBLAS:\n%s", stderr)
		}
	}
	if graph.BLAS().OpenBLAS {
		if stderr := run("", "caption", "--model", missing, "x.png"); count(stderr) != 0 {
			t.Errorf("with OpenBLAS, caption warned:\n%s", stderr)
		}
	}
}

// TestStaticBuildLoadsOpenBLASAtRunTime builds gitcap with CGO_ENABLED=0,
// checks the binary does not link OpenBLAS, and that it still loads it at
// run time where it is installed.
func TestStaticBuildLoadsOpenBLASAtRunTime(t *testing.T) {
	if testing.Short() {
		t.Skip("builds gitcap")
	}
	bin := filepath.Join(t.TempDir(), "gitcap")
	build := exec.Command("go", "build", "-o", bin, ".")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("CGO_ENABLED=0 go build: %v\n%s", err, out)
	}
	if f, err := elf.Open(bin); err == nil {
		libs, _ := f.ImportedLibraries()
		f.Close()
		for _, l := range libs {
			if strings.Contains(l, "blas") {
				t.Errorf("the CGO_ENABLED=0 binary links %s", l)
			}
		}
	}
	out, err := exec.Command(bin, "version", "--json").Output()
	if err != nil {
		t.Fatalf("gitcap version --json: %v", err)
	}
	var v versionInfo
	if err := json.Unmarshal(out, &v); err != nil {
		t.Fatalf("gitcap version --json printed %q: %v", out, err)
	}
	if v.CGO {
		t.Errorf("CGO_ENABLED=0 binary reports cgo")
	}
	if graph.BLAS().OpenBLAS && (!v.BLAS.OpenBLAS || v.BLAS.Version != graph.BLAS().Version) {
		t.Errorf("the CGO_ENABLED=0 binary uses %+v; this test process loads %+v", v.BLAS, graph.BLAS())
	}
}
