package tensorfile

import (
	"os"
	"testing"
)

// scratchDir is a per-test directory in memory (/dev/shm) when the system
// has one: the fuzz targets write a file per input, and WriteAtomic's fsync
// on a busy disk would make each one take seconds.
func scratchDir(t *testing.T) string {
	t.Helper()
	d, err := os.MkdirTemp("/dev/shm", "gitcap-fuzz-")
	if err != nil {
		return t.TempDir()
	}
	t.Cleanup(func() { os.RemoveAll(d) })
	return d
}
