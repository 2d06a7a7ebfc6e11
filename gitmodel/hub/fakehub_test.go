package hub

import (
	"bytes"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gitcap/gitcap/data/fixtures"
)

// fakeHub is a loopback server shaped like huggingface.co: HEAD and GET at
// /{repo}/resolve/{revision}/{file}, LFS files redirected to /blobs/{sha256}
// like the CDN, Range support, and the Hub's error headers.
type fakeHub struct {
	t   *testing.T
	srv *httptest.Server

	mu    sync.Mutex
	repos map[string]*fakeRepo
	reqs  []fakeReq

	token       string // when set, /resolve/ requests must carry it
	cdnBase     string // where LFS files are redirected; empty means srv.URL
	noRedirect  bool   // serve LFS files directly instead of redirecting
	ignoreRange bool   // answer Range requests with a full 200
	// blobHook, when set, may take over a GET of file contents; it
	// returns false to let the normal handler serve it.
	blobHook func(w http.ResponseWriter, r *http.Request, name string, content []byte) bool
}

type fakeRepo struct {
	commit string
	refs   map[string]bool // revisions resolving to commit
	files  map[string][]byte
}

type fakeReq struct {
	Method, Path, Range, Auth, Host string
}

func newFakeHub(t *testing.T) *fakeHub {
	h := &fakeHub{t: t, repos: map[string]*fakeRepo{}}
	h.srv = httptest.NewServer(http.HandlerFunc(h.serve))
	t.Cleanup(h.srv.Close)
	return h
}

// addRepo registers a repo whose "main" (and extra refs) point at one commit.
func (h *fakeHub) addRepo(id string, files map[string][]byte, refs ...string) *fakeRepo {
	sum := sha1.New()
	for name, b := range files {
		fmt.Fprintf(sum, "%s %d\n", name, len(b))
		sum.Write(b)
	}
	r := &fakeRepo{commit: hex.EncodeToString(sum.Sum(nil)), refs: map[string]bool{"main": true}, files: files}
	for _, ref := range refs {
		r.refs[ref] = true
	}
	h.mu.Lock()
	h.repos[id] = r
	h.mu.Unlock()
	return r
}

func (h *fakeHub) requests() []fakeReq {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]fakeReq(nil), h.reqs...)
}

func (h *fakeHub) reset() {
	h.mu.Lock()
	h.reqs = nil
	h.mu.Unlock()
}

func (h *fakeHub) count(method string) int {
	n := 0
	for _, r := range h.requests() {
		if r.Method == method {
			n++
		}
	}
	return n
}

func isLFS(name string) bool {
	return strings.HasSuffix(name, ".safetensors") || strings.HasSuffix(name, ".bin")
}

// etagOf is the blob name the Hub gives a file: sha256 for LFS files, the
// git blob sha1 otherwise.
func etagOf(name string, b []byte) string {
	if isLFS(name) {
		s := sha256.Sum256(b)
		return hex.EncodeToString(s[:])
	}
	s := sha1.New()
	fmt.Fprintf(s, "blob %d\x00", len(b))
	s.Write(b)
	return hex.EncodeToString(s.Sum(nil))
}

func (h *fakeHub) serve(w http.ResponseWriter, r *http.Request) {
	h.mu.Lock()
	h.reqs = append(h.reqs, fakeReq{r.Method, r.URL.EscapedPath(), r.Header.Get("Range"), r.Header.Get("Authorization"), r.Host})
	h.mu.Unlock()

	// Like the real Hub, the resolve URLs check the token; the CDN's
	// (signed) blob URLs do not need it.
	if h.token != "" && strings.Contains(r.URL.Path, "/resolve/") && r.Header.Get("Authorization") != "Bearer "+h.token {
		w.Header().Set("X-Error-Code", "RepoNotFound")
		w.Header().Set("X-Error-Message", "Invalid username or password.")
		http.Error(w, "unauthorized", http.StatusUnauthorized)
		return
	}
	p := r.URL.EscapedPath()
	if sha, ok := strings.CutPrefix(p, "/blobs/"); ok {
		h.serveBlob(w, r, sha)
		return
	}
	repoPart, rest, ok := strings.Cut(strings.TrimPrefix(p, "/"), "/resolve/")
	if !ok {
		http.NotFound(w, r)
		return
	}
	revEsc, fileEsc, _ := strings.Cut(rest, "/")
	rev, err1 := url.PathUnescape(revEsc)
	file, err2 := url.PathUnescape(fileEsc)
	if err1 != nil || err2 != nil {
		http.Error(w, "bad path", http.StatusBadRequest)
		return
	}
	h.mu.Lock()
	repo := h.repos[repoPart]
	h.mu.Unlock()
	if repo == nil {
		// The real Hub says 401 for a repo that does not exist.
		w.Header().Set("X-Error-Code", "RepoNotFound")
		http.Error(w, "Repository not found", http.StatusUnauthorized)
		return
	}
	if rev != repo.commit && !repo.refs[rev] {
		w.Header().Set("X-Error-Code", "RevisionNotFound")
		http.Error(w, "Invalid rev id", http.StatusNotFound)
		return
	}
	w.Header().Set("X-Repo-Commit", repo.commit)
	content, ok := repo.files[file]
	if !ok {
		w.Header().Set("X-Error-Code", "EntryNotFound")
		http.Error(w, "Entry not found", http.StatusNotFound)
		return
	}
	etag := etagOf(file, content)
	if isLFS(file) && !h.noRedirect {
		w.Header().Set("X-Linked-Etag", `"`+etag+`"`)
		w.Header().Set("X-Linked-Size", strconv.Itoa(len(content)))
		w.Header().Set("ETag", `"`+etagOf("pointer", []byte(etag))+`"`) // the pointer file's oid
		base := h.cdnBase
		if base == "" {
			base = h.srv.URL
		}
		w.Header().Set("Location", base+"/blobs/"+etag)
		w.WriteHeader(http.StatusFound)
		return
	}
	if isLFS(file) {
		w.Header().Set("ETag", `"`+etag+`"`)
	} else {
		w.Header().Set("ETag", `W/"`+etag+`"`)
	}
	if r.Method == http.MethodHead {
		w.Header().Set("Content-Length", strconv.Itoa(len(content)))
		w.WriteHeader(http.StatusOK)
		return
	}
	h.serveContent(w, r, file, content)
}

func (h *fakeHub) serveBlob(w http.ResponseWriter, r *http.Request, sha string) {
	h.mu.Lock()
	var name string
	var content []byte
	for _, repo := range h.repos {
		for n, b := range repo.files {
			if isLFS(n) && etagOf(n, b) == sha {
				name, content = n, b
			}
		}
	}
	h.mu.Unlock()
	if content == nil {
		http.NotFound(w, r)
		return
	}
	h.serveContent(w, r, name, content)
}

func (h *fakeHub) serveContent(w http.ResponseWriter, r *http.Request, name string, content []byte) {
	if h.blobHook != nil && r.Method == http.MethodGet && h.blobHook(w, r, name, content) {
		return
	}
	if h.ignoreRange {
		w.Header().Set("Content-Length", strconv.Itoa(len(content)))
		w.WriteHeader(http.StatusOK)
		w.Write(content)
		return
	}
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(content))
}

// tinyFiles reads the top-level files of the git-tiny fixture.
func tinyFiles(t *testing.T) map[string][]byte {
	t.Helper()
	dir := fixtures.Path(t, "git-tiny")
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{}
	for _, e := range ents {
		if !e.Type().IsRegular() {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		files[e.Name()] = b
	}
	for _, need := range []string{"config.json", "preprocessor_config.json", "model.safetensors"} {
		if files[need] == nil {
			t.Fatalf("fixture git-tiny lacks %s", need)
		}
	}
	return files
}
