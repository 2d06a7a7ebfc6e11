package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestMakeDepsInstallPackages runs the Makefile's install steps (deps is the
// first thing "make demo" and "make test" do; test also runs deps-mpi and
// deps-browser) with stub apt-get, sudo, id and dpkg as the only programs on
// PATH, each recording its argv, and checks what really ran: as root apt-get
// directly, as another user through sudo, with DEBIAN_FRONTEND reaching
// apt-get both ways (the stub sudo clears the environment as sudo's
// env_reset does). It does not depend on what this machine has installed.
func TestMakeDepsInstallPackages(t *testing.T) {
	makeBin, err := exec.LookPath("make")
	if err != nil {
		t.Skip("make is not installed")
	}
	envBin, err := exec.LookPath("env")
	if err != nil {
		t.Fatal(err)
	}
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	type tcase struct {
		name      string
		target    string
		uid       string
		installed bool // dpkg -s PACKAGE succeeds
		noApt     bool // no apt-get on PATH
		aptFails  bool
		want      []string // the stubs' log, in order
		wantOut   string   // in make's output
	}
	var cases []tcase
	for _, tg := range []struct{ target, pkg string }{
		{"deps", "libopenblas0"}, {"deps-mpi", "openmpi-bin"}, {"deps-browser", "chromium"},
	} {
		install := "apt-get install -y -qq " + tg.pkg + " DEBIAN_FRONTEND=noninteractive"
		cases = append(cases,
			tcase{name: tg.target + ": root runs apt-get itself", target: tg.target, uid: "0",
				want: []string{"apt-get update -qq DEBIAN_FRONTEND=", install}, wantOut: "installing " + tg.pkg},
			tcase{name: tg.target + ": a user runs it through sudo", target: tg.target, uid: "1000",
				want: []string{"sudo apt-get update -qq", "apt-get update -qq DEBIAN_FRONTEND=",
					"sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq " + tg.pkg, install}},
			tcase{name: tg.target + ": installed already", target: tg.target, uid: "0", installed: true},
			tcase{name: tg.target + ": no apt-get warns", target: tg.target, uid: "0", noApt: true, wantOut: "warning: no apt-get"},
			tcase{name: tg.target + ": a failed install warns", target: tg.target, uid: "1000", aptFails: true,
				want:    []string{"sudo apt-get update -qq", "apt-get update -qq DEBIAN_FRONTEND="},
				wantOut: tg.pkg + " could not be installed"})
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			bin := filepath.Join(dir, "bin")
			log := filepath.Join(dir, "log")
			if err := os.Mkdir(bin, 0o755); err != nil {
				t.Fatal(err)
			}
			dpkgStatus := "1"
			if tc.installed {
				dpkgStatus = "0"
			}
			aptStatus := "0"
			if tc.aptFails {
				aptStatus = "100"
			}
			stubs := map[string]string{
				"id":   `[ "$1" = -u ] && echo "$STUB_UID"`,
				"dpkg": "exit " + dpkgStatus,
				// sudo's env_reset: the command gets a clean environment.
				"sudo":    `echo "sudo $*" >>"$STUB_LOG"; exec ` + envBin + ` -i PATH="$PATH" STUB_LOG="$STUB_LOG" "$@"`,
				"apt-get": `echo "apt-get $* DEBIAN_FRONTEND=$DEBIAN_FRONTEND" >>"$STUB_LOG"; exit ` + aptStatus,
			}
			if tc.noApt {
				delete(stubs, "apt-get")
			}
			for name, body := range stubs {
				if err := os.WriteFile(filepath.Join(bin, name), []byte("#!/bin/sh\n"+body+"\n"), 0o755); err != nil {
					t.Fatal(err)
				}
			}
			if err := os.Symlink(envBin, filepath.Join(bin, "env")); err != nil {
				t.Fatal(err)
			}
			cmd := exec.Command(makeBin, "-s", "-C", root, tc.target)
			cmd.Env = []string{"PATH=" + bin, "STUB_LOG=" + log, "STUB_UID=" + tc.uid}
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("make %s: %v\n%s", tc.target, err, out)
			}
			b, err := os.ReadFile(log)
			if err != nil && !os.IsNotExist(err) {
				t.Fatal(err)
			}
			got := strings.Split(strings.TrimSpace(string(b)), "\n")
			if len(b) == 0 {
				got = nil
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("ran:\n  %s\nwant:\n  %s\nmake said:\n%s", strings.Join(got, "\n  "), strings.Join(tc.want, "\n  "), out)
			}
			if !strings.Contains(string(out), tc.wantOut) {
				t.Errorf("make said %q, want it to say %q", out, tc.wantOut)
			}
		})
	}
}
