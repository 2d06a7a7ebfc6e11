package fsutil

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// TestWrittenModesFollowTheUmask: WriteAtomic files are 0644 and MkdirTemp
// directories 0755, less the umask (022 and 027 here).
func TestWrittenModesFollowTheUmask(t *testing.T) {
	for _, c := range []struct {
		umask         int
		file, dirMode os.FileMode
	}{{0o022, 0o644, 0o755}, {0o027, 0o640, 0o750}} {
		old := syscall.Umask(c.umask)
		dir := t.TempDir()
		path := filepath.Join(dir, "f")
		err := WriteAtomic(path, func(f *os.File) error { _, err := f.WriteString("x"); return err })
		sub, derr := MkdirTemp(dir, ".tmp-")
		syscall.Umask(old)
		if err != nil || derr != nil {
			t.Fatal(err, derr)
		}
		if st, _ := os.Stat(path); st.Mode().Perm() != c.file {
			t.Errorf("umask %03o: file mode %v, want %v", c.umask, st.Mode().Perm(), c.file)
		}
		if st, _ := os.Stat(sub); st.Mode().Perm() != c.dirMode {
			t.Errorf("umask %03o: directory mode %v, want %v", c.umask, st.Mode().Perm(), c.dirMode)
		}
	}
}
