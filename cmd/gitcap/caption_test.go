package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/gitcap/gitcap/data/fixtures"
	"github.com/gitcap/gitcap/data/tensorfile"
)

// TestCaptionCommandWithBF16WeightsPrintsHFIDs: with --dtype bf16 git-tiny
// still gives HF's float32 greedy ids for cats.png (gitmodel's
// TestBF16GreedyIDsAgreeWithFP32 covers every fixture image).
func TestCaptionCommandWithBF16WeightsPrintsHFIDs(t *testing.T) {
	var out, errb bytes.Buffer
	err := runCaption(context.Background(), []string{"--model", fixtures.Path(t, "git-tiny"), "--dtype", "bf16", "--json", fixtures.Path(t, "images", "cats.png")}, &out, &errb)
	if err != nil {
		t.Fatalf("%v; stderr %s", err, errb.String())
	}
	var got struct{ IDs []int }
	if err := json.Unmarshal(out.Bytes(), &got); err != nil {
		t.Fatalf("output %q: %v", out.String(), err)
	}
	if want := []int{101, 2048, 8870, 5777, 2006, 1037, 5061, 6411, 102}; !reflect.DeepEqual(got.IDs, want) {
		t.Errorf("bf16 ids %v, HF (float32) %v", got.IDs, want)
	}
}

// TestCaptionCommandPrintsHFIDs checks `gitcap caption --json` against HF's
// greedy generation, and that a missing image is reported while the others
// are still captioned and the exit is an error.
func TestCaptionCommandPrintsHFIDs(t *testing.T) {
	model := fixtures.Path(t, "git-tiny")
	cats := fixtures.Path(t, "images", "cats.png")
	var out, errb bytes.Buffer
	err := runCaption(context.Background(), []string{"--model", model, "--json", cats, "/does/not/exist.png"}, &out, &errb)
	if err == nil {
		t.Fatal("want an error for the missing image")
	}
	if !strings.Contains(errb.String(), "/does/not/exist.png") {
		t.Errorf("stderr does not name the missing image: %q", errb.String())
	}
	var got struct {
		Image, Caption string
		IDs            []int
	}
	if err := json.Unmarshal(out.Bytes(), &got); err != nil {
		t.Fatalf("output %q: %v", out.String(), err)
	}
	want := []int{101, 2048, 8870, 5777, 2006, 1037, 5061, 6411, 102} // generate.json, cats.png greedy
	if !reflect.DeepEqual(got.IDs, want) || got.Caption != "two cats sleeping on a pink couch" || got.Image != cats {
		t.Errorf("got %+v", got)
	}
}

func TestCaptionCommandRejectsBadInput(t *testing.T) {
	model := fixtures.Path(t, "git-tiny")
	video := fixtures.Path(t, "git-tiny-video")
	cats := fixtures.Path(t, "images", "cats.png")
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"no images", []string{"--model", model}, "no images"},
		{"no model", []string{cats}, "--model"},
		{"zero beams", []string{"--model", model, "--num-beams", "0", cats}, "num_beams"},
		{"long prompt", []string{"--model", model, "--max-length", "3", "--prompt", "a photo of a cat", cats}, "prompt"},
		{"wrong frame count", []string{"--model", video, cats}, "2 frames"},
		{"empty list dir", []string{"--model", model, "--images-from", t.TempDir()}, "no images"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			err := runCaption(context.Background(), c.args, &out, &errb)
			if err == nil {
				t.Fatal("want an error")
			}
			if msg := err.Error() + errb.String(); !strings.Contains(msg, c.want) {
				t.Errorf("error %q does not mention %q", msg, c.want)
			}
		})
	}
}

// TestForwardCommandWritesHFOutputs runs `gitcap forward --grads` on the
// reference batch and compares the written logits, loss and a gradient.
func TestForwardCommandWritesHFOutputs(t *testing.T) {
	in := fixtures.Path(t, "git-tiny", "reference", "forward.safetensors")
	out := filepath.Join(t.TempDir(), "out.safetensors")
	var so, se bytes.Buffer
	if err := runForward(context.Background(), []string{"--model", fixtures.Path(t, "git-tiny"), "--inputs", in, "--out", out, "--grads"}, &so, &se); err != nil {
		t.Fatal(err, se.String())
	}
	got, err := tensorfile.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	ref, _ := tensorfile.Open(in)
	grads, _ := tensorfile.Open(fixtures.Path(t, "git-tiny", "reference", "grads.safetensors"))
	for _, c := range []struct {
		name, refName string
		ref           *tensorfile.File
		tol           float64
	}{
		{"logits", "logits", ref, 1e-4},
		{"loss", "loss", ref, 1e-4},
		{"visual_projection", "visual_projection", ref, 1e-4},
		{"grad/output.weight", "output.weight", grads, 1e-4},
	} {
		g, gs, err := got.F32(c.name)
		if err != nil {
			t.Fatal(err)
		}
		w, ws, err := c.ref.F32(c.refName)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(gs, ws) {
			t.Errorf("%s: shape %v, HF %v", c.name, gs, ws)
			continue
		}
		for i := range g {
			if math.Abs(float64(g[i]-w[i])) > c.tol {
				t.Errorf("%s[%d] = %g, HF %g", c.name, i, g[i], w[i])
				break
			}
		}
	}
}

// TestCaptionCommandTakesVideoSamples captions a two-frame checkpoint from
// a comma-separated frame list and from a folder of frames, and checks the
// folder gives the frames it samples evenly (the same as listing them).
func TestCaptionCommandTakesVideoSamples(t *testing.T) {
	model := fixtures.Path(t, "git-tiny-video")
	images := fixtures.Path(t, "images")
	dir := t.TempDir()
	// A folder of four frames: 2 frames are sampled at indices 0 and 3
	// (clip(linspace(0, 4, 2), 0, 3), as in HF's GIT video example).
	frames := []string{"cats.png", "gradient_96x64.png", "stripes_50x150.png", "sun_q90.jpg"}
	for i, f := range frames {
		b, err := os.ReadFile(filepath.Join(images, f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("frame%d%s", i, filepath.Ext(f))), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	list := filepath.Join(dir, "frame0.png") + "," + filepath.Join(dir, "frame3.jpg")
	var out, errb bytes.Buffer
	if err := runCaption(context.Background(), []string{"--model", model, "--json", "--frames", "2", list, dir}, &out, &errb); err != nil {
		t.Fatal(err, errb.String())
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("want 2 results, got %q", out.String())
	}
	var a, b struct{ IDs []int }
	json.Unmarshal([]byte(lines[0]), &a)
	json.Unmarshal([]byte(lines[1]), &b)
	if len(a.IDs) < 2 || a.IDs[0] != 101 || !reflect.DeepEqual(a.IDs, b.IDs) {
		t.Errorf("frame list gave %v, folder gave %v (want the same frames, hence the same ids)", a.IDs, b.IDs)
	}
}
