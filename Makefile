# gitcap: the two commands a new user needs are `make demo` and `make test`.
# Both install OpenBLAS (Debian's libopenblas-dev) first when it is missing.

GO ?= go

# OpenBLAS misdetects some virtual AVX-512 CPUs and then runs ~5x slower; it reads
# OPENBLAS_CORETYPE once, when it loads. (The gitcap binary sets it itself.)
ifeq ($(OPENBLAS_CORETYPE),)
  ifneq ($(shell grep -m1 -o -w avx512f /proc/cpuinfo 2>/dev/null),)
    export OPENBLAS_CORETYPE := SkylakeX
  endif
endif

.PHONY: deps deps-mpi demo test build bench vet

# Without OpenBLAS's development files (apt unavailable), build the pure-Go
# BLAS instead: everything works, matrix products are ~20x slower.
GOTAGS = $(shell ldconfig -p 2>/dev/null | grep -q 'libopenblas\.so ' || echo -tags noopenblas)

deps:
	@dpkg -s libopenblas-dev >/dev/null 2>&1 || { \
		echo "installing libopenblas-dev (OpenBLAS, for fast matrix multiplies)"; \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && $$SUDO DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libopenblas-dev; } || \
		echo "warning: OpenBLAS could not be installed; using the pure-Go BLAS (much slower)"

# Open MPI (Debian's openmpi-bin) for data-parallel training and for the
# mpirun tests of `make test`, which skip without it (and fail under CI=true).
# gitcap itself never needs it unless started by mpirun.
MPIRUN ?= mpirun
deps-mpi:
	@command -v $(MPIRUN) >/dev/null 2>&1 || { \
		echo "installing openmpi-bin (Open MPI, for data-parallel training under mpirun)"; \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openmpi-bin; }

build: deps
	$(GO) build $(GOTAGS) -o bin/gitcap ./cmd/gitcap

demo: build
	./bin/gitcap demo

test: deps
	$(GO) test $(GOTAGS) -timeout 20m ./...

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
fuzz:
	@set -e; for pkg in $(FUZZPKGS); do \
		for t in $$($(GO) test $(GOTAGS) -list '^Fuzz' $$pkg | grep '^Fuzz'); do \
			echo "== fuzz $$pkg $$t for $(FUZZTIME)"; \
			$(GO) test $(GOTAGS) -run '^$$' -fuzz "^$$t\$$" -fuzztime $(FUZZTIME) -fuzzminimizetime $(FUZZMINTIME) $$pkg; \
		done; \
	done

fuzz-ci:
	$(MAKE) fuzz FUZZTIME=3s

# Soak (train/soak_test.go, skipped unless GITCAP_SOAK=1; a few minutes):
# 1,000 captions in one process with flat memory and goroutines, and a
# 200-step training run resumed after three kill -9s matching an
# uninterrupted run bit for bit.
soak:
	GITCAP_SOAK=1 $(GO) test $(GOTAGS) -run '^TestSoak' -count=1 -v -timeout 15m ./train
