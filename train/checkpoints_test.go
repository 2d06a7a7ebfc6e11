package train

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// TestRotateCheckpointsKeepsTheNewestAndTheBest: save_total_limit keeps
// the newest N checkpoint-STEP directories and never deletes the best;
// 0 keeps everything; other directories are left alone.
func TestRotateCheckpointsKeepsTheNewestAndTheBest(t *testing.T) {
	cases := []struct {
		limit, best int
		want        string
	}{
		{2, 10, "[10 40 50]"},
		{2, 50, "[40 50]"},
		{1, -1, "[50]"},
		{0, 10, "[10 20 30 40 50]"},
	}
	for _, c := range cases {
		dir := t.TempDir()
		for _, name := range []string{"checkpoint-10", "checkpoint-20", "checkpoint-30", "checkpoint-40", "checkpoint-50", LastCheckpoint, BestCheckpoint, "checkpoint-x"} {
			if err := os.Mkdir(filepath.Join(dir, name), 0o755); err != nil {
				t.Fatal(err)
			}
		}
		if err := rotateCheckpoints(dir, c.limit, c.best); err != nil {
			t.Fatal(err)
		}
		steps, err := StepCheckpoints(dir)
		if err != nil || fmt.Sprint(steps) != c.want {
			t.Errorf("limit %d best %d: kept %v (%v), want %s", c.limit, c.best, steps, err, c.want)
		}
		for _, name := range []string{LastCheckpoint, BestCheckpoint, "checkpoint-x"} {
			if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
				t.Errorf("limit %d: %s removed", c.limit, name)
			}
		}
	}
}
