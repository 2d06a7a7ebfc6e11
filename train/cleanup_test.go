package train

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gitcap/gitcap/data/fsutil"
	"github.com/gitcap/gitcap/gitmodel"
)

// TestStaleTempsAreRemovedWithALogLine checks that what an interrupted save
// leaves (a .tmp-N checkpoint directory, a .NAME.tmpN file) is removed and
// logged, and that nothing else in the directory is touched.
func TestStaleTempsAreRemovedWithALogLine(t *testing.T) {
	dir := t.TempDir()
	made, err := fsutil.MkdirTemp(dir, ".tmp-") // what writeCheckpoint really makes
	if err != nil {
		t.Fatal(err)
	}
	stale := []string{filepath.Base(made), ".tmp-123456", ".tmp-9c0ffee1a2b3"}
	staleFiles := []string{".config.yaml.tmp4242", ".model.safetensors.tmp3fa9c0d1e2b4"}
	keep := []string{LastCheckpoint, "notes.tmp-1", ".tmp-nothex"}
	keepFiles := []string{MetricsFile, ".tmp-77"} // a file named like our directories is not ours
	for _, d := range append(stale, keep...) {
		if err := os.MkdirAll(filepath.Join(dir, d, "sub"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range append(staleFiles, keepFiles...) {
		if err := os.WriteFile(filepath.Join(dir, f), []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var log bytes.Buffer
	if err := removeStaleTemps(dir, &log); err != nil {
		t.Fatal(err)
	}
	for _, n := range append(stale, staleFiles...) {
		if _, err := os.Stat(filepath.Join(dir, n)); !os.IsNotExist(err) {
			t.Errorf("%s was not removed (%v)", n, err)
		}
		if !strings.Contains(log.String(), filepath.Join(dir, n)) {
			t.Errorf("log does not mention %s: %q", n, log.String())
		}
	}
	for _, n := range append(keep, keepFiles...) {
		if _, err := os.Stat(filepath.Join(dir, n)); err != nil {
			t.Errorf("%s was removed: %v", n, err)
		}
	}
}

// TestResumeRemovesStaleTemps checks the hook: resuming a run whose save
// was killed removes the leftover directory and says so.
func TestResumeRemovesStaleTemps(t *testing.T) {
	dir := t.TempDir()
	cfg := tinyConfig(t, dir, 6)
	cfg.LogEvery = 1
	ctx, cancel := context.WithCancel(context.Background())
	sum, err := Run(ctx, cfg, &cancelAfter{n: 1, cancel: cancel})
	cancel()
	if err != nil || !sum.Interrupted {
		t.Fatalf("interrupted run: %+v, %v", sum, err)
	}
	leftover := filepath.Join(dir, ".tmp-31337")
	if err := os.MkdirAll(leftover, 0o755); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(leftover, "model.safetensors"), []byte("half"), 0o644)
	var log bytes.Buffer
	if _, err := Resume(context.Background(), cfg, filepath.Join(dir, LastCheckpoint), &log); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(leftover); !os.IsNotExist(err) {
		t.Errorf("%s survived the resume (%v)", leftover, err)
	}
	if !strings.Contains(log.String(), "removed "+leftover) {
		t.Errorf("no log line for %s in:\n%s", leftover, log.String())
	}
}

// TestMaxTextLenAboveModelPositionsFailsAtSetup checks that a max_text_len
// the model cannot embed is refused before training, naming both values.
func TestMaxTextLenAboveModelPositionsFailsAtSetup(t *testing.T) {
	for _, tc := range []struct {
		n    int
		want []string
	}{
		{100, []string{"max_text_len 100 exceeds", "max_position_embeddings 64"}},
		{65, []string{"max_text_len 65 exceeds", "max_position_embeddings 64"}},
	} {
		dir := t.TempDir()
		cfg := tinyConfig(t, dir, 2)
		cfg.MaxTextLen = tc.n
		_, err := Run(context.Background(), cfg, nil)
		if err == nil {
			t.Fatalf("max_text_len %d accepted", tc.n)
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("error %q does not mention %q", err, w)
			}
		}
		if _, serr := os.Stat(filepath.Join(dir, LastCheckpoint)); serr == nil {
			t.Errorf("a checkpoint was written before the error")
		}
	}
}

// TestPaddedTextLengthIsCheckedToo checks a max_text_len that fits but
// whose padding to a multiple of textPadMult does not.
func TestPaddedTextLengthIsCheckedToo(t *testing.T) {
	mc := gitmodel.DefaultConfig()
	mc.MaxPositionEmbeddings = 60
	cfg := DefaultConfig()
	cfg.MaxTextLen = 58
	err := checkAgainstModel(&cfg, mc)
	if err == nil || !strings.Contains(err.Error(), "max_text_len 58 (padded to 64") || !strings.Contains(err.Error(), "max_position_embeddings 60") {
		t.Fatalf("want a padded-length error naming both values, got %v", err)
	}
	cfg.MaxTextLen = 56
	if err := checkAgainstModel(&cfg, mc); err != nil {
		t.Fatal(err)
	}
}

// TestResumeRecoversAnInterruptedSwap checks that a kill between the two
// renames of a checkpoint swap (checkpoint-last gone, checkpoint-last.old
// complete) does not stop a resume from checkpoint-last.
func TestResumeRecoversAnInterruptedSwap(t *testing.T) {
	dir := t.TempDir()
	cfg := tinyConfig(t, dir, 4)
	cfg.LogEvery = 1
	ctx, cancel := context.WithCancel(context.Background())
	if _, err := Run(ctx, cfg, &cancelAfter{n: 1, cancel: cancel}); err != nil {
		t.Fatal(err)
	}
	cancel()
	last := filepath.Join(dir, LastCheckpoint)
	if err := os.Rename(last, last+".old"); err != nil {
		t.Fatal(err)
	}
	sum, err := Resume(context.Background(), cfg, last, nil)
	if err != nil {
		t.Fatal(err)
	}
	if sum.Steps != 4 {
		t.Fatalf("resumed run ended at step %d", sum.Steps)
	}
}
