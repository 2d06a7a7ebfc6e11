package hub

import (
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// DefaultEndpoint is the Hub used when Options.Endpoint is empty.
const DefaultEndpoint = "https://huggingface.co"

// DefaultRevision is the revision used when neither the model argument nor
// Options.Revision names one.
const DefaultRevision = "main"

// Default timeouts, the same as huggingface_hub's HF_HUB_ETAG_TIMEOUT and
// HF_HUB_DOWNLOAD_TIMEOUT.
const (
	DefaultEtagTimeout     = 10 * time.Second
	DefaultDownloadTimeout = 10 * time.Second
)

// Options configures Resolve. The zero value is usable except for CacheDir,
// which Resolve requires for model ids; OptionsFromEnv fills every field the
// way huggingface_hub reads its environment.
type Options struct {
	// CacheDir is the hub cache root (the directory holding models--*).
	CacheDir string
	// Endpoint is the Hub URL; empty means DefaultEndpoint.
	Endpoint string
	// Token, when not empty, is sent as "Authorization: Bearer <Token>" to
	// the endpoint's own /api/ and /resolve/ URLs, and to nothing else: not
	// to the CDN (or any other URL, on whatever host) that a download is
	// redirected to, as huggingface_hub drops it for LFS blobs.
	Token string
	// Offline uses only the cache and makes no network request.
	Offline bool
	// Revision is used when the model argument has no "@revision";
	// empty means DefaultRevision.
	Revision string
	// Progress receives the progress display (a progress bar when it is a
	// terminal *os.File, otherwise occasional plain log lines) and warnings
	// such as retries. Nil is silent.
	Progress io.Writer
	// DisableProgressBars turns the progress display off even when Progress
	// is set; warnings still go to Progress. OptionsFromEnv sets it from
	// $HF_HUB_DISABLE_PROGRESS_BARS, so a caller that points Progress at its
	// own writer afterwards still honours the variable.
	DisableProgressBars bool
	// LogInterval is the least time between two plain progress lines;
	// zero means 5s.
	LogInterval time.Duration
	// Client makes the HTTP requests; nil means a client with
	// http.DefaultTransport (which honours HTTPS_PROXY and friends).
	Client *http.Client
	// EtagTimeout bounds each HEAD request; zero means DefaultEtagTimeout.
	EtagTimeout time.Duration
	// DownloadTimeout aborts a GET that receives no data for this long (the
	// download is then retried from where it stopped); zero means
	// DefaultDownloadTimeout.
	DownloadTimeout time.Duration
}

// OptionsFromEnv returns Options filled from the environment the way
// huggingface_hub reads it:
//
//   - CacheDir: $HF_HUB_CACHE, else $HUGGINGFACE_HUB_CACHE, else $HF_HOME/hub,
//     where HF_HOME defaults to $XDG_CACHE_HOME/huggingface, else
//     ~/.cache/huggingface (~ and $VARS are expanded).
//   - Endpoint: $HF_ENDPOINT (trailing slashes removed), else DefaultEndpoint.
//   - Token: $HF_TOKEN, else $HUGGING_FACE_HUB_TOKEN, else the file
//     $HF_TOKEN_PATH (default $HF_HOME/token) that `huggingface-cli login`
//     writes.
//   - Offline: $HF_HUB_OFFLINE (or $TRANSFORMERS_OFFLINE) is 1/ON/YES/TRUE.
//   - EtagTimeout, DownloadTimeout: $HF_HUB_ETAG_TIMEOUT and
//     $HF_HUB_DOWNLOAD_TIMEOUT in seconds.
//   - Progress: os.Stderr.
//   - DisableProgressBars: $HF_HUB_DISABLE_PROGRESS_BARS is true.
func OptionsFromEnv() Options {
	return optionsFromEnv(os.Getenv, os.UserHomeDir, os.ReadFile, os.Stderr)
}

func optionsFromEnv(getenv func(string) string, home func() (string, error),
	readFile func(string) ([]byte, error), progress io.Writer) Options {
	expand := func(p string) string {
		if p == "~" || strings.HasPrefix(p, "~/") || strings.HasPrefix(p, "~"+string(filepath.Separator)) {
			if h, err := home(); err == nil {
				p = filepath.Join(h, p[1:])
			}
		}
		return os.Expand(p, getenv)
	}

	hfHome := getenv("HF_HOME")
	if hfHome == "" {
		xdg := getenv("XDG_CACHE_HOME")
		if xdg == "" {
			xdg = filepath.Join("~", ".cache")
		}
		hfHome = filepath.Join(xdg, "huggingface")
	}
	hfHome = expand(hfHome)

	var o Options
	switch {
	case getenv("HF_HUB_CACHE") != "":
		o.CacheDir = expand(getenv("HF_HUB_CACHE"))
	case getenv("HUGGINGFACE_HUB_CACHE") != "":
		o.CacheDir = expand(getenv("HUGGINGFACE_HUB_CACHE"))
	default:
		o.CacheDir = filepath.Join(hfHome, "hub")
	}

	o.Endpoint = strings.TrimRight(getenv("HF_ENDPOINT"), "/")
	if o.Endpoint == "" {
		o.Endpoint = DefaultEndpoint
	}

	o.Token = strings.TrimSpace(getenv("HF_TOKEN"))
	if o.Token == "" {
		o.Token = strings.TrimSpace(getenv("HUGGING_FACE_HUB_TOKEN"))
	}
	if o.Token == "" {
		tokenPath := getenv("HF_TOKEN_PATH")
		if tokenPath == "" {
			tokenPath = filepath.Join(hfHome, "token")
		}
		if b, err := readFile(expand(tokenPath)); err == nil {
			o.Token = strings.TrimSpace(string(b))
		}
	}

	o.Offline = envTrue(getenv("HF_HUB_OFFLINE")) || envTrue(getenv("TRANSFORMERS_OFFLINE"))
	o.EtagTimeout = envSeconds(getenv("HF_HUB_ETAG_TIMEOUT"))
	o.DownloadTimeout = envSeconds(getenv("HF_HUB_DOWNLOAD_TIMEOUT"))
	o.Progress = progress
	o.DisableProgressBars = envTrue(getenv("HF_HUB_DISABLE_PROGRESS_BARS"))
	return o
}

// envTrue mirrors huggingface_hub's _is_true.
func envTrue(v string) bool {
	switch strings.ToUpper(strings.TrimSpace(v)) {
	case "1", "ON", "YES", "TRUE":
		return true
	}
	return false
}

func envSeconds(v string) time.Duration {
	f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
	if err != nil || f <= 0 {
		return 0
	}
	return time.Duration(f * float64(time.Second))
}
