// Package fsutil holds the file helpers every writer of the project shares:
// atomic replacement of a file (write a temporary file in the same
// directory, fsync, rename), fsync of a directory's entries, and copying.
// Checkpoints, metrics, configs and caption files are written through it so
// that a crash never leaves a half-written file under the final name.
package fsutil

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// Written files are 0644 and directories 0755, less the process umask, as
// os.WriteFile and os.Mkdir make them: os.CreateTemp and os.MkdirTemp
// would give 0600 and 0700, leaving checkpoints unreadable to the group
// that shares a run directory.
const (
	FilePerm os.FileMode = 0o644
	DirPerm  os.FileMode = 0o755
)

// createTemp is os.CreateTemp(dir, prefix+"*") with mode FilePerm &^ umask.
func createTemp(dir, prefix string) (*os.File, error) {
	for i := 0; i < 100; i++ {
		name := filepath.Join(dir, prefix+randomSuffix())
		f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_EXCL, FilePerm)
		if errors.Is(err, os.ErrExist) {
			continue
		}
		return f, err
	}
	return nil, &os.PathError{Op: "createtemp", Path: filepath.Join(dir, prefix+"*"), Err: os.ErrExist}
}

// MkdirTemp is os.MkdirTemp(dir, prefix+"*") with mode DirPerm &^ umask.
func MkdirTemp(dir, prefix string) (string, error) {
	for i := 0; i < 100; i++ {
		name := filepath.Join(dir, prefix+randomSuffix())
		err := os.Mkdir(name, DirPerm)
		if errors.Is(err, os.ErrExist) {
			continue
		}
		if err != nil {
			return "", err
		}
		return name, nil
	}
	return "", &os.PathError{Op: "mkdirtemp", Path: filepath.Join(dir, prefix+"*"), Err: os.ErrExist}
}

func randomSuffix() string {
	var b [6]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// WriteAtomic creates path by calling write on a temporary file in the same
// directory, syncing it, renaming it into place and syncing the directory. The file's mode is
// FilePerm less the umask.
func WriteAtomic(path string, write func(*os.File) error) (err error) {
	dir := filepath.Dir(path)
	tmp, err := createTemp(dir, "."+filepath.Base(path)+".tmp")
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
	if err = os.Rename(tmp.Name(), path); err != nil {
		return err
	}
	return SyncDir(dir) // the rename itself survives a crash
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
