package tensorfile

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
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
