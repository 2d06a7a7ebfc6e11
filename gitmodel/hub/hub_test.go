package hub

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const tinyID = "gitcap/git-tiny"

// testOptions points at h with a fresh cache, quiet unless log is given.
func testOptions(t *testing.T, h *fakeHub, log *bytes.Buffer) Options {
	o := Options{
		CacheDir: filepath.Join(t.TempDir(), "hub"),
		Endpoint: h.srv.URL,
		Client:   h.srv.Client(),
	}
	if log != nil {
		o.Progress = log
	}
	return o
}

// checkSnapshot verifies the huggingface_hub layout for every file in want.
func checkSnapshot(t *testing.T, o Options, repo *fakeRepo, dir string, want map[string][]byte) {
	t.Helper()
	storage := filepath.Join(o.CacheDir, "models--gitcap--git-tiny")
	if dir != filepath.Join(storage, "snapshots", repo.commit) {
		t.Fatalf("dir = %s, want %s", dir, filepath.Join(storage, "snapshots", repo.commit))
	}
	for name, content := range want {
		p := filepath.Join(dir, filepath.FromSlash(name))
		fi, err := os.Lstat(p)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if fi.Mode()&os.ModeSymlink == 0 {
			t.Fatalf("%s is not a symlink", name)
		}
		target, _ := os.Readlink(p)
		rel := strings.Repeat("../", strings.Count(name, "/")+2) + "blobs/" + etagOf(name, content)
		if target != filepath.FromSlash(rel) {
			t.Errorf("%s -> %s, want %s", name, target, rel)
		}
		got, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, content) {
			t.Errorf("%s: content differs (%d vs %d bytes)", name, len(got), len(content))
		}
	}
	ents, _ := os.ReadDir(filepath.Join(storage, "blobs"))
	for _, e := range ents {
		if strings.HasSuffix(e.Name(), ".incomplete") {
			t.Errorf("left over %s", e.Name())
		}
	}
	if len(ents) != len(want) {
		t.Errorf("%d blobs, want %d", len(ents), len(want))
	}
}

func TestDownloadLayout(t *testing.T) {
	h := newFakeHub(t)
	files := tinyFiles(t)
	repo := h.addRepo(tinyID, files)
	var log bytes.Buffer
	o := testOptions(t, h, &log)
	o.LogInterval = time.Hour
	dir, err := Resolve(context.Background(), tinyID, o)
	if err != nil {
		t.Fatal(err)
	}
	checkSnapshot(t, o, repo, dir, files)
	storage := filepath.Join(o.CacheDir, "models--gitcap--git-tiny")
	if b, err := os.ReadFile(filepath.Join(storage, "refs", "main")); err != nil || string(b) != repo.commit {
		t.Errorf("refs/main = %q, %v; want %s", b, err, repo.commit)
	}
	if _, err := os.Stat(filepath.Join(o.CacheDir, ".locks", "models--gitcap--git-tiny", etagOf("model.safetensors", files["model.safetensors"])+".lock")); err != nil {
		t.Errorf("lock file: %v", err)
	}
	// The weights went through the CDN-style redirect; the HEADs did not follow it.
	var sawBlob bool
	for _, r := range h.requests() {
		if r.Method == http.MethodHead && strings.HasPrefix(r.Path, "/blobs/") {
			t.Errorf("HEAD followed a redirect: %s", r.Path)
		}
		sawBlob = sawBlob || strings.HasPrefix(r.Path, "/blobs/")
		if r.Method == http.MethodGet && r.Range != "" {
			t.Errorf("unexpected Range %q on a fresh download", r.Range)
		}
	}
	if !sawBlob {
		t.Error("model.safetensors was not fetched through /blobs/")
	}
	lines := strings.Split(strings.TrimSpace(log.String()), "\n")
	if len(lines) != 2 || !strings.Contains(lines[0], "downloading gitcap/git-tiny") || !strings.Contains(lines[1], "downloaded gitcap/git-tiny") {
		t.Errorf("log:\n%s", log.String())
	}
}

func TestSecondResolveNoGET(t *testing.T) {
	h := newFakeHub(t)
	files := tinyFiles(t)
	repo := h.addRepo(tinyID, files)
	var log bytes.Buffer
	o := testOptions(t, h, &log)
	if _, err := Resolve(context.Background(), tinyID, o); err != nil {
		t.Fatal(err)
	}
	h.reset()
	log.Reset()
	dir, err := Resolve(context.Background(), tinyID, o)
	if err != nil {
		t.Fatal(err)
	}
	checkSnapshot(t, o, repo, dir, files)
	if n := h.count(http.MethodGet); n != 0 {
		t.Errorf("%d GET requests on a warm cache", n)
	}
	if log.Len() != 0 {
		t.Errorf("log on a warm cache: %q", log.String())
	}
	// A blob already present under another commit is reused, not fetched.
	os.RemoveAll(filepath.Join(o.CacheDir, "models--gitcap--git-tiny", "snapshots"))
	h.reset()
	if dir, err = Resolve(context.Background(), tinyID, o); err != nil {
		t.Fatal(err)
	}
	checkSnapshot(t, o, repo, dir, files)
	if n := h.count(http.MethodGet); n != 0 {
		t.Errorf("%d GET requests with all blobs present", n)
	}
	// A pinned commit with a complete snapshot makes no request at all.
	h.reset()
	if _, err := Resolve(context.Background(), tinyID+"@"+repo.commit, o); err != nil {
		t.Fatal(err)
	}
	if n := len(h.requests()); n != 0 {
		t.Errorf("%d requests for a cached commit", n)
	}
}

func blobDir(o Options) string {
	return filepath.Join(o.CacheDir, "models--gitcap--git-tiny", "blobs")
}

func TestResumePartialDownload(t *testing.T) {
	for _, redirect := range []bool{true, false} {
		t.Run(fmt.Sprintf("redirect=%v", redirect), func(t *testing.T) {
			h := newFakeHub(t)
			h.noRedirect = !redirect
			files := tinyFiles(t)
			repo := h.addRepo(tinyID, files)
			o := testOptions(t, h, nil)
			weights := files["model.safetensors"]
			half := len(weights) / 2
			inc := filepath.Join(blobDir(o), etagOf("model.safetensors", weights)+".incomplete")
			os.MkdirAll(filepath.Dir(inc), 0o755)
			if err := os.WriteFile(inc, weights[:half], 0o644); err != nil {
				t.Fatal(err)
			}
			dir, err := Resolve(context.Background(), tinyID, o)
			if err != nil {
				t.Fatal(err)
			}
			checkSnapshot(t, o, repo, dir, files)
			want := fmt.Sprintf("bytes=%d-", half)
			var ranges []string
			for _, r := range h.requests() {
				if r.Range != "" {
					ranges = append(ranges, r.Range)
				}
			}
			// With the redirect the Range header reaches both hops.
			if len(ranges) == 0 || ranges[len(ranges)-1] != want {
				t.Errorf("Range requests %q, want %q", ranges, want)
			}
		})
	}
}

func TestServerIgnoringRange(t *testing.T) {
	h := newFakeHub(t)
	h.ignoreRange = true
	files := tinyFiles(t)
	repo := h.addRepo(tinyID, files)
	o := testOptions(t, h, nil)
	weights := files["model.safetensors"]
	inc := filepath.Join(blobDir(o), etagOf("model.safetensors", weights)+".incomplete")
	os.MkdirAll(filepath.Dir(inc), 0o755)
	// Garbage: appending the 200 body to it would corrupt the file.
	if err := os.WriteFile(inc, bytes.Repeat([]byte{0xAB}, len(weights)/3), 0o644); err != nil {
		t.Fatal(err)
	}
	dir, err := Resolve(context.Background(), tinyID, o)
	if err != nil {
		t.Fatal(err)
	}
	checkSnapshot(t, o, repo, dir, files)
}

func TestCorruptPartialIsDiscarded(t *testing.T) {
	h := newFakeHub(t)
	files := tinyFiles(t)
	repo := h.addRepo(tinyID, files)
	o := testOptions(t, h, nil)
	weights := files["model.safetensors"]
	inc := filepath.Join(blobDir(o), etagOf("model.safetensors", weights)+".incomplete")
	os.MkdirAll(filepath.Dir(inc), 0o755)
	os.WriteFile(inc, bytes.Repeat([]byte{0xAB}, len(weights)/3), 0o644)
	_, err := Resolve(context.Background(), tinyID, o)
	if err == nil || !strings.Contains(err.Error(), "sha256") {
		t.Fatalf("err = %v, want a sha256 mismatch", err)
	}
	if _, err := os.Stat(filepath.Join(blobDir(o), etagOf("model.safetensors", weights))); err == nil {
		t.Fatal("a corrupt blob was installed")
	}
	dir, err := Resolve(context.Background(), tinyID, o)
	if err != nil {
		t.Fatal(err)
	}
	checkSnapshot(t, o, repo, dir, files)
}

func TestCancelLeavesIncompleteThenResumes(t *testing.T) {
	h := newFakeHub(t)
	files := tinyFiles(t)
	repo := h.addRepo(tinyID, files)
	weights := files["model.safetensors"]
	half := len(weights) / 2
	h.blobHook = func(w http.ResponseWriter, r *http.Request, name string, content []byte) bool {
		if name != "model.safetensors" {
			return false
		}
		w.Header().Set("Content-Length", fmt.Sprint(len(content)))
		w.WriteHeader(http.StatusOK)
		w.Write(content[:half])
		w.(http.Flusher).Flush()
		<-r.Context().Done() // stall until the client goes away
		return true
	}
	o := testOptions(t, h, nil)
	inc := filepath.Join(blobDir(o), etagOf("model.safetensors", weights)+".incomplete")
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		defer cancel()
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
			if fi, err := os.Stat(inc); err == nil && fi.Size() >= int64(half) {
				return
			}
		}
	}()
	_, err := Resolve(ctx, tinyID, o)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	fi, err := os.Stat(inc)
	if err != nil || fi.Size() != int64(half) {
		t.Fatalf(".incomplete: %v, size %d, want %d", err, fi.Size(), half)
	}
	if _, err := os.Stat(filepath.Join(o.CacheDir, "models--gitcap--git-tiny", "refs", "main")); err == nil {
		t.Error("refs/main written for an unfinished download")
	}

	h.blobHook = nil
	h.reset()
	dir, err := Resolve(context.Background(), tinyID, o)
	if err != nil {
		t.Fatal(err)
	}
	checkSnapshot(t, o, repo, dir, files)
	saw := false
	for _, r := range h.requests() {
		saw = saw || r.Range == fmt.Sprintf("bytes=%d-", half)
	}
	if !saw {
		t.Errorf("no resuming Range request in %+v", h.requests())
	}
}

func TestDroppedConnectionRetries(t *testing.T) {
	h := newFakeHub(t)
	files := tinyFiles(t)
	repo := h.addRepo(tinyID, files)
	h.blobHook = dropFirstDownload("model.safetensors")
	var log bytes.Buffer
	o := testOptions(t, h, &log)
	dir, err := resolveWithBackoff(t, o, time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	checkSnapshot(t, o, repo, dir, files)
	checkRetryLine(t, log.String())
	saw := false
	for _, r := range h.requests() {
		saw = saw || strings.HasPrefix(r.Range, "bytes=")
	}
	if !saw {
		t.Error("the retry did not resume with a Range request")
	}
}

// checkRetryLine requires exactly one retry line in log, worded
// "hub: model.safetensors: <cause>; retrying in 1ms": one prefix, the file
// named once.
func checkRetryLine(t *testing.T, log string) {
	t.Helper()
	var retries []string
	for _, l := range strings.Split(log, "\n") {
		if strings.Contains(l, "retrying") {
			retries = append(retries, l)
		}
	}
	if len(retries) != 1 {
		t.Fatalf("want one retry line, log:\n%s", log)
	}
	l := retries[0]
	if !strings.HasPrefix(l, "hub: model.safetensors: ") || strings.Count(l, "hub:") != 1 ||
		strings.Count(l, "model.safetensors") != 1 || !strings.HasSuffix(l, "; retrying in 1ms") {
		t.Errorf("retry line %q, want \"hub: model.safetensors: <cause>; retrying in 1ms\"", l)
	}
}

// TestDisableProgressBars sets Progress after reading the environment, as
// the commands do: HF_HUB_DISABLE_PROGRESS_BARS still silences the progress
// lines, while a retry warning still gets through.
func TestDisableProgressBars(t *testing.T) {
	for _, disable := range []string{"", "1"} {
		t.Run("HF_HUB_DISABLE_PROGRESS_BARS="+disable, func(t *testing.T) {
			h := newFakeHub(t)
			files := tinyFiles(t)
			repo := h.addRepo(tinyID, files)
			h.blobHook = dropFirstDownload("model.safetensors")
			env := map[string]string{"HF_HUB_CACHE": t.TempDir(), "HF_ENDPOINT": h.srv.URL, "HF_HUB_DISABLE_PROGRESS_BARS": disable}
			o := optionsFromEnv(func(k string) string { return env[k] }, os.UserHomeDir, os.ReadFile, os.Stderr)
			var log bytes.Buffer
			o.Progress = &log // what cmd/gitcap and train do after OptionsFromEnv
			o.Client = h.srv.Client()
			dir, err := resolveWithBackoff(t, o, time.Millisecond)
			if err != nil {
				t.Fatal(err)
			}
			checkSnapshot(t, o, repo, dir, files)
			checkRetryLine(t, log.String())
			progress := strings.Contains(log.String(), "downloading") || strings.Contains(log.String(), "downloaded")
			if progress != (disable == "") {
				t.Errorf("progress lines shown = %v with HF_HUB_DISABLE_PROGRESS_BARS=%q:\n%s", progress, disable, log.String())
			}
		})
	}
}

// resolveWithBackoff runs the online path with a short retry delay.
func resolveWithBackoff(t *testing.T, o Options, backoff time.Duration) (string, error) {
	t.Helper()
	s, err := newSession(tinyID, o)
	if err != nil {
		return "", err
	}
	s.backoff = backoff
	return s.fetch(context.Background(), "main")
}

func TestOffline(t *testing.T) {
	h := newFakeHub(t)
	files := tinyFiles(t)
	repo := h.addRepo(tinyID, files, "v1.0")
	o := testOptions(t, h, nil)

	// Cold cache: a clear error and no request.
	off := o
	off.Offline = true
	_, err := Resolve(context.Background(), tinyID, off)
	if err == nil || !errors.Is(err, ErrNotCached) {
		t.Fatalf("cold offline: err = %v", err)
	}
	for _, want := range []string{tinyID, "config.json", "HF_HUB_OFFLINE"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("cold offline error %q does not mention %q", err, want)
		}
	}
	if n := len(h.requests()); n != 0 {
		t.Fatalf("%d requests in offline mode", n)
	}

	// Warm cache.
	if _, err := Resolve(context.Background(), tinyID, o); err != nil {
		t.Fatal(err)
	}
	h.reset()
	dir, err := Resolve(context.Background(), tinyID, off)
	if err != nil {
		t.Fatal(err)
	}
	checkSnapshot(t, o, repo, dir, files)
	if _, err := Resolve(context.Background(), tinyID+"@"+repo.commit, off); err != nil {
		t.Errorf("offline by commit: %v", err)
	}
	if _, err := Resolve(context.Background(), tinyID+"@v1.0", off); err == nil || !strings.Contains(err.Error(), "v1.0") {
		t.Errorf("offline uncached revision: err = %v", err)
	}
	if n := len(h.requests()); n != 0 {
		t.Errorf("%d requests in offline mode", n)
	}

	// A snapshot missing its weights names them.
	os.Remove(filepath.Join(dir, "model.safetensors"))
	_, err = Resolve(context.Background(), tinyID, off)
	if err == nil || !strings.Contains(err.Error(), "model.safetensors") {
		t.Errorf("partial snapshot: err = %v", err)
	}
}

func TestUnreachableFallsBackToCache(t *testing.T) {
	h := newFakeHub(t)
	files := tinyFiles(t)
	repo := h.addRepo(tinyID, files)
	var log bytes.Buffer
	o := testOptions(t, h, &log)
	if _, err := Resolve(context.Background(), tinyID, o); err != nil {
		t.Fatal(err)
	}
	h.srv.Close()
	log.Reset()
	dir, err := Resolve(context.Background(), tinyID, o)
	if err != nil {
		t.Fatal(err)
	}
	checkSnapshot(t, o, repo, dir, files)
	if !strings.Contains(log.String(), "cannot reach") {
		t.Errorf("no warning: %q", log.String())
	}
	o.CacheDir = t.TempDir()
	if _, err := Resolve(context.Background(), tinyID, o); err == nil {
		t.Error("unreachable Hub and cold cache: no error")
	}
}

func TestRevision(t *testing.T) {
	h := newFakeHub(t)
	files := tinyFiles(t)
	repo := h.addRepo(tinyID, files, "v1.0")
	o := testOptions(t, h, nil)
	dir, err := Resolve(context.Background(), tinyID+"@v1.0", o)
	if err != nil {
		t.Fatal(err)
	}
	checkSnapshot(t, o, repo, dir, files)
	storage := filepath.Join(o.CacheDir, "models--gitcap--git-tiny")
	if b, _ := os.ReadFile(filepath.Join(storage, "refs", "v1.0")); string(b) != repo.commit {
		t.Errorf("refs/v1.0 = %q", b)
	}
	if _, err := os.Stat(filepath.Join(storage, "refs", "main")); err == nil {
		t.Error("refs/main written for @v1.0")
	}
	reqs := h.requests()
	if reqs[0].Path != "/gitcap/git-tiny/resolve/v1.0/config.json" {
		t.Errorf("first request %s", reqs[0].Path)
	}
	for _, r := range reqs[1:] {
		if strings.Contains(r.Path, "/resolve/") && !strings.Contains(r.Path, "/resolve/"+repo.commit+"/") {
			t.Errorf("request %s not pinned to the commit", r.Path)
		}
	}
	// .no_exist markers for what git-tiny lacks, as huggingface_hub writes them.
	if _, err := os.Stat(filepath.Join(storage, ".no_exist", repo.commit, "model.safetensors.index.json")); err == nil {
		t.Error(".no_exist marker for a file that was never asked for")
	}

	// A commit pinned from the start writes no ref.
	o2 := testOptions(t, h, nil)
	if _, err := Resolve(context.Background(), tinyID+"@"+repo.commit, o2); err != nil {
		t.Fatal(err)
	}
	ents, _ := os.ReadDir(filepath.Join(o2.CacheDir, "models--gitcap--git-tiny", "refs"))
	if len(ents) != 0 {
		t.Errorf("refs written for a commit revision: %v", ents)
	}
	if _, err := Resolve(context.Background(), tinyID+"@nope", o2); err == nil || !strings.Contains(err.Error(), `revision "nope"`) {
		t.Errorf("unknown revision: err = %v", err)
	}
}

func shardedFiles(t *testing.T) (map[string][]byte, []string) {
	all := tinyFiles(t)
	w := all["model.safetensors"]
	shards := []string{"model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"}
	files := map[string][]byte{
		"config.json":              all["config.json"],
		"preprocessor_config.json": all["preprocessor_config.json"],
		"vocab.txt":                all["vocab.txt"],
		shards[0]:                  w[:len(w)/2],
		shards[1]:                  w[len(w)/2:],
	}
	idx, _ := json.Marshal(map[string]any{
		"metadata":   map[string]any{"total_size": len(w)},
		"weight_map": map[string]string{"a.weight": shards[0], "b.weight": shards[1], "c.weight": shards[1]},
	})
	files["model.safetensors.index.json"] = idx
	return files, shards
}

func TestShardedIndex(t *testing.T) {
	h := newFakeHub(t)
	files, shards := shardedFiles(t)
	repo := h.addRepo(tinyID, files)
	o := testOptions(t, h, nil)
	dir, err := Resolve(context.Background(), tinyID, o)
	if err != nil {
		t.Fatal(err)
	}
	checkSnapshot(t, o, repo, dir, files)
	for _, sh := range shards {
		if n := strings.Count(fmt.Sprint(h.requests()), "GET /blobs/"+etagOf(sh, files[sh])); n != 1 {
			t.Errorf("%s fetched %d times", sh, n)
		}
	}
	noExist := filepath.Join(o.CacheDir, "models--gitcap--git-tiny", ".no_exist", repo.commit)
	for _, name := range []string{"model.safetensors", "tokenizer.json", "generation_config.json"} {
		if _, err := os.Stat(filepath.Join(noExist, name)); err != nil {
			t.Errorf(".no_exist marker: %v", err)
		}
	}
	off := o
	off.Offline = true
	if d, err := Resolve(context.Background(), tinyID, off); err != nil || d != dir {
		t.Errorf("offline sharded: %s, %v", d, err)
	}
	os.Remove(filepath.Join(dir, shards[1]))
	if _, err := Resolve(context.Background(), tinyID, off); err == nil || !strings.Contains(err.Error(), shards[1]) {
		t.Errorf("offline missing shard: err = %v", err)
	}
}

func TestShardPathTraversal(t *testing.T) {
	h := newFakeHub(t)
	files, _ := shardedFiles(t)
	files["model.safetensors.index.json"] = []byte(`{"weight_map":{"a":"../../../../evil.safetensors"}}`)
	h.addRepo(tinyID, files)
	o := testOptions(t, h, nil)
	_, err := Resolve(context.Background(), tinyID, o)
	if err == nil || !strings.Contains(err.Error(), "bad shard") {
		t.Fatalf("err = %v", err)
	}
}

func TestPytorchOnly(t *testing.T) {
	h := newFakeHub(t)
	all := tinyFiles(t)
	h.addRepo(tinyID, map[string][]byte{
		"config.json":              all["config.json"],
		"preprocessor_config.json": all["preprocessor_config.json"],
		"tokenizer.json":           all["tokenizer.json"],
		"pytorch_model.bin":        []byte("pickle"),
	})
	_, err := Resolve(context.Background(), tinyID, testOptions(t, h, nil))
	if !errors.Is(err, ErrNoSafetensors) || !strings.Contains(err.Error(), "safetensors") {
		t.Fatalf("err = %v", err)
	}
}

func TestMissingFiles(t *testing.T) {
	all := tinyFiles(t)
	cases := map[string]struct {
		drop []string
		want string
	}{
		"no config":    {[]string{"config.json"}, "config.json"},
		"no processor": {[]string{"preprocessor_config.json"}, "preprocessor_config.json"},
		"no tokenizer": {[]string{"tokenizer.json", "vocab.txt"}, "tokenizer"},
		"no weights":   {[]string{"model.safetensors"}, "no weights"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			h := newFakeHub(t)
			files := map[string][]byte{}
			for k, v := range all {
				files[k] = v
			}
			for _, d := range c.drop {
				delete(files, d)
			}
			h.addRepo(tinyID, files)
			_, err := Resolve(context.Background(), tinyID, testOptions(t, h, nil))
			if !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v, want ErrNotFound mentioning %q", err, c.want)
			}
		})
	}
	h := newFakeHub(t)
	_, err := Resolve(context.Background(), "nobody/nothing", testOptions(t, h, nil))
	if !errors.Is(err, ErrUnauthorized) || !strings.Contains(err.Error(), "does not exist") {
		t.Fatalf("unknown repo: err = %v", err)
	}
}

func TestAuth(t *testing.T) {
	h := newFakeHub(t)
	h.token = "hf_secret"
	files := tinyFiles(t)
	repo := h.addRepo(tinyID, files)
	o := testOptions(t, h, nil)

	_, err := Resolve(context.Background(), tinyID, o)
	if !errors.Is(err, ErrUnauthorized) || !strings.Contains(err.Error(), "HF_TOKEN") {
		t.Fatalf("no token: err = %v", err)
	}
	o.Token = "hf_wrong"
	_, err = Resolve(context.Background(), tinyID, o)
	if !errors.Is(err, ErrUnauthorized) || !strings.Contains(err.Error(), "HF_TOKEN") {
		t.Fatalf("wrong token: err = %v", err)
	}
	h.reset()
	o.Token = "hf_secret"
	dir, err := Resolve(context.Background(), tinyID, o)
	if err != nil {
		t.Fatal(err)
	}
	checkSnapshot(t, o, repo, dir, files)
	checkTokenUse(t, h.requests(), "Bearer hf_secret")
}

// checkTokenUse requires every /resolve/ request to carry auth and every
// other request (the redirected blob downloads) to carry none, and at least
// one of each to have been made.
func checkTokenUse(t *testing.T, reqs []fakeReq, auth string) {
	t.Helper()
	var resolves, blobs int
	for _, r := range reqs {
		if strings.Contains(r.Path, "/resolve/") {
			resolves++
			if r.Auth != auth {
				t.Errorf("%s %s%s sent Authorization %q, want %q", r.Method, r.Host, r.Path, r.Auth, auth)
			}
			continue
		}
		blobs++
		if r.Auth != "" {
			t.Errorf("redirect target %s %s%s received the token (Authorization %q)", r.Method, r.Host, r.Path, r.Auth)
		}
	}
	if resolves == 0 || blobs == 0 {
		t.Errorf("%d resolve and %d blob requests; the test did not exercise the redirect", resolves, blobs)
	}
}

// hostClient dials the loopback listener given for each host:port, so that
// tests can use names such as hub.test and cdn-lfs.hub.test (a subdomain,
// which Go's client would send the Authorization header on to).
func hostClient(t *testing.T, hosts map[string]string) *http.Client {
	d := &net.Dialer{Timeout: 5 * time.Second}
	tr := &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		to, ok := hosts[addr]
		if !ok {
			return nil, fmt.Errorf("test dialer: no listener for %s", addr)
		}
		return d.DialContext(ctx, network, to)
	}}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 30 * time.Second}
}

// TestTokenNotSentToRedirectTarget follows the LFS redirect to a path on
// the Hub's own host, to a subdomain of it and to another host: none of
// them receives the token, while every resolve request does.
func TestTokenNotSentToRedirectTarget(t *testing.T) {
	for _, c := range []struct {
		name, hubHost, cdnHost string // "" cdnHost: the hub's own server
	}{
		{"same host", "hub.test", ""},
		{"subdomain", "hub.test", "cdn-lfs.hub.test"},
		{"other host", "hub.test", "cdn.example"},
		{"same host by IP", "", ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			h := newFakeHub(t)
			h.token = "hf_secret"
			files := tinyFiles(t)
			repo := h.addRepo(tinyID, files)
			o := testOptions(t, h, nil)
			o.Token = h.token
			hubPort := h.srv.Listener.Addr().(*net.TCPAddr).Port
			hosts := map[string]string{}
			if c.hubHost != "" {
				o.Endpoint = fmt.Sprintf("http://%s:%d", c.hubHost, hubPort)
				hosts[fmt.Sprintf("%s:%d", c.hubHost, hubPort)] = h.srv.Listener.Addr().String()
				h.cdnBase = o.Endpoint
			}
			if c.cdnHost != "" {
				cdn := httptest.NewServer(http.HandlerFunc(h.serve))
				t.Cleanup(cdn.Close)
				cdnPort := cdn.Listener.Addr().(*net.TCPAddr).Port
				h.cdnBase = fmt.Sprintf("http://%s:%d", c.cdnHost, cdnPort)
				hosts[fmt.Sprintf("%s:%d", c.cdnHost, cdnPort)] = cdn.Listener.Addr().String()
			}
			if len(hosts) > 0 {
				o.Client = hostClient(t, hosts)
			}
			dir, err := Resolve(context.Background(), tinyID, o)
			if err != nil {
				t.Fatal(err)
			}
			checkSnapshot(t, o, repo, dir, files)
			reqs := h.requests()
			checkTokenUse(t, reqs, "Bearer hf_secret")
			if c.cdnHost != "" {
				saw := false
				for _, r := range reqs {
					saw = saw || (strings.HasPrefix(r.Host, c.cdnHost+":") && strings.HasPrefix(r.Path, "/blobs/"))
				}
				if !saw {
					t.Errorf("no blob request reached %s: %+v", c.cdnHost, reqs)
				}
			}
		})
	}
}

// TestTokenURLs is the rule for which URLs get the token.
func TestTokenURLs(t *testing.T) {
	for _, c := range []struct {
		endpoint string
		urls     map[string]bool
	}{
		{"https://huggingface.co", map[string]bool{
			"https://huggingface.co/microsoft/git-base/resolve/main/config.json":       true,
			"https://huggingface.co/gpt2/resolve/main/config.json":                     true,
			"https://huggingface.co:443/gpt2/resolve/refs%2Fpr%2F1/sub/x.json":         true,
			"https://HuggingFace.co/api/models/microsoft/git-base":                     true,
			"https://huggingface.co/microsoft/git-base/blob/main/config.json":          false,
			"https://huggingface.co/lfs/abc":                                           false,
			"https://huggingface.co/repos/ab/cd/abcdef":                                false,
			"https://huggingface.co/microsoft/git-base/resolve/../../lfs/x":            false,
			"https://cdn-lfs.huggingface.co/repos/ab/cd/abcdef":                        false,
			"https://cdn-lfs.huggingface.co/microsoft/git-base/resolve/main/x":         false,
			"http://huggingface.co/gpt2/resolve/main/config.json":                      false,
			"https://huggingface.co:8443/gpt2/resolve/main/config.json":                false,
			"https://huggingface.co.evil.example/gpt2/resolve/main/config.json":        false,
			"https://user@huggingface.co/gpt2/resolve/main/config.json":                false,
			"https://huggingface.co/api":                                               false,
			"https://huggingface.co/microsoft/git-base/resolve":                        false,
			"https://huggingface.co/microsoft/git-base/extra/resolve/main/config.json": false,
		}},
		{"http://mirror.example:8080/hf", map[string]bool{
			"http://mirror.example:8080/hf/gpt2/resolve/main/config.json": true,
			"http://mirror.example:8080/hf/api/models/gpt2":               true,
			"http://mirror.example:8080/gpt2/resolve/main/config.json":    false,
			"http://mirror.example:8080/hfx/gpt2/resolve/main/c.json":     false,
			"http://mirror.example:8080/blobs/abc":                        false,
			"http://mirror.example/hf/gpt2/resolve/main/config.json":      false,
		}},
	} {
		s, err := newSession("o/n", Options{CacheDir: "c", Endpoint: c.endpoint})
		if err != nil {
			t.Fatal(err)
		}
		for raw, want := range c.urls {
			u, err := url.Parse(raw)
			if err != nil {
				t.Fatal(err)
			}
			if got := s.sendsToken(u); got != want {
				t.Errorf("endpoint %s: token to %s = %v, want %v", c.endpoint, raw, got, want)
			}
		}
	}
}

func TestLocalDirectory(t *testing.T) {
	dir := t.TempDir()
	o := Options{Endpoint: "http://127.0.0.1:1"} // never used
	got, err := Resolve(context.Background(), dir, o)
	if err != nil || got != dir {
		t.Fatalf("Resolve(%s) = %s, %v", dir, got, err)
	}
	file := filepath.Join(dir, "config.json")
	os.WriteFile(file, []byte("{}"), 0o644)
	if _, err := Resolve(context.Background(), file, o); err == nil || !strings.Contains(err.Error(), "not a model directory") {
		t.Errorf("file: err = %v", err)
	}
}

func TestBadID(t *testing.T) {
	o := Options{CacheDir: t.TempDir(), Endpoint: "http://127.0.0.1:1"} // never used
	for _, arg := range []string{
		"./missing", "../missing", "/no/such/dir", "a/b/c", "-foo", "foo-", "owner/",
		"/name", "foo--bar", "foo..bar", "foo bar", "x.git", "ow:ner/name", "name@", "name@../x",
		"name@a//b", strings.Repeat("x", 97),
	} {
		_, err := Resolve(context.Background(), arg, o)
		if err == nil || !strings.Contains(err.Error(), "no such directory and not a model id") {
			t.Errorf("Resolve(%q): err = %v", arg, err)
		}
	}
	for _, arg := range []string{"microsoft/git-base-coco", "gpt2", "google/bert_uncased_L-2_H-128_A-2", "a.b/c_d@refs/pr/1", "x/y@v1.0"} {
		if _, _, err := ParseModelID(arg); err != nil {
			t.Errorf("ParseModelID(%q): %v", arg, err)
		}
	}
	repo, rev, _ := ParseModelID("microsoft/git-base-coco@refs/pr/1")
	if repo != "microsoft/git-base-coco" || rev != "refs/pr/1" {
		t.Errorf("ParseModelID: %q %q", repo, rev)
	}
	if RepoFolderName("microsoft/git-base-coco") != "models--microsoft--git-base-coco" || RepoFolderName("gpt2") != "models--gpt2" {
		t.Error("RepoFolderName")
	}
}

func TestRevisionURLEscaping(t *testing.T) {
	s, _ := newSession("o/n", Options{CacheDir: "c", Endpoint: "https://hub.example/"})
	if got := s.resolveURL("refs/pr/1", "sub dir/a b.json"); got != "https://hub.example/o/n/resolve/refs%2Fpr%2F1/sub%20dir/a%20b.json" {
		t.Errorf("resolveURL = %s", got)
	}
}

func TestOptionsFromEnv(t *testing.T) {
	home := func() (string, error) { return "/home/u", nil }
	files := map[string]string{"/home/u/.cache/huggingface/token": "hf_file\n", "/t/tok": " hf_path "}
	read := func(p string) ([]byte, error) {
		if s, ok := files[p]; ok {
			return []byte(s), nil
		}
		return nil, os.ErrNotExist
	}
	var stderr bytes.Buffer
	cases := []struct {
		env  map[string]string
		want Options
	}{
		{nil, Options{CacheDir: "/home/u/.cache/huggingface/hub", Endpoint: DefaultEndpoint, Token: "hf_file", Progress: &stderr}},
		{map[string]string{"HF_HOME": "~/hf", "HF_TOKEN": "hf_env", "HF_ENDPOINT": "http://127.0.0.1:9/", "HF_HUB_OFFLINE": "1"},
			Options{CacheDir: "/home/u/hf/hub", Endpoint: "http://127.0.0.1:9", Token: "hf_env", Offline: true, Progress: &stderr}},
		{map[string]string{"XDG_CACHE_HOME": "/x", "HF_HUB_CACHE": "$D/c", "D": "/d", "HF_TOKEN_PATH": "/t/tok", "HF_HUB_OFFLINE": "no", "HF_HUB_DISABLE_PROGRESS_BARS": "true"},
			Options{CacheDir: "/d/c", Endpoint: DefaultEndpoint, Token: "hf_path", Progress: &stderr, DisableProgressBars: true}},
		{map[string]string{"HUGGINGFACE_HUB_CACHE": "/old", "HUGGING_FACE_HUB_TOKEN": "hf_old", "TRANSFORMERS_OFFLINE": "yes", "HF_HUB_ETAG_TIMEOUT": "2.5", "HF_HUB_DOWNLOAD_TIMEOUT": "30"},
			Options{CacheDir: "/old", Endpoint: DefaultEndpoint, Token: "hf_old", Offline: true, Progress: &stderr, EtagTimeout: 2500 * time.Millisecond, DownloadTimeout: 30 * time.Second}},
	}
	for i, c := range cases {
		got := optionsFromEnv(func(k string) string { return c.env[k] }, home, read, &stderr)
		if got != c.want {
			t.Errorf("case %d:\n got %+v\nwant %+v", i, got, c.want)
		}
	}
}

func TestProgressWriters(t *testing.T) {
	// Plain log lines are throttled: begin, at most one per interval, end.
	var buf bytes.Buffer
	now := time.Unix(0, 0)
	p := &logProgress{w: &buf, label: "m", interval: 5 * time.Second, now: func() time.Time { return now }}
	p.begin(100<<20, 2)
	p.file("a", 50<<20, 0)
	for i := 0; i < 100; i++ {
		now = now.Add(100 * time.Millisecond)
		p.add(1 << 20)
	}
	p.end(nil)
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 4 { // begin, two at 5s and 10s, end
		t.Errorf("%d lines:\n%s", len(lines), buf.String())
	}
	if !strings.Contains(lines[len(lines)-1], "100.0 MiB") || !strings.Contains(lines[1], "%") || !strings.Contains(lines[1], "ETA") {
		t.Errorf("lines:\n%s", buf.String())
	}
	// One file is "1 file".
	for _, files := range []int{1, 2} {
		buf.Reset()
		p := &logProgress{w: &buf, label: "m", interval: time.Hour, now: time.Now}
		p.begin(10, files)
		p.file("a", 10, 0)
		p.add(10)
		p.end(nil)
		want := map[int]string{1: ": 1 file, ", 2: ": 2 files, "}[files]
		if n := strings.Count(buf.String(), want); n != 2 {
			t.Errorf("%d files: want %q in the first and last lines:\n%s", files, want, buf.String())
		}
	}
	buf.Reset()
	b1 := &barProgress{w: &buf, label: "m", width: 80}
	b1.begin(10, 1)
	b1.end(nil)
	if !strings.Contains(buf.String(), "m (1 file)") {
		t.Errorf("bar for one file: %q", buf.String())
	}
	// A non-terminal writer gets log lines, nil gets nothing.
	if _, ok := newProgress(&buf, "m", 0).(*logProgress); !ok {
		t.Error("buffer did not get log lines")
	}
	if _, ok := newProgress(nil, "m", 0).(nopProgress); !ok {
		t.Error("nil writer not silent")
	}
	// The bar itself runs on any writer.
	buf.Reset()
	b := &barProgress{w: &buf, label: "m", width: 80}
	b.begin(1000, 1)
	b.file("x", 1000, 100)
	b.add(900)
	b.end(nil)
	if !strings.Contains(buf.String(), "1000 B") {
		t.Errorf("bar output %q", buf.String())
	}
}

func TestParseContentRange(t *testing.T) {
	for _, c := range []struct {
		in           string
		start, total int64
		ok           bool
	}{
		{"bytes 10-99/100", 10, 100, true},
		{"bytes 5-9/*", 5, -1, true},
		{"bytes */100", 0, 0, false},
		{"items 1-2/3", 0, 0, false},
	} {
		s, tot, ok := parseContentRange(c.in)
		if s != c.start || tot != c.total || ok != c.ok {
			t.Errorf("%q: %d %d %v", c.in, s, tot, ok)
		}
	}
}

func TestConcurrentResolve(t *testing.T) {
	h := newFakeHub(t)
	files := tinyFiles(t)
	repo := h.addRepo(tinyID, files)
	o := testOptions(t, h, nil)
	const n = 4
	dirs := make([]string, n)
	errs := make([]error, n)
	done := make(chan int)
	for i := 0; i < n; i++ {
		go func(i int) {
			dirs[i], errs[i] = Resolve(context.Background(), tinyID, o)
			done <- i
		}(i)
	}
	for i := 0; i < n; i++ {
		<-done
	}
	for i := 0; i < n; i++ {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		checkSnapshot(t, o, repo, dirs[i], files)
	}
}

// dropFirstDownload is a blob hook that cuts the first download of name a
// quarter of the way through (the connection dies, as on a flaky network);
// later downloads are served whole.
func dropFirstDownload(name string) func(http.ResponseWriter, *http.Request, string, []byte) bool {
	dropped := false
	return func(w http.ResponseWriter, r *http.Request, n string, content []byte) bool {
		if n != name || dropped {
			return false
		}
		dropped = true
		w.Header().Set("Content-Length", fmt.Sprint(len(content)))
		w.WriteHeader(http.StatusOK)
		w.Write(content[:len(content)/4])
		w.(http.Flusher).Flush()
		panic(http.ErrAbortHandler) // cut the connection
	}
}
