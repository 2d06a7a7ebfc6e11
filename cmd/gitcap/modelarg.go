package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"
	"syscall"

	"github.com/gitcap/gitcap/gitmodel/hub"
)

// resolveModel turns --model into a checkpoint directory: an existing
// directory as it is, else a HuggingFace model id fetched into the HF cache.
//
// A bare name that is not a directory ("nosuchdir") is not sent to the Hub.
// huggingface_hub still accepts bare ids for a few legacy canonical models
// (gpt2, bert-base-uncased, now redirected to openai-community/gpt2 and
// google-bert/bert-base-uncased), but every GIT checkpoint on the Hub is
// owner/name (microsoft/git-base, ...), so a bare name is almost always a
// mistyped local path, and a DNS error would hide that.
func resolveModel(ctx context.Context, model string, opts hub.Options) (string, error) {
	if err := checkModelArg(model); err != nil {
		return "", err
	}
	dir, err := hub.Resolve(ctx, model, opts)
	if err != nil {
		return "", explainHubError(model, opts, err)
	}
	return dir, nil
}

// checkModelArg rejects a --model that is neither a directory nor of the
// owner/name form of a Hub id.
func checkModelArg(model string) error {
	st, err := os.Stat(model)
	switch {
	case err == nil && st.IsDir():
		return nil
	case err == nil:
		return fmt.Errorf("--model %s: is a file; want a checkpoint directory (config.json, model.safetensors, tokenizer files) or a HuggingFace id owner/name", model)
	case !errors.Is(err, os.ErrNotExist):
		return fmt.Errorf("--model %s: %w", model, err)
	}
	repo, _, _ := strings.Cut(model, "@")
	if !strings.Contains(repo, "/") {
		return fmt.Errorf("--model %s: no such checkpoint directory (a HuggingFace model id has the form owner/name, e.g. microsoft/git-base)", model)
	}
	return nil
}

// explainHubError turns a failure to reach the Hub into one line that says
// so and what to do instead.
func explainHubError(model string, opts hub.Options, err error) error {
	if opts.Offline || !isNetworkError(err) {
		return err
	}
	endpoint := opts.Endpoint
	if endpoint == "" {
		endpoint = hub.DefaultEndpoint
	}
	return fmt.Errorf("--model %s: the HuggingFace Hub (%s) is unreachable (%s); give a local checkpoint directory, or set HF_HUB_OFFLINE=1 to use only the HF cache",
		model, endpoint, rootCause(err))
}

// isNetworkError reports whether err is a failure to talk to a server at
// all (DNS, refused or reset connection, timeout), as opposed to an answer.
func isNetworkError(err error) bool {
	var dns *net.DNSError
	var op *net.OpError
	var ue *url.Error
	switch {
	case errors.As(err, &dns), errors.As(err, &op):
		return true
	case errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.ENETUNREACH), errors.Is(err, syscall.EHOSTUNREACH):
		return true
	case errors.As(err, &ue):
		return ue.Timeout()
	}
	return false
}

// rootCause is the innermost error's text (a DNS or dial error says what
// failed without the request around it).
func rootCause(err error) string {
	var dns *net.DNSError
	if errors.As(err, &dns) {
		return "cannot resolve " + dns.Name
	}
	var op *net.OpError
	if errors.As(err, &op) && op.Err != nil {
		return op.Op + ": " + op.Err.Error()
	}
	for {
		u := errors.Unwrap(err)
		if u == nil {
			return err.Error()
		}
		err = u
	}
}
