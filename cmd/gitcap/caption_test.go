package main

import (
	"bytes"
	"context"
	"encoding/json"
	"math"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/gitcap/gitcap/data/fixtures"
	"github.com/gitcap/gitcap/data/tensorfile"
)

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
