package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gitcap/gitcap/data/fixtures"
)

// serveTinyHub serves the git-tiny fixture as the Hub repo gitcap/git-tiny
// on loopback (HEAD and GET of /gitcap/git-tiny/resolve/REVISION/FILE) and
// points the hub environment at it, with a fresh cache.
func serveTinyHub(t *testing.T) {
	t.Helper()
	dir := fixtures.Path(t, "git-tiny")
	commit := strings.Repeat("a", 40)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rest, ok := strings.CutPrefix(r.URL.Path, "/gitcap/git-tiny/resolve/")
		rev, name, _ := strings.Cut(rest, "/")
		b, err := os.ReadFile(filepath.Join(dir, name))
		if !ok || (rev != "main" && rev != commit) || name == "" || strings.Contains(name, "/") || err != nil {
			w.Header().Set("X-Error-Code", "EntryNotFound")
			http.Error(w, "Entry not found", http.StatusNotFound)
			return
		}
		sum := sha256.Sum256(b)
		w.Header().Set("X-Repo-Commit", commit)
		w.Header().Set("ETag", `"`+hex.EncodeToString(sum[:])+`"`)
		http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(b))
	}))
	t.Cleanup(srv.Close)
	t.Setenv("HF_ENDPOINT", srv.URL)
	t.Setenv("HF_HUB_CACHE", t.TempDir())
	t.Setenv("HF_HUB_OFFLINE", "")
	t.Setenv("HF_TOKEN", "")
}

// TestHubProgressFollowsEnv runs commands that fetch --model from the Hub:
// they show the download progress, except with
// HF_HUB_DISABLE_PROGRESS_BARS=1, which silences it.
func TestHubProgressFollowsEnv(t *testing.T) {
	cats := fixtures.Path(t, "images", "cats.png")
	commands := []struct {
		name string
		run  func(t *testing.T, stdout, stderr *bytes.Buffer) error
	}{
		{"caption", func(t *testing.T, stdout, stderr *bytes.Buffer) error {
			return runCaption(context.Background(), []string{"--model", "gitcap/git-tiny", cats}, stdout, stderr)
		}},
		{"train", func(t *testing.T, stdout, stderr *bytes.Buffer) error {
			dir := t.TempDir()
			caps, _ := json.Marshal(map[string]any{
				"images":      []map[string]any{{"id": 1, "file_name": "cats.png"}},
				"annotations": []map[string]any{{"image_id": 1, "caption": "two cats"}},
			})
			capsPath := filepath.Join(dir, "captions.json")
			if err := os.WriteFile(capsPath, caps, 0o644); err != nil {
				t.Fatal(err)
			}
			yaml := "model: gitcap/git-tiny\ntrain:\n  path: " + capsPath + "\n  images: " + filepath.Dir(cats) +
				"\nout_dir: " + filepath.Join(dir, "run") + "\nsteps: 1\nbatch_size: 1\n"
			cfg := filepath.Join(dir, "run.yaml")
			if err := os.WriteFile(cfg, []byte(yaml), 0o644); err != nil {
				t.Fatal(err)
			}
			return runTrain(context.Background(), []string{"--config", cfg}, stdout, stderr)
		}},
	}
	for _, c := range commands {
		for _, disable := range []string{"", "1"} {
			t.Run(c.name+"/HF_HUB_DISABLE_PROGRESS_BARS="+disable, func(t *testing.T) {
				serveTinyHub(t)
				t.Setenv("HF_HUB_DISABLE_PROGRESS_BARS", disable)
				var stdout, stderr bytes.Buffer
				if err := c.run(t, &stdout, &stderr); err != nil {
					t.Fatalf("%v\n%s%s", err, stdout.String(), stderr.String())
				}
				all := stdout.String() + stderr.String()
				shown := strings.Contains(all, "hub: downloading gitcap/git-tiny") && strings.Contains(all, "hub: downloaded gitcap/git-tiny")
				if disable == "" && !shown {
					t.Errorf("no download progress:\n%s", all)
				}
				if disable != "" && strings.Contains(all, "hub:") {
					t.Errorf("progress shown with HF_HUB_DISABLE_PROGRESS_BARS=1:\n%s", all)
				}
			})
		}
	}
}
