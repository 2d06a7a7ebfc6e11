# gitcap: the two commands a new user needs are `make demo` and `make test`.
# Both install OpenBLAS (Debian's libopenblas0) first when it is missing.
# Nothing links against it: gitcap loads libopenblas.so.0 at run time and
# falls back to a pure-Go BLAS (about 20x slower, with a warning) without it,
# so `go build ./...` and `go install` work anywhere.

GO ?= go

.PHONY: deps deps-mpi deps-browser demo test test-purego build bench vet

# $(call apt-install,PACKAGE,WHAT FOR,WITHOUT IT): install a Debian package
# with apt unless it is installed, as root directly or else through sudo.
# `env` carries DEBIAN_FRONTEND through sudo, and works when SUDO is empty (a
# leading VAR=value would then not be an assignment). A failure only warns.
define apt-install
	@if dpkg -s $(1) >/dev/null 2>&1; then :; \
	elif ! command -v apt-get >/dev/null 2>&1; then \
		echo "warning: no apt-get: install $(1) yourself ($(2)); $(3)"; \
	else \
		echo "installing $(1) ($(2))"; \
		if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
		{ $$SUDO apt-get update -qq && $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(1); } || \
		echo "warning: $(1) could not be installed; $(3)"; \
	fi
endef

# OpenBLAS: gitcap loads libopenblas.so.0 at run time.
deps:
	$(call apt-install,libopenblas0,OpenBLAS$(comma) for fast matrix multiplies,gitcap uses the pure-Go BLAS (much slower) without it)

# Open MPI (mpirun) for data-parallel training and the mpirun tests of
# `make test` (they skip without it, and fail under CI=true). gitcap itself
# needs it only when started by mpirun.
deps-mpi:
	$(call apt-install,openmpi-bin,Open MPI$(comma) for data-parallel training under mpirun,the mpirun tests skip without it)

# Chromium for the web page's headless-browser test in `make test`.
deps-browser:
	$(call apt-install,chromium,headless Chromium for the web page test,that test fails without it (GITCAP_SKIP_BROWSER=1 skips it))

comma := ,

build: deps
	$(GO) build -o bin/gitcap ./cmd/gitcap

demo: build
	./bin/gitcap demo

test: deps deps-mpi deps-browser
	$(GO) test -timeout 20m ./...

# The kernel and model tests again on the pure-Go BLAS (-short: without the
# git-base-shaped models, which take many minutes at pure-Go speed).
test-purego:
	GITCAP_OPENBLAS=off $(GO) test -short -timeout 20m ./graph ./gitmodel

vet:
	gofmt -l . && $(GO) vet ./...

bench: build
	./bin/gitcap bench

# Fuzzing: every Fuzz target of every package, one `go test -fuzz` run each
# (go test fuzzes one target per invocation). A crasher is saved under the
# package's testdata/fuzz/ and from then on runs as a regression case in
# `make test`. `make fuzz-ci` is the brief pass CI runs.
FUZZTIME ?= 30s
# New-coverage inputs are minimised before fuzzing goes on (60 s by default,
# which would eat a short run).
FUZZMINTIME ?= 5s
FUZZPKGS = $(shell grep -l --include='*_test.go' -r '^func Fuzz' . | xargs -n1 dirname | sort -u)

.PHONY: fuzz fuzz-ci soak
#
# Go 1.26's fuzz coordinator can fail a run that found nothing with a bare
# "context deadline exceeded" right as -fuzztime ends (golang/go#75804, fixed
# in Go 1.27). A run that fails that way and wrote no new crasher under
# testdata/fuzz/ is reported as that flake and run once more; any other
# failure, or the same one twice, fails the target.
fuzz:
	@set -e; for pkg in $(FUZZPKGS); do \
		for t in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz'); do \
			for try in 1 2; do \
				echo "== fuzz $$pkg $$t for $(FUZZTIME)"; \
				before=$$(ls $$pkg/testdata/fuzz/$$t 2>/dev/null | wc -l); \
				out=$$(mktemp); rc=0; \
				$(GO) test -run '^$$' -fuzz "^$$t\$$" -fuzztime $(FUZZTIME) -fuzzminimizetime $(FUZZMINTIME) $$pkg >$$out 2>&1 || rc=$$?; \
				cat $$out; \
				after=$$(ls $$pkg/testdata/fuzz/$$t 2>/dev/null | wc -l); \
				if [ $$rc -eq 0 ]; then rm -f $$out; break; fi; \
				if [ $$try -eq 1 ] && [ $$after -eq $$before ] && grep -q '^    context deadline exceeded$$' $$out; then \
					echo "== $$t: Go's fuzz deadline flake (golang/go#75804), no crasher written: running it again"; rm -f $$out; continue; \
				fi; \
				rm -f $$out; exit $$rc; \
			done; \
		done; \
	done

fuzz-ci:
	$(MAKE) fuzz FUZZTIME=3s

# Soak (train/soak_test.go, skipped unless GITCAP_SOAK=1; a few minutes):
# 1,000 captions in one process with flat memory and goroutines, and a
# 200-step training run resumed after three kill -9s matching an
# uninterrupted run bit for bit.
soak:
	GITCAP_SOAK=1 $(GO) test -run '^TestSoak' -count=1 -v -timeout 15m ./train
