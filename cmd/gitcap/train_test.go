package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/gitcap/gitcap/data/fixtures"
	"github.com/gitcap/gitcap/train"
)

// TestTrainCommandRunsAndResumesWithFlags trains the tiny model for a few
// steps from a YAML config, then resumes with an extra flag: the saved
// configuration is used underneath, and a flag that changes the plan is
// refused.
func TestTrainCommandRunsAndResumesWithFlags(t *testing.T) {
	dir := t.TempDir()
	var coco struct {
		Images      []map[string]any `json:"images"`
		Annotations []map[string]any `json:"annotations"`
	}
	for i, name := range []string{"shape_red_square_on_white.png", "shape_blue_circle_on_white.png", "shape_green_triangle_on_black.png"} {
		coco.Images = append(coco.Images, map[string]any{"id": i + 1, "file_name": name})
		coco.Annotations = append(coco.Annotations, map[string]any{"image_id": i + 1, "caption": strings.ReplaceAll(strings.TrimSuffix(strings.TrimPrefix(name, "shape_"), ".png"), "_", " ")})
	}
	b, _ := json.Marshal(coco)
	caps := filepath.Join(dir, "captions.json")
	os.WriteFile(caps, b, 0o644)
	out := filepath.Join(dir, "run")
	yaml := "model: " + fixtures.Path(t, "git-tiny") + "\ntrain:\n  path: " + caps + "\n  images: " + fixtures.Path(t, "images") +
		"\nout_dir: " + out + "\nsteps: 6\nbatch_size: 3\nlr: 1.0e-3\nlog_every: 1\nsave_total_limit: 2\n"
	cfgPath := filepath.Join(dir, "run.yaml")
	os.WriteFile(cfgPath, []byte(yaml), 0o644)

	ctx, cancel := context.WithCancel(context.Background())
	var so, se bytes.Buffer
	w := &cancelOnLine{prefix: "step 3/", cancel: cancel, w: &so}
	err := runTrain(ctx, []string{"--config", cfgPath}, w, &se)
	if code := exitStatus("train", err, &se); code != 130 {
		t.Fatalf("interrupted run: exit status %d (%v), want 130", code, err)
	}
	if !strings.Contains(so.String(), "resume with") {
		t.Fatalf("the run was not interrupted:\n%s", so.String())
	}
	last := filepath.Join(out, "checkpoint-last")
	so.Reset()
	if err := runTrain(context.Background(), []string{"--resume", last, "--log-every", "2"}, &so, &se); err != nil {
		t.Fatal(err, se.String())
	}
	if !strings.Contains(so.String(), "done: 6 steps") {
		t.Errorf("resumed run output:\n%s", so.String())
	}
	// save_total_limit 2: only the newest two checkpoint-STEP directories.
	if steps, err := train.StepCheckpoints(out); err != nil || fmt.Sprint(steps) != "[5 6]" {
		t.Errorf("checkpoint-STEP directories %v (%v), want [5 6]", steps, err)
	}
	// A finished run is extended by a larger --steps; it cannot be
	// shortened, nor resumed with another batch size.
	so.Reset()
	if err := runTrain(context.Background(), []string{"--resume", last, "--steps", "9"}, &so, &se); err != nil {
		t.Fatal(err, se.String())
	}
	if !strings.Contains(so.String(), "done: 9 steps") {
		t.Errorf("extended run output:\n%s", so.String())
	}
	if steps, _ := train.StepCheckpoints(out); fmt.Sprint(steps) != "[8 9]" {
		t.Errorf("after extending: checkpoint-STEP directories %v, want [8 9]", steps)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--steps", "7"}, "not shorten"},
		{[]string{"--steps", "12", "--batch-size", "2"}, "batch_size"},
		{[]string{"--steps", "9", "--batch-size", "2"}, "batch_size"}, // the same length, another batch plan
	} {
		err := runTrain(context.Background(), append([]string{"--resume", last}, c.args...), &bytes.Buffer{}, &bytes.Buffer{})
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("resume %v: %v, want an error mentioning %q", c.args, err, c.want)
		}
	}
	csv, err := os.ReadFile(filepath.Join(out, "metrics.csv"))
	if err != nil || !strings.HasPrefix(string(csv), "step,epoch,loss,lr,") || strings.Count(string(csv), "\n") < 9 {
		t.Errorf("metrics.csv (%v):\n%s", err, csv)
	}
}

// cancelOnLine cancels once a line starting with prefix is written.
type cancelOnLine struct {
	prefix string
	cancel func()
	w      *bytes.Buffer
}

func (c *cancelOnLine) Write(p []byte) (int, error) {
	if strings.HasPrefix(string(p), c.prefix) {
		c.cancel()
	}
	return c.w.Write(p)
}

// TestTrainCopiedRunResumesIntoTheCopy stops a run as SIGTERM does (exit
// 143), copies
// its directory and resumes the copy: the copy finishes, the original is
// untouched, the end of the run lists the checkpoints, metrics and plot,
// and checkpoint directories and files are 0755 and 0644 (umask 022).
func TestTrainCopiedRunResumesIntoTheCopy(t *testing.T) {
	old := syscall.Umask(0o022)
	defer syscall.Umask(old)
	dir := t.TempDir()
	caps := filepath.Join(dir, "captions.jsonl")
	var lines []string
	for _, name := range []string{"shape_red_square_on_white.png", "shape_blue_circle_on_white.png", "shape_green_triangle_on_black.png"} {
		lines = append(lines, `{"file_name": "`+fixtures.Path(t, "images", name)+`", "text": "`+strings.ReplaceAll(strings.TrimSuffix(strings.TrimPrefix(name, "shape_"), ".png"), "_", " ")+`"}`)
	}
	os.WriteFile(caps, []byte(strings.Join(lines, "\n")+"\n"), 0o644)
	run1 := filepath.Join(dir, "run1")
	// Stopped as by SIGTERM: the checkpoint is saved and the exit is 143.
	ctx, cancel := context.WithCancelCause(context.Background())
	var so, se bytes.Buffer
	args := []string{"--model", fixtures.Path(t, "git-tiny"), "--train.path", caps, "--out-dir", run1, "--steps", "4", "--batch-size", "3", "--log-every", "1", "--workers", "1"}
	err := runTrain(ctx, args, &cancelOnLine{prefix: "step 2/", cancel: func() { cancel(signalError{syscall.SIGTERM}) }, w: &so}, &se)
	if code := exitStatus("train", err, &se); code != 143 || !strings.Contains(se.String(), "SIGTERM") {
		t.Fatalf("exit %d, want 143 naming SIGTERM: %s", code, se.String())
	}
	run2 := filepath.Join(dir, "run2")
	if out, err := exec.Command("cp", "-r", run1, run2).CombinedOutput(); err != nil {
		t.Fatal(err, string(out))
	}
	so.Reset()
	if err := runTrain(context.Background(), []string{"--resume", filepath.Join(run2, "checkpoint-last")}, &so, &se); err != nil {
		t.Fatal(err, se.String())
	}
	step := func(run string) int {
		var st struct{ Step int }
		b, err := os.ReadFile(filepath.Join(run, "checkpoint-last", "trainer_state.json"))
		if err != nil {
			t.Fatal(err)
		}
		json.Unmarshal(b, &st)
		return st.Step
	}
	if s1, s2 := step(run1), step(run2); s1 != 2 || s2 != 4 {
		t.Errorf("after resuming the copy: original at step %d (want 2), copy at %d (want 4)", s1, s2)
	}
	for _, want := range []string{"last checkpoint: " + filepath.Join(run2, "checkpoint-last"), filepath.Join(run2, "metrics.jsonl"), filepath.Join(run2, "training_curve.png")} {
		if !strings.Contains(so.String(), want) {
			t.Errorf("output does not list %s:\n%s", want, so.String())
		}
	}
	last := filepath.Join(run2, "checkpoint-last")
	if st, err := os.Stat(last); err != nil || st.Mode().Perm() != 0o755 {
		t.Errorf("checkpoint directory mode %v (%v), want 0755", st.Mode().Perm(), err)
	}
	ents, _ := os.ReadDir(last)
	for _, e := range ents {
		if info, _ := e.Info(); info.Mode().Perm() != 0o644 {
			t.Errorf("%s mode %v, want 0644", e.Name(), info.Mode().Perm())
		}
	}
}
