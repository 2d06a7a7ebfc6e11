package hub

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"
)

const (
	maxAttempts  = 5  // GET attempts per file, resuming after each failure
	maxRedirects = 10 // relative redirects followed by HEAD (renamed repos)
	userAgent    = "gitcap (Go; hf_hub-compatible)"
)

// session holds what one Resolve needs.
type session struct {
	repo     string
	storage  string // cache/models--owner--name
	locks    string // cache/.locks/models--owner--name
	endpoint string
	epURL    *url.URL // endpoint, parsed; nil when it does not parse (no token is sent then)
	token    string
	client   *http.Client // GET: follows redirects
	head     *http.Client // HEAD: does not
	opts     Options
	etagTO   time.Duration
	readTO   time.Duration
	backoff  time.Duration // first retry delay; doubles
}

func newSession(repo string, opts Options) (*session, error) {
	if opts.CacheDir == "" {
		return nil, errors.New("hub: no cache directory (use OptionsFromEnv, or set Options.CacheDir)")
	}
	s := &session{
		repo:     repo,
		storage:  filepath.Join(opts.CacheDir, RepoFolderName(repo)),
		locks:    filepath.Join(opts.CacheDir, ".locks", RepoFolderName(repo)),
		endpoint: strings.TrimRight(opts.Endpoint, "/"),
		token:    opts.Token,
		opts:     opts,
		etagTO:   opts.EtagTimeout,
		readTO:   opts.DownloadTimeout,
		backoff:  time.Second,
	}
	if s.endpoint == "" {
		s.endpoint = DefaultEndpoint
	}
	if u, err := url.Parse(s.endpoint); err == nil && u.Host != "" {
		s.epURL = u
	}
	if s.etagTO <= 0 {
		s.etagTO = DefaultEtagTimeout
	}
	if s.readTO <= 0 {
		s.readTO = DefaultDownloadTimeout
	}
	base := opts.Client
	if base == nil {
		base = &http.Client{}
	}
	// GET follows the redirect to the CDN, but Go's client copies the
	// Authorization header set on the first request to a redirect on the
	// same host or a subdomain (cdn-lfs.huggingface.co): drop it unless the
	// target is one of the endpoint's own token URLs.
	g := *base
	userCheck := base.CheckRedirect
	g.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if !s.sendsToken(req.URL) {
			req.Header.Del("Authorization")
		}
		if userCheck != nil {
			return userCheck(req, via)
		}
		if len(via) >= maxRedirects {
			return fmt.Errorf("stopped after %d redirects", len(via))
		}
		return nil
	}
	s.client = &g
	h := *base
	h.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	s.head = &h
	return s, nil
}

// sendsToken reports whether a request to u may carry the token: only the
// endpoint's own API and resolve URLs ({endpoint}/api/..., and
// {endpoint}/{repo}/resolve/... for a repo id of one or two parts), on the
// endpoint's scheme, host and port.
func (s *session) sendsToken(u *url.URL) bool {
	ep := s.epURL
	if ep == nil || u == nil || !strings.EqualFold(u.Scheme, ep.Scheme) || hostPort(u) != hostPort(ep) || u.User != nil {
		return false
	}
	rest, ok := strings.CutPrefix(u.EscapedPath(), strings.TrimRight(ep.EscapedPath(), "/")+"/")
	if !ok {
		return false
	}
	segs := strings.Split(rest, "/")
	for _, seg := range segs {
		if seg == "" || seg == "." || seg == ".." || strings.EqualFold(seg, "%2e") || strings.EqualFold(seg, "%2e%2e") {
			return false
		}
	}
	switch {
	case segs[0] == "api" && len(segs) >= 2:
		return true
	case len(segs) >= 4 && segs[1] == "resolve": // name/resolve/rev/file
		return true
	case len(segs) >= 5 && segs[2] == "resolve": // owner/name/resolve/rev/file
		return true
	}
	return false
}

// hostPort is u's lower-case host with the scheme's default port made
// explicit, so that https://h and https://h:443 compare equal.
func hostPort(u *url.URL) string {
	port := u.Port()
	if port == "" {
		switch strings.ToLower(u.Scheme) {
		case "https":
			port = "443"
		case "http":
			port = "80"
		}
	}
	return strings.ToLower(u.Hostname()) + ":" + port
}

// logf writes a warning line, prefixed "hub: ", to Options.Progress.
func (s *session) logf(format string, args ...any) {
	if s.opts.Progress != nil {
		fmt.Fprintf(s.opts.Progress, "hub: "+format+"\n", args...)
	}
}

// bare is err's message without the "hub: " prefix that this package's
// errors carry, for quoting inside a line logf prefixes already.
func bare(err error) string {
	return strings.TrimPrefix(err.Error(), "hub: ")
}

// plural writes "1 file", "2 files".
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return strconv.Itoa(n) + " " + noun + "s"
}

// remoteFile is what a HEAD tells about one file.
type remoteFile struct {
	name   string
	commit string
	etag   string
	size   int64 // -1: unknown
}

// connError marks a failure to talk to the Hub at all (as opposed to an
// answer from it), after which a cached snapshot may be used instead.
type connError struct{ err error }

func (e *connError) Error() string { return e.err.Error() }
func (e *connError) Unwrap() error { return e.err }

// fetch downloads every file of the checkpoint at rev and returns the
// snapshot directory.
func (s *session) fetch(ctx context.Context, rev string) (string, error) {
	first, err := s.headFile(ctx, rev, requiredFiles[0])
	if err != nil {
		if errors.Is(err, ErrNotFound) && !isRepoLevel(err) {
			return "", fmt.Errorf("hub: %s@%s has no %s, so it is not a transformers model: %w", s.repo, rev, requiredFiles[0], err)
		}
		return "", err
	}
	commit := first.commit
	files := []*remoteFile{first}
	// look HEADs name at the pinned commit; a 404 gives (nil, nil).
	look := func(name string) (*remoteFile, error) {
		f, err := s.headFile(ctx, commit, name)
		if err != nil {
			if errors.Is(err, ErrNotFound) && !isRepoLevel(err) {
				s.markNoExist(commit, name)
				return nil, nil
			}
			return nil, err
		}
		return f, nil
	}
	for _, name := range requiredFiles[1:] {
		f, err := look(name)
		if err != nil {
			return "", err
		}
		if f == nil {
			return "", fmt.Errorf("hub: %s@%s: file %s: %w", s.repo, rev, name, ErrNotFound)
		}
		files = append(files, f)
	}
	haveTok := false
	for _, name := range optionalFiles {
		f, err := look(name)
		if err != nil {
			return "", err
		}
		if f != nil {
			files = append(files, f)
			for _, t := range tokenizerFiles {
				haveTok = haveTok || t == name
			}
		}
	}
	if !haveTok {
		return "", fmt.Errorf("hub: %s@%s has no tokenizer (%s): %w", s.repo, rev, strings.Join(tokenizerFiles, " or "), ErrNotFound)
	}

	w, err := look(weightsFile)
	if err != nil {
		return "", err
	}
	if w != nil {
		files = append(files, w)
	} else {
		idx, err := look(weightsIndexFile)
		if err != nil {
			return "", err
		}
		if idx == nil {
			for _, p := range pickleWeights {
				if f, err := look(p); err != nil {
					return "", err
				} else if f != nil {
					return "", fmt.Errorf("hub: %s@%s has only PyTorch weights (%s): %w (%s or %s); convert the checkpoint to safetensors first", s.repo, rev, p, ErrNoSafetensors, weightsFile, weightsIndexFile)
				}
			}
			return "", fmt.Errorf("hub: %s@%s has no weights (%s or %s): %w", s.repo, rev, weightsFile, weightsIndexFile, ErrNotFound)
		}
		// The index is small: fetch it now to learn the shards.
		if err := s.fetchFile(ctx, commit, idx, nopProgress{}); err != nil {
			return "", err
		}
		files = append(files, idx)
		shards, err := readIndexShards(s.snapshotPath(commit, weightsIndexFile))
		if err != nil {
			return "", err
		}
		for _, sh := range shards {
			f, err := look(sh)
			if err != nil {
				return "", err
			}
			if f == nil {
				return "", fmt.Errorf("hub: %s@%s: shard %s listed in %s: %w", s.repo, rev, sh, weightsIndexFile, ErrNotFound)
			}
			files = append(files, f)
		}
	}

	var total int64
	n := 0
	for _, f := range files {
		if !exists(s.snapshotPath(commit, f.name)) && !exists(s.blobPath(f.etag)) {
			n++
			if f.size > 0 {
				total += f.size
			}
		}
	}
	var prog progress = nopProgress{}
	if n > 0 {
		if !s.opts.DisableProgressBars {
			prog = newProgress(s.opts.Progress, s.repo, s.opts.LogInterval)
		}
		prog.begin(total, n)
	}
	for _, f := range files {
		if err = s.fetchFile(ctx, commit, f, prog); err != nil {
			break
		}
	}
	prog.end(err)
	if err != nil {
		return "", err
	}
	if rev != commit {
		if err := s.writeRef(rev, commit); err != nil {
			return "", err
		}
	}
	return filepath.Join(s.storage, "snapshots", commit), nil
}

func (s *session) blobPath(etag string) string { return filepath.Join(s.storage, "blobs", etag) }

func (s *session) snapshotPath(commit, name string) string {
	return filepath.Join(s.storage, "snapshots", commit, filepath.FromSlash(name))
}

func (s *session) resolveURL(rev, name string) string {
	segs := strings.Split(name, "/")
	for i, seg := range segs {
		segs[i] = url.PathEscape(seg)
	}
	return s.endpoint + "/" + s.repo + "/resolve/" + url.PathEscape(rev) + "/" + strings.Join(segs, "/")
}

func (s *session) newRequest(ctx context.Context, method, u string) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, method, u, nil)
	if err != nil {
		return nil, fmt.Errorf("hub: %w", err)
	}
	req.Header.Set("User-Agent", userAgent+" "+runtime.Version())
	// Sizes and Range offsets refer to the stored bytes: no compression.
	req.Header.Set("Accept-Encoding", "identity")
	if s.token != "" && s.sendsToken(req.URL) {
		req.Header.Set("Authorization", "Bearer "+s.token)
	}
	return req, nil
}

// headFile asks the Hub about one file without following the CDN redirect.
func (s *session) headFile(ctx context.Context, rev, name string) (*remoteFile, error) {
	u := s.resolveURL(rev, name)
	for hops := 0; ; hops++ {
		hctx, cancel := context.WithTimeout(ctx, s.etagTO)
		req, err := s.newRequest(hctx, http.MethodHead, u)
		if err != nil {
			cancel()
			return nil, err
		}
		resp, err := s.head.Do(req)
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				return nil, fmt.Errorf("hub: %w", ctx.Err())
			}
			return nil, &connError{fmt.Errorf("hub: HEAD %s: %w", u, err)}
		}
		resp.Body.Close()
		if resp.StatusCode >= 300 && resp.StatusCode < 400 {
			loc := resp.Header.Get("Location")
			if lu, err := url.Parse(loc); err == nil && loc != "" && lu.Host == "" && hops < maxRedirects {
				// A relative redirect: the repo was renamed. Follow it.
				u = resp.Request.URL.ResolveReference(lu).String()
				continue
			}
		}
		if err := s.statusError(resp, rev, name); err != nil {
			return nil, err
		}
		f := &remoteFile{name: name, size: -1}
		f.commit = resp.Header.Get("X-Repo-Commit")
		f.etag = normalizeEtag(resp.Header.Get("X-Linked-Etag"))
		if f.etag == "" {
			f.etag = normalizeEtag(resp.Header.Get("ETag"))
		}
		if v := resp.Header.Get("X-Linked-Size"); v != "" {
			if n, err := strconv.ParseInt(v, 10, 64); err == nil && n >= 0 {
				f.size = n
			}
		} else if resp.StatusCode == http.StatusOK && resp.ContentLength >= 0 {
			f.size = resp.ContentLength
		}
		if f.commit == "" || f.etag == "" {
			return nil, fmt.Errorf("hub: %s answered HEAD %s without X-Repo-Commit or ETag: it does not look like a HuggingFace Hub (check HF_ENDPOINT and any proxy)", s.endpoint, u)
		}
		if !safeNameRE.MatchString(f.commit) || f.commit == "." || f.commit == ".." {
			return nil, fmt.Errorf("hub: HEAD %s: bad X-Repo-Commit %q", u, f.commit)
		}
		if !safeNameRE.MatchString(f.etag) || f.etag == "." || f.etag == ".." {
			return nil, fmt.Errorf("hub: HEAD %s: bad ETag %q", u, f.etag)
		}
		return f, nil
	}
}

// normalizeEtag strips W/ and quotes, as huggingface_hub does.
func normalizeEtag(e string) string {
	e = strings.TrimSpace(e)
	e = strings.TrimPrefix(e, "W/")
	return strings.Trim(e, `"`)
}

// repoLevelError is an ErrNotFound about the whole repo or revision rather
// than one file.
type repoLevelError struct{ msg string }

func (e *repoLevelError) Error() string { return e.msg }
func (e *repoLevelError) Unwrap() error { return ErrNotFound }

func isRepoLevel(err error) bool {
	var r *repoLevelError
	return errors.As(err, &r)
}

// statusError turns an HTTP error answer into an error, nil for 2xx/3xx.
func (s *session) statusError(resp *http.Response, rev, name string) error {
	code := resp.StatusCode
	if code < 400 {
		return nil
	}
	xcode := resp.Header.Get("X-Error-Code")
	detail := ""
	if m := resp.Header.Get("X-Error-Message"); m != "" {
		detail = " (" + m + ")"
	}
	switch {
	case code == http.StatusUnauthorized:
		if s.token == "" {
			return fmt.Errorf("hub: %s: %s: the model does not exist, or is private or gated and needs a token: set HF_TOKEN to a HuggingFace access token with read access%s: %w", s.endpoint, s.repo, detail, ErrUnauthorized)
		}
		return fmt.Errorf("hub: %s: %s: the token in HF_TOKEN was rejected, or the model does not exist%s: %w", s.endpoint, s.repo, detail, ErrUnauthorized)
	case code == http.StatusForbidden:
		if xcode == "GatedRepo" {
			return fmt.Errorf("hub: %s is gated: accept its terms at %s/%s and set HF_TOKEN to a token of that account%s: %w", s.repo, s.endpoint, s.repo, detail, ErrUnauthorized)
		}
		return fmt.Errorf("hub: %s: access to %s is forbidden; check that HF_TOKEN grants read access%s: %w", s.endpoint, s.repo, detail, ErrUnauthorized)
	case code == http.StatusNotFound && xcode == "RepoNotFound":
		return &repoLevelError{fmt.Sprintf("hub: model %s not found on %s%s", s.repo, s.endpoint, detail)}
	case code == http.StatusNotFound && xcode == "RevisionNotFound":
		return &repoLevelError{fmt.Sprintf("hub: revision %q of %s not found on %s%s", rev, s.repo, s.endpoint, detail)}
	case code == http.StatusNotFound:
		return fmt.Errorf("hub: %s@%s: file %s: %w%s", s.repo, rev, name, ErrNotFound, detail)
	}
	return fmt.Errorf("hub: %s %s: HTTP %s%s", resp.Request.Method, resp.Request.URL.Redacted(), resp.Status, detail)
}

// markNoExist records a missing optional file the way huggingface_hub does.
func (s *session) markNoExist(commit, name string) {
	p := filepath.Join(s.storage, ".no_exist", commit, filepath.FromSlash(name))
	if os.MkdirAll(filepath.Dir(p), 0o755) == nil {
		if f, err := os.OpenFile(p, os.O_CREATE|os.O_WRONLY, 0o644); err == nil {
			f.Close()
		}
	}
}

func (s *session) writeRef(rev, commit string) error {
	p := filepath.Join(s.storage, "refs", filepath.FromSlash(rev))
	if b, err := os.ReadFile(p); err == nil && string(b) == commit {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return fmt.Errorf("hub: %w", err)
	}
	tmp := p + ".tmp" + strconv.Itoa(os.Getpid())
	if err := os.WriteFile(tmp, []byte(commit), 0o644); err != nil {
		return fmt.Errorf("hub: %w", err)
	}
	if err := os.Rename(tmp, p); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("hub: %w", err)
	}
	return nil
}

func exists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// fetchFile makes snapshots/<commit>/<name> point at blobs/<etag>,
// downloading the blob unless it is already there.
func (s *session) fetchFile(ctx context.Context, commit string, f *remoteFile, prog progress) error {
	ptr := s.snapshotPath(commit, f.name)
	if exists(ptr) { // a commit's files never change
		return nil
	}
	blob := s.blobPath(f.etag)
	if !exists(blob) {
		if err := os.MkdirAll(filepath.Dir(blob), 0o755); err != nil {
			return fmt.Errorf("hub: %w", err)
		}
		unlock, err := lockFile(ctx, filepath.Join(s.locks, f.etag+".lock"))
		if err != nil {
			return err
		}
		err = nil
		if !exists(blob) { // another process may have finished it
			err = s.download(ctx, commit, f, blob, prog)
		}
		unlock()
		if err != nil {
			return err
		}
	}
	return s.link(blob, ptr)
}

// link creates ptr as a relative symlink to blob (a copy where symlinks are
// not available).
func (s *session) link(blob, ptr string) error {
	if err := os.MkdirAll(filepath.Dir(ptr), 0o755); err != nil {
		return fmt.Errorf("hub: %w", err)
	}
	rel, err := filepath.Rel(filepath.Dir(ptr), blob)
	if err != nil {
		return fmt.Errorf("hub: %w", err)
	}
	if cur, err := os.Readlink(ptr); err == nil && cur == rel {
		return nil
	}
	if _, err := os.Lstat(ptr); err == nil {
		if err := os.Remove(ptr); err != nil {
			return fmt.Errorf("hub: %w", err)
		}
	}
	err = os.Symlink(rel, ptr)
	if err == nil {
		return nil
	}
	if cur, rerr := os.Readlink(ptr); rerr == nil && cur == rel {
		return nil // another process made the same link
	}
	// No symlinks (e.g. Windows without developer mode): copy, as
	// huggingface_hub falls back to real files.
	return copyFile(blob, ptr)
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return fmt.Errorf("hub: %w", err)
	}
	defer in.Close()
	tmp := dst + ".tmp" + strconv.Itoa(os.Getpid())
	out, err := os.Create(tmp)
	if err != nil {
		return fmt.Errorf("hub: %w", err)
	}
	_, err = io.Copy(out, in)
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, dst)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("hub: %w", err)
	}
	return nil
}

// transientError is a failure worth retrying: the connection dropped or
// stalled mid-download.
type transientError struct{ err error }

func (e *transientError) Error() string { return e.err.Error() }
func (e *transientError) Unwrap() error { return e.err }

var errStalled = errors.New("download stalled")

// download fetches f into blob via blob.incomplete, resuming a partial file
// and retrying dropped connections. On failure (including cancellation)
// blob.incomplete is left for the next run.
func (s *session) download(ctx context.Context, commit string, f *remoteFile, blob string, prog progress) error {
	inc := blob + ".incomplete"
	delay := s.backoff
	for attempt := 1; ; attempt++ {
		err := s.downloadOnce(ctx, commit, f, inc, prog)
		if err == nil {
			break
		}
		var te *transientError
		if !errors.As(err, &te) || ctx.Err() != nil {
			return err
		}
		if attempt >= maxAttempts {
			return &connError{fmt.Errorf("%w (gave up after %s; rerun to resume)", err, plural(attempt, "attempt"))}
		}
		// err names the file already.
		s.logf("%s; retrying in %v", bare(err), delay)
		select {
		case <-time.After(delay):
		case <-ctx.Done():
			return fmt.Errorf("hub: %w", ctx.Err())
		}
		delay *= 2
	}
	// Flush the finished download before it becomes a trusted blob, so a
	// power loss cannot leave a truncated file that later runs reuse.
	if err := syncFile(inc); err != nil {
		return fmt.Errorf("hub: %w", err)
	}
	if err := os.Rename(inc, blob); err != nil {
		return fmt.Errorf("hub: %w", err)
	}
	return nil
}

func (s *session) downloadOnce(ctx context.Context, commit string, f *remoteFile, inc string, prog progress) (err error) {
	out, err := os.OpenFile(inc, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return fmt.Errorf("hub: %w", err)
	}
	defer func() {
		if cerr := out.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("hub: %w", cerr)
		}
	}()
	st, err := out.Stat()
	if err != nil {
		return fmt.Errorf("hub: %w", err)
	}
	have := st.Size()
	want := f.size
	if want >= 0 && have > want {
		if err := out.Truncate(0); err != nil {
			return fmt.Errorf("hub: %w", err)
		}
		have = 0
	}
	var h hash.Hash
	if sha256RE.MatchString(f.etag) { // an LFS file: its ETag is its sha256
		h = sha256.New()
	}
	if want < 0 || have < want {
		rctx, cancel := context.WithCancelCause(ctx)
		defer cancel(nil)
		req, err := s.newRequest(rctx, http.MethodGet, s.resolveURL(commit, f.name))
		if err != nil {
			return err
		}
		if have > 0 {
			req.Header.Set("Range", "bytes="+strconv.FormatInt(have, 10)+"-")
		}
		stall := time.AfterFunc(s.etagTO+s.readTO, func() { cancel(errStalled) })
		defer stall.Stop()
		resp, err := s.client.Do(req)
		if err != nil {
			return s.transportError(ctx, rctx, f, err)
		}
		defer resp.Body.Close()
		switch {
		case resp.StatusCode == http.StatusPartialContent && have > 0:
			start, total, ok := parseContentRange(resp.Header.Get("Content-Range"))
			if !ok || start != have {
				return fmt.Errorf("hub: GET %s: asked for bytes %d-, got Content-Range %q", f.name, have, resp.Header.Get("Content-Range"))
			}
			if want < 0 && total >= 0 {
				want = total
			}
		case resp.StatusCode == http.StatusOK:
			if have > 0 { // the server ignored Range: start again
				if err := out.Truncate(0); err != nil {
					return fmt.Errorf("hub: %w", err)
				}
				have = 0
			}
			if want < 0 && resp.ContentLength >= 0 {
				want = resp.ContentLength
			}
		case resp.StatusCode == http.StatusRequestedRangeNotSatisfiable && have > 0:
			// What we hold is not a prefix of the file: start again.
			if err := out.Truncate(0); err != nil {
				return fmt.Errorf("hub: %w", err)
			}
			return &transientError{fmt.Errorf("hub: GET %s: range %d- not satisfiable", f.name, have)}
		default:
			if err := s.statusError(resp, commit, f.name); err != nil {
				return err
			}
			return fmt.Errorf("hub: GET %s: unexpected %s", f.name, resp.Status)
		}
		if h != nil && have > 0 {
			if _, err := io.Copy(h, io.NewSectionReader(out, 0, have)); err != nil {
				return fmt.Errorf("hub: %w", err)
			}
		}
		if _, err := out.Seek(have, io.SeekStart); err != nil {
			return fmt.Errorf("hub: %w", err)
		}
		prog.file(f.name, f.size, have)
		var w io.Writer = out
		if h != nil {
			w = io.MultiWriter(out, h)
		}
		buf := make([]byte, 256<<10)
		for {
			stall.Reset(s.readTO)
			n, rerr := resp.Body.Read(buf)
			if n > 0 {
				if _, err := w.Write(buf[:n]); err != nil {
					return fmt.Errorf("hub: writing %s: %w", out.Name(), err)
				}
				have += int64(n)
				prog.add(int64(n))
			}
			if rerr == io.EOF {
				break
			}
			if rerr != nil {
				return s.transportError(ctx, rctx, f, rerr)
			}
		}
	} else { // complete already: just verify
		prog.file(f.name, f.size, have)
		if h != nil {
			if _, err := io.Copy(h, io.NewSectionReader(out, 0, have)); err != nil {
				return fmt.Errorf("hub: %w", err)
			}
		}
	}
	if want >= 0 && have != want {
		return &transientError{fmt.Errorf("hub: %s: got %d bytes, expected %d", f.name, have, want)}
	}
	if h != nil {
		if got := hex.EncodeToString(h.Sum(nil)); got != f.etag {
			out.Truncate(0)
			return fmt.Errorf("hub: %s: sha256 %s does not match the Hub's %s; the partial download was discarded, run again", f.name, got, f.etag)
		}
	}
	return nil
}

// transportError classifies a failed request or body read.
func (s *session) transportError(ctx, rctx context.Context, f *remoteFile, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("hub: download of %s interrupted (rerun to resume): %w", f.name, ctx.Err())
	}
	if errors.Is(context.Cause(rctx), errStalled) {
		return &transientError{fmt.Errorf("hub: %s: no data for %v", f.name, s.readTO)}
	}
	return &transientError{fmt.Errorf("hub: %s: %w", f.name, err)}
}

// parseContentRange parses "bytes start-end/total" (total may be "*").
func parseContentRange(v string) (start, total int64, ok bool) {
	v, found := strings.CutPrefix(strings.TrimSpace(v), "bytes ")
	if !found {
		return 0, 0, false
	}
	rng, tot, found := strings.Cut(v, "/")
	if !found {
		return 0, 0, false
	}
	a, _, found := strings.Cut(rng, "-")
	if !found {
		return 0, 0, false
	}
	start, err := strconv.ParseInt(a, 10, 64)
	if err != nil {
		return 0, 0, false
	}
	total = -1
	if tot != "*" {
		if total, err = strconv.ParseInt(tot, 10, 64); err != nil {
			return 0, 0, false
		}
	}
	return start, total, true
}

func syncFile(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
