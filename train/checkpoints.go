package train

import (
	"encoding/csv"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/gitcap/gitcap/data/fsutil"
)

// RunDir is the run directory of a checkpoint directory (its parent:
// OUT/checkpoint-last -> OUT).
func RunDir(checkpoint string) string { return filepath.Dir(filepath.Clean(checkpoint)) }

// writeRunConfig saves the resolved configuration as OUT/config.yaml with
// out_dir "." (relative to the file), so that a run directory copied or
// moved elsewhere resumes into itself: Resume always writes into the run
// directory that holds the checkpoint.
func (c *Config) writeRunConfig() error {
	saved := *c
	saved.OutDir = "."
	return saved.WriteYAML(filepath.Join(c.OutDir, ConfigFile))
}

// resumeInto returns cfg with OutDir set to the run directory of the
// checkpoint being resumed.
func resumeInto(cfg *Config, checkpoint string) *Config {
	c := *cfg
	c.OutDir = RunDir(checkpoint)
	return &c
}

// StepCheckpointPrefix names the per-save checkpoints kept beside
// checkpoint-last and checkpoint-best, as HF's Trainer names them:
// OUT/checkpoint-STEP.
const StepCheckpointPrefix = "checkpoint-"

// MetricsCSVFile is the metrics log as CSV (one row per record, the
// columns of metrics.jsonl), rewritten at every save and plot.
const MetricsCSVFile = "metrics.csv"

// afterSave runs after checkpoint-last (and checkpoint-best) were written:
// it adds OUT/checkpoint-STEP, removes the oldest step checkpoints beyond
// save_total_limit (never the best one), and rewrites metrics.csv.
func (t *runner) afterSave() error {
	out := t.cfg.OutDir
	step := t.state.Step
	if err := linkCheckpoint(filepath.Join(out, LastCheckpoint), filepath.Join(out, StepCheckpointPrefix+strconv.Itoa(step)), out); err != nil {
		return err
	}
	best := -1
	if t.hasBest {
		best = t.state.BestStep
	}
	if err := rotateCheckpoints(out, t.cfg.SaveTotalLimit, best); err != nil {
		return err
	}
	return t.writeMetricsCSV()
}

// linkCheckpoint makes dst a copy of the complete checkpoint src, with hard
// links where the file system allows them (checkpoint files are never
// changed in place: a new save writes new files), in a temporary directory
// renamed into place.
func linkCheckpoint(src, dst, outDir string) error {
	tmp, err := fsutil.MkdirTemp(outDir, ".tmp-")
	if err != nil {
		return err
	}
	ok := false
	defer func() {
		if !ok {
			os.RemoveAll(tmp)
		}
	}()
	ents, err := os.ReadDir(src)
	if err != nil {
		return err
	}
	for _, e := range ents {
		from, to := filepath.Join(src, e.Name()), filepath.Join(tmp, e.Name())
		if err := os.Link(from, to); err != nil {
			if err := fsutil.CopyFile(from, to); err != nil {
				return err
			}
		}
	}
	if err := fsutil.SyncDir(tmp); err != nil {
		return err
	}
	if err := os.RemoveAll(dst); err != nil {
		return err
	}
	if err := os.Rename(tmp, dst); err != nil {
		return err
	}
	ok = true
	return fsutil.SyncDir(outDir)
}

// StepCheckpoints lists the checkpoint-STEP directories of a run directory
// by step.
func StepCheckpoints(outDir string) ([]int, error) {
	ents, err := os.ReadDir(outDir)
	if err != nil {
		return nil, err
	}
	var steps []int
	for _, e := range ents {
		s, ok := strings.CutPrefix(e.Name(), StepCheckpointPrefix)
		if !ok || !e.IsDir() {
			continue
		}
		if n, err := strconv.Atoi(s); err == nil && n >= 0 && strconv.Itoa(n) == s {
			steps = append(steps, n)
		}
	}
	sort.Ints(steps)
	return steps, nil
}

// rotateCheckpoints keeps the newest limit checkpoint-STEP directories
// (all when limit is 0) and, in addition, the best step's, like HF's
// save_total_limit.
func rotateCheckpoints(outDir string, limit, bestStep int) error {
	if limit <= 0 {
		return nil
	}
	steps, err := StepCheckpoints(outDir)
	if err != nil {
		return err
	}
	for i, s := range steps {
		if s == bestStep || i >= len(steps)-limit {
			continue
		}
		if err := os.RemoveAll(filepath.Join(outDir, StepCheckpointPrefix+strconv.Itoa(s))); err != nil {
			return err
		}
	}
	return nil
}

// writeMetricsCSV rewrites OUT/metrics.csv from metrics.jsonl.
func (t *runner) writeMetricsCSV() error {
	recs, err := ReadMetrics(filepath.Join(t.cfg.OutDir, MetricsFile))
	if err != nil {
		return err
	}
	return WriteMetricsCSV(filepath.Join(t.cfg.OutDir, MetricsCSVFile), recs)
}

// WriteMetricsCSV writes records as CSV with a header: step, epoch, loss,
// lr, grad_norm, images_per_s, val_loss, val_cider, sample_cider, time, note; a metric a
// record does not have is an empty cell.
func WriteMetricsCSV(path string, recs []Record) error {
	return fsutil.WriteAtomic(path, func(f *os.File) error {
		w := csv.NewWriter(f)
		w.Write([]string{"step", "epoch", "loss", "lr", "grad_norm", "images_per_s", "val_loss", "val_cider", "sample_cider", "time", "note"})
		for _, r := range recs {
			row := []string{strconv.Itoa(r.Step)}
			for _, v := range []float64{r.Epoch, r.Loss, r.LR, r.GradNorm, r.ImagesPerS, r.ValLoss, r.ValCIDEr, r.SampleCIDEr} {
				if IsFinite(v) {
					row = append(row, strconv.FormatFloat(v, 'g', -1, 64))
				} else {
					row = append(row, "")
				}
			}
			ts := ""
			if !r.Time.IsZero() {
				ts = r.Time.UTC().Format(time.RFC3339Nano)
			}
			w.Write(append(row, ts, r.Note))
		}
		w.Flush()
		return w.Error()
	})
}

// checkExtension decides whether a run planned for planned steps and saved
// at step done may be resumed with a plan of total steps. The same plan
// resumes exactly. A larger one extends the run (a finished run too): the
// data order continues where it stopped and the learning-rate schedule is
// recomputed for the new total, as HF's Trainer does when max_steps grows
// on resume (steps already taken keep the rates they had; with a decaying
// schedule the rate jumps to the new curve's value at the resume step).
// The batch size, accumulation and training set must not change, since
// the saved data position counts their batches.
func checkExtension(st TrainerState, total, batch, accum, pairs int, dir string) error {
	if st.TotalSteps == 0 {
		return nil
	}
	if (st.BatchSize != 0 && st.BatchSize != batch) || (st.GradAccum != 0 && st.GradAccum != accum) || (st.TrainPairs != 0 && st.TrainPairs != pairs) {
		return fmt.Errorf("resume: the run was planned for %d steps with batch_size %d, grad_accum %d and %d training pairs; "+
			"this configuration gives %d steps with %d, %d and %d, so the data position would not continue the run; "+
			"to train further with other settings, start a new run from the checkpoint (model: %s)",
			st.TotalSteps, st.BatchSize, st.GradAccum, st.TrainPairs, total, batch, accum, pairs, dir)
	}
	if total < st.TotalSteps {
		return fmt.Errorf("resume: the run was planned for %d steps and %d were taken; --steps/--epochs can extend it but not shorten it (this configuration gives %d)",
			st.TotalSteps, st.Step, total)
	}
	return nil
}
