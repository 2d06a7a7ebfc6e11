package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gitcap/gitcap/data/fixtures"
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
		"\nout_dir: " + out + "\nsteps: 6\nbatch_size: 3\nlr: 1.0e-3\nlog_every: 1\n"
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
	if err := runTrain(context.Background(), []string{"--resume", last, "--steps", "9"}, &bytes.Buffer{}, &bytes.Buffer{}); err == nil ||
		!strings.Contains(err.Error(), "planned for 6 steps") {
		t.Errorf("changing --steps on resume: %v", err)
	}
	so.Reset()
	if err := runTrain(context.Background(), []string{"--resume", last, "--log-every", "2"}, &so, &se); err != nil {
		t.Fatal(err, se.String())
	}
	if !strings.Contains(so.String(), "done: 6 steps") {
		t.Errorf("resumed run output:\n%s", so.String())
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
