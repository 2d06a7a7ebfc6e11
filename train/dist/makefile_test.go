package dist_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestMakeDepsMPIInstallsOpenMPI runs `make deps-mpi` with mpirun reported
// missing and apt-get, sudo and id stubbed on PATH: as root it runs apt-get
// itself, otherwise through sudo, and it installs openmpi-bin. Whatever is
// installed on this machine does not matter.
func TestMakeDepsMPIInstallsOpenMPI(t *testing.T) {
	mk, err := exec.LookPath("make")
	if err != nil {
		t.Skipf("make not installed: %v", err)
	}
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		uid      string
		wantSudo bool
	}{{"0", false}, {"1000", true}} {
		stub := t.TempDir()
		log := filepath.Join(stub, "calls")
		for name, body := range map[string]string{
			"apt-get": `echo "apt-get $*" >> ` + log,
			"sudo":    `echo "sudo" >> ` + log + `; "$@"`,
			"id":      `echo ` + tc.uid,
		} {
			if err := os.WriteFile(filepath.Join(stub, name), []byte("#!/bin/sh\n"+body+"\n"), 0o755); err != nil {
				t.Fatal(err)
			}
		}
		cmd := exec.Command(mk, "-s", "-C", root, "deps-mpi", "MPIRUN=gitcap-test-no-mpirun")
		cmd.Env = append(os.Environ(), "PATH="+stub+":"+os.Getenv("PATH"))
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("uid %s: make deps-mpi: %v\n%s", tc.uid, err, out)
		}
		b, err := os.ReadFile(log)
		if err != nil {
			t.Fatalf("uid %s: apt-get was never run: %v", tc.uid, err)
		}
		calls := string(b)
		if !strings.Contains(calls, "apt-get update") || !strings.Contains(calls, "apt-get install -y -qq openmpi-bin") {
			t.Errorf("uid %s: apt-get calls:\n%s", tc.uid, calls)
		}
		if got := strings.Contains(calls, "sudo"); got != tc.wantSudo {
			t.Errorf("uid %s: sudo used = %v, want %v:\n%s", tc.uid, got, tc.wantSudo, calls)
		}
	}
	// With mpirun present nothing is installed.
	stub := t.TempDir()
	os.WriteFile(filepath.Join(stub, "apt-get"), []byte("#!/bin/sh\nexit 1\n"), 0o755)
	os.WriteFile(filepath.Join(stub, "fake-mpirun"), []byte("#!/bin/sh\n"), 0o755)
	cmd := exec.Command(mk, "-s", "-C", root, "deps-mpi", "MPIRUN=fake-mpirun")
	cmd.Env = append(os.Environ(), "PATH="+stub+":"+os.Getenv("PATH"))
	if out, err := cmd.CombinedOutput(); err != nil || len(out) > 0 {
		t.Errorf("with mpirun present, make deps-mpi: %v\n%s", err, out)
	}
}
