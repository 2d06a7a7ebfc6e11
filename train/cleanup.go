package train

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
)

// staleTemp matches what an interrupted save leaves directly in the output
// directory: a checkpoint being assembled (writeCheckpoint's ".tmp-N"
// directories) and a file being written atomically
// (tensorfile.WriteAtomic's ".NAME.tmpN").
var staleTemp = regexp.MustCompile(`^(\.tmp-[0-9]+|\..+\.tmp[0-9]+)$`)

// removeStaleTemps deletes the temporary checkpoint directories and files
// that a kill during a save left in outDir, logging each one to out. A
// complete checkpoint is never among them: it only gets its final name
// once it is whole. It must run before this process starts saving (and,
// with several processes, only by the one that owns outDir).
func removeStaleTemps(outDir string, out io.Writer) error {
	entries, err := os.ReadDir(outDir)
	if err != nil {
		return fmt.Errorf("cleaning up %s: %w", outDir, err)
	}
	for _, e := range entries {
		if !staleTemp.MatchString(e.Name()) {
			continue
		}
		if e.IsDir() != (e.Name()[:5] == ".tmp-") {
			continue // a .tmp-N file or a .X.tmpN directory is not ours
		}
		p := filepath.Join(outDir, e.Name())
		if err := os.RemoveAll(p); err != nil {
			return fmt.Errorf("removing leftover temporary %s: %w", p, err)
		}
		fmt.Fprintf(out, "removed %s, left over from an interrupted save\n", p)
	}
	return nil
}
