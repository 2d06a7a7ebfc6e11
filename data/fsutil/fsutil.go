// Package fsutil holds the file helpers every writer of the project shares:
// atomic replacement of a file (write a temporary file in the same
// directory, fsync, rename), fsync of a directory's entries, and copying.
// Checkpoints, metrics, configs and caption files are written through it so
// that a crash never leaves a half-written file under the final name.
package fsutil

import (
	"fmt"
	"os"
	"path/filepath"
)

// WriteAtomic creates path by calling write on a temporary file in the same
// directory, syncing it and renaming it into place.
func WriteAtomic(path string, write func(*os.File) error) (err error) {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if err = write(tmp); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err = tmp.Sync(); err != nil {
		return err
	}
	if err = tmp.Close(); err != nil {
		return err
	}
	if err = os.Chmod(tmp.Name(), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// WriteFile writes b to path atomically and flushes it to disk.
func WriteFile(path string, b []byte) error {
	return WriteAtomic(path, func(f *os.File) error {
		_, err := f.Write(b)
		return err
	})
}

// SyncDir flushes a directory's entries (renames) to disk.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// CopyFile copies src to dst with WriteFile.
func CopyFile(src, dst string) error {
	b, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	return WriteFile(dst, b)
}
