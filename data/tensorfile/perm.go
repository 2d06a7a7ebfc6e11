package tensorfile

import (
	"os"

	"github.com/gitcap/gitcap/data/fsutil"
)

// Written files are 0644 and directories 0755, less the process umask
// (fsutil.FilePerm and fsutil.DirPerm).
const (
	FilePerm os.FileMode = fsutil.FilePerm
	DirPerm  os.FileMode = fsutil.DirPerm
)

// MkdirTemp is os.MkdirTemp(dir, prefix+"*") with mode DirPerm &^ umask
// (fsutil.MkdirTemp).
func MkdirTemp(dir, prefix string) (string, error) {
	return fsutil.MkdirTemp(dir, prefix)
}
