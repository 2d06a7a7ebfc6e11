package train

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
)

// staleTemp matches what an interrupted save leaves directly in the output
// directory: a checkpoint being assembled (writeCheckpoint's ".tmp-HEX"
// directories, from fsutil.MkdirTemp) and a file being written atomically
// (fsutil.WriteAtomic's ".NAME.tmpHEX"; HEX is a random hex suffix).
var staleTemp = regexp.MustCompile(`^(\.tmp-[0-9a-f]+|\..+\.tmp[0-9a-f]+)$`)

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
			continue // a .tmp-HEX file or a .X.tmpHEX directory is not ours
		}
		p := filepath.Join(outDir, e.Name())
		if err := os.RemoveAll(p); err != nil {
			return fmt.Errorf("removing leftover temporary %s: %w", p, err)
		}
		fmt.Fprintf(out, "removed %s, left over from an interrupted save\n", p)
	}
	return nil
}
