// Package hub resolves a --model argument to a local directory, fetching a
// GIT checkpoint from the HuggingFace Hub when the argument is a model id
// ("microsoft/git-base-coco", or "microsoft/git-base-coco@<revision>").
//
// Files land in the standard HuggingFace cache, laid out exactly as
// huggingface_hub (>= 0.14) lays it out, so a cache filled by Python is reused
// here and one filled here is reused by Python:
//
//	$HF_HUB_CACHE                    (else $HF_HOME/hub, else ~/.cache/huggingface/hub)
//	├── .locks/models--{owner}--{name}/{etag}.lock    flock(2) locks shared with Python's filelock
//	└── models--{owner}--{name}/
//	    ├── blobs/{etag}              file contents, named by ETag (git blob sha1, or sha256 for LFS files)
//	    ├── blobs/{etag}.incomplete   a download in progress; resumed with a Range request
//	    ├── refs/{revision}           the commit sha that revision (e.g. "main") resolved to
//	    ├── snapshots/{commit}/{file} relative symlinks to ../../blobs/{etag}
//	    └── .no_exist/{commit}/{file} empty markers for optional files the repo lacks
//
// On the wire it speaks the protocol huggingface_hub uses: a HEAD of
// {endpoint}/{repo}/resolve/{revision}/{file} without following redirects
// (X-Repo-Commit gives the commit, X-Linked-Etag or ETag the blob name,
// X-Linked-Size or Content-Length the size), then a GET that follows the
// redirect to the CDN. The first HEAD pins the commit; every other file is
// fetched at that commit so a snapshot never mixes two commits. The token
// (HF_TOKEN) goes only to the endpoint's own /api/ and /resolve/ URLs, never
// to a redirect target elsewhere, even on the same host or a subdomain,
// where Go's client would otherwise keep the Authorization header.
//
// The environment (HF_HUB_CACHE, HF_HOME, HF_ENDPOINT, HF_TOKEN,
// HF_HUB_OFFLINE, ...) is read only by OptionsFromEnv; Resolve itself reads
// nothing but its Options.
package hub
