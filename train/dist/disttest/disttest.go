// Package disttest starts test programs under mpirun on the local machine,
// for the tests of data-parallel training and sharded evaluation.
package disttest

import (
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
)

// MPIRun returns the path of mpirun. It skips the test when mpirun is not
// installed, except under CI (CI=true), where .ci/run installs Open MPI and
// a missing mpirun is a failure.
func MPIRun(t testing.TB) string {
	t.Helper()
	p, err := exec.LookPath("mpirun")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("mpirun not found under CI (CI=true), where .ci/run installs openmpi-bin: %v", err)
		}
		t.Skipf("mpirun not installed (apt-get install openmpi-bin): %v", err)
	}
	return p
}

// Args returns mpirun's arguments to start np ranks of argv on this
// machine, whatever its core count.
func Args(np int, argv ...string) []string {
	return append([]string{"-np", strconv.Itoa(np), "--oversubscribe", "--bind-to", "none"}, argv...)
}

// Env is the environment for mpirun: this process's, without any variable
// of an enclosing MPI launch, plus what running as root (CI) needs.
func Env(extra ...string) []string {
	var env []string
	for _, e := range os.Environ() {
		if strings.HasPrefix(e, "OMPI_") || strings.HasPrefix(e, "PMI") {
			continue
		}
		env = append(env, e)
	}
	env = append(env, "OMPI_ALLOW_RUN_AS_ROOT=1", "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1")
	return append(env, extra...)
}
