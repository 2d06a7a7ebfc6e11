package hub

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
)

// Errors that Resolve's errors wrap; test them with errors.Is.
var (
	// ErrNotFound: the repository, revision or file does not exist.
	ErrNotFound = errors.New("not found on the Hub")
	// ErrUnauthorized: the Hub answered 401 or 403.
	ErrUnauthorized = errors.New("not authorized")
	// ErrNotCached: offline, and the cache lacks something needed.
	ErrNotCached = errors.New("not in the cache")
	// ErrNoSafetensors: the repository has only PyTorch pickle weights.
	ErrNoSafetensors = errors.New("safetensors weights are required")
)

// Files a GIT checkpoint needs. The tokenizer files are each optional, but at
// least one of tokenizer.json and vocab.txt must exist.
var (
	requiredFiles  = []string{"config.json", "preprocessor_config.json"}
	optionalFiles  = []string{"generation_config.json", "tokenizer.json", "vocab.txt", "tokenizer_config.json", "special_tokens_map.json"}
	tokenizerFiles = []string{"tokenizer.json", "vocab.txt"}
)

const (
	weightsFile      = "model.safetensors"
	weightsIndexFile = "model.safetensors.index.json"
)

var pickleWeights = []string{"pytorch_model.bin", "pytorch_model.bin.index.json"}

// Resolve turns a --model argument into a local directory. An existing
// directory is returned unchanged. Anything else must be a Hub model id,
// "owner/name" or "name", optionally followed by "@revision"; its files are
// fetched into the HuggingFace cache (or, with opts.Offline, only looked up
// there) and the snapshot directory is returned.
func Resolve(ctx context.Context, modelArg string, opts Options) (string, error) {
	if modelArg == "" {
		return "", errors.New("hub: empty model argument")
	}
	if fi, err := os.Stat(modelArg); err == nil {
		if fi.IsDir() {
			return modelArg, nil
		}
		return "", fmt.Errorf("hub: %s is a file, not a model directory", modelArg)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("hub: %w", err)
	}
	repo, rev, err := ParseModelID(modelArg)
	if err != nil {
		return "", err
	}
	if rev == "" {
		rev = opts.Revision
	}
	if rev == "" {
		rev = DefaultRevision
	}
	if err := validateRevision(rev); err != nil {
		return "", fmt.Errorf("hub: %q: %w", modelArg, err)
	}
	s, err := newSession(repo, opts)
	if err != nil {
		return "", err
	}
	if opts.Offline {
		dir, err := s.cachedSnapshot(rev)
		if err != nil {
			return "", fmt.Errorf("%w (offline mode: HF_HUB_OFFLINE is set; unset it to download)", err)
		}
		return dir, nil
	}
	// A commit sha never moves: a complete snapshot needs no request.
	if commitRE.MatchString(rev) {
		if dir, err := s.cachedSnapshot(rev); err == nil {
			return dir, nil
		}
	}
	dir, err := s.fetch(ctx, rev)
	if err == nil {
		return dir, nil
	}
	var ce *connError
	if errors.As(err, &ce) && ctx.Err() == nil {
		// Like huggingface_hub: when the Hub cannot be reached, fall back
		// to a complete cached snapshot.
		if cached, cerr := s.cachedSnapshot(rev); cerr == nil {
			s.logf("warning: cannot reach %s (%s); using cached %s", s.endpoint, bare(ce.err), cached)
			return cached, nil
		}
	}
	return "", err
}

// ParseModelID splits "owner/name@revision" into the repo id and revision
// (empty when absent) and checks the repo id has the form the Hub accepts.
func ParseModelID(arg string) (repo, revision string, err error) {
	if strings.HasPrefix(arg, ".") || strings.HasPrefix(arg, "/") || strings.HasPrefix(arg, "~") ||
		strings.ContainsRune(arg, '\\') {
		return "", "", fmt.Errorf("hub: %q: no such directory and not a model id (model ids look like owner/name)", arg)
	}
	repo = arg
	if i := strings.IndexByte(arg, '@'); i >= 0 {
		repo, revision = arg[:i], arg[i+1:]
		if revision == "" {
			return "", "", fmt.Errorf("hub: %q: no such directory and not a model id (empty revision after @)", arg)
		}
		if err := validateRevision(revision); err != nil {
			return "", "", fmt.Errorf("hub: %q: no such directory and not a model id (%v)", arg, err)
		}
	}
	if err := validateRepoID(repo); err != nil {
		return "", "", fmt.Errorf("hub: %q: no such directory and not a model id (%v)", arg, err)
	}
	return repo, revision, nil
}

// RepoFolderName is the cache folder of a model repo: "models--owner--name".
func RepoFolderName(repo string) string {
	return "models--" + strings.ReplaceAll(repo, "/", "--")
}

var (
	// Each part of a repo id: huggingface_hub's REPO_ID_REGEX, which
	// allows [A-Za-z0-9_.-] but must start and end with [A-Za-z0-9_].
	repoPartRE = regexp.MustCompile(`^[A-Za-z0-9_]([A-Za-z0-9_.-]*[A-Za-z0-9_])?$`)
	commitRE   = regexp.MustCompile(`^[0-9a-f]{40}$`)
	sha256RE   = regexp.MustCompile(`^[0-9a-f]{64}$`)
	safeNameRE = regexp.MustCompile(`^[A-Za-z0-9._-]+$`)
)

func validateRepoID(repo string) error {
	if repo == "" {
		return errors.New("empty model id")
	}
	parts := strings.Split(repo, "/")
	if len(parts) > 2 {
		return errors.New("a model id is owner/name or name")
	}
	for _, p := range parts {
		if p == "" {
			return errors.New("a model id is owner/name or name")
		}
		if len(p) > 96 {
			return errors.New("a model id part is at most 96 characters")
		}
		if !repoPartRE.MatchString(p) {
			return fmt.Errorf("%q: a model id may contain only letters, digits, '.', '_' and '-', each part starting and ending with a letter or digit", p)
		}
	}
	if strings.Contains(repo, "--") || strings.Contains(repo, "..") {
		return errors.New(`"--" and ".." are not allowed in a model id`)
	}
	if strings.HasSuffix(repo, ".git") {
		return errors.New(`a model id cannot end in ".git"`)
	}
	return nil
}

// validateRevision accepts branch, tag and commit names, including ones with
// slashes such as refs/pr/1, but nothing that could leave refs/ on disk.
func validateRevision(rev string) error {
	if rev == "" {
		return errors.New("empty revision")
	}
	for _, seg := range strings.Split(rev, "/") {
		if seg == "" || seg == "." || seg == ".." {
			return fmt.Errorf("bad revision %q", rev)
		}
	}
	for _, r := range rev {
		if r < 0x20 || r == 0x7f || r == '\\' || r == ' ' || r == ':' {
			return fmt.Errorf("bad revision %q", rev)
		}
	}
	return nil
}

// validFilename accepts a relative slash-separated path that stays inside
// the snapshot; it guards names that come from the network (an index's
// weight_map).
func validFilename(name string) bool {
	if name == "" || strings.ContainsAny(name, "\\\x00") || path.IsAbs(name) || path.Clean(name) != name {
		return false
	}
	for _, seg := range strings.Split(name, "/") {
		if seg == "." || seg == ".." || seg == "" {
			return false
		}
	}
	return true
}

// cachedSnapshot resolves rev through the cache alone and checks the
// snapshot holds a complete checkpoint.
func (s *session) cachedSnapshot(rev string) (string, error) {
	notCached := func(what string) error {
		return fmt.Errorf("hub: model %s@%s is %w: %s not found in cache %s", s.repo, rev, ErrNotCached, what, s.storage)
	}
	var commit string
	if b, err := os.ReadFile(filepath.Join(s.storage, "refs", filepath.FromSlash(rev))); err == nil {
		commit = strings.TrimSpace(string(b))
	} else if commitRE.MatchString(rev) {
		commit = rev
	} else {
		return "", notCached(requiredFiles[0])
	}
	if !safeNameRE.MatchString(commit) {
		return "", fmt.Errorf("hub: corrupt ref %s in %s", rev, s.storage)
	}
	snap := filepath.Join(s.storage, "snapshots", commit)
	has := func(name string) bool {
		fi, err := os.Stat(filepath.Join(snap, filepath.FromSlash(name)))
		return err == nil && fi.Mode().IsRegular()
	}
	for _, f := range requiredFiles {
		if !has(f) {
			return "", notCached(f)
		}
	}
	if !has(tokenizerFiles[0]) && !has(tokenizerFiles[1]) {
		return "", notCached(strings.Join(tokenizerFiles, " or "))
	}
	if has(weightsFile) {
		return snap, nil
	}
	if !has(weightsIndexFile) {
		for _, p := range pickleWeights {
			if has(p) {
				return "", fmt.Errorf("hub: model %s@%s has only PyTorch weights (%s): %w (model.safetensors)", s.repo, rev, p, ErrNoSafetensors)
			}
		}
		return "", notCached(weightsFile)
	}
	shards, err := readIndexShards(filepath.Join(snap, weightsIndexFile))
	if err != nil {
		return "", err
	}
	for _, sh := range shards {
		if !has(sh) {
			return "", notCached(sh)
		}
	}
	return snap, nil
}

// readIndexShards lists the distinct shard files of a safetensors index.
func readIndexShards(file string) ([]string, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("hub: %w", err)
	}
	var idx struct {
		WeightMap map[string]string `json:"weight_map"`
	}
	if err := json.Unmarshal(b, &idx); err != nil {
		return nil, fmt.Errorf("hub: %s: %w", weightsIndexFile, err)
	}
	if len(idx.WeightMap) == 0 {
		return nil, fmt.Errorf("hub: %s has an empty weight_map", weightsIndexFile)
	}
	seen := map[string]bool{}
	var shards []string
	for _, f := range idx.WeightMap {
		if !validFilename(f) {
			return nil, fmt.Errorf("hub: %s names a bad shard file %q", weightsIndexFile, f)
		}
		if !seen[f] {
			seen[f] = true
			shards = append(shards, f)
		}
	}
	sort.Strings(shards)
	return shards, nil
}
